"""Daily runs: reruns replace their own files, later dates add, kills leave old data intact, one run at a time."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import pathlib
import random
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import ROOT, SEEDS, read_dataset, run_ingest

from pipelines import lock

DAY = dt.date(2026, 11, 23)
PRIVATE = ("_staging", "_locks")  # a run's scratch space, not part of the published state
DATASET_DIRS = ("articles", "duplicates", "entities", "rejects", "signatures")
TIMEOUT_S = 600


def _vocabulary() -> list[str]:
    words = re.findall(r"[A-Za-z][a-z]{2,}", " ".join(p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*"))))
    return sorted(set(w.lower() for w in words))


VOCAB = _vocabulary()


def _article(i: int, published: dt.date | None, salt: str = "") -> dict:
    """A distinct, deterministic English-looking article: random words from the seeds, so no two are near-duplicates."""
    r = random.Random(f"{salt}{i}")
    sentences = [" ".join(r.choice(VOCAB) for _ in range(12)).capitalize() + "." for _ in range(8)]
    record = {
        "url": f"https://news.example.org/{salt or 'a'}/{i}",
        "title": f"Report {salt}{i}: " + " ".join(r.choice(VOCAB) for _ in range(5)),
        "text": " ".join(sentences),
    }
    if published:
        record["published"] = f"{published.isoformat()}T{i % 24:02d}:15:00Z"
    return record


def _write_jsonl(path: pathlib.Path, records: list[dict]) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _records(n: int, days: list[dt.date], salt: str = "") -> list[dict]:
    return [_article(i, days[i % len(days)], salt) for i in range(n)]


def _snapshot(out: pathlib.Path) -> dict[str, str]:
    """Published state: every file outside the private folders, with its content hash."""
    files = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.is_file() and not rel.startswith(PRIVATE):
            files[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return files


def _row_counts(out: pathlib.Path) -> dict[str, int]:
    return {name: read_dataset(out, name).num_rows for name in DATASET_DIRS if (out / name).exists()}


def _rows(out: pathlib.Path, name: str) -> list[dict]:
    table = read_dataset(out, name)
    keep = [c for c in table.column_names if c != "ingested_at"]
    return sorted(table.select(keep).to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _manifest(out: pathlib.Path, day: dt.date) -> dict:
    return json.loads((out / "_manifests" / f"run_date={day.isoformat()}.json").read_text())


def _assert_no_duplicate_rows(out: pathlib.Path) -> None:
    ids = read_dataset(out, "articles").column("article_id").to_pylist()
    assert len(ids) == len(set(ids)), "an article appears twice"
    for name in DATASET_DIRS:
        if (out / name).exists():
            rows = [json.dumps(r, sort_keys=True, default=str) for r in _rows(out, name)]
            assert len(rows) == len(set(rows)), f"{name}: duplicated rows"


def _run(inp: pathlib.Path, out: pathlib.Path, day: dt.date = DAY, *extra: str) -> int:
    return run_ingest("--input", inp, "--output", out, "--run-date", day.isoformat(), *extra)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _spawn(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env or _env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


DAYS = [dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)]


# --- idempotency ---------------------------------------------------------------------------------------------


def test_rerun_of_the_same_date_replaces_its_files_and_never_duplicates(tmp_path):
    inp = _write_jsonl(tmp_path / "in" / "day.jsonl", _records(12, DAYS) + [_article(99, None)])
    out = tmp_path / "out"
    assert _run(inp, out) == 0
    partitions = sorted(p.name for p in (out / "articles").iterdir())
    assert len(partitions) >= 3, f"the input must spread over several published_date partitions: {partitions}"
    first_files, first_rows = sorted(_snapshot(out)), {n: _rows(out, n) for n in _row_counts(out)}

    assert _run(inp, out) == 0
    assert sorted(_snapshot(out)) == first_files, "a rerun must replace its files, not add new ones"
    assert {n: _rows(out, n) for n in _row_counts(out)} == first_rows
    _assert_no_duplicate_rows(out)
    manifest = _manifest(out, DAY)
    assert sum(f["rows"] for f in manifest["datasets"]["articles"]) == _row_counts(out)["articles"]


def test_rerun_with_less_input_removes_this_runs_stale_partitions(tmp_path):
    out = tmp_path / "out"
    full = _records(12, DAYS)
    assert _run(_write_jsonl(tmp_path / "a" / "day.jsonl", full), out) == 0
    last_day = f"published_date={DAYS[-1].isoformat()}"
    assert (out / "articles" / last_day).is_dir()

    # The corrected input for the same day has nothing published on the last day any more.
    fewer = [r for r in full if DAYS[-1].isoformat() not in r["published"]][:5]
    assert _run(_write_jsonl(tmp_path / "b" / "day.jsonl", fewer), out) == 0
    leftover = sorted(p.name for p in (out / "articles").rglob(f"part-{DAY.isoformat()}-*"))
    assert not list((out / "articles").glob(f"{last_day}/part-{DAY.isoformat()}-*")), leftover
    manifest = _manifest(out, DAY)
    assert manifest["counts"]["records_read"] == 5
    assert read_dataset(out, "articles").num_rows == sum(f["rows"] for f in manifest["datasets"]["articles"]) >= 1
    _assert_no_duplicate_rows(out)


def test_a_later_run_date_adds_and_leaves_earlier_runs_untouched(tmp_path):
    out = tmp_path / "out"
    later = DAY + dt.timedelta(days=1)
    assert _run(_write_jsonl(tmp_path / "d1" / "in.jsonl", _records(8, DAYS, salt="first")), out, DAY) == 0
    before = _snapshot(out)
    n_before = _row_counts(out)["articles"]

    assert _run(_write_jsonl(tmp_path / "d2" / "in.jsonl", _records(6, DAYS[1:], salt="second")), out, later) == 0
    after = _snapshot(out)
    for rel, digest in before.items():
        if not rel.startswith("reports/"):  # the report may be rebuilt over all runs
            assert after.get(rel) == digest, f"{rel} of the earlier run changed"
    new = [rel for rel in after if f"part-{later.isoformat()}-" in rel]
    assert new, "the later run wrote no files of its own"
    n_later = sum(f["rows"] for f in _manifest(out, later)["datasets"]["articles"])
    assert _row_counts(out)["articles"] == n_before + n_later
    assert n_later >= 1
    _assert_no_duplicate_rows(out)


# --- crash safety --------------------------------------------------------------------------------------------


def test_a_run_killed_midway_leaves_the_previous_state_and_the_rerun_completes(tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(_write_jsonl(tmp_path / "small" / "in.jsonl", _records(10, DAYS)), out) == 0
    before, counts_before = _snapshot(out), _row_counts(out)

    # ~300 published_date partitions: writing them takes a while after the first staged file appears.
    start = dt.date(2026, 1, 1)
    big = _write_jsonl(tmp_path / "big" / "in.jsonl", _records(900, [start + dt.timedelta(days=k) for k in range(300)]))
    proc = _spawn("-m", "pipelines.ingest", "--input", str(big), "--output", str(out), "--run-date", DAY.isoformat())
    lock_file, staging = out / "_locks" / f"run_date={DAY.isoformat()}.lock", out / "_staging"

    def wait_for(condition, what: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not condition():
            if proc.poll() is not None:
                pytest.fail(f"run ended (exit {proc.returncode}) before {what}: {proc.communicate()[1][-2000:]}")
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.005)

    # While it runs, a second run of the same date is refused by the lock.
    wait_for(lock_file.exists, "taking the lock")
    capsys.readouterr()
    assert _run(big, out) != 0, "a second run of the same date ran while the first held the lock"
    err = capsys.readouterr().err.strip()
    assert "locked" in err and len(err.splitlines()) == 1, err

    wait_for(lambda: staging.exists() and any(p.is_file() for p in staging.rglob("*")), "writing to staging")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run finished (exit {proc.returncode}) before it was killed"

    assert _snapshot(out) == before, "the killed run changed published files"
    assert _row_counts(out) == counts_before
    assert lock_file.exists(), "the dead run's lock should remain"

    # The rerun takes over the dead run's lock, drops its staging and publishes the complete day.
    assert _run(big, out) == 0
    assert not staging.exists() or not any(p.is_file() for p in staging.rglob("*"))
    assert not lock_file.exists()
    manifest = _manifest(out, DAY)
    assert manifest["counts"]["records_read"] == 900
    assert read_dataset(out, "articles").num_rows == sum(f["rows"] for f in manifest["datasets"]["articles"])
    _assert_no_duplicate_rows(out)


# Kill the run inside the commit, after it has published one file of the new run and before the rest.
_KILL_IN_COMMIT = """
import os, sys, time
from apache_beam.io.filesystems import FileSystems
_rename = FileSystems.rename
def _publish_one_then_hang(src, dst):
    if len(src) > 1 and any("/_staging/" in s for s in src):
        _rename(src[:1], dst[:1])
        open(os.environ["CRASH_MARKER"], "w").close()
        time.sleep(3600)
    return _rename(src, dst)
