"""Tests for published and updated dates: feed and JSON inputs, the future-date check, the dateline fallback."""

import datetime as dt

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas import datasets as ds
from schemas.elements import Article, RawArticle
from transforms.clean import clean_article, load_rules
from transforms.extract import Extract, ExtractConfig, to_article
from transforms.extract.config import MAX_CLOCK_SKEW
from transforms.feeds import parse_feed
from transforms.feeds.transform import to_raw
from transforms.read import from_json

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RUN = NOW.date()
CFG = ExtractConfig(timeout_s=None, now=NOW)
BODY = " ".join(["Council members voted on the rail budget after a long debate about fares."] * 3)

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Desk</title>
<entry><title>Both</title><link href="https://news.example/both"/>
  <published>2025-03-20T08:00:00Z</published><updated>2025-03-21T09:30:00Z</updated></entry>
<entry><title>Only updated</title><link href="https://news.example/only-updated"/>
  <updated>2025-03-22T10:00:00Z</updated></entry>
<entry><title>Updated first</title><link href="https://news.example/mixed-up"/>
  <published>2025-03-20T08:00:00Z</published><updated>2025-03-19T08:00:00Z</updated></entry>
</feed>"""


class _Page:
    """The part of a fetched page that to_raw reads."""

    def __init__(self, url: str):
        self.final_url = url

    def text(self) -> str:
        return "<html><body><p>page</p></body></html>"


def _page_without_date(content, url, cfg):
    return {"text": BODY, "title": None, "author": None, "date": None, "url": None, "sitename": None, "language": "en"}


def _feed_rows() -> dict[str, dict]:
    entries, rejects, _ = parse_feed(ATOM.encode(), location="https://news.example/atom")
    assert rejects == []
    rows = {}
    for e in entries:
        art = to_article(to_raw(e, _Page(e.url)), CFG, _page_without_date)
        rows[e.title] = ds.article_row(art, RUN, NOW)[1]
    return rows


def test_feed_entry_with_published_and_updated_gives_both_columns():
    row = _feed_rows()["Both"]
    assert row["published_at"] == dt.datetime(2025, 3, 20, 8, tzinfo=UTC)
    assert row["updated_at"] == dt.datetime(2025, 3, 21, 9, 30, tzinfo=UTC)
    assert row["date_source"] == "published"


def test_feed_entry_with_only_updated_is_dated_by_it():
    row = _feed_rows()["Only updated"]
    when = dt.datetime(2025, 3, 22, 10, tzinfo=UTC)
    assert (row["published_at"], row["updated_at"], row["date_source"]) == (when, when, "published")


def test_updated_before_published_is_not_reported():
    row = _feed_rows()["Updated first"]
    assert row["published_at"] == dt.datetime(2025, 3, 20, 8, tzinfo=UTC) and row["updated_at"] is None


def test_rss_entry_with_only_a_pub_date_has_no_updated_date():
    # feedparser answers entry.get("updated") with the pubDate: that is no update.
    rss = (
        "<rss version='2.0'><channel><title>t</title><item><title>a</title><link>https://news.example/a</link>"
        "<pubDate>Sat, 22 Mar 2025 06:10:00 GMT</pubDate></item></channel></rss>"
    )
    (entry,), _, _ = parse_feed(rss.encode(), location="https://news.example/rss")
    assert entry.published == "2025-03-22T06:10:00+00:00" and entry.updated is None


def test_json_record_updated_field():
    raw = from_json(
        "/in/a.jsonl:1", "/in/a.jsonl", {"text": BODY, "published": "2025-03-01", "updated": "2025-03-02T10:00Z"}, None
    )
    art = to_article(raw, CFG)
    assert art.published_at == dt.datetime(2025, 3, 1, tzinfo=UTC)
    assert art.updated_at == dt.datetime(2025, 3, 2, 10, tzinfo=UTC)


def _record(published: dt.datetime, text: str = BODY, updated: dt.datetime | None = None) -> RawArticle:
    value = {"text": text, "published": published.isoformat()}
    if updated is not None:
        value["updated"] = updated.isoformat()
    return from_json("/in/a.jsonl:1", "/in/a.jsonl", value, None)


def test_future_published_date_falls_back_to_the_run_date_and_is_counted():
    raw = _record(NOW + dt.timedelta(days=3))
    art = to_article(raw, CFG)
    assert (art.published_at, art.date_source) == (None, "run")
    # Without a run time there is no check.
    assert to_article(raw, ExtractConfig(timeout_s=None)).published_at == NOW + dt.timedelta(days=3)

    with TestPipeline() as p:
        out = p | beam.Create([raw]) | Extract(CFG)
        assert_that(out["articles"] | beam.Map(lambda a: (a.published_at, a.date_source)), equal_to([(None, "run")]))
    counters = p.result.metrics().query(MetricsFilter().with_name("extract.future_date"))["counters"]
    assert sum(c.committed for c in counters) == 1


def test_future_published_date_falls_back_to_the_dateline():
    raw = _record(NOW + dt.timedelta(days=3), text="Saturday 22 March 2025 01:33 GMT\n" + BODY)
    art = to_article(raw, CFG)
    cleaned, _ = clean_article(art, load_rules(), now=NOW)
    assert cleaned.published_at == dt.datetime(2025, 3, 22, 1, 33, tzinfo=UTC)
    assert cleaned.date_source == "dateline"


def test_published_date_within_the_clock_skew_is_kept():
    soon = NOW + MAX_CLOCK_SKEW - dt.timedelta(minutes=1)
    art = to_article(_record(soon), CFG)
    assert (art.published_at, art.date_source) == (soon, "published")


def test_future_updated_date_is_dropped():
    art = to_article(_record(NOW - dt.timedelta(days=2), updated=NOW + dt.timedelta(days=3)), CFG)
    assert art.published_at == NOW - dt.timedelta(days=2) and art.updated_at is None


def test_future_dateline_is_rejected_when_clean_knows_the_time():
    # Tomorrow at 23:00 passes the dateline reader's day check, but lies 35 hours ahead of the run.
    art = Article(input_ref="/in/a.txt", source="s", text="Tuesday 24 November 2026 23:00 GMT\n" + BODY)
    cleaned, _ = clean_article(art, load_rules(), now=NOW)
    assert (cleaned.published_at, cleaned.date_source) == (None, "run")
    cleaned, _ = clean_article(art, load_rules(), now=NOW + dt.timedelta(hours=12))
    assert cleaned.date_source == "dateline"


def test_dateline_later_than_the_updated_date_drops_it():
    art = Article(
        input_ref="/in/a.txt",
        source="s",
        text="Saturday 22 March 2025 01:33 GMT\n" + BODY,
        updated_at=dt.datetime(2025, 3, 1, tzinfo=UTC),
    )
    cleaned, _ = clean_article(art, load_rules(), now=NOW)
    assert cleaned.date_source == "dateline" and cleaned.updated_at is None
