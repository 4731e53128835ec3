"""The Beam step that fetches batches of hosts' links: FetchLinksFn."""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam

from transforms.common import count
from transforms.fetch.client import Fetcher
from transforms.fetch.config import FetchConfig, FetchError
from transforms.fetch.hosts import HostGate, fetch_all


class FetchLinksFn(beam.DoFn):
    """[(host, [link])] -> fetched results: the hosts of one batch side by side, each host politely.

    `to_output(link, page_or_error)` turns each result into the element to emit (a main output value or a
    TaggedOutput). Results are emitted from process() as they complete, so memory holds about one page per
    request in flight, and never from finish_bundle(), whose output Beam's DaskRunner drops.
    """

    def __init__(self, cfg: FetchConfig, to_output: Callable, html_only: bool = True):
        self._cfg = cfg
        self._to_output = to_output
        self._html_only = html_only

    def setup(self):
        self._fetcher = Fetcher(self._cfg)
        self._pool = ThreadPoolExecutor(
            max_workers=self._cfg.max_parallel_hosts * self._cfg.per_host_concurrency, thread_name_prefix="fetch"
        )
        self._gates: dict[str, HostGate] = {}
        self._retries_reported = 0

    def _gate(self, host: str) -> HostGate:
        # Kept across elements: a host's in-flight limit and delay hold for the worker's whole life.
        if host not in self._gates:
            self._gates[host] = HostGate(self._cfg.per_host_concurrency, self._cfg.per_host_delay_s)
        return self._gates[host]

    def _work(self, link):
        try:
            return self._fetcher.get(link.url, html_only=self._html_only)
        except FetchError as e:
            return e

    def process(self, hosts):
        done: queue.Queue = queue.Queue()
        outstanding = 0
        for host, links in sorted(((h or "", list(ls)) for h, ls in hosts), key=lambda hl: hl[0]):
            if not links:
                continue
            count("fetch.hosts")
            links.sort(key=lambda link: link.url)
            outstanding += fetch_all(
                links, self._work, self._gate(host), self._pool, self._cfg.per_host_concurrency, done
            )
        while outstanding:
            _, link, result = done.get()
            outstanding -= 1
            yield self._to_output(link, result)
        retries = self._fetcher.retries
        if retries > self._retries_reported:
            count("fetch.retries", retries - self._retries_reported)
            self._retries_reported = retries

    def teardown(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        fetcher = getattr(self, "_fetcher", None)
        if fetcher is not None:
            fetcher.close()