FileSystems.rename = staticmethod(_publish_one_then_hang)
from pipelines.ingest import run
sys.exit(run(sys.argv[1:]))
"""


def test_a_run_killed_inside_the_commit_stays_readable_and_the_rerun_completes(tmp_path):
    out, clean = tmp_path / "out", tmp_path / "clean"
    assert _run(_write_jsonl(tmp_path / "old" / "in.jsonl", _records(9, DAYS, salt="old")), out) == 0
    new_input = _write_jsonl(tmp_path / "new" / "in.jsonl", _records(9, DAYS[:2], salt="new"))

    marker = tmp_path / "in-commit"
    env = _env() | {"CRASH_MARKER": str(marker)}
    proc = _spawn(
        "-c", _KILL_IN_COMMIT, "--input", str(new_input), "--output", str(out), "--run-date", DAY.isoformat(), env=env
    )
    deadline = time.monotonic() + TIMEOUT_S
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"run ended (exit {proc.returncode}) before its commit: {proc.communicate()[1][-2000:]}")
        assert time.monotonic() < deadline, "the run never reached its commit"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)

    for name in DATASET_DIRS:  # every file is whole: each is the old run's or the new run's
        if (out / name).exists():
            read_dataset(out, name)

    assert _run(new_input, out) == 0
    assert _run(new_input, clean) == 0
    for name in ("articles", "rejects", "entities"):
        assert _rows(out, name) == _rows(clean, name), f"{name} after the rerun differs from a clean run"
    assert not list((out / "articles").glob(f"published_date={DAYS[2].isoformat()}/part-{DAY.isoformat()}-*"))
    _assert_no_duplicate_rows(out)


# --- the run lock ---------------------------------------------------------------------------------------------


def test_a_second_run_of_the_same_date_is_refused_with_one_line(tmp_path, capsys):
    inp = _write_jsonl(tmp_path / "in" / "day.jsonl", _records(3, DAYS))
    out = tmp_path / "out"
    with lock.acquire(str(out), DAY):  # held by this live process, as by a run still in progress
        assert _run(inp, out) != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert "locked" in err and f"pid {os.getpid()}" in err and "run_date=2026-11-23.lock" in err, err
        assert not (out / "articles").exists(), "the refused run wrote data"
        assert _run(inp, out, DAY + dt.timedelta(days=1)) == 0, "another date must not be blocked"
    assert _run(inp, out) == 0
    assert not (out / "_locks" / "run_date=2026-11-23.lock").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    inp = _write_jsonl(tmp_path / "in" / "day.jsonl", _records(3, DAYS))
    out = tmp_path / "out"
    path = out / "_locks" / f"run_date={DAY.isoformat()}.lock"
    path.parent.mkdir(parents=True)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    path.write_bytes(lock.LockInfo("x", _dead_pid(), socket.gethostname(), now, DAY.isoformat(), str(out)).to_bytes())
    assert _run(inp, out) == 0
    assert not path.exists()


def test_no_lock_flag_skips_the_lock(tmp_path):
    inp = _write_jsonl(tmp_path / "in" / "day.jsonl", _records(3, DAYS))
    out = tmp_path / "out"
    with lock.acquire(str(out), DAY):
        assert _run(inp, out, DAY, "--no-lock") == 0


# --- lock unit tests ------------------------------------------------------------------------------------------


def _lock_file(out: pathlib.Path) -> pathlib.Path:
    return out / "_locks" / f"run_date={DAY.isoformat()}.lock"


def test_lock_file_names_its_owner_and_is_removed_on_release(tmp_path):
    held = lock.acquire(str(tmp_path), DAY)
    info = lock.LockInfo.from_bytes(_lock_file(tmp_path).read_bytes())
    assert (info.pid, info.host, info.run_date) == (os.getpid(), socket.gethostname(), DAY.isoformat())
    held.release()
    held.release()  # idempotent
    assert not _lock_file(tmp_path).exists()


@pytest.mark.parametrize(
    "owner, age_hours, taken_over",
    [
        ("self_alive", 0, False),
        ("self_alive", 13, True),  # older than the 12 h default: a hung run does not block forever
        ("dead_here", 0, True),
        ("other_host", 0, False),  # cannot see its pid: only age can free it
        ("other_host", 13, True),
    ],
)
def test_stale_detection(tmp_path, owner, age_hours, taken_over):
    now = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.timezone.utc)
    pid = {"self_alive": os.getpid(), "dead_here": _dead_pid(), "other_host": 1}[owner]
    host = "elsewhere.example" if owner == "other_host" else socket.gethostname()
    started = (now - dt.timedelta(hours=age_hours)).isoformat()
    _lock_file(tmp_path).parent.mkdir(parents=True)
    _lock_file(tmp_path).write_bytes(lock.LockInfo("t", pid, host, started, DAY.isoformat(), "x").to_bytes())
    if taken_over:
        with lock.acquire(str(tmp_path), DAY, now=now) as held:
            assert lock.LockInfo.from_bytes(_lock_file(tmp_path).read_bytes()) == held.info
    else:
        with pytest.raises(lock.LockHeld, match=f"locked by pid {pid} on host {host}"):
            lock.acquire(str(tmp_path), DAY, now=now)


def test_an_empty_local_lock_is_taken_over_at_once(tmp_path):
    # Local locks are published whole (link of a written temp file): an empty one is debris of a crash or a
    # full disk, never a lock being written right now.
    path = _lock_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    lock.acquire(str(tmp_path), DAY).release()


def test_release_keeps_a_lock_that_someone_else_took_over(tmp_path):
    first = lock.acquire(str(tmp_path), DAY)
    _lock_file(tmp_path).unlink()  # declared stale and removed by another run...
    second = lock.acquire(str(tmp_path), DAY)  # ...which now holds it
    first.release()
    assert lock.LockInfo.from_bytes(_lock_file(tmp_path).read_bytes()) == second.info
    second.release()


def test_concurrent_takeovers_are_serialised(tmp_path):
    path = _lock_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(
        lock.LockInfo(
            "t", _dead_pid(), socket.gethostname(), "2026-11-23T00:00:00+00:00", DAY.isoformat(), "x"
        ).to_bytes()
    )
    guard = pathlib.Path(str(path) + ".takeover")
    guard.write_text("4242")  # another process is taking over right now
    with pytest.raises(lock.LockHeld, match="contended"):
        lock.acquire(str(tmp_path), DAY)
    old = time.time() - 3600
    os.utime(guard, (old, old))  # ...and died doing it
    lock.acquire(str(tmp_path), DAY).release()
    assert not guard.exists()


def test_filesystems_backend_for_other_object_stores(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "_backend", lambda path, options: lock._FileSystemsBackend())
    held = lock.acquire(str(tmp_path), DAY)
    with pytest.raises(lock.LockHeld):
        lock.acquire(str(tmp_path), DAY)
    held.release()
    assert not _lock_file(tmp_path).exists()


def test_disabled_lock_writes_nothing(tmp_path):
    with lock.acquire(str(tmp_path), DAY, lock.LockConfig(enabled=False)):
        assert not (tmp_path / "_locks").exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], lock.LockConfig()),
        (["--lock-max-age-hours", "2.5"], lock.LockConfig(max_age=dt.timedelta(hours=2.5))),
        (["--no-lock"], lock.LockConfig(enabled=False)),
    ],
)
def test_config_from_options(argv, expected):
    parser = argparse.ArgumentParser()
    lock.add_arguments(parser)
    opts = parser.parse_args(argv)
    now = dt.datetime.now(dt.timezone.utc)
    assert lock.config_from_options(opts, run_date=DAY, output="o", now=now) == expected


def test_config_rejects_a_non_positive_age():
    parser = argparse.ArgumentParser()
    lock.add_arguments(parser)
    with pytest.raises(ValueError, match="lock-max-age-hours"):
        lock.config_from_options(parser.parse_args(["--lock-max-age-hours", "0"]), run_date=DAY, output="o", now=None)
