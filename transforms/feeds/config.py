"""Feed-source settings and the command-line flags that set them (the only argparse-facing code of the stage)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Iterable

from transforms.dedup import DedupConfig
from transforms.feeds.lists import read_feed_list
from transforms.fetch import READS_PER_FETCH, FetchConfig
from transforms.urls import canonical_url

STAGE = "feeds"
_MB = 1024 * 1024
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d)?\s*$", re.I)
_POLLS = re.compile(r"^\s*(\d+)\s*polls?\s*$", re.I)
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


@dataclasses.dataclass(frozen=True)
class FeedConfig:
    """Feed-source settings: which feeds, how pages are fetched, and how streaming polls them."""

    feeds: tuple[tuple[str, str | None], ...] = ()  # (URL or path, source name or None), in the order given
    fetch: FetchConfig = dataclasses.field(default_factory=FetchConfig)
    extract_timeout_s: float | None = 30.0
    streaming: bool = False
    poll_interval_s: float = 900.0
    stop_after_s: float | None = None  # streaming stops after this long...
    stop_after_polls: int | None = None  # ...or after this many polls; neither: runs until cancelled
    # Streaming forgets a URL not seen in any poll for this long; set by the dedup stage's --dedup-lookback-days.
    dedup_lookback_days: float = DedupConfig.lookback_days

    def poll_count(self) -> int | None:
        """Number of polls a bounded streaming run makes (the first is at start), or None when unbounded."""
        if self.stop_after_polls is not None:
            return self.stop_after_polls
        if self.stop_after_s is not None:
            return int(math.floor(self.stop_after_s / self.poll_interval_s)) + 1
        return None


def parse_duration(value: str) -> float:
    """'30s', '15m', '1h', '1d', '500ms' or a bare number of seconds -> seconds."""
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration like 30s, 15m or 1h: {value!r}")
    return float(m.group(1)) * _UNITS[(m.group(2) or "").lower() or None]


def format_duration(seconds: float) -> str:
    """Seconds -> the duration text parse_duration reads back, in the largest whole unit: 900 -> '15m'."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def parse_stop_after(value: str | None) -> tuple[float | None, int | None]:
    """'2m' -> (120.0, None); '3polls' -> (None, 3); None -> (None, None)."""
    if value is None or str(value).strip() == "":
        return None, None
    m = _POLLS.match(str(value))
    if m:
        return None, int(m.group(1))
    return parse_duration(value), None


def add_arguments(parser) -> None:
    """Feed flags of `news-ingest` (Beam's own --streaming switches to polling); defaults are the configs'."""
    g = parser.add_argument_group("feeds (RSS/Atom)")
    g.add_argument(
        "--feed",
        dest="feed",
        action="append",
        default=None,
        help="Feed URL, or local path / file:// URL of a feed file (repeatable).",
    )
    g.add_argument(
        "--feeds",
        dest="feeds_file",
        default=None,
        help="File listing feeds, one per line: URL_OR_PATH [source name]; '#' starts a comment. OPML also works.",
    )
    g.add_argument(
        "--allow-private-hosts",
        dest="allow_private_hosts",
        action="store_true",
        default=FetchConfig.allow_private_hosts,
        help="Also fetch hosts that resolve to private, loopback or link-local addresses (off: SSRF guard).",
    )
    g.add_argument(
        "--ignore-robots",
        dest="ignore_robots",
        action="store_true",
        default=not FetchConfig.obey_robots,
        help="Do not read robots.txt: fetch every link whatever its rules and Crawl-delay say. Only for sites "
        "you own or have permission to crawl.",
    )
    g.add_argument(
        "--ignore-robots-for-feeds",
        dest="ignore_robots_for_feeds",
        action="store_true",
        default=not FetchConfig.robots_for_feeds,
        help="Fetch the feed URLs you gave even where robots.txt disallows them (feeds obey robots.txt by "
        "default); the linked pages still obey it unless --ignore-robots.",
    )
    g.add_argument(
        "--user-agent", dest="user_agent", default=FetchConfig.user_agent, help="User-Agent sent with requests."
    )
    g.add_argument(
        "--fetch-timeout",
        dest="fetch_timeout",
        type=float,
        default=FetchConfig.read_timeout_s,
        help="Read timeout per request in seconds (default %(default)g); connect timeout is "
        f"min({FetchConfig.connect_timeout_s:g}, this), a whole fetch with retries and redirects gets "
        f"{READS_PER_FETCH}x this.",
    )
    g.add_argument(
        "--fetch-retries",
        dest="fetch_retries",
        type=int,
        default=FetchConfig.retries,
        help="Retries on 429/5xx (default %(default)s).",
    )
    g.add_argument(
        "--max-body-mb",
        dest="max_body_mb",
        type=float,
        default=FetchConfig.max_body_bytes / _MB,
        help="Pages and feeds larger than this are cut and rejected as 'too_large' (default %(default)g).",
    )
    g.add_argument(
        "--per-host-concurrency",
        dest="per_host_concurrency",
        type=int,
        default=FetchConfig.per_host_concurrency,
        help="Requests in flight per host at most (default %(default)s).",
    )
    g.add_argument(
        "--per-host-delay",
        dest="per_host_delay",
        default=format_duration(FetchConfig.per_host_delay_s),
        help="Minimum gap between request starts on one host, e.g. 500ms or 1s (default %(default)s).",
    )
    g.add_argument(
        "--extract-timeout",
        dest="extract_timeout",
        default=format_duration(FeedConfig.extract_timeout_s or 0),
        help="Per-page extraction time limit, e.g. 30s; 0 disables it (default %(default)s).",
    )
    g.add_argument(
        "--poll-interval",
        dest="poll_interval",
        default=format_duration(FeedConfig.poll_interval_s),
        help="With --streaming: how often feeds are polled, e.g. 30s, 15m, 1h (default %(default)s).",
    )
    g.add_argument(
        "--stop-after",
        dest="stop_after",
        default=None,
        help="With --streaming: stop after a duration (e.g. 2m, 1h) or a number of polls (e.g. 3polls). "
        "Default: run until cancelled.",
    )


