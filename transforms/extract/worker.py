"""Time-limited HTML extraction: extract_html() in a child process speaking length-prefixed pickle frames."""

from __future__ import annotations

import atexit
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time

from transforms.common import count
from transforms.extract.config import ExtractConfig
from transforms.extract.html import ExtractTimeout, extract_html

_LEN = struct.Struct("!Q")  # frame header of the extraction worker's pipe protocol
_WORKER_START_S = 120.0  # importing trafilatura on a loaded machine; not charged to any page
_SERVE = "from transforms.extract.worker import _serve; _serve()"


def _serve() -> None:
    """Worker-process loop: read (content, url, cfg) frames on stdin, answer extract_html() results on stdout."""
    out = os.fdopen(os.dup(1), "wb")
    # Anything a library prints must not corrupt the frames.
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    import logging

    import trafilatura  # noqa: F401 - imported before the ready frame so start-up is not charged to a page

    logging.disable(logging.CRITICAL)
    ready = pickle.dumps(("ready", None))
    out.write(_LEN.pack(len(ready)) + ready)
    out.flush()
    while True:
        head = inp.read(_LEN.size)
        if len(head) < _LEN.size:
            return
        content, url, cfg = pickle.loads(inp.read(_LEN.unpack(head)[0]))
        try:
            reply = ("ok", extract_html(content, url, cfg))
        except Exception as e:  # noqa: BLE001 - reported back to the parent as an extraction failure
            reply = ("error", f"{type(e).__name__}: {e}"[:500])
        data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(_LEN.pack(len(data)) + data)
        out.flush()


class TimedExtractor:
    """extract_html() in a long-lived child process, killed and restarted when one page takes too long.

    A thread cannot be stopped, so a runaway trafilatura call would keep burning a core; a process can be killed.
    """

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        count("extract.worker_starts")
        try:
            ready = self._read(proc, time.monotonic() + _WORKER_START_S)
        except (EOFError, OSError):
            ready = None
        if ready is None or ready[0] != "ready":
            self._proc = proc
            self.close()
            raise RuntimeError("extraction worker did not start")
        return proc

    def __call__(self, content: str, url: str | None, cfg: ExtractConfig) -> dict:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        proc = self._proc
        data = pickle.dumps((content, url, cfg), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            proc.stdin.write(_LEN.pack(len(data)) + data)
            proc.stdin.flush()
            reply = self._read(proc, time.monotonic() + self.timeout_s)
        except (BrokenPipeError, EOFError, OSError) as e:
            self.close()
            raise RuntimeError(f"extraction worker died: {type(e).__name__}") from None
        if reply is None:
            self.close()
            raise ExtractTimeout(f"extraction took longer than {self.timeout_s:g}s")
        status, value = reply
        if status != "ok":
            raise RuntimeError(value)
        return value

    def _read(self, proc: subprocess.Popen, deadline: float):
        fd = proc.stdout.fileno()
        buf = b""
        need = _LEN.size
        header_done = False
        while True:
            while len(buf) < need:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                ready, _, _ = select.select([fd], [], [], remaining)
                if not ready:
                    return None
                chunk = os.read(fd, max(65536, need - len(buf)))
                if not chunk:
                    raise EOFError("worker closed its output")
                buf += chunk
            if header_done:
                return pickle.loads(buf[:need])
            need = _LEN.unpack(buf[: _LEN.size])[0]
            buf = buf[_LEN.size :]
            header_done = True

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass


# Idle workers kept for the next DoFn instance in this process: some runners (the bundle-based DirectRunner used for
# streaming) set up and tear down a DoFn per bundle, and a worker costs a second or two to start.
_IDLE_WORKERS: list[TimedExtractor] = []
_IDLE_LOCK = threading.Lock()
_MAX_IDLE_WORKERS = 4


@atexit.register
def _close_idle_extractors() -> None:
    # Kill the idle children at exit, so that none outlives the pipeline's process.
    with _IDLE_LOCK:
        workers, _IDLE_WORKERS[:] = list(_IDLE_WORKERS), []
    for worker in workers:
        worker.close()


def borrow_extractor(timeout_s: float) -> TimedExtractor:
    """An idle worker with this limit, else a new one (whose process starts on its first page)."""
    with _IDLE_LOCK:
        for i, worker in enumerate(_IDLE_WORKERS):
            if worker.timeout_s == timeout_s:
                return _IDLE_WORKERS.pop(i)
    return TimedExtractor(timeout_s)


def return_extractor(worker: TimedExtractor) -> None:
    """Keep the worker for the next DoFn instance, or close it when enough are idle already."""
    with _IDLE_LOCK:
        if len(_IDLE_WORKERS) < _MAX_IDLE_WORKERS:
            _IDLE_WORKERS.append(worker)
            return
    worker.close()
