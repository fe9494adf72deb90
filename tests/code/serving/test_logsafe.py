"""Every log record a serving process creates is scrubbed: no personal data, rejected value or raw path."""

from __future__ import annotations

import logging

import pytest
from pydantic import BaseModel, Field, ValidationError

from serving import logsafe


@pytest.fixture
def capture():
    """Records as the handlers would write them, with the scrubbing factory installed (and removed)."""
    original = logging.getLogRecordFactory()
    logsafe.install()
    logsafe.install()  # idempotent: one wrapper, not two
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(f"{record.levelname} {self.format(record)}")

    handler = Keep()
    root = logging.getLogger()
    root.addHandler(handler)
    old_level, root.level = root.level, logging.INFO
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.level = old_level
        logging.setLogRecordFactory(original)


class Body(BaseModel):
    texts: list[str] = Field(max_length=1)


def test_validation_error_becomes_one_masked_line(capture: list[str]) -> None:
    try:
        Body(texts=["전화 010-9876-5432", "주민번호 850505-2345678"])
    except ValidationError:
        logging.getLogger("bentoml._internal.server.http_app").error(
            "Exception on %s [%s]", "/classify", "POST", exc_info=True
        )
    (line,) = capture
    assert line.startswith("INFO rejected request on /classify [POST]: 1 validation error(s): texts:")
    assert "\n" not in line and "010-9876-5432" not in line and "850505" not in line


def test_paths_are_route_templates_and_pii_is_masked(capture: list[str]) -> None:
    logging.getLogger("bentoml.access").info(
        "%s (%s) (%s) %.3fms",
        "127.0.0.1:5",
        "scheme=http,method=GET,path=/010-1234-5678/x",
        "status=404",
        1.0,
    )
    logging.getLogger("bentoml._internal.server.http_app").error(
        "Exception on %s [%s]", "/01012345678", "GET"
    )
    logging.getLogger("anything").warning("mail me at someone@example.com, card 1234-5678-9012-3456")
    assert "path=other" in capture[0] and "010-1234-5678" not in capture[0]
    assert capture[1] == "ERROR Exception on other [GET]"
    assert capture[2] == "WARNING mail me at [EMAIL], card [CARD]"


def test_tracebacks_are_masked(capture: list[str]) -> None:
    try:
        raise RuntimeError("failed on 계좌 110-123-456789")
    except RuntimeError:
        logging.getLogger("x").exception("boom for %s", "010-1111-2222")
    (line,) = capture
    assert "Traceback" in line and "[ACCOUNT]" in line and "[PHONE]" in line
    assert "110-123-456789" not in line and "010-1111-2222" not in line


def test_a_broken_record_is_withheld_not_raised(capture: list[str]) -> None:
    logging.getLogger("x").info("%d items", "not a number")
    assert capture == ["INFO <log line withheld: unscrubbable>"]
