"""Per-host politeness: a cap on requests in flight and a gap between request starts, per host."""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from transforms.fetch.config import FetchError, short


class HostGate:
    """At most `limit` requests in flight on one host, and request starts spaced by `delay_s`."""

    def __init__(self, limit: int, delay_s: float, clock: Callable[[], float] = time.monotonic, sleep=time.sleep):
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._delay = delay_s
        self._next_start = 0.0
        self._clock, self._sleep = clock, sleep
        self.in_flight = 0
        self.max_in_flight = 0

    def set_delay(self, delay_s: float) -> None:
        """Change the gap between request starts (a Crawl-delay learnt from robots.txt); applies to the next start."""
        with self._lock:
            self._delay = delay_s

    def __enter__(self):
        self._slots.acquire()
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            self._next_start = start + self._delay
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if start > now:
            self._sleep(start - now)
        return self

    def __exit__(self, *exc):
        with self._lock:
            self.in_flight -= 1
        self._slots.release()
        return False


def fetch_all(
    links: Iterable,
    work: Callable,
    gate: HostGate,
    pool: ThreadPoolExecutor,
    workers: int,
    done: queue.Queue,
    tag=None,
) -> int:
    """Run `work(link)` for each of one host's links on `workers` pool threads behind `gate` (None: `work`
    passes the gate itself, to decide about a link before it takes a slot).

    Results go to `done` as (tag, link, result); returns the number of links submitted.
    """
    todo = collections.deque(links)
    n = len(todo)
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                link = todo.popleft()
            try:
                if gate is None:
                    result = work(link)
                else:
                    with gate:
                        result = work(link)
            except BaseException as e:  # noqa: BLE001 - a worker thread must report every link, whatever happens
                result = FetchError("internal_error", f"{type(e).__name__}: {short(e)}")
            done.put((tag, link, result))

    for _ in range(min(workers, n)):
        pool.submit(worker)
    return n
