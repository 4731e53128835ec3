"""End to end: feeds from a local server through fetch, extraction and the writer into the datasets files use."""

import collections
import datetime as dt
import json
import pathlib

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from conftest import read_dataset, run_ingest
from feed_server import FeedServer

from transforms.extract import Extract, ExtractConfig
from transforms.feeds import FeedConfig, ReadFeeds, read_feed_list
from transforms.fetch import FetchConfig
from transforms.write import WriteConfig, WriteDatasets, manifest_path

RUNNER = "pipelines.runners.OfflineDirectRunner"
RUN = "2026-11-23"
ARTICLE_PAGES = (
    "harbour-strike",
    "rail-budget",
    "library-reopens",
    "vaccine-trial",
    "empty-page",
    "wind-farm",
    "school-meals",
)


def _feeds_txt(tmp_path: pathlib.Path, base: str) -> pathlib.Path:
    path = tmp_path / "feeds.txt"
    path.write_text(
        f"""# Feeds for the end-to-end test: good ones, broken ones, hostile ones.
{base}/feeds/rss.xml        Coastal Ledger
{base}/feeds/atom.xml
{base}/feeds/trouble.xml    Trouble Wire
{base}/feeds/malformed.xml
{base}/feeds/billion-laughs.xml  Laughs
{base}/feeds/garbage.xml    # not a feed at all
{base}/articles/rail-budget.html   An HTML page, not a feed
{base}/feeds/no-such-feed.xml
{base}/slow
"""
    )
    return path


def _expected(base: str):
    records = [f"{base}/articles/{n}.html" for n in ARTICLE_PAGES] + [f"{base}/flaky", f"{base}/redirect/3"]
    rejects = {
        ("feeds", "feed_unreadable", f"{base}/feeds/garbage.xml"),
        ("feeds", "feed_unreadable", f"{base}/articles/rail-budget.html"),
        ("feeds", "feed_unreadable", f"{base}/feeds/no-such-feed.xml"),
        ("feeds", "feed_unreadable", f"{base}/slow"),
        ("feeds", "no_link", f"{base}/feeds/trouble.xml#entry-9"),
        ("fetch", "http_error", f"{base}/missing"),
        ("fetch", "timeout", f"{base}/slow"),
        ("fetch", "too_many_redirects", f"{base}/loop/a"),
        ("fetch", "too_large", f"{base}/big"),
        ("fetch", "too_large", f"{base}/big-declared"),
        ("fetch", "not_html", f"{base}/report.pdf"),
        ("fetch", "blocked_scheme", "file://etc/passwd"),
        ("fetch", "blocked_scheme", "ftp://ftp.example.com/pub/story.txt"),
    }
    return records, rejects


def _check(out: pathlib.Path, base: str):
    records, source_rejects = _expected(base)
    articles = read_dataset(out, "articles")
    duplicates = read_dataset(out, "duplicates")
    rejects = read_dataset(out, "rejects")
    rows = rejects.to_pylist()
    assert {
        (r["stage"], r["reason"], r["input_ref"]) for r in rows if r["stage"] in ("feeds", "fetch")
    } == source_rejects
    # Every fetched page ends exactly once as an article, a duplicate or a later-stage reject.
    later = [r["input_ref"] for r in rows if r["stage"] not in ("feeds", "fetch")]
    duplicate_refs = duplicates["input_ref"].to_pylist() if duplicates.num_columns else []
    ends = collections.Counter(articles["input_ref"].to_pylist() + duplicate_refs + later)
    assert ends == collections.Counter(records)
    manifest = json.loads(pathlib.Path(manifest_path(str(out), dt.date.fromisoformat(RUN))).read_text())
    assert manifest["counts"]["records_read"] == articles.num_rows + duplicates.num_rows + rejects.num_rows
    assert manifest["counts"]["records_read"] == len(records) + len(source_rejects)
    by_ref = {a["input_ref"]: a for a in articles.to_pylist()}
    strike = by_ref.get(f"{base}/articles/harbour-strike.html")
    if strike is not None:
        assert strike["source"] == "Coastal Ledger"
        assert strike["url"] == f"{base}/articles/harbour-strike.html"
        assert strike["content_source"] == "feed_page"
        assert str(strike["published_at"].date()) == "2025-03-24"
        assert (
            "Westhaven" in strike["text"]
            and "Accept all" not in strike["text"]
            and "Privacy policy" not in strike["text"]
        )
    live = by_ref.get(f"{base}/articles/empty-page.html")
    if live is not None:
        assert live["content_source"] == "feed_summary"
    return articles


@pytest.mark.timeout(300)
def test_feeds_graph_read_extract_write(tmp_path):
    out = tmp_path / "out"
    with FeedServer(slow_s=2.5) as server:
        feeds = FeedConfig(
            feeds=tuple(read_feed_list(str(_feeds_txt(tmp_path, server.base)))),
            fetch=FetchConfig(
                allow_private_hosts=True, connect_timeout_s=1.0, read_timeout_s=1.0, total_timeout_s=3.0, backoff_s=0.05
            ),
        )
        run_date = dt.date.fromisoformat(RUN)
        write = WriteConfig(output=str(out), run_date=run_date, ingested_at=dt.datetime.now(dt.timezone.utc))
        with TestPipeline(runner=RUNNER) as p:
            read = p | "ReadFeeds" >> ReadFeeds(feeds)
            records_read = (read["raw"], read["rejects"]) | "All" >> beam.Flatten() | beam.combiners.Count.Globally()
            extracted = read["raw"] | Extract(ExtractConfig(timeout_s=30.0))
            rejects = (read["rejects"], extracted["rejects"]) | "Rejects" >> beam.Flatten()
            _ = {"articles": extracted["articles"], "rejects": rejects} | WriteDatasets(
                write, counts={"records_read": records_read}
            )
        articles = _check(out, server.base)
    assert articles.num_rows == 9  # no clean/dedup/entities stages in this graph


@pytest.mark.timeout(300)
def test_cli_ingests_feeds_end_to_end(tmp_path):
    out = tmp_path / "out"
    with FeedServer(slow_s=2.5) as server:
        feeds_txt = _feeds_txt(tmp_path, server.base)
        code = run_ingest(
            "--feeds", feeds_txt, "--output", out, "--allow-private-hosts", "--fetch-timeout", "1", "--run-date", RUN
        )
        assert code == 0
        articles = _check(out, server.base)
        assert articles.num_rows >= 6
        assert read_dataset(out, "articles").schema.names[:2] == ["article_id", "source"]


@pytest.mark.timeout(120)
def test_cli_refuses_private_addresses_by_default(tmp_path):
    out = tmp_path / "out"
    with FeedServer() as server:
        feeds_txt = tmp_path / "feeds.txt"
        feeds_txt.write_text(f"{server.base}/feeds/rss.xml Ledger\n")
        assert run_ingest("--feeds", feeds_txt, "--output", out, "--run-date", RUN) == 0
        assert server.hits == {}
    rejects = read_dataset(out, "rejects").to_pylist()
    assert [(r["stage"], r["reason"]) for r in rejects] == [("feeds", "feed_unreadable")]
    assert "private_address" in rejects[0]["detail"]
    assert read_dataset(out, "articles").num_rows == 0
