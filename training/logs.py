"""Logging set-up: rich console output with personal data masked in every record."""

from __future__ import annotations

import logging

from rich.logging import RichHandler

from training.pii import mask_pii


class MaskPIIFilter(logging.Filter):
    """Masks phone numbers, resident registration numbers, emails and URLs in log messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = mask_pii(msg)
        if masked != msg:
            record.msg, record.args = masked, None
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
    handler.addFilter(MaskPIIFilter())
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
