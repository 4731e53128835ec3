"""Run lock: at most one run per (output, run date) at a time, with takeover of locks left by dead runs."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import errno
import json
import os
import socket
import time
import uuid

from apache_beam.io.filesystems import FileSystems

LOCKS = "_locks"
DEFAULT_MAX_AGE_HOURS = 12.0
MAX_AGE_LIMIT_HOURS = 24.0 * 365
# Where a writer's file can be seen half-written (generic filesystems), an unparseable lock may be one being
# written right now; only older ones are stale. Local and S3 locks are published whole, so they need no grace.
_UNREADABLE_GRACE = dt.timedelta(seconds=60)
# A takeover holds its guard for milliseconds; a guard of a live-looking owner older than this was left by a
# takeover that died on another host (or by a previous version, which wrote only a pid).
_GUARD_MAX_AGE = dt.timedelta(seconds=60)
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


class LockHeld(RuntimeError):
    """Another live run holds the lock; str() is the one-line message for the user."""


class LockWriteError(OSError):
    """A lock or guard file could not be written (disk full, ...); nothing of it was left behind."""


@dataclasses.dataclass(frozen=True)
class LockConfig:
    """Whether to lock, and after how long a lock counts as abandoned whatever its owner."""

    enabled: bool = True
    max_age: dt.timedelta = dt.timedelta(hours=DEFAULT_MAX_AGE_HOURS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The lock's flags."""
    g = parser.add_argument_group("run lock")
    g.add_argument(
        "--lock-max-age-hours",
        "--lock_max_age_hours",
        dest="lock_max_age_hours",
        type=float,
        default=DEFAULT_MAX_AGE_HOURS,
        help="A run lock older than this is taken over even if its owner may be alive (default 12). "
        "Locks of dead processes on the same host are taken over at once.",
    )
    g.add_argument(
        "--no-lock",
        "--no_lock",
        dest="no_lock",
        action="store_true",
        default=False,
        help="Do not take the run lock OUT/_locks/run_date=D.lock (only when the scheduler already "
        "guarantees that two runs of the same date never overlap).",
    )


def config_from_options(opts, *, run_date: dt.date, output: str, now: dt.datetime) -> LockConfig:
    """LockConfig from parsed options."""
    del run_date, output, now  # the lock is keyed by them at acquire time
    hours = getattr(opts, "lock_max_age_hours", DEFAULT_MAX_AGE_HOURS)
    if hours is None or not 0 < hours <= MAX_AGE_LIMIT_HOURS:  # also false for NaN; inf would overflow
        raise ValueError(f"--lock-max-age-hours must be positive and at most {MAX_AGE_LIMIT_HOURS:g}")
    return LockConfig(enabled=not getattr(opts, "no_lock", False), max_age=dt.timedelta(hours=hours))


def lock_path(output: str, run_date: dt.date) -> str:
    """Where the lock of one run date lives; '_' keeps it out of dataset readers' way."""
    return FileSystems.join(output, LOCKS, f"run_date={run_date.isoformat()}.lock")


