"""Pages/s fetched, and fetched + extracted, from a feed of N links served by a local server (127.0.0.1)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
import time

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "data" / "feeds"))

from feed_server import FeedServer  # noqa: E402

from transforms.extract import Extract, ExtractConfig  # noqa: E402
from transforms.feeds import FeedConfig, ReadFeeds  # noqa: E402
from transforms.fetch import FetchConfig  # noqa: E402

RUNNER = "pipelines.runners.OfflineDirectRunner"


def _run(feeds: FeedConfig, extract: bool, extract_timeout: float | None) -> tuple[float, int]:
    """Wall seconds and pages that came out (fetched pages, or extracted articles)."""
    started = time.monotonic()
    with beam.Pipeline(options=PipelineOptions(["--runner", RUNNER])) as p:
        read = p | "ReadFeeds" >> ReadFeeds(feeds)
        if extract:
            _ = read["raw"] | "Extract" >> Extract(ExtractConfig(timeout_s=extract_timeout))
    wall = time.monotonic() - started
    name = "extracted.feed_page" if extract else "fetch.pages"
    found = p.result.metrics().query(MetricsFilter().with_name(name))["counters"]
    return wall, sum(c.committed or c.attempted or 0 for c in found)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("n", type=int, nargs="?", default=200, help="links in the feed (default 200)")
    ap.add_argument(
        "--per-host",
        type=int,
        default=FetchConfig.per_host_concurrency,
        help="per-host concurrency (default %(default)s)",
    )
    ap.add_argument("--latency-ms", type=float, default=50.0, help="server delay per page, as network latency (50)")
    ap.add_argument("--extract-timeout", type=float, default=30.0, help="0 runs trafilatura in-process")
    args = ap.parse_args()
    with FeedServer(page_delay_s=args.latency_ms / 1000) as server:
        # The server is on 127.0.0.1, which the SSRF guard refuses unless private hosts are allowed.
        local = FetchConfig(allow_private_hosts=True)
        feeds = FeedConfig(
            feeds=((f"{server.base}/bench.xml?n={args.n}", "Bench"),),
            fetch=dataclasses.replace(local, per_host_concurrency=args.per_host),
        )
        # Warm-up: imports, the extraction worker and the runner's first-use costs are not the fetcher's.
        _run(FeedConfig(feeds=((f"{server.base}/bench.xml?n=4", "Warm"),), fetch=local), True, 30.0)
        fetch_s, fetched = _run(feeds, extract=False, extract_timeout=None)
        both_s, extracted = _run(feeds, extract=True, extract_timeout=args.extract_timeout or None)
        peak = dict(server.max_in_flight)
    print(
        f"cores={os.cpu_count()} load={os.getloadavg()[0]:.1f} n={args.n} hosts=2 per_host_concurrency={args.per_host} "
        f"latency={args.latency_ms:g}ms peak_in_flight={peak}"
    )
    print(f"fetch only:        {fetched} pages in {fetch_s:.1f}s = {fetched / fetch_s:.1f} pages/s")
    print(
        f"fetch + extract:   {extracted} articles in {both_s:.1f}s = {extracted / both_s:.1f} pages/s"
        f" (extract timeout {'off' if not args.extract_timeout else f'{args.extract_timeout:g}s, worker process'})"
    )


if __name__ == "__main__":
    main()
