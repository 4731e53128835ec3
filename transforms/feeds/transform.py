"""The feed source's Beam steps: FeedReaderFn, ReadFeeds, and FetchEntries with its host batches."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Iterable, Iterator

import apache_beam as beam

from schemas.elements import FetchState, RawArticle, Reject
from transforms.common import REJECTS, TaggedParDo, count, reject, run_guarded
from transforms.feeds.config import STAGE, FeedConfig
from transforms.feeds.parse import FeedEntry, read_feed
from transforms.fetch import STAGE as FETCH_STAGE
from transforms.fetch import Fetcher, FetchError, FetchLinksFn, Validators, count_robots, robots_cache, state_of
from transforms.urls import canonical_url, host_of

STATE = "fetch_state"  # the tag of FetchState outputs: what each URL answered, for conditional requests later


class FeedReaderFn(beam.DoFn):
    """Base of the DoFns that read feeds: one HTTP client per DoFn instance, `read(item)` for (index, (location,
    name)) items. Subclasses decide what to emit.

    Feed URLs obey robots.txt unless `--ignore-robots` or `--ignore-robots-for-feeds`; `validators` ({url: (ETag,
    Last-Modified)} from earlier runs) make feed requests conditional, and the instance remembers what each feed
    answered since, so a later poll by the same instance asks with the newest validators."""

    def __init__(self, cfg: FeedConfig, validators: dict[str, Validators] | None = None):
        self._cfg = cfg
        self._validators = dict(validators or {})

    def setup(self):
        self._fetcher = Fetcher(self._cfg.fetch)
        fetch = self._cfg.fetch
        obey = fetch.obey_robots and fetch.robots_for_feeds
        self._robots = robots_cache(fetch, self._fetcher) if obey else None
        self._known = dict(self._validators)

    def read_state(
        self, item, known: dict | None = None
    ) -> tuple[str, list[FeedEntry], list[Reject], FetchState | None]:
        """(location, entries, rejects, fetch state or None); an unchanged feed (304) has a state with status 304.

        `known` ({url: validators}, updated in place) replaces the instance's memory, for callers that keep it
        in Beam state."""
        index, (location, name) = item
        if known is None:
            known = self._known
        fetched: list = []
        entries, rejects = read_feed(
            location,
            name,
            index,
            self._fetcher,
            self._cfg,
            robots=self._robots,
            validators=known.get(location),
            fetched=fetched,
        )
        if self._robots is not None:
            count_robots(self._robots)
        state = state_of(fetched[0], dt.datetime.now(dt.timezone.utc)) if fetched else None
        if state is not None and (state.etag or state.last_modified):
            known[location] = (state.etag, state.last_modified)
        return location, entries, rejects, state

    def read(self, item) -> tuple[str, list[FeedEntry], list[Reject]]:
        location, entries, rejects, _ = self.read_state(item)
        return location, entries, rejects

    def teardown(self):
        if getattr(self, "_fetcher", None) is not None:
            self._fetcher.close()


class _ReadFeedFn(FeedReaderFn):
    def process(self, item):
        _, entries, rejects, state = self.read_state(item)
        for r in rejects:
            count(f"rejected.{r.stage}.{r.reason}")
            yield beam.pvalue.TaggedOutput(REJECTS, r)
        if state is not None:
            yield beam.pvalue.TaggedOutput(STATE, state)
        yield from entries


def _host_of(keyed: tuple[str, list[FeedEntry]]) -> str:
    return keyed[0]


def _number_hosts(keyed: tuple[str, Iterable[str]], size: int) -> Iterator[tuple[str, int]]:
    for i, host in enumerate(sorted(keyed[1])):
        yield host, i // size


def _by_batch(host: str, joined: dict) -> tuple[int, tuple[str, list[FeedEntry]]]:
    (batch,), (links,) = joined["batch"], joined["links"]
    return batch, (host, links)


def _hosts_in_order(_, hosts: Iterable[tuple[str, list[FeedEntry]]]) -> list[tuple[str, list[FeedEntry]]]:
    return sorted(hosts, key=_host_of)


class _HostBatches(beam.PTransform):
    """(host, [entry]) -> lists of up to `size` (host, [entry]): hosts numbered in name order and cut in runs,
    so batches are full however few hosts there are. Only host names meet on one key, never the links.

    (Batch's hash shards would scatter a handful of hosts into batches of one, fetched one after another; a
    side input with the host count would do, but Beam's DaskRunner cannot compute one made by a shuffle.)
    """

    def __init__(self, size: int):
        super().__init__()
        self._size = size

    def expand(self, by_host):
        batch_of = (
            by_host
            | "HostNames" >> beam.Map(lambda keyed: ("", keyed[0]))
            | "AllHostNames" >> beam.GroupByKey()
            | "NumberHosts" >> beam.FlatMap(_number_hosts, self._size)
        )
        return (
            {"batch": batch_of, "links": by_host}
            | "JoinBatch" >> beam.CoGroupByKey()
            | "KeyByBatch" >> beam.MapTuple(_by_batch)
            | "GroupBatch" >> beam.GroupByKey()
            | "HostsInOrder" >> beam.MapTuple(_hosts_in_order)
        )


def _host_key(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).hostname or ""
    except ValueError:  # "http://[::1/x": fetching it makes the reject
        return ""


def _listed(host: str, entries: Iterable[FeedEntry]) -> tuple[str, list[FeedEntry]]:
    return host, sorted(entries, key=lambda e: e.url)


def _first_of(url: str, entries: Iterable[FeedEntry]) -> FeedEntry:
    entries = sorted(entries, key=lambda e: e.order)
    if len(entries) > 1:
        # The same story in several feeds is fetched once; the first feed given names its source.
        count("feeds.duplicate_links", len(entries) - 1)
    return entries[0]


def to_raw(entry: FeedEntry, result) -> RawArticle | beam.pvalue.TaggedOutput:
    """A fetched page (or fetch error) for a feed entry -> RawArticle (or a counted fetch reject)."""
    if isinstance(result, FetchError):
        return reject(entry.url, FETCH_STAGE, result.reason, result.detail)
    count("fetch.pages")
    return RawArticle(
        input_ref=entry.url,
        source=entry.source,
        content=result.text(),
        content_type="html",
        url=canonical_url(result.final_url) or entry.url,
        title=entry.title,
        published=entry.published,
        author=entry.author,
        summary=entry.summary,
        origin="feed",
        flags=entry.flags,
        updated=entry.updated,
    )


def fetch_counts(states: Iterable[FetchState]) -> dict[str, dict[str, int]]:
    """{source host: {"fetched": pages downloaded, "unchanged": pages answered 304}} (the manifest's
    `fetch_by_source`)."""
    out: dict[str, dict[str, int]] = {}
    for s in states:
        entry = out.setdefault(host_of(s.url) or "", {"fetched": 0, "unchanged": 0})
        entry["unchanged" if s.status == 304 else "fetched"] += 1
    return dict(sorted(out.items()))


class _FetchCounts(beam.CombineFn):
    """fetch_counts as a combiner: one dict for the whole run (an empty one when nothing was fetched)."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, state):
        return self.merge_accumulators([acc, fetch_counts([state])])

    def merge_accumulators(self, accs):
        out: dict[str, dict[str, int]] = {}
        for acc in accs:
            for host, c in acc.items():
                entry = out.setdefault(host, {"fetched": 0, "unchanged": 0})
                entry["fetched"] += c["fetched"]
                entry["unchanged"] += c["unchanged"]
        return out

    def extract_output(self, acc):
        return dict(sorted(acc.items()))


def page_counts(page_states) -> dict:
    """{'unchanged': PCollection of one int, 'fetch_by_source': PCollection of one dict}, for the manifest."""
    return {
        "unchanged": page_states
        | "OnlyUnchanged" >> beam.Filter(lambda s: s.status == 304)
        | "CountUnchanged" >> beam.combiners.Count.Globally(),
        "fetch_by_source": page_states | "FetchBySource" >> beam.CombineGlobally(_FetchCounts()),
    }


class FetchEntries(beam.PTransform):
    """FeedEntry -> {'raw': RawArticle, 'rejects': Reject, 'state': FetchState}: one fetch per distinct URL, hosts
    fetched politely; a page unchanged since `validators` (304) is only a state, neither raw nor reject."""

    def __init__(self, cfg: FeedConfig, validators: dict[str, Validators] | None = None):
        super().__init__()
        self._cfg = cfg
        self._validators = validators or {}

    def expand(self, entries):
        by_host = (
            entries
            | "KeyByUrl" >> beam.Map(lambda e: (e.url, e))
            | "OncePerUrl" >> beam.GroupByKey()
            | "FirstEntry" >> beam.MapTuple(_first_of)
            | "KeyByHost" >> beam.Map(lambda e: (_host_key(e.url), e))
            | "GroupByHost" >> beam.GroupByKey()
            | "ListLinks" >> beam.MapTuple(_listed)
            # Up to max_parallel_hosts hosts per element, fetched side by side.
            | "HostBatches" >> _HostBatches(self._cfg.fetch.max_parallel_hosts)
        )
        # Not run_guarded: FetchLinksFn turns every failure of a link into a reject itself, one per link.
        fetch = FetchLinksFn(self._cfg.fetch, to_raw, validators=self._validators, state_tag=STATE)
        fetched = by_host | "FetchPages" >> TaggedParDo(fetch, REJECTS, STATE, main="raw")
        return {"raw": fetched["raw"], "rejects": fetched[REJECTS], "state": fetched[STATE]}


class ReadFeeds(beam.PTransform):
    """Configured feeds -> {'raw': RawArticle (origin 'feed'), 'rejects': Reject}.

    Every entry ends as one RawArticle or one reject, or as nothing when its page is unchanged since an earlier
    run (a 304 to a conditional request with `validators`); a URL listed by several feeds is fetched and emitted
    once (counted in `feeds.duplicate_links`), so the run's `records_read` counts distinct URLs. Also
    'state' (FetchState of every feed and page answered), 'page_state' (pages only).
    """

    def __init__(self, cfg: FeedConfig, validators: dict[str, Validators] | None = None):
        super().__init__()
        self._cfg = cfg
        self._validators = validators or {}

    def expand(self, pbegin):
        feeds = (
            pbegin
            | "Feeds" >> beam.Create(list(enumerate(self._cfg.feeds)))
            # One feed per worker slot: feed fetches are slow and independent.
            | "SpreadFeeds" >> beam.Reshuffle()
        )
        entries, feed_rejects, feed_state = run_guarded(
            feeds, "ReadFeed", STAGE, _ReadFeedFn(self._cfg, self._validators), tags=(REJECTS, STATE)
        )
        fetched = entries | "Fetch" >> FetchEntries(self._cfg, self._validators)
        rejects = (feed_rejects, fetched["rejects"]) | "AllRejects" >> beam.Flatten()
        state = (feed_state, fetched["state"]) | "AllState" >> beam.Flatten()
        return {"raw": fetched["raw"], "rejects": rejects, "state": state, "page_state": fetched["state"]}
