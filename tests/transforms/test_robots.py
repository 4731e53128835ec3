"""robots.txt (rules, Crawl-delay, missing or unavailable files) and conditional requests in the fetch step."""

import argparse
import collections
import datetime as dt
import urllib.parse

import apache_beam as beam
import pytest
from feed_server import FeedServer

from transforms.feeds import FeedConfig, add_arguments, config_from_options, read_feed
from transforms.fetch import (
    MAX_CRAWL_DELAY_S,
    FetchConfig,
    Fetcher,
    FetchError,
    FetchLinksFn,
    RobotsCache,
    latest_validators,
    robots_cache,
)

FAST = dict(connect_timeout_s=1.0, read_timeout_s=1.0, total_timeout_s=3.0, backoff_s=0.01, max_retry_after_s=0.1)
AGENT = "news-ingest-test/1.0"
Link = collections.namedtuple("Link", "url")


def _cfg(**overrides) -> FetchConfig:
    return FetchConfig(**{**FAST, "allow_private_hosts": True, "user_agent": AGENT, **overrides})


def _failing(status=None, reason="http_error"):
    def load(url):
        raise FetchError(reason, f"HTTP {status}" if status else "refused", status=status)

    return load


# ---------------------------------------------------------------------------------------------------------------------
# The pure cache


def test_rules_match_the_configured_user_agent_and_cap_the_crawl_delay():
    text = f"User-agent: {AGENT}\nDisallow: /private/\nCrawl-delay: 3600\n\nUser-agent: *\nDisallow: /\n"
    cache = RobotsCache(AGENT, lambda url: text.encode())
    assert cache.allowed("https://news.example/story.html")
    assert not cache.allowed("https://news.example/private/a.html")
    assert cache.delay("news.example") == MAX_CRAWL_DELAY_S
    other = RobotsCache("someone-else", lambda url: text.encode())
    assert not other.allowed("https://news.example/story.html")
    assert other.delay("https://news.example/") == 0.0


@pytest.mark.parametrize("status", [404, 410, 403])
def test_a_missing_robots_txt_allows_everything(status):
    cache = RobotsCache(AGENT, _failing(status))
    assert cache.verdict("https://news.example/a") is None


@pytest.mark.parametrize("status, reason", [(500, "http_error"), (503, "http_error"), (None, "timeout")])
def test_an_unavailable_robots_txt_disallows_the_whole_host(status, reason):
    cache = RobotsCache(AGENT, _failing(status, reason))
    assert cache.verdict("https://news.example/a")[0] == "robots_unavailable"
    assert cache.verdict("https://news.example/b")[0] == "robots_unavailable"
    assert cache.fetched == 1 and cache.unavailable == ["https://news.example"]
    # Another origin has its own robots.txt.
    assert RobotsCache(AGENT, _failing(404)).verdict("https://other.example/a") is None


def test_a_host_the_guard_refuses_is_left_to_the_page_fetch():
    cache = RobotsCache(AGENT, _failing(reason="private_address"))
    assert cache.verdict("http://10.0.0.1/a") is None  # the page's own fetch makes the private_address reject
    assert cache.unavailable == []


def test_robots_txt_is_read_once_per_origin_and_again_after_the_ttl():
    loads = []
    now = [0.0]
    cache = RobotsCache(AGENT, lambda url: loads.append(url) or b"", ttl_s=60.0, clock=lambda: now[0])
    for path in ("/a", "/b", "/c"):
        cache.allowed("https://news.example" + path)
    cache.allowed("https://news.example:8443/a")
    assert loads == ["https://news.example/robots.txt", "https://news.example:8443/robots.txt"]
    now[0] = 61.0
    cache.allowed("https://news.example/d")
    assert loads[-1] == "https://news.example/robots.txt" and len(loads) == 3


def test_latest_validators_skip_the_runs_own_date_and_keep_the_newest():
    day1, day2, day3 = dt.date(2026, 11, 21), dt.date(2026, 11, 22), dt.date(2026, 11, 23)
    at = dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc)
    rows = [
        (day1, {"url": "u", "etag": '"1"', "last_modified": None, "fetched_at": at}),
        (day2, {"url": "u", "etag": '"2"', "last_modified": None, "fetched_at": at}),
        (day3, {"url": "u", "etag": '"3"', "last_modified": None, "fetched_at": at}),
        (day1, {"url": "v", "etag": None, "last_modified": None, "fetched_at": at}),
    ]
    assert latest_validators(rows, day3) == {"u": ('"2"', None)}
    assert latest_validators(rows, day2) == {"u": ('"1"', None)}


# ---------------------------------------------------------------------------------------------------------------------
# The fetch step against a local server


