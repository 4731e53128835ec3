"""End to end: robots.txt and conditional requests across run dates (ETag / 304), with the accounting balanced."""

import datetime as dt
import json
import pathlib

import pyarrow.parquet as pq
import pytest
from conftest import read_dataset, run_ingest
from feed_server import FeedServer

from transforms.write import manifest_path

DAY1, DAY2 = "2026-11-22", "2026-11-23"


def _run(server: FeedServer, out: pathlib.Path, day: str, *extra) -> int:
    feed = f"{server.base}/stream.xml"
    return run_ingest(
        "--feed", feed, "--output", out, "--allow-private-hosts", "--fetch-timeout", "2", "--run-date", day, *extra
    )


def _manifest(out: pathlib.Path, day: str) -> dict:
    return json.loads(pathlib.Path(manifest_path(str(out), dt.date.fromisoformat(day))).read_text())


def _urls_of_run(out: pathlib.Path, dataset: str, day: str) -> list[str]:
    urls = []
    for path in sorted((out / dataset).glob(f"*/part-{day}-*.parquet")):
        urls += pq.read_table(path, columns=["url"])["url"].to_pylist()
    return sorted(urls)


def _requests(server: FeedServer, since: int) -> list[tuple[str, dict]]:
    return server.requests[since:]


@pytest.mark.timeout(600)
def test_next_day_asks_conditionally_and_emits_only_changed_pages(tmp_path):
    out = tmp_path / "out"
    with FeedServer(conditional=True, stream_start=2, stream_step=2) as server:
        story = lambda k: f"{server.base}/stream/story-{k}.html"  # noqa: E731
        assert _run(server, out, DAY1) == 0
        mark = len(server.requests)
        assert _urls_of_run(out, "articles", DAY1) == [story(1), story(2)]

        # Day 2: the feed grew to 4 items; stories 1 and 2 are unchanged (304), 3 and 4 are new.
        assert _run(server, out, DAY2) == 0
        day2 = _requests(server, mark)
        asked = {path: headers for path, headers in day2}
        assert "If-None-Match" in asked["/stream.xml"]  # the feed changed, so it was downloaded again
        assert "If-None-Match" in asked["/stream/story-1.html"] and "If-None-Match" in asked["/stream/story-2.html"]
        assert "If-None-Match" not in asked["/stream/story-3.html"]
        assert _urls_of_run(out, "articles", DAY2) == [story(3), story(4)]
        m = _manifest(out, DAY2)
        assert m["counts"]["unchanged"] == 2
        assert m["counts"]["records_read"] == 2  # unchanged pages are not records read: the run balanced (exit 0)
        assert m["counts"]["fetch_by_source"] == {"127.0.0.1": {"fetched": 2, "unchanged": 2}}
        state = read_dataset(out, "fetch_state").to_pylist()
        day2_state = {(r["url"], r["status"]) for r in state if str(r["run_date"]) == DAY2}
        assert day2_state == {
            (f"{server.base}/stream.xml", 200),
            (story(1), 304),
            (story(2), 304),
            (story(3), 200),
            (story(4), 200),
        }

        # A rerun of day 2 sees the same feed again and ignores the state day 2 wrote itself: 3 and 4 come back.
        server.hits["/stream.xml"] = 1
        assert _run(server, out, DAY2) == 0
        assert _urls_of_run(out, "articles", DAY2) == [story(3), story(4)]
        assert _manifest(out, DAY2)["counts"]["unchanged"] == 2


@pytest.mark.timeout(600)
def test_robots_and_an_unchanged_feed_across_days(tmp_path):
    out = tmp_path / "out"
    robots = "User-agent: *\nDisallow: /stream/story-3.html\n"
    with FeedServer(conditional=True, stream_start=10, stream_step=0, robots=robots) as server:
        assert _run(server, out, DAY1) == 0
        first = [p for p, _ in server.requests]
        rejects = read_dataset(out, "rejects").to_pylist()
        assert [(r["stage"], r["reason"]) for r in rejects] == [("fetch", "robots_disallowed")]
        assert rejects[0]["input_ref"] == f"{server.base}/stream/story-3.html"
        assert "/stream/story-3.html" not in first  # never requested
        assert first.count("/robots.txt") == 1 and first.count("/stream.xml") == 1
        assert len([p for p in first if p.startswith("/stream/story-")]) == 9
        assert _manifest(out, DAY1)["counts"]["records_read"] == 10

        # Day 2: the feed answers 304, so no page is asked for and nothing is read; the run still succeeds.
        mark = len(server.requests)
        assert _run(server, out, DAY2) == 0
        second = [p for p, _ in server.requests[mark:]]
        assert second == ["/robots.txt", "/stream.xml"]
        assert _manifest(out, DAY2)["counts"]["records_read"] == 0
        assert _urls_of_run(out, "articles", DAY2) == []


@pytest.mark.timeout(300)
def test_robots_unavailable_rejects_the_feed_and_is_counted(tmp_path):
    out = tmp_path / "out"
    with FeedServer(robots_status=503) as server:
        assert _run(server, out, DAY1, "--fetch-retries", "0") == 0
        assert "/stream.xml" not in server.hits
    rejects = read_dataset(out, "rejects").to_pylist()
    assert [(r["stage"], r["reason"]) for r in rejects] == [("feeds", "robots_unavailable")]
