"""Run lock under hostile conditions: full disks, crash leftovers, reused pids, reboots."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

from pipelines import lock

DAY = dt.date(2026, 11, 23)
ROOT = pathlib.Path(__file__).resolve().parents[2]
HAS_PROC = os.path.exists("/proc/self/stat") and os.path.exists("/proc/sys/kernel/random/boot_id")


def _lock_file(out: pathlib.Path) -> pathlib.Path:
    return out / "_locks" / f"run_date={DAY.isoformat()}.lock"


def _guard_file(out: pathlib.Path) -> pathlib.Path:
    return out / "_locks" / f"run_date={DAY.isoformat()}.lock.takeover"


def _locks_dir(out: pathlib.Path) -> list[str]:
    folder = out / "_locks"
    return sorted(os.listdir(folder)) if folder.exists() else []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(out: pathlib.Path, **fields) -> None:
    """A lock file as raw JSON, so that extra fields are what any version of the reader sees."""
    record = {
        "token": "t",
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "run_date": DAY.isoformat(),
        "output": str(out),
        **fields,
    }
    _lock_file(out).parent.mkdir(parents=True, exist_ok=True)
    _lock_file(out).write_text(json.dumps(record) + "\n")


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --- disk full ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["write", "fsync", "link"])
def test_disk_full_while_taking_the_lock_leaves_nothing_and_a_retry_succeeds(tmp_path, monkeypatch, call):
    with monkeypatch.context() as m:
        m.setattr(os, call, _enospc)
        with pytest.raises(OSError, match="run lock file .*No space left on device") as raised:
            lock.acquire(str(tmp_path), DAY)
    assert raised.value.errno == errno.ENOSPC
    assert _locks_dir(tmp_path) == [], "a failed create left files behind"
    with lock.acquire(str(tmp_path), DAY) as held:  # space is back: no waiting, no "contended"
        assert lock.LockInfo.from_bytes(_lock_file(tmp_path).read_bytes()) == held.info
    assert _locks_dir(tmp_path) == []


# The first run fails on a full disk while it holds the lock, so its release cannot write the takeover guard.
_FAIL_WITH_A_FULL_DISK = """
import datetime as dt, errno, os, sys
from pipelines import lock