def _run_fetch(fn: FetchLinksFn, groups):
    fn.setup()
    try:
        out = list(fn.process(groups))
    finally:
        fn.teardown()
    pages = [o for o in out if not isinstance(o, beam.pvalue.TaggedOutput)]
    tagged = collections.defaultdict(list)
    for o in out:
        if isinstance(o, beam.pvalue.TaggedOutput):
            tagged[o.tag].append(o.value)
    return pages, tagged


def _outcome(link, result):
    name = link.url.rsplit("/", 1)[1]
    if isinstance(result, FetchError):
        return beam.pvalue.TaggedOutput("rejects", (name, result.reason))
    return name


ROBOTS = f"User-agent: *\nDisallow: /articles/private\nCrawl-delay: 5\n\nUser-agent: {AGENT}-other\nDisallow: /\n"


def test_a_disallowed_link_is_never_requested_and_crawl_delay_spaces_requests():
    sleeps = []
    with FeedServer(robots=ROBOTS) as server:
        links = [Link(f"{server.base}/articles/{n}.html") for n in ("rail-budget", "private-memo", "wind-farm")]
        fn = FetchLinksFn(_cfg(per_host_concurrency=1), _outcome, clock=lambda: 100.0, sleep=lambda s: sleeps.append(s))
        pages, tagged = _run_fetch(fn, [("127.0.0.1", links)])
        hits = dict(server.hits)
    assert sorted(pages) == ["rail-budget.html", "wind-farm.html"]
    assert tagged["rejects"] == [("private-memo.html", "robots_disallowed")]
    assert "/articles/private-memo.html" not in hits
    assert hits["/robots.txt"] == 1
    # The clock stands still, so the second page waits the whole Crawl-delay (without robots.txt: no wait).
    assert sleeps == [5.0]


def test_a_redirect_is_followed_only_where_the_targets_robots_txt_allows_it():
    def outcome(link, result):
        name = link.url.rsplit("/", 1)[1]
        return beam.pvalue.TaggedOutput("rejects", (name, result.reason)) if isinstance(result, FetchError) else name

    with FeedServer() as origin, FeedServer(robots="User-agent: *\nDisallow: /articles/ferry\n") as target:
        away = lambda url: Link(f"{origin.base}/away?to={urllib.parse.quote(url, safe='')}")  # noqa: E731
        links = [
            away(f"{target.base}/articles/ferry-timetable.html"),  # to another origin, where robots.txt disallows it
            away(f"{target.base}/articles/rail-budget.html"),  # to another origin, allowed there
            away(f"{origin.base}/articles/wind-farm.html"),  # on the same origin, which has no robots.txt
        ]
        pages, tagged = _run_fetch(FetchLinksFn(_cfg(), outcome), [("127.0.0.1", links)])
        target_hits = dict(target.hits)
    assert sorted(p.rsplit("%2F", 1)[1] for p in pages) == ["rail-budget.html", "wind-farm.html"]
    assert [(name.rsplit("%2F", 1)[1], reason) for name, reason in tagged["rejects"]] == [
        ("ferry-timetable.html", "robots_disallowed")
    ]
    assert "/articles/ferry-timetable.html" not in target_hits
    assert target_hits["/robots.txt"] == 1
    # Without robots.txt rules, the same redirect is followed.
    with FeedServer() as origin, FeedServer(robots="User-agent: *\nDisallow: /articles/ferry\n") as target:
        links = [Link(f"{origin.base}/away?to={urllib.parse.quote(target.base + '/articles/ferry-timetable.html')}")]
        pages, tagged = _run_fetch(FetchLinksFn(_cfg(obey_robots=False), outcome), [("127.0.0.1", links)])
    assert len(pages) == 1 and not tagged["rejects"]


def test_robots_500_disallows_the_host_and_404_allows_it():
    links_of = lambda base: [Link(f"{base}/articles/{n}.html") for n in ("rail-budget", "wind-farm")]  # noqa: E731
    with FeedServer(robots_status=500) as server:
        pages, tagged = _run_fetch(FetchLinksFn(_cfg(), _outcome), [("127.0.0.1", links_of(server.base))])
        assert not any(p.startswith("/articles/") for p in server.hits)
    assert pages == []
    assert sorted(tagged["rejects"]) == [
        ("rail-budget.html", "robots_unavailable"),
        ("wind-farm.html", "robots_unavailable"),
    ]
    with FeedServer() as server:
        pages, tagged = _run_fetch(FetchLinksFn(_cfg(), _outcome), [("127.0.0.1", links_of(server.base))])
        assert server.hits["/robots.txt"] == 1
    assert sorted(pages) == ["rail-budget.html", "wind-farm.html"] and not tagged["rejects"]


