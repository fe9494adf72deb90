"""The prediction log's journal on a real filesystem: group commit, failures, segments, checkpoints,
orphans. (The prediction log's durable mode on top of it, with real stores: test_predlog.py.)

Failures are made by replacing the journal's two system calls (`_write`, `_sync`) with ones that raise
what a full disk raises: the tests run as root here, so permissions cannot make a write fail.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import stat
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from serving import journal as journal_module
from serving.journal import Journal, JournalUnavailable

PHONE = "010-1234-5678"


def line(i: int, text: str = "기록") -> bytes:
    return json.dumps({"i": i, "text": text}, ensure_ascii=False).encode() + b"\n"


def read_all(folder, pos=(1, 0), max_lines: int = 1000) -> tuple[list[dict], tuple[int, int]]:
    out = []
    while True:
        lines, new = folder.read(pos, max_lines)
        out += [json.loads(x) for x in lines]
        if not lines and new == pos:
            return out, pos
        pos = new


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / "store")
    yield j
    j.close(None)


def test_concurrent_appends_share_syncs(tmp_path, monkeypatch):
    """Group commit: appends that arrive while a sync runs are written and synced together."""
    real_sync, syncs = journal_module._sync, []

    def slow_sync(fd):  # a disk that takes 5 ms per sync, so that appends pile up behind it
        syncs.append(fd)
        time.sleep(0.005)
        real_sync(fd)

    monkeypatch.setattr(journal_module, "_sync", slow_sync)
    j = Journal(tmp_path / "store")
    futures: list[Future] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        for i in range(25):
            f = j.append(line(k * 100 + i), 1)
            with lock:
                futures.append(f)
            f.result(timeout=10)  # like a request handler: wait for its own sync, then send the next

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(futures) == 400 and all(f.result() is None for f in futures)
    assert j.committed_records == 400
    assert j.syncs == len(syncs) < 400 / 4, (j.syncs, "fewer syncs than appends")
    records, _ = read_all(j)
    assert sorted(r["i"] for r in records) == sorted(k * 100 + i for k in range(16) for i in range(25))
    j.close(None)


def test_files_are_private(journal):
    journal.append(line(1), 1).result(timeout=5)
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(journal.root.stat().st_mode) == 0o700
    for p in journal.path.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


@pytest.mark.parametrize("call", ["_write", "_sync"])
def test_a_failed_write_fails_its_group_and_the_journal_carries_on(journal, monkeypatch, caplog, call):
    refused = []
    journal._on_refused = refused.append
    journal.append(line(1), 1).result(timeout=5)

    def disk_full(*args):
        if call == "_write":  # half of it reaches the file first, as a real short write can
            os.write(args[0], args[1][: len(args[1]) // 2])
        raise OSError(errno.ENOSPC, f"No space left on device (caller {PHONE})")

    monkeypatch.setattr(journal_module, call, disk_full)
    failed = journal.append(line(2, f"전화 {PHONE}"), 1)
    with pytest.raises(JournalUnavailable, match="cannot be written.*No space left"):
        failed.result(timeout=5)
    assert refused == [1] and journal.committed_records == 1
    monkeypatch.undo()
    journal.append(line(3), 1).result(timeout=5)  # writable again: a new segment
    records, _ = read_all(journal)
    assert [r["i"] for r in records] == [1, 3]  # the refused record is nowhere, not even half of it
    assert sorted(p.name for p in journal.path.glob("*.jsonl")) == ["00000001.jsonl", "00000002.jsonl"]
    assert (journal.path / "00000001.jsonl").read_bytes() == line(1)  # cut back to its synced length
    errors = [r for r in caplog.records if r.name == "serving.journal" and r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "disk full" in errors[0].getMessage()
    assert PHONE not in errors[0].getMessage() and "[PHONE]" in errors[0].getMessage()


def test_segments_rotate_and_are_deleted_once_checkpointed(tmp_path):
    j = Journal(tmp_path / "store", segment_bytes=100)
    for i in range(30):
        j.append(line(i), 1).result(timeout=5)
    segments = sorted(p.name for p in j.path.glob("*.jsonl"))
    assert len(segments) >= 5
    lines, pos = [], (1, 0)
    while len(lines) < 12:  # one segment per read at most
        more, pos = j.read(pos, 12 - len(lines))
        lines += more
    assert [json.loads(x)["i"] for x in lines] == list(range(12)) and pos[0] > 1
    j.checkpoint(pos)
    left = sorted(p.name for p in j.path.glob("*.jsonl"))
    assert left[0] == f"{pos[0]:08d}.jsonl" and len(left) < len(segments)
    assert json.loads((j.path / "checkpoint.json").read_text()) == {"segment": pos[0], "offset": pos[1]}
    records, end = read_all(j, pos)
    assert [r["i"] for r in records] == list(range(12, 30))
    j.close(end)  # everything consumed: the folder goes
    assert not j.path.exists()


def test_close_keeps_what_was_not_consumed(tmp_path):
    j = Journal(tmp_path / "store")
    for i in range(5):
        j.append(line(i), 1).result(timeout=5)
    _, pos = j.read((1, 0), 2)
    j.close(pos)
    with pytest.raises(JournalUnavailable, match="closed"):
        j.append(line(9), 1).result(timeout=5)
    assert (j.path / "checkpoint.json").exists()
    other = Journal(tmp_path / "store")
    (orphan,) = list(other.orphans())
    with orphan:
        assert orphan.path == j.path and orphan.start() == pos
        assert [r["i"] for r in read_all(orphan, orphan.start())[0]] == [2, 3, 4]
    other.close(None)


def test_a_live_journal_is_not_an_orphan(tmp_path):
    a, b = Journal(tmp_path / "store"), Journal(tmp_path / "store")
    a.append(line(1), 1).result(timeout=5)
    assert list(b.orphans()) == [] and list(a.orphans()) == []  # each holds its own lock
    a.close(None)  # gone (its lock released), its record unread
    (orphan,) = list(b.orphans())
    with orphan:
        assert read_all(orphan)[0] == [{"i": 1, "text": "기록"}]
        orphan.remove()
    assert not a.path.exists() and list(b.orphans()) == []
    b.close(None)


def test_an_orphans_cut_short_tail_is_skipped(tmp_path):
    j = Journal(tmp_path / "store")
    for i in range(3):
        j.append(line(i), 1).result(timeout=5)
    j.close(None)
    with open(j.path / "00000001.jsonl", "ab") as f:  # a write the process never finished
        f.write(b'{"i": 3, "te')
    other = Journal(tmp_path / "store")
    (orphan,) = list(other.orphans())
    with orphan:
        assert [r["i"] for r in read_all(orphan)[0]] == [0, 1, 2]
    other.close(None)


def test_a_folder_left_half_created_is_removed_only_when_old(tmp_path):
    j = Journal(tmp_path / "store")
    young, old = j.root / ".new-1-aa", j.root / ".new-2-bb"
    for d in (young, old):
        d.mkdir()
        (d / "lock").touch()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    held = os.open(young / "lock", os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)  # a process creating its folder right now
    try:
        assert list(j.orphans()) == []
        assert young.exists() and not old.exists()
    finally:
        os.close(held)
    j.close(None)


def test_a_cancelled_callers_records_are_still_written(journal, monkeypatch):
    started = threading.Event()
    release = threading.Event()
    real_sync = journal_module._sync

    def held_sync(fd):
        started.set()
        release.wait(5)
        real_sync(fd)

    monkeypatch.setattr(journal_module, "_sync", held_sync)
    journal.append(line(1), 1)
    assert started.wait(5)
    queued = journal.append(line(2), 1)  # waits behind the sync in progress
    assert queued.cancel()  # the client went away before its turn
    release.set()
    journal.append(line(3), 1).result(timeout=5)
    assert [r["i"] for r in read_all(journal)[0]] == [1, 2, 3]


def test_reading_stops_at_what_is_synced(journal):
    journal.append(line(1), 1).result(timeout=5)
    with open(journal.segment(1), "ab") as f:  # bytes past the synced length (a write in progress)
        f.write(line(2))
    assert [r["i"] for r in read_all(journal)[0]] == [1]


def test_checkpoint_that_points_at_a_deleted_segment_falls_back_to_the_first(tmp_path):
    j = Journal(tmp_path / "store", segment_bytes=50)
    for i in range(4):
        j.append(line(i), 1).result(timeout=5)
    j.close(None)
    (j.path / "00000001.jsonl").unlink()
    (j.path / "checkpoint.json").write_text('{"segment": 1, "offset": 10}')
    assert Path(j.path / "00000002.jsonl").exists()
    other = Journal(tmp_path / "store")
    (orphan,) = list(other.orphans())
    with orphan:
        assert orphan.start() == (2, 0)
    (j.path / "checkpoint.json").write_text("{not json")
    (orphan,) = list(other.orphans())
    with orphan:
        assert orphan.start() == (2, 0)
    other.close(None)


def test_an_unexpected_error_still_answers_the_callers(journal, monkeypatch):
    """A bug in a commit must not leave request handlers waiting forever, nor stop the journal."""

    def bug(fd, data):
        raise ValueError("a bug")

    monkeypatch.setattr(journal_module, "_write", bug)
    with pytest.raises(JournalUnavailable, match="ValueError"):
        journal.append(line(1), 1).result(timeout=5)
    monkeypatch.undo()
    journal.append(line(2), 1).result(timeout=5)
    assert [r["i"] for r in read_all(journal)[0]] == [2]
