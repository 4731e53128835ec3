"""The feed source's Beam steps: FeedReaderFn, ReadFeeds, and FetchEntries with its host batches."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Iterator

import apache_beam as beam

from schemas.elements import RawArticle, Reject
from transforms.common import REJECTS, TaggedParDo, count, reject, run_guarded
from transforms.feeds.config import STAGE, FeedConfig
from transforms.feeds.parse import FeedEntry, read_feed
from transforms.fetch import STAGE as FETCH_STAGE
from transforms.fetch import Fetcher, FetchError, FetchLinksFn
from transforms.urls import canonical_url


class FeedReaderFn(beam.DoFn):
    """Base of the DoFns that read feeds: one HTTP client per DoFn instance, `read(item)` for (index, (location,
    name)) items. Subclasses decide what to emit."""

    def __init__(self, cfg: FeedConfig):
        self._cfg = cfg

    def setup(self):
        self._fetcher = Fetcher(self._cfg.fetch)

    def read(self, item) -> tuple[str, list[FeedEntry], list[Reject]]:
        index, (location, name) = item
        entries, rejects = read_feed(location, name, index, self._fetcher, self._cfg)
        return location, entries, rejects

    def teardown(self):
        if getattr(self, "_fetcher", None) is not None:
            self._fetcher.close()


class _ReadFeedFn(FeedReaderFn):
    def process(self, item):
        _, entries, rejects = self.read(item)
        for r in rejects:
            count(f"rejected.{r.stage}.{r.reason}")
            yield beam.pvalue.TaggedOutput(REJECTS, r)
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
    )


class FetchEntries(beam.PTransform):
    """FeedEntry -> {'raw': RawArticle, 'rejects': Reject}: one fetch per distinct URL, hosts fetched politely."""

    def __init__(self, cfg: FeedConfig):
        super().__init__()
        self._cfg = cfg

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
        fetched = by_host | "FetchPages" >> TaggedParDo(FetchLinksFn(self._cfg.fetch, to_raw), REJECTS, main="raw")
        return {"raw": fetched["raw"], "rejects": fetched[REJECTS]}


class ReadFeeds(beam.PTransform):
    """Configured feeds -> {'raw': RawArticle (origin 'feed'), 'rejects': Reject}.

    Every entry ends as one RawArticle or one reject; a URL listed by several feeds is fetched and emitted once
    (counted in `feeds.duplicate_links`), so the run's `records_read` counts distinct URLs.
    """

    def __init__(self, cfg: FeedConfig):
        super().__init__()
        self._cfg = cfg

    def expand(self, pbegin):
        feeds = (
            pbegin
            | "Feeds" >> beam.Create(list(enumerate(self._cfg.feeds)))
            # One feed per worker slot: feed fetches are slow and independent.
            | "SpreadFeeds" >> beam.Reshuffle()
        )
        entries, feed_rejects = run_guarded(feeds, "ReadFeed", STAGE, _ReadFeedFn(self._cfg))
        fetched = entries | "Fetch" >> FetchEntries(self._cfg)
        rejects = (feed_rejects, fetched["rejects"]) | "AllRejects" >> beam.Flatten()
        return {"raw": fetched["raw"], "rejects": rejects}
