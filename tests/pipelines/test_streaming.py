"""Tests for streaming mode: poll ticks, the seen-URL state, and exactly-once ingestion across polls."""

import datetime as dt
import json
import pathlib
import time

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import read_dataset
from feed_server import FeedServer

from pipelines.options import RunConfig
from pipelines.streaming import UNCHANGED, PollTicks, build_streaming, skip_seen
from schemas.elements import Reject
from transforms.extract import ExtractConfig
from transforms.feeds import FeedConfig, FeedEntry
from transforms.fetch import FetchConfig
from transforms.read import ReadConfig
from transforms.write import WriteConfig, window_file_name, window_tag

RUNNER = "pipelines.runners.OfflineDirectRunner"
UTC = dt.timezone.utc
DAY = 86400.0


def _entry(url, i=0):
    return FeedEntry(url=url, feed="https://f.example/rss", feed_index=0, entry_index=i, source="F")


def test_skip_seen_emits_only_new_urls_and_remembers_them():
    fresh, seen = skip_seen([_entry("https://a/1"), _entry("https://a/2")], {}, now=1000.0, ttl_s=DAY)
    assert [e.url for e in fresh] == ["https://a/1", "https://a/2"]
    fresh, seen = skip_seen([_entry("https://a/3"), _entry("https://a/1"), _entry("https://a/3")], seen, 2000.0, DAY)
    assert [e.url for e in fresh] == ["https://a/3"]
    assert seen == {"https://a/1": 2000.0, "https://a/2": 1000.0, "https://a/3": 2000.0}


def test_skip_seen_forgets_after_the_ttl_unless_still_listed():
    _, seen = skip_seen([_entry("https://a/old"), _entry("https://a/listed")], {}, now=0.0, ttl_s=DAY)
    _, seen = skip_seen([_entry("https://a/listed")], seen, now=0.9 * DAY, ttl_s=DAY)
    fresh, seen = skip_seen([_entry("https://a/old"), _entry("https://a/listed")], seen, now=1.5 * DAY, ttl_s=DAY)
    assert [e.url for e in fresh] == ["https://a/old"]  # forgotten after a day away; 'listed' never left
    assert set(seen) == {"https://a/old", "https://a/listed"}


def test_skip_seen_also_deduplicates_entry_rejects():
    r = Reject.of("https://f.example/rss#entry-3", "feeds", "no_link", "feed entry has no link", "Title")
    moved = Reject.of("https://f.example/rss#entry-4", "feeds", "no_link", "feed entry has no link", "Title")
    fresh, seen = skip_seen([r], {}, 0.0, DAY)
    assert fresh == [r]
    assert skip_seen([moved], seen, 10.0, DAY)[0] == []


@pytest.mark.parametrize(
    "start, shard, pane, name",
    [
        (dt.datetime(2026, 11, 23, 14, tzinfo=UTC), 0, 0, "part-2026-11-23T1400Z-00000.parquet"),
        (dt.datetime(2026, 11, 23, 9, tzinfo=UTC), 3, 2, "part-2026-11-23T0900Z-00003-p2.parquet"),
    ],
)
def test_window_file_names(start, shard, pane, name):
    assert window_file_name(start, shard, pane) == name
    # Never matched by a batch run's stale-file pattern part-YYYY-MM-DD-*.parquet.
    assert not name.startswith(f"part-{start.date().isoformat()}-")
    assert window_tag(start) in name


def _streaming_pipeline():
    return TestPipeline(runner=RUNNER, options=PipelineOptions(["--streaming"]))


def test_local_poll_ticks_are_paced_and_timestamped():
    start = round(time.time(), 3)
    with _streaming_pipeline() as p:
        ticks = p | PollTicks(0.5, 3, start=start)
        assert_that(
            ticks | beam.Map(lambda t, ts=beam.DoFn.TimestampParam: (round(t - start, 3), round(float(ts) - start, 3))),
            equal_to([(0.0, 0.0), (0.5, 0.5), (1.0, 1.0)]),
        )
    assert time.time() - start >= 1.0


def _run_config(out: pathlib.Path, feeds: FeedConfig) -> RunConfig:
    now = dt.datetime.now(UTC)
    return RunConfig(
        inputs=(),
        output=str(out),
        run_date=now.date(),
        verbose=False,
        read=ReadConfig(),
        extract=ExtractConfig(),
        write=WriteConfig(output=str(out), run_date=now.date(), ingested_at=now),
        feeds=feeds,
    )


