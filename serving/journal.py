"""The prediction log's journal (`serve.predlog_durability: durable`): records on local disk, fsynced,
before the answer leaves; the store is written from it afterwards.

Why: the in-memory queue of the `async` mode is lost with the process. Killed with SIGKILL under load
at concurrency 16, the service had answered 78 of 3,731 requests whose predictions never reached the
store (issue #15). A care service's acknowledged danger alert must not vanish.

Layout, one folder per store (the key: a hash of its URL, password hidden, and table) and one folder
per process inside it:

    <root>/<store key>/<pid>-<random>/lock              flock'ed by its process while it lives
                                      00000001.jsonl    segments: one JSON line per record, appended
                                      00000002.jsonl    (a new one past `segment_bytes`)
                                      checkpoint.json   {"segment": n, "offset": bytes}: the store
                                                        has every record before this point

Writing (`Journal.append`, any thread): records join a queue; one thread takes everything queued,
writes it in one `write` and makes it durable with one `fdatasync` (group commit: concurrent requests
share a sync), then resolves each caller's future. A failed write or sync fails the futures of that
group with `JournalUnavailable` (the service answers 503: not acknowledged), cuts the segment back to
its last good length and continues in a new segment.

Reading (one thread, the prediction log's writer): `read` returns whole lines up to what has been
synced; `checkpoint` records how far the store has them and deletes the segments before that point.
A checkpoint is written without a sync: one that is lost or stale only makes the next reader replay
records the store already has, and the prediction log skips those (serving.predlog).

Processes that died: `Journal.orphans()` yields the folders whose lock can be taken (their process is
gone), locked by the caller until it has replayed and `remove()`d them. A folder is created under a
hidden name and renamed once its lock is held, so it is never seen unlocked by a live process.
Folders are 0700 and files 0600: they hold the same fields as the store's rows (masked text; the raw
text only when the prediction log stores it).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import queue
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Self

from training.pii import mask_pii

logger = logging.getLogger(__name__)

SEGMENT_BYTES = 4 * 2**20  # a segment is deleted whole once the store has it: small enough to go soon
_READ_BYTES = 2**20  # per read; a record's line is well under 10 KB (serve.max_chars 500)
_LOCK, _CHECKPOINT = "lock", "checkpoint.json"
_NEW_PREFIX = ".new-"  # a folder being created: not yet locked, never adopted unless long abandoned
_ABANDONED_NEW_S = 60.0
_ERROR_LOG_EVERY_S = 60.0

Position = tuple[int, int]  # (segment number, byte offset in it)


class JournalUnavailable(Exception):
    """The journal could not take a request's records (disk full, no permission, I/O error, closed)."""


# The two system calls of a commit, named so that a test can make them fail as a full disk would.
def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


_sync = getattr(os, "fdatasync", os.fsync)  # appends change the size, which fdatasync also flushes


def _safe_error(exc: BaseException) -> str:
    """An OS error as a log line: bounded, masked (it never holds a record, but a path might hold a name)."""
    return mask_pii(" ".join(f"{type(exc).__name__}: {exc}".split()))[:300]


