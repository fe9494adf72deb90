"""Progress display for long work (rich)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class _StepProgress:
    def __init__(self, progress: Progress, title: str) -> None:
        self.progress = progress
        self.task = progress.add_task(title, total=None)

    def wrap(self, fn):
        """Run `fn`; log lines from the steps (heara.data) update the progress description."""
        progress, task = self.progress, self.task

        class _Updater(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                progress.update(task, description=record.getMessage()[:80])

        def run(*args, **kwargs):
            handler = _Updater()
            logging.getLogger("heara").addHandler(handler)
            try:
                return fn(*args, **kwargs)
            finally:
                logging.getLogger("heara").removeHandler(handler)

        return run


@contextlib.contextmanager
def step_progress(title: str) -> Iterator[_StepProgress]:
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True
    ) as progress:
        yield _StepProgress(progress, title)