@pytest.mark.timeout(300)
def test_streaming_ingests_each_new_entry_exactly_once(tmp_path):
    polls = 3
    with FeedServer(stream_start=2, stream_step=2) as server:
        feeds = FeedConfig(
            feeds=((f"{server.base}/stream.xml", "Stream Times"), (f"{server.base}/feeds/missing.xml", None)),
            fetch=FetchConfig(allow_private_hosts=True, connect_timeout_s=2.0, read_timeout_s=2.0, total_timeout_s=6.0),
            poll_interval_s=1.5,
            stop_after_polls=polls,
        )
        with _streaming_pipeline() as p:
            build_streaming(p, _run_config(tmp_path, feeds))
        hits = dict(server.hits)
    # The feed grew 2 -> 4 -> 6 items between polls; each story page was fetched exactly once.
    assert hits["/stream.xml"] == polls
    stories = {path: n for path, n in hits.items() if path.startswith("/stream/story-")}
    assert stories == {f"/stream/story-{k}.html": 1 for k in range(1, 7)}  # tracking parameters dropped

    articles = read_dataset(tmp_path, "articles")
    urls = articles["url"].to_pylist()
    assert sorted(urls) == sorted(f"{server.base}/stream/story-{k}.html" for k in range(1, 7))
    assert set(articles["source"].to_pylist()) == {"Stream Times"}
    assert set(articles["content_source"].to_pylist()) == {"feed_page"}

    rejects = read_dataset(tmp_path, "rejects")
    assert rejects["reason"].to_pylist() == ["feed_unreadable"] * polls  # the broken feed, once per poll

    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert files and all("/part-" in f and f.split("/part-")[1][:10].count("-") == 2 for f in files)
    assert {f.split("/")[1].split("=")[0] for f in files if f.startswith("articles/")} == {"published_date"}
    assert not list(tmp_path.rglob("*.tmp"))

    manifests = [json.loads(m.read_text()) for m in (tmp_path / "_manifests").glob("window=*.json")]
    assert sum(m["counts"].get("records_read", 0) for m in manifests) == 6 + polls
    written = sum(f["rows"] for m in manifests for f in m["datasets"].get("articles", []))
    assert written == 6


def test_skip_seen_refreshes_what_an_unchanged_feed_still_lists():
    _, seen = skip_seen([_entry("https://a/gone")], {}, now=0.0, ttl_s=DAY)
    _, seen = skip_seen([_entry("https://a/listed")], seen, now=0.5 * DAY, ttl_s=DAY)
    fresh, seen = skip_seen(UNCHANGED, seen, now=1.2 * DAY, ttl_s=DAY)
    assert fresh == [] and seen == {"https://a/listed": 1.2 * DAY}  # 'gone' was not in the last full answer


@pytest.mark.timeout(300)
def test_a_second_poll_asks_conditionally_and_an_unchanged_feed_emits_nothing(tmp_path):
    polls = 2
    with FeedServer(stream_start=3, stream_step=0, conditional=True) as server:
        feeds = FeedConfig(
            feeds=((f"{server.base}/stream.xml", "Stream Times"),),
            fetch=FetchConfig(allow_private_hosts=True, connect_timeout_s=2.0, read_timeout_s=2.0, total_timeout_s=6.0),
            poll_interval_s=1.5,
            stop_after_polls=polls,
        )
        with _streaming_pipeline() as p:
            build_streaming(p, _run_config(tmp_path, feeds))
        feed_requests = [headers for path, headers in server.requests if path == "/stream.xml"]
        hits = dict(server.hits)
    assert len(feed_requests) == polls
    assert "If-None-Match" not in feed_requests[0]
    assert feed_requests[1].get("If-None-Match", "").startswith('"')  # answered 304 by the server
    assert {path: n for path, n in hits.items() if path.startswith("/stream/")} == {
        f"/stream/story-{k}.html": 1 for k in range(1, 4)
    }
    assert read_dataset(tmp_path, "articles").num_rows == 3
    state = read_dataset(tmp_path, "fetch_state").to_pylist()
    assert sorted(r["url"].rsplit("/", 1)[1] for r in state) == [f"story-{k}.html" for k in range(1, 4)]