def test_ignore_robots_fetches_everything_without_reading_robots_txt():
    with FeedServer(robots="User-agent: *\nDisallow: /\n") as server:
        links = [Link(f"{server.base}/articles/rail-budget.html")]
        pages, _ = _run_fetch(FetchLinksFn(_cfg(obey_robots=False), _outcome), [("127.0.0.1", links)])
        assert "/robots.txt" not in server.hits
    assert pages == ["rail-budget.html"]


def test_conditional_fetch_skips_unchanged_pages_and_reports_their_state():
    with FeedServer(conditional=True) as server:
        links = [Link(f"{server.base}/articles/{n}.html") for n in ("rail-budget", "wind-farm")]
        first, tagged = _run_fetch(FetchLinksFn(_cfg(), _outcome, state_tag="state"), [("127.0.0.1", links)])
        states = {s.url: s for s in tagged["state"]}
        assert sorted(first) == ["rail-budget.html", "wind-farm.html"]
        assert {s.status for s in states.values()} == {200} and all(s.etag for s in states.values())
        rail = f"{server.base}/articles/rail-budget.html"
        validators = {rail: (states[rail].etag, states[rail].last_modified)}
        again, tagged = _run_fetch(
            FetchLinksFn(_cfg(), _outcome, validators=validators, state_tag="state"), [("127.0.0.1", links)]
        )
        asked = [h for p, h in server.requests if p == "/articles/rail-budget.html"]
    assert again == ["wind-farm.html"]  # the unchanged page is neither emitted nor rejected
    assert not tagged["rejects"]
    assert sorted((s.url.rsplit("/", 1)[1], s.status) for s in tagged["state"]) == [
        ("rail-budget.html", 304),
        ("wind-farm.html", 200),
    ]
    assert "If-None-Match" not in asked[0] and asked[1]["If-None-Match"] == states[rail].etag
    assert asked[1]["If-Modified-Since"] == states[rail].last_modified


# ---------------------------------------------------------------------------------------------------------------------
# Feeds and the flags


def _options(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parser.add_argument("--dedup-lookback-days", dest="dedup_lookback_days", type=float, default=7.0)
    return parser.parse_args(list(argv))


def test_robots_flags():
    def fetch(*argv):
        return config_from_options(_options(*argv), run_date=None, output="", now=None).fetch

    assert fetch().obey_robots and fetch().robots_for_feeds and fetch().robots_ttl_s is None
    assert not fetch("--ignore-robots").obey_robots
    only_feeds = fetch("--ignore-robots-for-feeds")
    assert only_feeds.obey_robots and not only_feeds.robots_for_feeds


@pytest.mark.parametrize("for_feeds", [True, False])
def test_feed_urls_obey_robots_txt_unless_told_not_to(for_feeds):
    with FeedServer(robots="User-agent: *\nDisallow: /feeds/\n") as server:
        cfg = FeedConfig(fetch=_cfg(robots_for_feeds=for_feeds))
        fetcher = Fetcher(cfg.fetch)
        robots = robots_cache(cfg.fetch, fetcher) if cfg.fetch.robots_for_feeds else None
        location = f"{server.base}/feeds/rss.xml"
        entries, rejects = read_feed(location, "Ledger", 0, fetcher, cfg, robots=robots)
        fetcher.close()
        hits = dict(server.hits)
    if for_feeds:
        assert entries == [] and [(r.stage, r.reason) for r in rejects] == [("feeds", "robots_disallowed")]
        assert "/feeds/rss.xml" not in hits
    else:
        assert entries and hits["/feeds/rss.xml"] == 1


def test_fetch_state_is_read_from_the_previous_thirty_days_only(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from schemas.datasets import FETCH_STATE
    from transforms.fetch import read_fetch_state
    from transforms.fetch.state import STATE_DAYS

    run = dt.date(2026, 12, 1)
    at = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    for days, url in (
        (1, "https://a.example/recent"),
        (STATE_DAYS + 5, "https://a.example/old"),
        (0, "https://a.example/own"),
    ):
        folder = tmp_path / "fetch_state" / f"run_date={(run - dt.timedelta(days=days)).isoformat()}"
        folder.mkdir(parents=True)
        row = {"url": url, "etag": '"e"', "last_modified": None, "fetched_at": at, "status": 200}
        pq.write_table(pa.Table.from_pylist([row], schema=FETCH_STATE), folder / "part-0.parquet")
    assert read_fetch_state(str(tmp_path), run) == {"https://a.example/recent": ('"e"', None)}
