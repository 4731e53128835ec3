"""The streaming job: poll feeds periodically, skip URLs already seen, run the batch stages, write hourly windows."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms import window as beam_window
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.utils.timestamp import Timestamp

from schemas.elements import Reject
from transforms.chain import ArticleChain
from transforms.common import REJECTS, count
from transforms.feeds import FeedConfig, FeedEntry, FeedReaderFn, FetchEntries
from transforms.fetch import read_fetch_state
from transforms.portable import split_tagged
from transforms.write import PublishPerWindow, WriteDatasets

WRITE_WINDOW_S = 3600  # output files are per hour
UNCHANGED = "unchanged"  # a poll's items when the feed answered 304: the same items as its last full answer
MAX_LOCAL_POLLS = 10_000  # an "unbounded" run on the local runner is this many polls (104 days at 15m)


# ---------------------------------------------------------------------------------------------------------------------
# Poll ticks


def _is_local_runner(runner) -> bool:
    from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner, DirectRunner

    from pipelines.runners import OfflineDirectRunner

    return isinstance(runner, (OfflineDirectRunner, BundleBasedDirectRunner, DirectRunner))


def _wait_until_due(tick: float) -> float:
    delay = tick - time.time()
    if delay > 0:
        time.sleep(delay)
    return tick


class PollTicks(beam.PTransform):
    """PBegin -> one float (the poll time, also the element timestamp) per poll, in the global window.

    PeriodicImpulse does this on portable runners. The bundle-based DirectRunner cannot run it (its splittable-DoFn
    support predates deferred remainders), so there the same schedule comes from a TestStream whose watermark
    follows the ticks, each tick held until its wall-clock time.
    """

    def __init__(self, interval_s: float, polls: int | None, start: float | None = None):
        super().__init__()
        self._interval = interval_s
        self._polls = polls
        self._start = start

    def expand(self, pbegin):
        start = self._start if self._start is not None else time.time()
        if _is_local_runner(pbegin.pipeline.runner):
            return pbegin | "LocalTicks" >> self._local_ticks(start) | "WaitUntilDue" >> beam.Map(_wait_until_due)
        from apache_beam.transforms.periodicsequence import PeriodicImpulse, RebaseMode

        if self._polls is None:
            impulse = PeriodicImpulse(fire_interval=self._interval, rebase=RebaseMode.REBASE_START)
        else:
            stop = start + (self._polls - 0.5) * self._interval
            impulse = PeriodicImpulse(start, stop, self._interval, rebase=RebaseMode.REBASE_ALL)
        return pbegin | "PeriodicImpulse" >> impulse | "AsSeconds" >> beam.Map(lambda t: float(t))

    def _local_ticks(self, start: float):
        from apache_beam.testing.test_stream import TestStream

        polls = self._polls if self._polls is not None else MAX_LOCAL_POLLS
        stream = TestStream()
        for i in range(polls):
            # TestStream carries watermarks in milliseconds.
            at = Timestamp(micros=round((start + i * self._interval) * 1000) * 1000)
            stream = (
                stream.add_elements([beam.window.TimestampedValue(float(at), at)])
                .advance_watermark_to(at)
                .advance_processing_time(self._interval)
            )
        return stream.advance_watermark_to_infinity()


# ---------------------------------------------------------------------------------------------------------------------
# Polling and the seen-URL state


def _identity(item) -> str:
    if isinstance(item, FeedEntry):
        return item.url
    # An entry the feed stage rejected (no link) would otherwise be rejected again on every poll.
    return f"reject:{item.reason}:{item.excerpt or item.detail}"


def skip_seen(items: Iterable | str, seen: dict, now: float, ttl_s: float) -> tuple[list, dict]:
    """(items not seen before, updated {identity: last seen}); identities unseen for ttl_s are forgotten.

    `items` UNCHANGED (the feed answered 304) means the feed still lists what its last full answer listed: those
    identities (the ones last seen at the latest time) are seen again now, and nothing is new."""
    if isinstance(items, str) and items == UNCHANGED:
        latest = max(seen.values(), default=None)
        seen = {k: (now if t == latest else t) for k, t in seen.items()}
        items = ()
    seen = {k: t for k, t in seen.items() if t >= now - ttl_s}
    fresh = []
    for item in items:
        key = _identity(item)
        if key not in seen:
            fresh.append(item)
        # Refreshed on every sighting: a story still in the feed is never re-ingested, however old.
        seen[key] = now
    return fresh, seen


class _PollFeedFn(FeedReaderFn):
    """Keyed by feed: (location, (feed index, (location, name))) -> (tag, value) pairs: ("main", (location, entries
    and entry rejects, or UNCHANGED)) | (REJECTS, feed reject). The feed's validators live in Beam state, so the
    next poll asks conditionally whichever worker runs it."""

    VALIDATORS = ReadModifyWriteStateSpec("validators", PickleCoder())

    def process(self, keyed, known=beam.DoFn.StateParam(VALIDATORS)):
        # Stateful, so Beam must call it itself: it yields (tag, value) pairs for split_tagged, not TaggedOutputs.
        location, item = keyed
        validators = known.read()
        if validators is None:
            validators = {location: self._validators[location]} if location in self._validators else {}
        location, entries, rejects, state = self.read_state(item, validators)
        known.write(validators)
        for r in rejects:
            if r.stage == "feeds" and r.reason != "no_link":  # the feed itself failed: once per poll
                count(f"rejected.{r.stage}.{r.reason}")
                yield REJECTS, r
        if state is not None and state.status == 304:
            yield "main", (location, UNCHANGED)
            return
        yield "main", (location, tuple(entries) + tuple(r for r in rejects if r.reason == "no_link"))


class _SkipSeenFn(beam.DoFn):
    """Keyed by feed: emits only items whose identity (canonical URL) this feed has not shown within the TTL."""

    SEEN = ReadModifyWriteStateSpec("seen", PickleCoder())

    def __init__(self, ttl_s: float):
        self._ttl = ttl_s

    def process(self, keyed, timestamp=beam.DoFn.TimestampParam, seen=beam.DoFn.StateParam(SEEN)):
        # Stateful, so Beam must call it itself: it yields (tag, value) pairs for split_tagged, not TaggedOutputs.
        _, items = keyed
        fresh, state = skip_seen(items, seen.read() or {}, float(timestamp), self._ttl)
        seen.write(state)
        if items == UNCHANGED:
            count("stream.feeds_unchanged")
            return
        count("stream.items_seen_before", len(items) - len(fresh))
        count("stream.items_new", len(fresh))
        for item in fresh:
            if isinstance(item, Reject):
                count(f"rejected.{item.stage}.{item.reason}")
                yield REJECTS, item
            else:
                yield "main", item


class _SplitTagged(beam.PTransform):
    """split_tagged under a label of its own, so one transform can split two outputs."""

    def __init__(self, tags: dict, output_types: dict | None = None):
        super().__init__()
        self._tags, self._types = tags, output_types

    def expand(self, pairs):
        return split_tagged(pairs, self._tags, self._types)


class PollFeeds(beam.PTransform):
    """PBegin -> {'entries': new FeedEntry per poll, 'rejects': Reject}, in the global window."""

    def __init__(self, cfg: FeedConfig, start: float | None = None, validators: dict | None = None):
        super().__init__()
        self._cfg = cfg
        self._start = start
        self._validators = validators or {}

    def expand(self, pbegin):
        feeds = list(enumerate(self._cfg.feeds))
        polled = (
            pbegin
            | "Ticks" >> PollTicks(self._cfg.poll_interval_s, self._cfg.poll_count(), self._start)
            | "EachFeed" >> beam.FlatMap(lambda _tick: [(feed[1][0], feed) for feed in feeds])
            | "ReadFeed" >> beam.ParDo(_PollFeedFn(self._cfg, self._validators))
        )
        polled = polled | "SplitRead" >> _SplitTagged({"main": "main", REJECTS: REJECTS}, {"main": tuple[str, Any]})
        new = split_tagged(
            polled["main"] | "SkipSeen" >> beam.ParDo(_SkipSeenFn(self._cfg.dedup_lookback_days * 86400)),
            {"main": "main", REJECTS: REJECTS},
        )
        rejects = (polled[REJECTS], new[REJECTS]) | "FeedRejects" >> beam.Flatten()
        return {"entries": new["main"], "rejects": rejects}


# ---------------------------------------------------------------------------------------------------------------------
# The graph


def build_streaming(p: beam.Pipeline, cfg, start: float | None = None):
    """Wire polling -> fetch -> the article chain (per hourly window) -> windowed write.

    `cfg` is the RunConfig. Returns the per-window manifests.
    """
    feeds: FeedConfig = cfg.feeds
    # robots.txt is read again once per poll interval, never trusted for the whole (unbounded) run; the run's feed
    # reader and page fetcher share it.
    fetch = dataclasses.replace(
        feeds.fetch,
        robots_ttl_s=feeds.fetch.robots_ttl_s or feeds.poll_interval_s,
        robots_scope=feeds.fetch.robots_scope or uuid.uuid4().hex,
    )
    feeds = dataclasses.replace(feeds, fetch=fetch)
    # Validators stored by earlier batch runs and streaming windows of earlier days.
    validators = read_fetch_state(cfg.output, cfg.run_date)
    polled = p | "PollFeeds" >> PollFeeds(feeds, start, validators)
    # Each poll's links are fetched together: a window per poll interval lets the fetch group by URL and host.
    entries = polled["entries"] | "PerPoll" >> beam.WindowInto(beam_window.FixedWindows(feeds.poll_interval_s))
    fetched = entries | "Fetch" >> FetchEntries(feeds, validators)

    hourly = beam_window.FixedWindows(WRITE_WINDOW_S)
    raw = fetched["raw"] | "Hourly" >> beam.WindowInto(hourly)
    feed_rejects = polled["rejects"] | "HourlyFeedRejects" >> beam.WindowInto(hourly)
    fetch_rejects = fetched["rejects"] | "HourlyFetchRejects" >> beam.WindowInto(hourly)
    records_read = (
        (feed_rejects, fetch_rejects, raw)
        | "AllRead" >> beam.Flatten()
        | "CountRead" >> beam.combiners.Count.Globally().without_defaults()
    )
    chain = raw | "Chain" >> ArticleChain(cfg)
    outputs = {
        **chain,
        "rejects": (feed_rejects, fetch_rejects, chain["rejects"]) | "AllRejects" >> beam.Flatten(),
        "fetch_state": fetched["state"] | "HourlyFetchState" >> beam.WindowInto(hourly),
    }
    publish = PublishPerWindow(cfg.output, shards=cfg.write.shards)
    return outputs | "Write" >> WriteDatasets(publish, counts={"records_read": records_read})
