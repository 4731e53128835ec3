"""The Beam step that fetches batches of hosts' links: FetchLinksFn."""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam

from transforms.common import count
from transforms.fetch.client import Fetcher
from transforms.fetch.config import FetchConfig, FetchError, Page
from transforms.fetch.hosts import HostGate, fetch_all
from transforms.fetch.robots import ROBOTS_ACCEPT, RobotsCache
from transforms.fetch.state import Validators, state_of

_SHARED: dict[FetchConfig, RobotsCache] = {}
_SHARED_LOCK = threading.Lock()


def _new_cache(cfg: FetchConfig, fetcher: Fetcher, clock: Callable[[], float]) -> RobotsCache:
    def load(url: str) -> bytes:
        return fetcher.get(url, html_only=False, accept=ROBOTS_ACCEPT).body

    return RobotsCache(cfg.user_agent, load, ttl_s=cfg.robots_ttl_s, clock=clock)


def robots_cache(cfg: FetchConfig, fetcher: Fetcher, clock: Callable[[], float] = time.monotonic) -> RobotsCache:
    """A RobotsCache reading robots.txt through a Fetcher (same timeouts, size cap and SSRF guard as pages).

    With `cfg.robots_scope` (one per run), every DoFn of the run in this process gets the same cache, with its own
    Fetcher kept for the process's life (a DoFn's teardown must not close it under the others); else a cache of
    its own reading through `fetcher`."""
    if not cfg.robots_scope:
        return _new_cache(cfg, fetcher, clock)
    with _SHARED_LOCK:
        if cfg not in _SHARED:
            _SHARED[cfg] = _new_cache(cfg, Fetcher(cfg), clock)
        return _SHARED[cfg]


def count_robots(robots: RobotsCache) -> None:
    """Report what the cache did since its last drain: `fetch.robots_fetched`, `fetch.robots_unavailable` (hosts
    not crawled this run because their robots.txt could not be read)."""
    fetched, unavailable = robots.drain()
    if fetched:
        count("fetch.robots_fetched", fetched)
    if unavailable:
        count("fetch.robots_unavailable", unavailable)


class FetchLinksFn(beam.DoFn):
    """[(host, [link])] -> fetched results: the hosts of one batch side by side, each host politely.

    `to_output(link, page_or_error)` turns each result into the element to emit (a main output value or a
    TaggedOutput). Results are emitted from process() as they complete, so memory holds about one page per
    request in flight, and never from finish_bundle(), whose output Beam's DaskRunner drops.

    With `cfg.obey_robots`, a link robots.txt disallows is never requested (a `robots_disallowed` error), nor is
    a redirect followed to a URL its own origin's robots.txt disallows; a host's Crawl-delay spaces its requests.
    `validators` ({url: (ETag, Last-Modified)}) make fetches conditional: a 304 answer is counted in
    `fetch.unchanged` and not passed to `to_output`. With `state_tag`, every page answered (200 or 304) also goes
    out on that tag as a FetchState.
    """

    def __init__(
        self,
        cfg: FetchConfig,
        to_output: Callable,
        html_only: bool = True,
        validators: dict[str, Validators] | None = None,
        state_tag: str | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ):
        self._cfg = cfg
        self._to_output = to_output
        self._html_only = html_only
        self._validators = dict(validators or {})
        self._state_tag = state_tag
        # Injectable for tests of the per-host delay; the defaults are the real clock.
        self._clock = clock
        self._sleep = sleep

    def setup(self):
        self._fetcher = Fetcher(self._cfg)
        self._pool = ThreadPoolExecutor(
            max_workers=self._cfg.max_parallel_hosts * self._cfg.per_host_concurrency, thread_name_prefix="fetch"
        )
        self._gates: dict[str, HostGate] = {}
        self._robots = robots_cache(self._cfg, self._fetcher) if self._cfg.obey_robots else None
        self._retries_reported = 0

    def _gate(self, host: str) -> HostGate:
        # Kept across elements: a host's in-flight limit and delay hold for the worker's whole life.
        if host not in self._gates:
            self._gates[host] = HostGate(
                self._cfg.per_host_concurrency,
                self._cfg.per_host_delay_s,
                clock=self._clock or time.monotonic,
                sleep=self._sleep or time.sleep,
            )
        return self._gates[host]

    def _work(self, link, gate: HostGate):
        try:
            if self._robots is not None:
                # Decided before taking a slot: a disallowed link is never requested.
                verdict = self._robots.verdict(link.url)
                if verdict is not None:
                    return FetchError(*verdict)
                gate.set_delay(max(self._cfg.per_host_delay_s, self._robots.delay(link.url)))
            with gate:
                return self._fetcher.get(
                    link.url,
                    html_only=self._html_only,
                    validators=self._validators.get(link.url),
                    may_follow=self._robots.verdict if self._robots is not None else None,
                )
        except FetchError as e:
            return e

    def _results(self, link, result):
        if isinstance(result, Page):
            if self._state_tag is not None:
                yield beam.pvalue.TaggedOutput(self._state_tag, state_of(result, dt.datetime.now(dt.timezone.utc)))
            if result.unchanged:
                # Not modified since the stored validators: read and emitted by an earlier run already.
                count("fetch.unchanged")
                return
        yield self._to_output(link, result)

    def process(self, hosts):
        done: queue.Queue = queue.Queue()
        outstanding = 0
        for host, links in sorted(((h or "", list(ls)) for h, ls in hosts), key=lambda hl: hl[0]):
            if not links:
                continue
            count("fetch.hosts")
            links.sort(key=lambda link: link.url)
            gate = self._gate(host)
            outstanding += fetch_all(
                links,
                lambda link, gate=gate: self._work(link, gate),
                None,
                self._pool,
                self._cfg.per_host_concurrency,
                done,
            )
        while outstanding:
            _, link, result = done.get()
            outstanding -= 1
            yield from self._results(link, result)
        self._report_counters()

    def _report_counters(self):
        # Counted on the process thread: Beam metrics incremented on pool threads would be lost.
        retries = self._fetcher.retries
        if retries > self._retries_reported:
            count("fetch.retries", retries - self._retries_reported)
            self._retries_reported = retries
        if self._robots is not None:
            count_robots(self._robots)

    def teardown(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        fetcher = getattr(self, "_fetcher", None)
        if fetcher is not None:
            fetcher.close()
