"""No personal data, rejected value or raw path in any log line a serving process writes.

`install()` wraps the process's log-record factory, so every record is scrubbed when it is created,
whichever library logs it (BentoML, uvicorn, ours) and whichever handler writes it:
- a request validation error (BentoML logs pydantic's ValidationError at ERROR with a traceback that
  quotes the rejected value, about 2 KB per bad request) becomes one INFO line: route, method and
  pydantic's messages, which name the field and the rule, never the value;
- BentoML's access-log line and its "Exception on <path>" line name the route template
  (serving.routes), not the raw path;
- every message and traceback is passed through training.pii.mask_pii (phone, resident
  registration, card and account numbers, emails, URLs).

Written here rather than as a logging.Filter because BentoML configures the workers' handlers itself
(and uvicorn's loggers have handlers of their own): a factory sees every record once, before any
handler, and needs no knowledge of the logging configuration.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from serving.routes import route_template
from training.pii import mask_pii

# BentoML's loggers whose arguments hold the request path.
_ACCESS_LOGGER = "bentoml.access"
_EXCEPTION_LOGGER = "bentoml._internal.server.http_app"  # "Exception on %s [%s]"
_ACCESS_PATH = re.compile(r"path=([^,)]*)")
_FORMATTER = logging.Formatter()


def _validation_line(exc: Any) -> str:
    """pydantic's errors as one line: `texts.0: String should have at most 500 characters; ...`."""
    parts = []
    for err in exc.errors(include_input=False, include_context=False, include_url=False)[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{where}: {err.get('msg', '')}")
    more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return f"{exc.error_count()} validation error(s): " + "; ".join(parts) + more


def scrub(record: logging.LogRecord) -> logging.LogRecord:
    """The record, rewritten in place as the module docstring says."""
    try:
        args = record.args
        if record.name == _ACCESS_LOGGER and isinstance(args, tuple) and len(args) > 1:
            request = _ACCESS_PATH.sub(lambda m: f"path={route_template(m.group(1))}", str(args[1]))
            record.args = (args[0], request, *args[2:])
        elif record.name == _EXCEPTION_LOGGER and isinstance(args, tuple) and len(args) == 2:
            record.args = (route_template(str(args[0])), args[1])
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None and type(exc).__name__ == "ValidationError" and hasattr(exc, "errors"):
                record.msg = f"rejected request on %s [%s]: {_validation_line(exc)}"
                record.exc_info, record.levelno, record.levelname = None, logging.INFO, "INFO"
        message = record.getMessage()
        record.msg, record.args = mask_pii(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask_pii(_FORMATTER.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = mask_pii(record.stack_info)
    except Exception:  # noqa: BLE001  a log line must never fail the code that logs it
        record.msg, record.args, record.exc_info, record.exc_text = (
            "<log line withheld: unscrubbable>",
            None,
            None,
            None,
        )
    return record


def install() -> None:
    """Scrub every log record this process creates from now on (idempotent)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "heara_scrubbed", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub(factory(*args, **kwargs))

    make.heara_scrubbed = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)
