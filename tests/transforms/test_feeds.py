"""Tests for the feed source: feed lists, OPML, parsing, ReadFeeds end states, and the extraction time limit."""

import argparse
import dataclasses
import datetime as dt
import os
import pathlib
import tracemalloc

import apache_beam as beam
import pytest
import urllib3.util.connection
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from feed_server import FeedServer

from schemas.elements import Article, RawArticle
from transforms import dedup
from transforms.extract import Extract, ExtractConfig, TimedExtractor, to_article
from transforms.feeds import (
    FeedConfig,
    FeedUnreadable,
    ReadFeeds,
    add_arguments,
    config_from_options,
    load_feed,
    parse_duration,
    parse_feed,
    parse_feed_list,
    parse_opml,
    parse_stop_after,
    read_feed,
    read_feed_list,
    repair_char_refs,
    source_name,
)
from transforms.feeds.transform import _HostBatches
from transforms.fetch import FetchConfig

DATA = pathlib.Path(__file__).resolve().parent.parent / "data" / "feeds"

RUNNER = "pipelines.runners.OfflineDirectRunner"
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.timezone.utc)
FAST = FetchConfig(
    connect_timeout_s=1.0, read_timeout_s=1.0, total_timeout_s=3.0, backoff_s=0.05, max_retry_after_s=0.5
)
LOCAL = dataclasses.replace(FAST, allow_private_hosts=True)  # the test server is on 127.0.0.1


def _opts(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    dedup.add_arguments(parser)  # --dedup-lookback-days also bounds streaming's memory of URLs
    return parser.parse_args(list(argv))


def _config(*argv) -> FeedConfig:
    return config_from_options(_opts(*argv), run_date=NOW.date(), output="/tmp/out", now=NOW)


# ---------------------------------------------------------------------------------------------------------------------
# Options and feed lists


@pytest.mark.parametrize(
    "value, seconds",
    [("30s", 30), ("15m", 900), ("1h", 3600), ("2d", 172800), ("500ms", 0.5), ("90", 90), (" 1.5 min ", 90)],
)
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "soon", "15x", "-5s", "m15"])
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    "value, expected", [("2m", (120.0, None)), ("3polls", (None, 3)), ("1 poll", (None, 1)), (None, (None, None))]
)
def test_parse_stop_after(value, expected):
    assert parse_stop_after(value) == expected


def test_feed_list_lines_comments_names_and_relative_paths():
    text = """# my feeds
https://ledger.example/business.rss   Coastal Ledger
https://science.example/atom.xml

  # indented comment
local/feed.xml Local Wire  # trailing comment
/abs/feed.xml
https://x.example/feed?a=1#frag
"""
    assert parse_feed_list(text, "/home/me/lists") == [
        ("https://ledger.example/business.rss", "Coastal Ledger"),
        ("https://science.example/atom.xml", None),
        ("/home/me/lists/local/feed.xml", "Local Wire"),
        ("/abs/feed.xml", None),
        ("https://x.example/feed?a=1#frag", None),
    ]


def test_opml_outlines_with_feed_urls():
    assert parse_opml((DATA / "feeds" / "feeds.opml").read_bytes()) == [
        ("https://ledger.example/business.rss", "The Coastal Ledger"),
        ("https://science.example/atom.xml", "Science Desk"),
        ("https://untitled.example/feed", None),
    ]


def test_opml_with_entity_declarations_is_refused():
    data = b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaa">]><opml><body><outline xmlUrl="&a;"/></body></opml>'
    with pytest.raises(ValueError, match="entities"):
        parse_opml(data)


def test_read_feed_list_plain_and_opml(tmp_path):
    plain = tmp_path / "feeds.txt"
    plain.write_text("https://a.example/rss  A\n# off\nsub/b.xml\n")
    assert read_feed_list(str(plain)) == [("https://a.example/rss", "A"), (str(tmp_path / "sub" / "b.xml"), None)]
    assert len(read_feed_list(str(DATA / "feeds" / "feeds.opml"))) == 3