def _sync_dir(path: Path) -> None:
    """Make a folder's entries (a new file, a rename) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkdir_private(path: Path) -> None:
    """The folder and its missing parents, each created 0700."""
    if not path.is_dir():
        _mkdir_private(path.parent)
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:  # another process, at the same moment
            pass


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on `path`, or None when another process holds it or it is gone."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        os.close(fd)
        return None


class _Folder:
    """One process's journal folder, locked by this process: segments, reading and the checkpoint."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path, self._lock_fd = path, lock_fd
        self._reading: tuple[int, int] | None = None  # (segment, fd) of the segment being read

    def segment(self, n: int) -> Path:
        return self.path / f"{n:08d}.jsonl"

    def segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.path.glob("*.jsonl") if p.stem.isdigit())

    def _end(self, n: int) -> int | None:
        """How far segment n may be read (None: no such segment yet)."""
        raise NotImplementedError

    def _sealed(self, n: int) -> bool:
        """Whether segment n is complete (a later one exists)."""
        raise NotImplementedError

    def read(self, pos: Position, max_lines: int) -> tuple[list[bytes], Position]:
        """Up to `max_lines` whole lines from `pos` (within one segment), and the position after them.
        ([], pos): nothing more. A tail without a newline (a write cut short, never acknowledged) is
        skipped."""
        seg, off = pos
        while True:
            end = self._end(seg)
            if end is None:
                return [], (seg, off)
            if off < end:
                data = os.pread(self._reader(seg), min(end - off, _READ_BYTES), off)
                cut = data.rfind(b"\n") + 1
                if not data or cut == 0:
                    logger.warning("prediction log journal: %d bytes of a cut-short write skipped", end - off)
                    off = end
                    continue
                lines = data[:cut].split(b"\n")[:-1]
                if len(lines) > max_lines:
                    lines = lines[:max_lines]
                    cut = sum(len(line) + 1 for line in lines)
                return lines, (seg, off + cut)
            if not self._sealed(seg):
                return [], (seg, off)
            seg, off = seg + 1, 0

    def _reader(self, seg: int) -> int:
        if self._reading is None or self._reading[0] != seg:
            self._close_reader()
            self._reading = (seg, os.open(self.segment(seg), os.O_RDONLY | os.O_CLOEXEC))
        return self._reading[1]

    def _close_reader(self) -> None:
        if self._reading is not None:
            os.close(self._reading[1])
            self._reading = None

    def start(self) -> Position:
        """Where reading resumes: the checkpoint, or the first segment when there is none (or it is
        unreadable, or points at a segment already deleted)."""
        segments = self.segments() or [1]
        try:
            cp = json.loads((self.path / _CHECKPOINT).read_text(encoding="utf-8"))
            pos = (int(cp["segment"]), int(cp["offset"]))
        except (OSError, ValueError, KeyError, TypeError):
            return (segments[0], 0)
        return pos if pos[0] >= segments[0] else (segments[0], 0)

    def checkpoint(self, pos: Position) -> None:
        """The store has every record before `pos`: record it (tmp + rename) and delete the segments
        before it. Raises OSError when the checkpoint cannot be written (the caller goes on: a stale
        checkpoint is safe)."""
        tmp = self.path / f".{_CHECKPOINT}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            _write(fd, json.dumps({"segment": pos[0], "offset": pos[1]}).encode())
        finally:
            os.close(fd)
        os.replace(tmp, self.path / _CHECKPOINT)
        for n in self.segments():
            if n >= pos[0]:
                break
            if self._reading and self._reading[0] == n:
                self._close_reader()
            self.segment(n).unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the folder (everything in it is in the store), then let go of its lock."""
        self._close_reader()
        for p in self.path.iterdir():
            if p.name != _LOCK:
                p.unlink(missing_ok=True)
        (self.path / _LOCK).unlink(missing_ok=True)  # last: a process scanning for orphans skips it now
        shutil.rmtree(self.path, ignore_errors=True)
        self.release()

    def release(self) -> None:
        """Let go of the lock (the folder stays, for the next process to adopt)."""
        self._close_reader()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Orphan(_Folder):
    """The journal of a process that died, locked by the caller: read it to the end, then `remove()`."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        super().__init__(path, lock_fd)
        self._last = max(self.segments(), default=0)  # nobody appends to it any more

    def _end(self, n: int) -> int | None:
        if n > self._last:
            return None
        try:
            return self.segment(n).stat().st_size
        except FileNotFoundError:  # a gap: read on from the next one
            return 0

    def _sealed(self, n: int) -> bool:
        return n < self._last