def _is_streaming(opts) -> bool:
    try:
        from apache_beam.options.pipeline_options import StandardOptions

        return bool(opts.view_as(StandardOptions).streaming)
    except AttributeError:
        return bool(getattr(opts, "streaming", False))


def config_from_options(opts, *, run_date: dt.date, output: str, now: dt.datetime) -> FeedConfig:
    """Validate feed flags and read the feed list; raises ValueError with a one-line message."""
    del run_date, output, now  # the feed source does not depend on them
    feeds: list[tuple[str, str | None]] = [(f.strip(), None) for f in (opts.feed or []) if f.strip()]
    if opts.feeds_file:
        feeds += read_feed_list(opts.feeds_file)
    try:
        # An empty delay or time limit is none at all; an empty interval is the default one.
        per_host_delay = parse_duration(opts.per_host_delay or "0")
        extract_timeout = parse_duration(opts.extract_timeout or "0")
        poll_interval = parse_duration(opts.poll_interval) if opts.poll_interval else FeedConfig.poll_interval_s
        stop_after_s, stop_after_polls = parse_stop_after(opts.stop_after)
    except ValueError as e:
        raise ValueError(f"feeds: {e}") from None
    read_timeout = float(opts.fetch_timeout)
    max_body_mb = float(opts.max_body_mb)
    per_host = int(opts.per_host_concurrency)
    retries = int(opts.fetch_retries)
    user_agent = (opts.user_agent or "").strip()
    if read_timeout <= 0:
        raise ValueError("--fetch-timeout must be positive")
    if max_body_mb <= 0:
        raise ValueError("--max-body-mb must be positive")
    if per_host < 1:
        raise ValueError("--per-host-concurrency must be at least 1")
    if retries < 0:
        raise ValueError("--fetch-retries must not be negative")
    if not user_agent:
        raise ValueError("--user-agent must not be empty")
    if poll_interval <= 0:
        raise ValueError("--poll-interval must be positive")
    if stop_after_polls is not None and stop_after_polls < 1:
        raise ValueError("--stop-after must allow at least one poll")
    if stop_after_s is not None and stop_after_s <= 0:
        raise ValueError("--stop-after must be positive")
    fetch = FetchConfig(
        user_agent=user_agent,
        connect_timeout_s=min(FetchConfig.connect_timeout_s, read_timeout),
        read_timeout_s=read_timeout,
        total_timeout_s=READS_PER_FETCH * read_timeout,
        max_body_bytes=int(max_body_mb * _MB),
        retries=retries,
        per_host_concurrency=per_host,
        per_host_delay_s=per_host_delay,
        allow_private_hosts=bool(opts.allow_private_hosts),
        obey_robots=not getattr(opts, "ignore_robots", False),
        robots_for_feeds=not getattr(opts, "ignore_robots_for_feeds", False),
        # Streaming reads each robots.txt again once per poll interval; a batch run reads it once.
        robots_ttl_s=poll_interval if _is_streaming(opts) else None,
    )
    return FeedConfig(
        feeds=_unique_feeds(feeds),
        fetch=fetch,
        extract_timeout_s=extract_timeout or None,
        streaming=_is_streaming(opts),
        poll_interval_s=poll_interval,
        stop_after_s=stop_after_s,
        stop_after_polls=stop_after_polls,
        # The dedup stage owns --dedup-lookback-days (argparse fills its default); 0 means forget at once.
        dedup_lookback_days=float(opts.dedup_lookback_days),
    )


def _unique_feeds(feeds: Iterable[tuple[str, str | None]]) -> tuple[tuple[str, str | None], ...]:
    """Each feed once, in first-given order; the first name given for it wins."""
    out: dict[str, str | None] = {}
    for location, name in feeds:
        key = canonical_url(location) or location
        if key not in out:
            out[key] = name
        elif out[key] is None and name:
            out[key] = name
    return tuple(out.items())