@pytest.mark.parametrize("content", ["", "# only comments\n\n"])
def test_read_feed_list_without_feeds_is_an_error(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match="lists no feeds"):
        read_feed_list(str(path))


def test_config_from_options_defaults_and_merging(tmp_path):
    listing = tmp_path / "feeds.txt"
    listing.write_text(
        "https://a.example/rss Alpha\nhttps://b.example/atom\nhttps://A.example/rss?utm_source=x Again\n"
    )
    cfg = _config("--feed", "https://b.example/atom", "--feeds", str(listing), "--per-host-delay", "250ms")
    assert cfg.feeds == (("https://b.example/atom", None), ("https://a.example/rss", "Alpha"))
    fetch = cfg.fetch
    assert (fetch.per_host_concurrency, fetch.per_host_delay_s, fetch.max_body_bytes) == (2, 0.25, 5 * 1024 * 1024)
    assert (fetch.read_timeout_s, fetch.connect_timeout_s, fetch.total_timeout_s) == (20.0, 10.0, 60.0)
    assert (cfg.poll_interval_s, cfg.poll_count(), cfg.extract_timeout_s) == (900.0, None, 30.0)
    assert fetch.allow_private_hosts is False and cfg.streaming is False
    assert fetch.max_redirects == 5 and fetch.user_agent.startswith("news-ingest/")


def test_flag_defaults_are_the_config_defaults():
    # Each default is written once, in the dataclasses: no flags at all give the default configs.
    assert _config() == FeedConfig()
    assert _config().fetch == FetchConfig()
    assert FeedConfig().dedup_lookback_days == dedup.DedupConfig.lookback_days


@pytest.mark.parametrize("days, expected", [("0", 0.0), ("3", 3.0)])
def test_streaming_url_memory_follows_the_dedup_lookback(days, expected):
    # 0 means URLs are not remembered between polls: it used to become the default 7.
    assert _config("--dedup-lookback-days", days).dedup_lookback_days == expected


def test_config_streaming_flags():
    opts = _opts(
        "--feed", "https://a.example/rss", "--poll-interval", "30s", "--stop-after", "2m", "--fetch-timeout", "2"
    )
    opts.streaming = True  # Beam's own --streaming flag
    cfg = config_from_options(opts, run_date=NOW.date(), output="/o", now=NOW)
    assert (cfg.streaming, cfg.poll_interval_s, cfg.stop_after_s, cfg.poll_count()) == (True, 30.0, 120.0, 5)
    assert (cfg.fetch.read_timeout_s, cfg.fetch.connect_timeout_s, cfg.fetch.total_timeout_s) == (2.0, 2.0, 6.0)
    assert _config("--stop-after", "3polls").poll_count() == 3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--fetch-timeout", "0"], "--fetch-timeout"),
        (["--max-body-mb", "-1"], "--max-body-mb"),
        (["--per-host-concurrency", "0"], "--per-host-concurrency"),
        (["--poll-interval", "soon"], "duration"),
        (["--stop-after", "0polls"], "--stop-after"),
        (["--user-agent", " "], "--user-agent"),
        (["--feeds", "/no/such/feeds.txt"], "cannot read"),
    ],
)
def test_config_validation(argv, message):
    with pytest.raises(ValueError, match=message):
        _config(*argv)


# ---------------------------------------------------------------------------------------------------------------------
# Parsing feeds


def _feed(name, base="https://news.example"):
    return (DATA / "feeds" / name).read_text().replace("{base}", base).replace("{port}", "80").encode()


