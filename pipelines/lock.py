"""Run lock: at most one run per (output, run date) at a time, with takeover of locks left by dead runs."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import socket
import uuid

from apache_beam.io.filesystems import FileSystems

LOCKS = "_locks"
DEFAULT_MAX_AGE_HOURS = 12.0
# A lock file that cannot be parsed is normally one being written right now; only older ones are stale.
_UNREADABLE_GRACE = dt.timedelta(seconds=60)


class LockHeld(RuntimeError):
    """Another live run holds the lock; str() is the one-line message for the user."""


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
    if hours is None or hours <= 0:
        raise ValueError("--lock-max-age-hours must be positive")
    return LockConfig(enabled=not getattr(opts, "no_lock", False), max_age=dt.timedelta(hours=hours))


def lock_path(output: str, run_date: dt.date) -> str:
    """Where the lock of one run date lives; '_' keeps it out of dataset readers' way."""
    return FileSystems.join(output, LOCKS, f"run_date={run_date.isoformat()}.lock")


@dataclasses.dataclass(frozen=True)
class LockInfo:
    """What a lock file says about its owner."""

    token: str
    pid: int
    host: str
    started_at: str  # ISO 8601, UTC
    run_date: str
    output: str

    def to_bytes(self) -> bytes:
        return (json.dumps(dataclasses.asdict(self), sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> LockInfo | None:
        try:
            value = json.loads(data.decode("utf-8"))
            return cls(**{f.name: value[f.name] for f in dataclasses.fields(cls)})
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host} since {self.started_at}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return True  # cannot tell: assume alive, the age limit still applies
    return True


# Backends: create-if-absent, read with a version, delete only if the version is unchanged.
# `version` is whatever proves "still the file I read": the bytes locally, the ETag on S3.


class _LocalBackend:
    """O_CREAT|O_EXCL is atomic on local and POSIX network filesystems; takeovers are serialised by a guard file."""

    def _native(self, path: str) -> str:
        return path[len("file://") :] if path.startswith("file://") else path

    def create(self, path: str, data: bytes) -> bool:
        native = self._native(path)
        os.makedirs(os.path.dirname(native) or ".", exist_ok=True)
        try:
            fd = os.open(native, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
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

    def delete(self, path: str, version) -> bool:
        native = self._native(path)
        guard = native + ".takeover"
        if not self.create(guard, str(os.getpid()).encode()):
            try:
                age = dt.datetime.now().timestamp() - os.path.getmtime(guard)
            except FileNotFoundError:
                age = 0.0
            if age < _UNREADABLE_GRACE.total_seconds():
                return False  # someone else is taking over right now
            os.unlink(guard)  # left by a takeover that died; its owner is long gone
            if not self.create(guard, str(os.getpid()).encode()):
                return False
        try:
            current = self.read(path)
            if current is not None:
                if current[1] != version:
                    return False
                os.unlink(native)
            return True
        finally:
            os.unlink(guard)


class _S3Backend:
    """S3 conditional requests: PutObject If-None-Match: * and DeleteObject If-Match: ETag (both atomic)."""

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

    def create(self, path: str, data: bytes) -> bool:
        if FileSystems.exists(path):
            return False
        with FileSystems.create(path) as f:
            f.write(data)
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

    def __exit__(self, *exc) -> None:
        self.release()


def _stale_reason(
    info: LockInfo | None, written_at: dt.datetime, now: dt.datetime, max_age: dt.timedelta, host: str
) -> str | None:
    """Why a lock may be taken over, or None while its owner may still be running."""
    if info is None:
        return "unreadable lock file" if now - written_at > _UNREADABLE_GRACE else None
    if info.host == host and not _pid_alive(info.pid):
        return f"pid {info.pid} on {host} is gone"
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
    host = socket.gethostname()
    info = LockInfo(
        token=uuid.uuid4().hex,
        pid=os.getpid(),
        host=host,
        started_at=now.isoformat(timespec="seconds"),
        run_date=run_date.isoformat(),
        output=output,
    )
    for _ in range(3):  # a takeover can lose a race to another taker; then the winner's lock is seen
        if backend.create(path, info.to_bytes()):
            return RunLock(path, info, backend)
        current = backend.read(path)
        if current is None:
            continue  # released between our create and read: try again
        data, version, written_at = current
        owner = LockInfo.from_bytes(data)
        if _stale_reason(owner, written_at, now, cfg.max_age, host) is None:
            who = owner.describe() if owner else "another run"
            raise LockHeld(
                f"run {run_date.isoformat()} of {output} is locked by {who} ({path}); "
                "wait for it to finish, or delete the lock file if that run is gone"
            )
        if not backend.delete(path, version):
            continue
    raise LockHeld(f"run {run_date.isoformat()} of {output}: could not take the lock {path} (contended)")
