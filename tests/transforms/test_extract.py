"""Tests for the extract stage: dates, HTML extraction with metadata, fallbacks and rejects."""

import datetime as dt

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.elements import Article, RawArticle
from transforms.extract import Extract, html_to_text, parse_datetime, to_article

UTC = dt.timezone.utc
RUNNER = "pipelines.runners.OfflineDirectRunner"

PAGE = """<!doctype html><html lang="en"><head>
<title>Allies agree on new air defence package | Example News</title>
<meta property="og:title" content="Allies agree on new air defence package">
<meta name="author" content="Jane Doe">
<meta property="article:published_time" content="2025-03-26T09:15:00+01:00">
<link rel="canonical" href="https://www.example-news.com/world/air-defence?utm_source=rss">
</head><body>
<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/search">Search</a></nav>
<article><h1>Allies agree on new air defence package</h1>
<p>Defence ministers meeting in Brussels on Wednesday agreed to send additional air defence systems to Ukraine,
officials said, after weeks of talks over how the cost would be shared among member states.</p>
<p>The package includes radar units and interceptor missiles, and deliveries are expected to start within two
months, according to a statement released after the meeting.</p>
<p>Several ministers said more support would be needed before the winter, when attacks on energy infrastructure
usually intensify.</p>
</article>
<footer>© 2025 Example News. All rights reserved. <a href="/privacy">Privacy</a></footer>
</body></html>"""


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2025-03-22T01:33:00Z", dt.datetime(2025, 3, 22, 1, 33, tzinfo=UTC)),
        ("2025-03-22T03:33:00+02:00", dt.datetime(2025, 3, 22, 1, 33, tzinfo=UTC)),
        ("2025-03-22", dt.datetime(2025, 3, 22, tzinfo=UTC)),
        ("Sat, 22 Mar 2025 01:33:00 GMT", dt.datetime(2025, 3, 22, 1, 33, tzinfo=UTC)),
        ("not a date", None),
        ("", None),
        (None, None),
        ("0001-01-01", None),
        ("../../etc/passwd", None),
    ],
)
def test_parse_datetime(value, expected):
    assert parse_datetime(value) == expected


def test_text_record_becomes_article_with_record_metadata():
    raw = RawArticle("/x/a.jsonl:1", "wire", "Body.", "text", url="https://e.com/a", published="2025-01-02")
    art = to_article(raw)
    assert isinstance(art, Article)
    assert (art.text, art.date_source, art.published_at.date()) == ("Body.", "published", dt.date(2025, 1, 2))


def test_html_page_metadata_and_main_text():
    art = to_article(RawArticle("/x/site/page.html", "site", PAGE, "html"))
    assert isinstance(art, Article)
    assert art.title == "Allies agree on new air defence package"
    assert art.published_at == dt.datetime(2025, 3, 26, tzinfo=UTC) or art.published_at.date() == dt.date(2025, 3, 26)
    assert art.date_source == "published"
    assert art.url == "https://www.example-news.com/world/air-defence"
    assert art.source == "example-news.com"
    assert art.language == "en"
    assert "interceptor missiles" in art.text
    assert "Privacy" not in art.text and "Home" not in art.text.split()


def test_page_metadata_wins_over_feed_entry():
    raw = RawArticle(
        "https://e.com/a",
        "feed",
        PAGE,
        "html",
        url="https://e.com/a",
        title="Feed title",
        published="2020-01-01",
        origin="feed",
    )
    art = to_article(raw)
    assert art.title == "Allies agree on new air defence package"
    assert art.published_at.date() == dt.date(2025, 3, 26)
    assert art.content_source == "feed_page"


def test_feed_summary_fallback():
    raw = RawArticle(
        "https://e.com/b",
        "feed",
        "<html><body></body></html>",
        "html",
        summary="<p>Short &amp; sweet summary.</p>",
        origin="feed",
    )
    art = to_article(raw)
    assert (art.text, art.content_source) == ("Short & sweet summary.", "feed_summary")


def test_html_to_text():
    assert html_to_text("<p>A &lt;b&gt; <b>bold</b>\tmove</p>") == "A <b> bold move"


def test_extract_failed_reject_in_pipeline():
    good = RawArticle("/x/a.txt", "s", "Some text.", "text")
    empty_page = RawArticle("/x/b.html", "s", "<html><body><div></div></body></html>", "html")
    with TestPipeline(runner=RUNNER) as p:
        out = p | beam.Create([good, empty_page]) | Extract()
        assert_that(out["articles"] | beam.Map(lambda a: a.input_ref), equal_to(["/x/a.txt"]), label="ok")
        assert_that(
            out["rejects"] | beam.Map(lambda r: (r.input_ref, r.stage, r.reason)),
            equal_to([("/x/b.html", "extract", "extract_failed")]),
            label="rejects",
        )
