"""One error hierarchy for everything a user can get wrong or a run cannot get past.

`HearaError` and its subclasses are *expected* failures: a bad file, a bad setting, something not
there yet. The CLI prints them as one line and exits with code 2; Airflow fails the task at once
when `retryable` is false (a retry cannot mend bad data). Anything else is a bug and keeps its
traceback. Each message names the file and, where it applies, the row and field.
"""

from __future__ import annotations


class HearaError(Exception):
    """An expected failure with a message meant for the user."""

    retryable = False  # whether running the same step again, unchanged, may succeed


class ConfigError(HearaError, ValueError):
    """params.yaml, an overlay, an override or a trigger form is invalid; the message names the key.

    Also a ValueError, so pydantic validators may raise it and callers that caught ValueError still do.
    """


class DataError(HearaError):
    """A fatal data problem (unreadable file, missing column, too few rows to split)."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
        report: dict | None = None,
    ) -> None:
        self.file, self.row, self.field, self.reason = file, row, field, message
        self.report = report  # what the step found before it gave up (written out by the caller)
        where = ", ".join(
            part
            for part in (
                f"file {file}" if file else "",
                f"row {row}" if row is not None else "",
                f"field '{field}'" if field else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class NotFoundError(HearaError):
    """Something a step needs is not there yet: a split, a trained candidate, a registered version."""


class NoChampionError(NotFoundError):
    """The registry has no version with the champion alias: there is nothing to serve."""


class NotServableError(HearaError):
    """A registry version the service could not load, or whose smoke prediction is wrong: the champion
    alias is not moved to it (training/registry/servable.py). `reason` says what is wrong with it."""

    def __init__(self, model: str, version: int | str, reason: str) -> None:
        self.model, self.version, self.reason = model, version, reason
        super().__init__(f"{model} version {version} cannot be served, so it is not made champion: {reason}")


class ServiceUnavailable(HearaError):
    """A server Heara talks to (the MLflow tracking server, the service) did not answer: worth a retry."""

    retryable = True
