"""Errors that stop a run. Each names the file and, where it applies, the row and field."""

from __future__ import annotations


class DataError(Exception):
    """A fatal data problem (unreadable file, missing column, too few rows to split)."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 field: str | None = None, report: dict | None = None) -> None:
        self.file, self.row, self.field, self.reason = file, row, field, message
        self.report = report  # what the step found before it gave up (written out by the caller)
        where = ", ".join(
            part for part in (
                f"file {file}" if file else "",
                f"row {row}" if row is not None else "",
                f"field '{field}'" if field else "",
            ) if part
        )
        super().__init__(f"{where}: {message}" if where else message)