def test_rss_entries_are_canonical_and_carry_their_metadata():
    entries, rejects, bozo = parse_feed(
        _feed("rss.xml"), location="https://news.example/rss", content_type="application/rss+xml"
    )
    assert (rejects, bozo) == ([], None)
    assert [e.url for e in entries] == [
        "https://news.example/articles/harbour-strike.html",
        "https://news.example/articles/rail-budget.html",
        "https://news.example/articles/library-reopens.html",
    ]
    first = entries[0]
    assert first.title == "Dock workers extend strike as talks stall"
    assert first.published == "2025-03-24T07:40:00+00:00"
    assert first.author == "Maria Okafor"
    assert first.source == "The Coastal Ledger - Business"
    assert [e.entry_index for e in entries] == [0, 1, 2]


def test_atom_prefers_full_content_over_the_teaser():
    entries, _, _ = parse_feed(_feed("atom.xml"), location="https://news.example/atom", name="Science Desk Feed")
    live = entries[2]
    assert "counting is under way" in live.summary and live.summary != "Short teaser."
    assert {e.source for e in entries} == {"Science Desk Feed"}
    assert entries[0].published == "2025-03-20T13:05:00+00:00"


def test_entry_without_a_link_is_a_reject():
    entries, rejects, _ = parse_feed(_feed("trouble.xml"), location="https://news.example/trouble")
    assert len(entries) == 10
    assert [(r.stage, r.reason, r.input_ref) for r in rejects] == [
        ("feeds", "no_link", "https://news.example/trouble#entry-9")
    ]


def test_bozo_feed_with_entries_is_used_and_its_reason_reported():
    entries, _, bozo = parse_feed(_feed("malformed.xml"), location="https://news.example/m")
    assert bozo == "SAXParseException"
    assert [e.url for e in entries] == ["https://news.example/articles/wind-farm.html"]


@pytest.mark.parametrize(
    "data",
    [
        (DATA / "feeds" / "garbage.xml").read_bytes(),
        (DATA / "articles" / "rail-budget.html").read_bytes(),
        b"",
        b"<html><body><h1>503 Service Unavailable</h1></body></html>",
        b'{"items": [{"url": "https://news.example/a"}]}',
    ],
)
def test_not_a_feed_is_unreadable(data):
    with pytest.raises(FeedUnreadable):
        parse_feed(data, location="https://news.example/x")


def test_feed_bytes_naming_a_local_file_are_not_opened(tmp_path):
    secret = tmp_path / "secret.xml"
    secret.write_bytes(_feed("rss.xml"))
    with pytest.raises(FeedUnreadable):
        parse_feed(str(secret).encode(), location="https://hostile.example/feed")


@pytest.mark.timeout(60)
def test_billion_laughs_neither_hangs_nor_expands():
    tracemalloc.start()
    try:
        entries, _, bozo = parse_feed(_feed("billion-laughs.xml"), location="https://news.example/lol")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024
    assert bozo is not None
    assert [e.url for e in entries] == ["https://news.example/articles/school-meals.html"]
    assert all(len(e.title or "") < 100 and len(e.summary or "") < 100 for e in entries)


@pytest.mark.parametrize(
    "name, title, location, expected",
    [
        ("Wire", "Feed Title", "https://a.example/rss", "Wire"),
        (None, "  Feed   Title ", "https://a.example/rss", "Feed Title"),
        (None, None, "https://www.a.example/rss", "a.example"),
        (None, "", "/data/feeds/local-wire.xml", "local-wire"),
    ],
)
def test_source_name(name, title, location, expected):
    assert source_name(name, title, location) == expected


def test_load_feed_from_local_paths(tmp_path):
    path = tmp_path / "f.xml"
    path.write_bytes(b"<rss/>")
    assert load_feed(str(path), None, 100)[0] == b"<rss/>"
    assert load_feed(path.as_uri(), None, 100)[0] == b"<rss/>"
    with pytest.raises(FeedUnreadable, match="too_large"):
        load_feed(str(path), None, 3)
    for bad in ("ftp://x.example/feed", "gopher://x.example/", str(tmp_path / "missing.xml")):
        with pytest.raises(FeedUnreadable):
            load_feed(bad, None, 100)