def full(*args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

try:
    with lock.acquire(sys.argv[1], dt.date.fromisoformat(sys.argv[2])):
        os.write = full
        raise RuntimeError("the run failed: disk full")
except RuntimeError:
    sys.exit(3)  # the run's own error, not the lock's
"""


def test_a_run_that_died_of_a_full_disk_does_not_block_the_retry(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", _FAIL_WITH_A_FULL_DISK, str(tmp_path), DAY.isoformat()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Its lock stays (it could not take the guard to remove it), but whole, and no guard or temporary is left.
    assert _locks_dir(tmp_path) == [_lock_file(tmp_path).name], proc.stderr[-2000:]
    assert lock.LockInfo.from_bytes(_lock_file(tmp_path).read_bytes()).pid != os.getpid()
    lock.acquire(str(tmp_path), DAY).release()  # at once: its owner is gone
    assert _locks_dir(tmp_path) == []
    assert proc.returncode == 3, f"the lock's error replaced the run's own: {proc.stderr[-2000:]}"


@pytest.mark.parametrize(
    "leftover",
    ["empty lock", "empty lock and empty guard", "dead owner's lock and empty guard", "garbled guard"],
)
def test_crash_leftovers_do_not_block_a_new_acquire(tmp_path, leftover):
    if leftover.startswith("dead"):
        _write_lock(tmp_path, pid=_dead_pid())
    elif leftover.startswith("garbled"):
        _write_lock(tmp_path, pid=_dead_pid())
        _guard_file(tmp_path).write_bytes(b'{"pid": 12')
    else:
        _lock_file(tmp_path).parent.mkdir(parents=True)
        _lock_file(tmp_path).write_bytes(b"")
    if "empty guard" in leftover:
        _guard_file(tmp_path).write_bytes(b"")
    with lock.acquire(str(tmp_path), DAY) as held:
        assert lock.LockInfo.from_bytes(_lock_file(tmp_path).read_bytes()) == held.info
        assert not _guard_file(tmp_path).exists()
    assert _locks_dir(tmp_path) == []


def test_a_guard_of_a_live_taker_still_serialises_takeovers(tmp_path):
    _write_lock(tmp_path, pid=_dead_pid())
    _guard_file(tmp_path).write_bytes(lock._this_process().to_bytes())  # this process is taking over right now
    with pytest.raises(lock.LockHeld, match="contended"):
        lock.acquire(str(tmp_path), DAY)
    _guard_file(tmp_path).write_bytes(lock.Owner(_dead_pid(), socket.gethostname()).to_bytes())  # ...died doing it
    lock.acquire(str(tmp_path), DAY).release()
    assert _locks_dir(tmp_path) == []


def test_filesystems_backend_removes_a_half_written_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "_backend", lambda path, options: lock._FileSystemsBackend())
    real_create = lock.FileSystems.create

    class HalfWriter:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            self._f.write(data[:5])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    with monkeypatch.context() as m:
        m.setattr(lock.FileSystems, "create", lambda path: HalfWriter(real_create(path)))
        with pytest.raises(lock.LockWriteError, match="No space left"):
            lock.acquire(str(tmp_path), DAY)
    assert _locks_dir(tmp_path) == []
    lock.acquire(str(tmp_path), DAY).release()


# --- pid reuse and reboots ----------------------------------------------------------------------------------


@pytest.fixture
def live_child():
    """A live process other than this one, with its pid and start time."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield proc.pid, lock._proc_start_time(proc.pid)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not HAS_PROC, reason="needs Linux /proc")
@pytest.mark.parametrize(
    "identity, taken_over",
    [
        ("same process", False),
        ("pid reused by another process", True),
        ("host rebooted", True),
        ("old lock without start time or boot id", False),  # previous version: plain pid check
    ],
)
def test_a_live_pid_holds_the_lock_only_if_it_is_the_same_process(tmp_path, live_child, identity, taken_over):
    pid, start = live_child
    fields = {
        "same process": {"pid_start": start, "boot_id": lock._boot_id()},
        "pid reused by another process": {"pid_start": start + 1, "boot_id": lock._boot_id()},
        "host rebooted": {"pid_start": start, "boot_id": "00000000-0000-0000-0000-000000000000"},
        "old lock without start time or boot id": {},
    }[identity]
    # Started an hour ago, far below the 12 h age limit: only the owner check can free it.
    an_hour_ago = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat(timespec="seconds")
    _write_lock(tmp_path, pid=pid, started_at=an_hour_ago, **fields)
    if taken_over:
        with lock.acquire(str(tmp_path), DAY) as held:
            assert lock.LockInfo.from_bytes(_lock_file(tmp_path).read_bytes()) == held.info
    else:
        with pytest.raises(lock.LockHeld, match=f"locked by pid {pid} "):
            lock.acquire(str(tmp_path), DAY)


@pytest.mark.skipif(not HAS_PROC, reason="needs Linux /proc")
def test_a_lock_names_its_owner_beyond_the_pid(tmp_path):
    with lock.acquire(str(tmp_path), DAY):
        info = lock.LockInfo.from_bytes(_lock_file(tmp_path).read_bytes())
    me = os.getpid()
    assert (info.pid, info.pid_start, info.boot_id) == (me, lock._proc_start_time(me), lock._boot_id())
    assert info.pid_start > 0 and len(info.boot_id) == 36


def test_an_old_lock_file_is_still_read():
    old = lock.LockInfo("t", 7, "h", "2026-11-23T00:00:00+00:00", "d", "o")
    fields = {k: v for k, v in json.loads(old.to_bytes()).items() if k not in ("pid_start", "boot_id")}
    info = lock.LockInfo.from_bytes(json.dumps(fields).encode())
    assert info == old and info.pid_start is None and info.boot_id is None
    assert lock.LockInfo.from_bytes(info.to_bytes()) == info


# --- pure logic ---------------------------------------------------------------------------------------------


def test_parse_start_time_counts_fields_after_the_command_name():
    rest = " ".join(str(n) for n in range(3, 53))  # fields 3..52 hold their own number
    assert lock._parse_start_time(f"4242 (a) b) c (d) S {rest[2:]}\n") == 22
    assert lock._parse_start_time(f"1 (init) {rest}") == 22
    assert lock._parse_start_time("1 (x) S 1 2") is None
    assert lock._parse_start_time("") is None


def _gone(owner, *, alive=True, start=100, boot="boot-a", host="here"):
    return lock._gone_reason(owner, host, alive=lambda pid: alive, start_time=lambda pid: start, boot=lambda: boot)


@pytest.mark.parametrize(
    "owner, probe, gone",
    [
        (lock.Owner(1, "here", 100, "boot-a"), {}, None),
        (lock.Owner(1, "here", 100, "boot-a"), {"alive": False}, "is gone"),
        (lock.Owner(1, "here", 99, "boot-a"), {}, "is now another process"),
        (lock.Owner(1, "here", 100, "boot-b"), {}, "rebooted"),
        (lock.Owner(1, "elsewhere", 99, "boot-b"), {"alive": False}, None),  # not ours to judge: age only
        # No /proc here (macOS) or a lock from the previous version: the pid check alone.
        (lock.Owner(1, "here", 99, "boot-b"), {"start": None, "boot": None}, None),
        (lock.Owner(1, "here", 99, "boot-b"), {"start": None, "boot": None, "alive": False}, "is gone"),
        (lock.Owner(1, "here"), {}, None),
        (lock.Owner(1, "here"), {"alive": False}, "is gone"),
        # The process exited between the pid check and the start-time read: cannot tell, so alive.
        (lock.Owner(1, "here", 99, "boot-a"), {"start": None}, None),
    ],
)
def test_gone_reason(owner, probe, gone):
    reason = _gone(owner, **probe)
    assert (reason is None) if gone is None else (gone in reason)


@pytest.mark.parametrize(
    "data, age_s, owner_gone, stale",
    [
        (b"", 0, False, True),  # guards are published whole: empty means a crash leftover
        (b"{not json", 0, False, True),
        (b"4242", 0, False, False),  # a previous version's guard (a bare pid): by age only
        (b"4242\n", 61, False, True),
        (lock.Owner(1, "here").to_bytes(), 0, False, False),  # a live taker, right now
        (lock.Owner(1, "here").to_bytes(), 61, False, True),  # a taker stuck for a minute (or on another host)
        (lock.Owner(1, "here").to_bytes(), 0, True, True),  # a taker that died
    ],
)
def test_guard_is_stale(data, age_s, owner_gone, stale):
    gone = (lambda owner, host: "gone") if owner_gone else (lambda owner, host: None)
    assert lock._guard_is_stale(data, dt.timedelta(seconds=age_s), "here", gone=gone) is stale


@pytest.mark.parametrize(
    "grace_s, written_s_ago, stale",
    [(0, 0, True), (0, -5, True), (60, 10, False), (60, 61, True)],
)
def test_unreadable_lock_grace_depends_on_the_backend(grace_s, written_s_ago, stale):
    now = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.timezone.utc)
    reason = lock._stale_reason(
        None,
        now - dt.timedelta(seconds=written_s_ago),
        now,
        dt.timedelta(hours=12),
        "here",
        unreadable_grace=dt.timedelta(seconds=grace_s),
    )
    assert (reason is not None) is stale


def test_lock_write_errors_are_clear():
    e = lock._write_error("/x/run.lock", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), linking=False)
    assert isinstance(e, OSError) and e.errno == errno.ENOSPC
    assert "could not write the run lock file /x/run.lock: No space left on device" in str(e)
    no_links = lock._write_error("/x/run.lock", OSError(errno.EPERM, "Operation not permitted"), linking=True)
    assert "hard links" in str(no_links) and "--no-lock" in str(no_links)