class Journal(_Folder):
    """This process's journal: `append` from any thread (group commit), `read` + `checkpoint` from one.

    root: the store's journal folder (this process's folder is made inside it). segment_bytes: a new
    segment once the current one is this big. on_refused(count): called from the journal's thread when
    a group of `count` records could not be written (their futures fail with JournalUnavailable).
    """

    def __init__(
        self,
        root: Path,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        on_refused: Callable[[int], None] | None = None,
    ) -> None:
        _mkdir_private(root)
        self.root, self.name = root, f"{os.getpid()}-{secrets.token_hex(4)}"
        new = root / f"{_NEW_PREFIX}{self.name}"
        new.mkdir(mode=0o700)
        lock_fd = os.open(new / _LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh file: nobody else has it
        os.rename(new, root / self.name)
        _sync_dir(root)
        super().__init__(root / self.name, lock_fd)
        self.segment_bytes = max(1, segment_bytes)
        self._on_refused = on_refused or (lambda count: None)
        self._fd: int | None = None  # the segment being appended to: opened by the first commit, and
        self._seg, self._size = 0, 0  # again after a failure; its number and synced length
        self._ends: dict[int, int] = {}  # synced length of each earlier segment
        self._cond = threading.Condition()  # guards the committed position; notified on each commit
        self.committed_records = self.syncs = 0
        self._failing, self._last_error_logged, self._refused_since_log = False, 0.0, 0
        self._queue: queue.SimpleQueue[tuple[bytes, int, Future] | None] = queue.SimpleQueue()
        self._closed, self._append_lock = False, threading.Lock()
        self._thread = threading.Thread(target=self._run, name="heara-predlog-journal", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    # Appending ----------------------------------------------------------------------------------

    def append(self, payload: bytes, count: int) -> Future:
        """Queue `count` records (`payload`: their lines, each ending in a newline). The future
        resolves once they are synced to disk, or fails with JournalUnavailable. Never blocks."""
        future: Future = Future()
        with self._append_lock:
            if self._closed:
                self._on_refused(count)
                future.set_exception(JournalUnavailable("the prediction log is closed"))
                return future
            self._queue.put((payload, count, future))
        return future

    def _run(self) -> None:
        while True:
            group = [self._queue.get()]
            while True:  # everything that arrived while the previous group was syncing: one commit
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in group
            items = [g for g in group if g is not None]
            try:
                if items:
                    self._commit(items)
            except Exception as exc:  # a bug: its callers must still get an answer, and the thread go on
                logger.exception("prediction log journal: a commit failed")
                self._abandon_segment()
                self._on_refused(sum(n for _, n, _ in items))
                for _, _, f in items:
                    if not f.done():
                        f.set_exception(JournalUnavailable(f"journal error ({type(exc).__name__})"))
            if stop:
                return

    def _commit(self, items: list[tuple[bytes, int, Future]]) -> None:
        payload = b"".join(p for p, _, _ in items)
        count = sum(n for _, n, _ in items)
        # A caller that went away (a cancelled future) still has its records written: the prediction was made.
        waiting = [f for _, _, f in items if f.set_running_or_notify_cancel()]
        try:
            if self._fd is None or self._size >= self.segment_bytes:
                self._open_segment()
            _write(self._fd, payload)
            _sync(self._fd)
        except OSError as exc:
            self._abandon_segment()
            self._refused(count, exc)
            error = JournalUnavailable(f"the prediction log journal cannot be written ({_safe_error(exc)})")
            for f in waiting:
                f.set_exception(error)
            return
        with self._cond:
            self._size += len(payload)
            self.committed_records += count
            self.syncs += 1
            self._cond.notify_all()
        if self._failing:
            self._failing = False
            logger.info("prediction log journal: %s is writable again", self.path)
        for f in waiting:
            f.set_result(None)

    def _open_segment(self) -> None:
        """Start the next segment (its entry made durable too); the current one, if any, is sealed."""
        n = self._seg + 1
        fd = os.open(
            self.segment(n), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600
        )
        try:
            _sync_dir(self.path)
        except OSError:
            os.close(fd)
            self.segment(n).unlink(missing_ok=True)
            raise
        if self._fd is not None:
            os.close(self._fd)
        with self._cond:
            if self._seg:
                self._ends[self._seg] = self._size
            self._fd, self._seg, self._size = fd, n, 0

    def _abandon_segment(self) -> None:
        """After a failed write: cut the segment back to its synced length and stop appending to it
        (the next group starts a new segment). Reading stops at the synced length either way."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:  # the unsynced tail stays; readers of this process stop before it
            pass
        os.close(self._fd)
        self._fd = None

    def _refused(self, count: int, exc: OSError) -> None:
        self._on_refused(count)
        self._refused_since_log += count
        now = time.monotonic()
        if not self._failing or now - self._last_error_logged >= _ERROR_LOG_EVERY_S:
            self._failing, self._last_error_logged = True, now
            full = " (disk full)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
            logger.error(
                "prediction log journal: %d records refused (not acknowledged)%s: %s",
                self._refused_since_log,
                full,
                _safe_error(exc),
            )
            self._refused_since_log = 0

    # Reading (the prediction log's writer thread) ----------------------------------------------

    def _end(self, n: int) -> int | None:
        with self._cond:
            return self._size if n == self._seg else self._ends.get(n, 0 if n < self._seg else None)

    def _sealed(self, n: int) -> bool:
        with self._cond:
            return n < self._seg

    def wait(self, records: int, timeout: float) -> int:
        """The number of records committed so far, waiting up to `timeout` for it to reach `records`."""
        with self._cond:
            if self.committed_records < records:
                self._cond.wait(timeout)
            return self.committed_records

    def orphans(self) -> Iterator[Orphan]:
        """The journal folders of dead processes beside this one, each locked while the caller holds it
        (a `with` block, or `remove()`). Folders whose lock is held (a live process) are skipped."""
        for path in sorted(self.root.iterdir()):
            try:
                if path == self.path or not path.is_dir():
                    continue
                if path.name.startswith(_NEW_PREFIX):
                    self._remove_if_abandoned(path)
                    continue
                fd = _try_lock(path / _LOCK)
            except OSError:  # removed meanwhile by another process adopting it
                continue
            if fd is not None:
                yield Orphan(path, fd)

    @staticmethod
    def _remove_if_abandoned(path: Path) -> None:
        """A folder still under its creation name: its process died before it held the lock and renamed
        it (it holds no segment). Left alone while young: its process may be about to lock it."""
        if time.time() - path.stat().st_mtime < _ABANDONED_NEW_S:
            return
        fd = _try_lock(path / _LOCK)
        if fd is not None or not (path / _LOCK).exists():
            Orphan(path, -1 if fd is None else fd).remove()

    # Closing ------------------------------------------------------------------------------------

    def stop_appending(self) -> None:
        """Refuse new records; what is queued is committed first."""
        with self._append_lock:
            if not self._closed:
                self._closed = True
                self._queue.put(None)
        self._thread.join()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self, consumed: Position | None) -> None:
        """Stop appending, then let go of the folder. `consumed`: how far the store has the records
        (the reader's position; None: unknown). When nothing is left past it, the folder is deleted;
        otherwise the checkpoint is written and the folder left for the next process to replay."""
        self.stop_appending()
        if self._lock_fd < 0:
            return
        if consumed is not None and not self.read(consumed, 1)[0]:
            self.remove()
            return
        if consumed is not None:
            try:
                self.checkpoint(consumed)
            except OSError as exc:
                logger.warning("prediction log journal: checkpoint not written: %s", _safe_error(exc))
        self.release()