def _surrogate_rss(base: str) -> str:
    """One entry whose title, description and author hold a lone-surrogate reference, then a normal entry."""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Surrogate Wire</title><link>{base}/</link>
<item><title>Broken &#xDC00; title</title><link>{base}/articles/rail-budget.html</link>
<description>Text &#xDC00; here</description><author>ed@example.org (Ann &#55296;)</author></item>
<item><title>Fine title</title><link>{base}/articles/wind-farm.html</link><description>Fine</description></item>
</channel></rss>"""


def _text_fields(entry):
    return [v for v in dataclasses.asdict(entry).values() if isinstance(v, str)]


def test_lone_surrogate_references_are_repaired_and_flagged(tmp_path):
    path = tmp_path / "surrogates.xml"
    path.write_text(_surrogate_rss("http://127.0.0.1"))
    entries, rejects = read_feed(str(path), None, 0, None, FeedConfig())
    assert rejects == []
    assert [e.title for e in entries] == ["Broken \ufffd title", "Fine title"]
    assert entries[0].summary == "Text \ufffd here"
    for entry in entries:
        for value in _text_fields(entry):
            value.encode("utf-8")  # raises on a lone surrogate
            assert "\ufdd0" not in value
    assert set(entries[0].flags) == {"repaired_unicode:title", "repaired_unicode:summary", "repaired_unicode:author"}
    assert entries[1].flags == ()


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"<t>a&#xDC00;b</t>", b"<t>a&#xFDD0;b</t>"),
        (b"<t>&#55296;</t>", b"<t>&#xFDD0;</t>"),
        (b"<t>&#xD83D;&#xDE00;</t>", b"<t>&#x1F600;</t>"),  # a pair written JSON-style is joined
        (b"<t>&#xDE00;&#xD83D;</t>", b"<t>&#xFDD0;&#xFDD0;</t>"),
        (b"<t>&#x110000;&#" + b"9" * 5000 + b";</t>", b"<t>&#xFDD0;&#xFDD0;</t>"),
        (b"<t>&#38;&#xE9;&#x1F600;&amp;#xDC00;</t>", b"<t>&#38;&#xE9;&#x1F600;&amp;#xDC00;</t>"),
    ],
)
def test_repair_char_refs(data, expected):
    assert repair_char_refs(data) == expected


@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
@pytest.mark.parametrize("bad", ["&#xDC00;", "&#x110000;", "&#" + "9" * 5000 + ";"])
def test_bad_character_references_do_not_lose_the_feed(codec, bad):
    # Malformed for the strict XML parser, so feedparser's fallback parser reads it: the one that used to crash.
    rss = _surrogate_rss("https://news.example").replace("&#xDC00;", bad).replace("utf-8", codec)
    entries, rejects, bozo = parse_feed(rss.encode(codec), location="https://news.example/rss")
    assert rejects == [] and len(entries) == 2
    assert entries[0].title == "Broken \ufffd title" and "repaired_unicode:title" in entries[0].flags


def test_read_feeds_keeps_a_feed_with_surrogates_and_a_broken_ipv6_link(tmp_path):
    # Before: the surrogate lost the whole feed as one internal_error, and the link crashed the KeyByHost step.
    with FeedServer() as s:
        feed = tmp_path / "surrogates.xml"
        rss = _surrogate_rss(s.base).replace(
            "</channel>", "<item><title>x</title><link>http://[::1/x</link></item></channel>"
        )
        feed.write_text(rss)
        cfg = FeedConfig(feeds=((str(feed), None),), fetch=LOCAL)
        with TestPipeline(runner=RUNNER) as p:
            out = p | ReadFeeds(cfg)
            assert_that(
                out["raw"] | beam.Map(lambda r: (r.input_ref.rsplit("/", 1)[1], r.title, r.flags)),
                equal_to(
                    [
                        (
                            "rail-budget.html",
                            "Broken \ufffd title",
                            ("repaired_unicode:title", "repaired_unicode:author", "repaired_unicode:summary"),
                        ),
                        ("wind-farm.html", "Fine title", ()),
                    ]
                ),
                label="Raw",
            )
            assert_that(
                out["rejects"] | beam.Map(lambda r: (r.stage, r.reason, r.input_ref)),
                equal_to([("fetch", "blocked_scheme", "http://[::1/x")]),
                label="Rejects",
            )


@pytest.mark.timeout(20)
def test_a_fifo_given_as_a_feed_file_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "feed.xml"
    os.mkfifo(fifo)
    for location in (str(fifo), fifo.as_uri()):
        with pytest.raises(FeedUnreadable, match="not a regular file"):
            load_feed(location, None, 100)
    entries, rejects = read_feed(str(fifo), None, 0, None, FeedConfig())
    assert entries == [] and [(r.reason, r.input_ref) for r in rejects] == [("feed_unreadable", str(fifo))]
    with pytest.raises(FeedUnreadable, match="not a regular file"):
        load_feed(str(tmp_path), None, 100)


# ---------------------------------------------------------------------------------------------------------------------
# ReadFeeds against a local server


def _ref(item):
    return item.input_ref


def _reasons(rejects):
    return sorted((r.stage, r.reason, r.input_ref) for r in rejects)


def test_read_feeds_every_entry_ends_as_one_record_or_reject():
    with FeedServer(slow_s=2.5) as s:
        b = s.base
        feeds = tuple(
            (f"{b}/feeds/{n}", None)
            for n in ("rss.xml", "atom.xml", "trouble.xml", "malformed.xml", "billion-laughs.xml")
        ) + (
            (f"{b}/feeds/garbage.xml", "Garbage"),
            (f"{b}/articles/rail-budget.html", "A page, not a feed"),
            (f"{b}/feeds/nope.xml", None),
            (f"{b}/slow", None),
        )
        cfg = FeedConfig(feeds=feeds, fetch=LOCAL)
        with TestPipeline(runner=RUNNER) as p:
            out = p | ReadFeeds(cfg)
            raw = out["raw"]
            assert_that(
                raw | "Refs" >> beam.Map(_ref),
                equal_to(
                    [f"{b}/articles/{n}.html" for n in ("harbour-strike", "rail-budget", "library-reopens")]
                    + [f"{b}/articles/{n}.html" for n in ("vaccine-trial", "empty-page", "wind-farm", "school-meals")]
                    + [f"{b}/flaky", f"{b}/redirect/3"]
                ),
                label="Raw",
            )
            assert_that(
                raw | "Kinds" >> beam.Map(lambda r: (r.origin, r.content_type, r.url.startswith(b))),
                equal_to([("feed", "html", True)] * 9),
                label="RawKinds",
            )
            assert_that(
                out["rejects"] | "All" >> beam.combiners.ToList() | beam.Map(_reasons),
                equal_to(
                    [
                        sorted(
                            [
                                ("feeds", "feed_unreadable", f"{b}/feeds/garbage.xml"),
                                ("feeds", "feed_unreadable", f"{b}/articles/rail-budget.html"),
                                ("feeds", "feed_unreadable", f"{b}/feeds/nope.xml"),
                                ("feeds", "feed_unreadable", f"{b}/slow"),
                                ("feeds", "no_link", f"{b}/feeds/trouble.xml#entry-9"),
                                ("fetch", "http_error", f"{b}/missing"),
                                ("fetch", "timeout", f"{b}/slow"),
                                ("fetch", "too_many_redirects", f"{b}/loop/a"),
                                ("fetch", "too_large", f"{b}/big"),
                                ("fetch", "too_large", f"{b}/big-declared"),
                                ("fetch", "not_html", f"{b}/report.pdf"),
                                ("fetch", "blocked_scheme", "file://etc/passwd"),
                                ("fetch", "blocked_scheme", "ftp://ftp.example.com/pub/story.txt"),
                            ]
                        )
                    ]
                ),
                label="Rejects",
            )
        # The story linked by two feeds (with different tracking parameters) was fetched once.
        assert s.hits["/articles/harbour-strike.html?utm_source=rss&utm_medium=feed"] == 0
        assert sum(n for path, n in s.hits.items() if path.startswith("/articles/harbour-strike.html")) == 1
        assert s.hits["/flaky"] == 2


def test_feed_source_comes_from_the_feed_line_then_the_feed_title():
    with FeedServer() as s:
        cfg = FeedConfig(feeds=((f"{s.base}/feeds/rss.xml", "Ledger"), (f"{s.base}/feeds/atom.xml", None)), fetch=LOCAL)
        with TestPipeline(runner=RUNNER) as p:
            raw = (p | ReadFeeds(cfg))["raw"]
            assert_that(
                raw | beam.Map(lambda r: (r.input_ref.rsplit("/", 1)[1], r.source)),
                equal_to(
                    [
                        ("harbour-strike.html", "Ledger"),  # first feed given wins for a shared story
                        ("rail-budget.html", "Ledger"),
                        ("library-reopens.html", "Ledger"),
                        ("vaccine-trial.html", "Science Desk"),
                        ("empty-page.html", "Science Desk"),
                    ]
                ),
            )


def test_hostile_feed_items_are_refused_without_allow_private_hosts(tmp_path, monkeypatch):
    attempts = []

    def no_connections(address, *args, **kwargs):
        attempts.append(address)
        raise AssertionError(f"connection attempted to {address}")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", no_connections)
    with FeedServer() as s:
        hostile = tmp_path / "hostile.xml"
        hostile.write_text(s.feed_text("private.xml", base=f"http://localhost:{s.port}"))
        cfg = FeedConfig(feeds=((str(hostile), "Hostile"),), fetch=FAST)
        with TestPipeline(runner=RUNNER) as p:
            out = p | ReadFeeds(cfg)
            assert_that(out["raw"], equal_to([]), label="NoRaw")
            assert_that(
                out["rejects"] | beam.Map(lambda r: (r.stage, r.reason)),
                equal_to([("fetch", "private_address")] * 5 + [("fetch", "blocked_scheme")]),
                label="Rejects",
            )
        assert s.hits == {}
    assert attempts == []


# ---------------------------------------------------------------------------------------------------------------------
# Extraction: time limit and metadata precedence for feed pages


def _pathological_page(paragraphs: int = 30000) -> str:
    # Thousands of tiny sibling blocks: trafilatura spends tens of seconds on this 3 MB page.
    blocks = "".join(
        f"<div><p>Paragraph {i} about the council and the harbour.</p><span>x</span></div>" for i in range(paragraphs)
    )
    return f"<html><body>{blocks}</body></html>"


@pytest.mark.timeout(120)
def test_extraction_time_limit_kills_a_runaway_page_and_recovers():
    extractor = TimedExtractor(0.5)
    try:
        slow = RawArticle("https://news.example/slow", "Wire", _pathological_page(), "html", origin="feed")
        assert to_article(slow, ExtractConfig(timeout_s=0.5), extractor) == (
            "extract_timeout",
            "extraction took longer than 0.5s",
        )
        page = (DATA / "articles" / "rail-budget.html").read_text().replace("{base}", "https://news.example")
        ok = to_article(
            RawArticle("https://news.example/r", "Wire", page, "html", origin="feed"), ExtractConfig(), extractor
        )
        assert isinstance(ok, Article) and "2.3 billion euros" in ok.text
    finally:
        extractor.close()


@pytest.mark.timeout(120)
def test_extract_stage_rejects_a_timed_out_page():
    page = (DATA / "articles" / "wind-farm.html").read_text()
    raws = [
        RawArticle("https://news.example/slow", "Wire", _pathological_page(), "html", origin="feed"),
        RawArticle("https://news.example/wind", "Wire", page, "html", origin="feed"),
    ]
    with TestPipeline(runner=RUNNER) as p:
        out = p | beam.Create(raws) | Extract(ExtractConfig(timeout_s=1.0))
        assert_that(out["articles"] | beam.Map(_ref), equal_to(["https://news.example/wind"]), label="Articles")
        assert_that(
            out["rejects"] | beam.Map(lambda r: (r.input_ref, r.stage, r.reason)),
            equal_to([("https://news.example/slow", "extract", "extract_timeout")]),
            label="Rejects",
        )


def _page(name):
    return (DATA / "articles" / name).read_text().replace("{base}", "https://news.example")


def test_page_metadata_wins_over_the_feed_entry():
    raw = RawArticle(
        "https://news.example/articles/vaccine-trial.html",
        "Science Desk",
        _page("vaccine-trial.html"),
        "html",
        url="https://news.example/articles/vaccine-trial.html",
        title="Feed title",
        author="Feed Author",
        published="2025-01-01T00:00:00+00:00",
        origin="feed",
    )
    art = to_article(raw, ExtractConfig(timeout_s=None))
    assert (art.title, art.author, art.content_source) == (
        "Malaria vaccine trial reports strong early results",
        "Aisha Rahman",
        "feed_page",
    )
    assert art.published_at.date() == dt.date(2025, 3, 20) and art.source == "Science Desk"


def test_feed_entry_fills_what_the_page_lacks():
    raw = RawArticle(
        "https://news.example/articles/library-reopens.html",
        "Ledger",
        _page("library-reopens.html"),
        "html",
        url="https://news.example/articles/library-reopens.html",
        author="Newsdesk",
        published="2025-03-24T09:00:00+00:00",
        origin="feed",
    )
    art = to_article(raw, ExtractConfig(timeout_s=None))
    # No date markup on the page: the footer's "© 2025" must not beat the entry's explicit date.
    assert art.published_at == dt.datetime(2025, 3, 24, 9, tzinfo=dt.timezone.utc)
    assert art.author == "Newsdesk" and art.date_source == "published"


def test_entry_time_kept_when_the_page_gives_only_the_same_day():
    raw = RawArticle(
        "https://news.example/r",
        "Ledger",
        _page("rail-budget.html"),
        "html",
        published="2025-03-22T06:10:00Z",
        origin="feed",
    )
    assert to_article(raw, ExtractConfig(timeout_s=None)).published_at == dt.datetime(
        2025, 3, 22, 6, 10, tzinfo=dt.timezone.utc
    )


def test_thin_page_falls_back_to_the_feed_summary():
    summary = (
        "<p>Polls have closed across the region and counting is under way in all forty constituencies tonight.</p>"
    )
    raw = RawArticle(
        "https://news.example/live", "Desk", _page("empty-page.html"), "html", summary=summary, origin="feed"
    )
    art = to_article(raw, ExtractConfig(timeout_s=None))
    assert art.content_source == "feed_summary" and art.text.startswith("Polls have closed")


@pytest.mark.parametrize(
    "n_hosts, size, expected_sizes",
    [(1, 8, [1]), (3, 8, [3]), (8, 8, [8]), (20, 8, [4, 8, 8]), (5, 1, [1, 1, 1, 1, 1])],
)
def test_host_batches_are_full_and_keep_each_host_once(n_hosts, size, expected_sizes):
    # A few hosts must share one batch (they are fetched side by side), never scatter into batches of one.
    hosts = [(f"host{i:02d}.example", [f"link-{i}-{j}" for j in range(i % 3 + 1)]) for i in range(n_hosts)]
    with TestPipeline(runner=RUNNER) as p:
        batches = p | beam.Create(hosts) | _HostBatches(size)
        assert_that(batches | "Sizes" >> beam.Map(len), equal_to(expected_sizes), label="Sizes")
        assert_that(batches | "Hosts" >> beam.FlatMap(lambda b: b), equal_to(hosts), label="EachHostOnce")
