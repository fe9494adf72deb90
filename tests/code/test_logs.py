"""Personal data never reaches a log line."""

from __future__ import annotations

import logging

import pytest

from training.logs import MaskPIIFilter, setup_logging


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def masked_logger():
    handler = ListHandler()
    handler.addFilter(MaskPIIFilter())
    logger = logging.getLogger("heara.test.pii")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, handler.lines
    logger.removeHandler(handler)


def test_phone_and_email_in_the_message_are_masked(masked_logger):
    logger, lines = masked_logger
    logger.info("보호자 연락처 010-1234-5678, 메일 guardian@example.com 으로 알림")
    assert lines == ["보호자 연락처 [PHONE], 메일 [EMAIL] 으로 알림"]


def test_personal_data_in_arguments_is_masked(masked_logger):
    logger, lines = masked_logger
    logger.warning("utterance %r from %s (%d chars)", "제 번호는 01098765432예요", "kim.ys@mail.co.kr", 17)
    assert lines == ["utterance '제 번호는 [PHONE]예요' from [EMAIL] (17 chars)"]
    assert "01098765432" not in lines[0] and "kim.ys" not in lines[0]


def test_a_clean_record_is_left_as_it_is():
    record = logging.LogRecord("heara", logging.INFO, __file__, 1, "split: %s rows", (120,), None)
    assert MaskPIIFilter().filter(record) is True
    assert (record.msg, record.args) == ("split: %s rows", (120,))  # untouched, still lazily formatted


def test_setup_logging_installs_the_filter():
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        setup_logging("DEBUG")
        assert root.level == logging.DEBUG
        assert any(isinstance(f, MaskPIIFilter) for h in root.handlers for f in h.filters)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