@dataclasses.dataclass(frozen=True)
class Owner:
    """A process, identified beyond its pid: pids are reused, (pid, start time, boot id) is not."""

    pid: int
    host: str
    pid_start: int | None = None  # clock ticks since boot (Linux /proc/<pid>/stat field 22); None elsewhere
    boot_id: str | None = None  # /proc/sys/kernel/random/boot_id; None elsewhere

    def to_bytes(self) -> bytes:
        return (json.dumps(dataclasses.asdict(self), sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Owner | None:
        return _from_json(cls, data)


@dataclasses.dataclass(frozen=True)
class LockInfo:
    """What a lock file says about its owner."""

    token: str
    pid: int
    host: str
    started_at: str  # ISO 8601, UTC
    run_date: str
    output: str
    # Absent from locks written by the previous version: their owners get the plain pid check.
    pid_start: int | None = None
    boot_id: str | None = None

    def to_bytes(self) -> bytes:
        return (json.dumps(dataclasses.asdict(self), sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> LockInfo | None:
        return _from_json(cls, data)

    def owner(self) -> Owner:
        return Owner(self.pid, self.host, self.pid_start, self.boot_id)

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host} since {self.started_at}"


def _from_json(cls, data: bytes):
    """An instance of dataclass `cls` from its JSON, or None; fields with defaults may be missing."""
    try:
        value = json.loads(data.decode("utf-8"))
        kwargs = {
            f.name: value[f.name] if f.default is dataclasses.MISSING else value.get(f.name, f.default)
            for f in dataclasses.fields(cls)
        }
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return None
    if not isinstance(kwargs["pid"], int) or not all(
        kwargs.get(k) is None or isinstance(kwargs[k], t) for k, t in (("pid_start", int), ("boot_id", str))
    ):
        return None
    return cls(**kwargs)


# --- is the owner alive? ------------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (True when it cannot be told)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return True  # cannot tell: assume alive, the age limit still applies
    return True


def _parse_start_time(stat: str) -> int | None:
    """Field 22 (starttime) of a /proc/<pid>/stat line. The command name (field 2) may hold spaces and
    parentheses, so fields are counted from the last ')'."""
    fields = stat[stat.rfind(")") + 1 :].split()
    try:
        return int(fields[22 - 3])
    except (IndexError, ValueError):
        return None


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:  # no /proc (macOS), process gone, or hidden (hidepid)
        return None


def _proc_start_time(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot; None where /proc cannot tell."""
    stat = _read_text(f"/proc/{pid}/stat")
    return _parse_start_time(stat) if stat else None


def _boot_id() -> str | None:
    """This boot of this host; None where /proc cannot tell."""
    text = _read_text("/proc/sys/kernel/random/boot_id")
    return (text.strip() or None) if text else None


def _this_process() -> Owner:
    pid = os.getpid()
    return Owner(pid, socket.gethostname(), _proc_start_time(pid), _boot_id())


def _gone_reason(owner: Owner, host: str, *, alive=pid_alive, start_time=_proc_start_time, boot=_boot_id) -> str | None:
    """Why `owner` is certainly not running any more, or None if it may be (or runs on another host).
    Pid checks alone are fooled by pid reuse; start time and boot id are only compared when both sides know them."""
    if owner.host != host:
        return None
    current_boot = boot() if owner.boot_id else None
    if current_boot and current_boot != owner.boot_id:
        return f"{host} rebooted since pid {owner.pid} took it"
    if not alive(owner.pid):
        return f"pid {owner.pid} on {host} is gone"
    current_start = start_time(owner.pid) if owner.pid_start is not None else None
    if current_start is not None and current_start != owner.pid_start:
        return f"pid {owner.pid} on {host} is now another process"
    return None


def _guard_is_stale(data: bytes, age: dt.timedelta, host: str, *, gone=_gone_reason) -> bool:
    """Whether a takeover guard was left by a takeover that died. New guards are written whole, so an empty or
    garbled one is a crash leftover; a bare pid is a previous version's guard, judged by its age only."""
    text = data.strip()
    if text.isdigit():
        return age > _GUARD_MAX_AGE
    owner = Owner.from_bytes(data)
    if owner is None:
        return True
    return gone(owner, host) is not None or age > _GUARD_MAX_AGE


# Backends: create-if-absent, read with a version, delete only if the version is unchanged.
# `version` is whatever proves "still the file I read": the bytes locally, the ETag on S3.
# `unreadable_grace`: how long an unparseable lock may be one still being written.


def _write_new_file(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        # Before the link: after a power cut the published name must not point at an empty file.
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _write_error(path: str, e: OSError, linking: bool) -> LockWriteError:
    hint = ""
    if linking and e.errno in _NO_HARD_LINKS:
        hint = " (the lock needs a filesystem with hard links; --no-lock skips it)"
    return LockWriteError(e.errno, f"could not write the run lock file {path}: {e.strerror or e}{hint}")


class _LocalBackend:
    """Files are written whole to a temporary name and published with link(), which is atomic and fails if the
    name exists (on local and POSIX network filesystems): a lock or guard file is never seen half-written, so an
    unreadable one is garbage. Takeovers are serialised by a guard file."""

    unreadable_grace = dt.timedelta(0)

    def _native(self, path: str) -> str:
        return path[len("file://") :] if path.startswith("file://") else path

    def create(self, path: str, data: bytes) -> bool:
        native = self._native(path)
        folder = os.path.dirname(native) or "."
        tmp = os.path.join(folder, f".{os.path.basename(native)}.{uuid.uuid4().hex}.tmp")
        linking = False
        try:
            os.makedirs(folder, exist_ok=True)
            _write_new_file(tmp, data)
            linking = True
            os.link(tmp, native)
        except OSError as e:
            if linking and isinstance(e, FileExistsError):
                return False
            raise _write_error(native, e, linking) from e
        finally:
            _remove(tmp)
        return True

    def read(self, path: str):
        native = self._native(path)
        try:
            with open(native, "rb") as f:
                data = f.read()
            mtime = dt.datetime.fromtimestamp(os.path.getmtime(native), dt.timezone.utc)
        except FileNotFoundError:
            return None
        return data, data, mtime

    def _take_guard(self, guard: str) -> bool:
        me = _this_process()
        if self.create(guard, me.to_bytes()):
            return True
        current = self.read(guard)
        if current is not None:
            data, _, mtime = current
            age = dt.timedelta(seconds=time.time() - mtime.timestamp())
            if not _guard_is_stale(data, age, me.host):
                return False  # someone else is taking over right now
            _remove(guard)
        return self.create(guard, me.to_bytes())

    def delete(self, path: str, version) -> bool:
        native = self._native(path)
        guard = native + ".takeover"
        if not self._take_guard(guard):
            return False
        try:
            current = self.read(path)
            if current is not None:
                if current[1] != version:
                    return False
                _remove(native)
            return True
        finally:
            _remove(guard)


class _S3Backend:
    """S3 conditional requests: PutObject If-None-Match: * and DeleteObject If-Match: ETag (both atomic)."""

    unreadable_grace = dt.timedelta(0)  # an object becomes visible whole or not at all

    def __init__(self, options):
        from apache_beam.io.aws.clients.s3.boto3_client import Client
        from apache_beam.options.pipeline_options import PipelineOptions

        self._s3 = Client(options if options is not None else PipelineOptions([])).client

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        bucket, _, key = path[len("s3://") :].partition("/")
        return bucket, key

    @staticmethod
    def _code(exc) -> str:
        return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))

    def create(self, path: str, data: bytes) -> bool:
        bucket, key = self._split(path)
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except Exception as e:  # noqa: BLE001 - botocore's ClientError, matched by its code
            if self._code(e) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def read(self, path: str):
        bucket, key = self._split(path)
        try:
            obj = self._s3.get_object(Bucket=bucket, Key=key)
        except Exception as e:  # noqa: BLE001
            if self._code(e) in ("NoSuchKey", "404"):
                return None
            raise
        return obj["Body"].read(), obj["ETag"], obj["LastModified"]

    def delete(self, path: str, version) -> bool:
        bucket, key = self._split(path)
        try:
            self._s3.delete_object(Bucket=bucket, Key=key, IfMatch=version)
        except Exception as e:  # noqa: BLE001
            code = self._code(e)
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            if code in ("NoSuchKey", "404"):
                return True
            if code != "NotImplemented":
                raise
            # S3-compatible stores without conditional deletes: check, then delete (a small race window).
            current = self.read(path)
            if current is not None and current[1] != version:
                return False
            self._s3.delete_object(Bucket=bucket, Key=key)
        return True


class _FileSystemsBackend:
    """Any Beam filesystem (gs://, hdfs://, ...): check-then-write and read back. Advisory only: two runs
    starting within one round trip of each other can both see no lock, and the read-back catches most
    but not all of those races."""

    unreadable_grace = _UNREADABLE_GRACE  # some (hdfs://, local) show a file while it is being written

    def create(self, path: str, data: bytes) -> bool:
        if FileSystems.exists(path):
            return False
        try:
            with FileSystems.create(path) as f:
                f.write(data)
        except OSError as e:
            try:
                FileSystems.delete([path])
            except Exception:  # noqa: BLE001 - best effort: the write error is the one to report
                pass
            raise LockWriteError(e.errno, f"could not write the run lock file {path}: {e.strerror or e}") from e
        current = self.read(path)
        return current is not None and current[0] == data

    def read(self, path: str):
        if not FileSystems.exists(path):
            return None
        with FileSystems.open(path) as f:
            data = f.read()
        try:
            updated = dt.datetime.fromtimestamp(FileSystems.last_updated(path), dt.timezone.utc)
        except Exception:  # noqa: BLE001 - not every filesystem reports it
            updated = dt.datetime.now(dt.timezone.utc)
        return data, data, updated

    def delete(self, path: str, version) -> bool:
        current = self.read(path)
        if current is None:
            return True
        if current[1] != version:
            return False
        FileSystems.delete([path])
        return True


def _backend(path: str, options):
    scheme = FileSystems.get_scheme(path)
    if scheme in (None, "file"):
        return _LocalBackend()
    if scheme == "s3":
        return _S3Backend(options)
    return _FileSystemsBackend()


class RunLock:
    """A held lock; release() (or leaving the `with` block) removes it if it is still ours."""

    def __init__(self, path: str, info: LockInfo | None, backend):
        self.path, self.info, self._backend = path, info, backend

    def release(self) -> None:
        if self.info is None:
            return
        current = self._backend.read(self.path)
        if current is not None and current[0] == self.info.to_bytes():
            self._backend.delete(self.path, current[1])
        self.info = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.release()
        except OSError:
            # Keep the run's own error (often the same full disk). The lock stays behind naming this process,
            # which is gone by the next run: on this host that run takes it over at once.
            if exc_type is None:
                raise


def _stale_reason(
    info: LockInfo | None,
    written_at: dt.datetime,
    now: dt.datetime,
    max_age: dt.timedelta,
    host: str,
    *,
    unreadable_grace: dt.timedelta = dt.timedelta(0),
    gone=_gone_reason,
) -> str | None:
    """Why a lock may be taken over, or None while its owner may still be running."""
    if info is None:
        fresh = unreadable_grace > dt.timedelta(0) and now - written_at <= unreadable_grace
        return None if fresh else "unreadable lock file"
    reason = gone(info.owner(), host)
    if reason:
        return reason
    try:
        started = dt.datetime.fromisoformat(info.started_at)
    except ValueError:
        started = written_at
    if started.tzinfo is None:
        started = started.replace(tzinfo=dt.timezone.utc)
    if now - started > max_age:
        return f"older than {max_age.total_seconds() / 3600:g} h"
    return None


def acquire(
    output: str,
    run_date: dt.date,
    cfg: LockConfig = LockConfig(),
    *,
    options=None,
    now: dt.datetime | None = None,
) -> RunLock:
    """Take the lock of (output, run_date) or raise LockHeld. `options` are the PipelineOptions (S3 settings)."""
    path = lock_path(output, run_date)
    backend = _backend(path, options)
    if not cfg.enabled:
        return RunLock(path, None, backend)
    now = now or dt.datetime.now(dt.timezone.utc)
    me = _this_process()
    host = me.host
    info = LockInfo(
        token=uuid.uuid4().hex,
        pid=me.pid,
        host=host,
        started_at=now.isoformat(timespec="seconds"),
        run_date=run_date.isoformat(),
        output=output,
        pid_start=me.pid_start,
        boot_id=me.boot_id,
    )
    for _ in range(3):  # a takeover can lose a race to another taker; then the winner's lock is seen
        if backend.create(path, info.to_bytes()):
            return RunLock(path, info, backend)
        current = backend.read(path)
        if current is None:
            continue  # released between our create and read: try again
        data, version, written_at = current
        owner = LockInfo.from_bytes(data)
        if _stale_reason(owner, written_at, now, cfg.max_age, host, unreadable_grace=backend.unreadable_grace) is None:
            who = owner.describe() if owner else "another run"
            raise LockHeld(
                f"run {run_date.isoformat()} of {output} is locked by {who} ({path}); "
                "wait for it to finish, or delete the lock file if that run is gone"
            )
        if not backend.delete(path, version):
            continue
    raise LockHeld(f"run {run_date.isoformat()} of {output}: could not take the lock {path} (contended)")
