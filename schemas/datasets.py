"""One pyarrow schema per output dataset, and the functions that turn elements into its rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from schemas.elements import Article, Duplicate, FetchState, Reject, Signature, Story

_TS = pa.timestamp("us", tz="UTC")

REMOVED_TYPE = pa.list_(pa.struct([("rule_id", pa.string()), ("text", pa.string())]))
ENTITY_TYPE = pa.list_(
    pa.struct(
        [
            ("text", pa.string()),
            ("label", pa.string()),
            ("start", pa.int32()),
            ("end", pa.int32()),
            ("canonical", pa.string()),
            ("model_label", pa.string()),
            ("entity_id", pa.string()),
        ]
    )
)

ARTICLES = pa.schema(
    [
        ("article_id", pa.string()),
        ("source", pa.string()),
        ("url", pa.string()),
        ("input_ref", pa.string()),
        ("title", pa.string()),
        ("author", pa.string()),
        ("published_at", _TS),
        ("updated_at", _TS),
        ("date_source", pa.string()),
        ("language", pa.string()),
        ("text", pa.string()),
        ("word_count", pa.int32()),
        ("content_hash", pa.string()),
        ("content_source", pa.string()),
        ("agency", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("sources", pa.list_(pa.string())),
        ("removed", REMOVED_TYPE),
        ("cluster_id", pa.string()),
        ("duplicate_count", pa.int32()),
        ("story_id", pa.string()),
        ("entities", ENTITY_TYPE),
        ("flags", pa.list_(pa.string())),
        ("ingested_at", _TS),
        ("run_date", pa.date32()),
    ]
)

DUPLICATES = pa.schema(
    [
        ("article_id", pa.string()),
        ("duplicate_of", pa.string()),
        ("similarity", pa.float64()),
        ("match", pa.string()),
        ("source", pa.string()),
        ("url", pa.string()),
        ("title", pa.string()),
        ("input_ref", pa.string()),
        ("published_at", _TS),
        ("story_id", pa.string()),
        ("ingested_at", _TS),
        ("run_date", pa.date32()),
    ]
)

ENTITIES = pa.schema(
    [
        ("article_id", pa.string()),
        ("source", pa.string()),
        ("entity", pa.string()),
        ("label", pa.string()),
        ("entity_id", pa.string()),
        ("mentions", pa.int32()),
        ("first_offset", pa.int32()),
        ("run_date", pa.date32()),
    ]
)

# run_date is the Hive partition of rejects and signatures, so it is not repeated inside the files.
REJECTS = pa.schema(
    [
        ("input_ref", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("excerpt", pa.string()),
    ]
)

SIGNATURES = pa.schema(
    [
        ("article_id", pa.string()),
        ("content_hash", pa.string()),
        ("minhash", pa.list_(pa.uint64())),
        ("published_at", _TS),
        # Added for story threads; files written before them lack these columns and are read as before.
        ("story_id", pa.string()),
        # Little-endian uint32s: shingle hashes, a dense start then a sample, in text order. Read as their low 16 bits
        # (minhash.profile_items), so files of every version compare alike.
        ("profile", pa.binary()),
        ("anchors", pa.binary()),  # little-endian uint64s: hashes of sampled word 8-grams
        ("lead_start", pa.int32()),  # where the lead starts, in words
        ("lead_length", pa.int32()),  # words in the lead's paragraph (0: unknown)
    ]
)

TOP_ENTITY_TYPE = pa.list_(pa.struct([("entity", pa.string()), ("label", pa.string()), ("articles", pa.int32())]))

# One row per story that has articles in the run (or streaming window): run_date is the partition.
STORIES = pa.schema(
    [
        ("story_id", pa.string()),
        ("first_seen", _TS),
        ("last_seen", _TS),
        ("canonical_id", pa.string()),
        ("canonical_title", pa.string()),
        ("article_count", pa.int32()),
        ("duplicate_count", pa.int32()),
        ("sources", pa.list_(pa.string())),
        ("top_entities", TOP_ENTITY_TYPE),
        ("earlier_articles", pa.int32()),
        ("started_here", pa.bool_()),
    ]
)

# One row per URL fetched by the run (feeds and pages): ETag/Last-Modified for conditional requests of later runs.
FETCH_STATE = pa.schema(
    [
        ("url", pa.string()),
        ("etag", pa.string()),
        ("last_modified", pa.string()),
        ("fetched_at", _TS),
        ("status", pa.int32()),
    ]
)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """An output dataset: its folder name, schema, Hive partition key and row sort key."""

    name: str
    schema: pa.Schema
    partition_key: str  # "published_date" | "run_date"
    sort_key: tuple[str, ...]


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("articles", ARTICLES, "published_date", ("article_id", "input_ref")),
        Dataset("duplicates", DUPLICATES, "published_date", ("article_id", "input_ref")),
        Dataset("entities", ENTITIES, "published_date", ("article_id", "entity", "label")),
        Dataset("rejects", REJECTS, "run_date", ("input_ref", "stage", "reason")),
        Dataset("signatures", SIGNATURES, "run_date", ("article_id",)),
        Dataset("fetch_state", FETCH_STATE, "run_date", ("url",)),
        Dataset("stories", STORIES, "run_date", ("story_id",)),
    )
}


def _date(value: dt.datetime | None, run_date: dt.date) -> dt.date:
    return value.astimezone(dt.timezone.utc).date() if value else run_date


def _flat(obj) -> dict[str, Any]:
    """A dataclass of plain values as a dict: dataclasses.asdict deep-copies every value, the cost of a whole
    stage's per-article work when an article carries dozens of mentions."""
    return {name: getattr(obj, name) for name in _field_names(type(obj))}


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def article_row(a: Article, run_date: dt.date, ingested_at: dt.datetime) -> tuple[dt.date, dict[str, Any]]:
    """(partition date, row) for the articles dataset."""
    article_id, content_hash = a.identity()
    row = {
        "article_id": article_id,
        "source": a.source,
        "url": a.url,
        "input_ref": a.input_ref,
        "title": a.title,
        "author": a.author,
        "published_at": a.published_at,
        "updated_at": a.updated_at,
        "date_source": a.date_source,
        "language": a.language,
        "text": a.text,
        "word_count": a.word_count,
        "content_hash": content_hash,
        "content_source": a.content_source,
        "agency": a.agency,
        "tags": list(a.tags),
        "sources": list(a.sources),
        "removed": [_flat(r) for r in a.removed],
        "cluster_id": a.cluster_id,
        "duplicate_count": a.duplicate_count,
        "story_id": a.story_id,
        "entities": [_flat(e) for e in a.entities],
        "flags": list(a.flags),
        "ingested_at": ingested_at,
        "run_date": run_date,
    }
    return _date(a.published_at, run_date), row


def duplicate_row(d: Duplicate, run_date: dt.date, ingested_at: dt.datetime) -> tuple[dt.date, dict[str, Any]]:
    """(partition date, row) for the duplicates dataset."""
    values = dict(dataclasses.asdict(d), ingested_at=ingested_at, run_date=run_date)
    return _date(d.published_at, run_date), {k: values[k] for k in DUPLICATES.names}


def entity_rows(a: Article, run_date: dt.date) -> Iterator[tuple[dt.date, dict[str, Any]]]:
    """One row per (article, canonical entity, label), in first-mention order."""
    agg: dict[tuple[str, str], list] = {}
    for m in a.entities:
        count_first_id = agg.setdefault((m.canonical, m.label), [0, m.start, None])
        count_first_id[0] += 1
        count_first_id[1] = min(count_first_id[1], m.start)
        count_first_id[2] = count_first_id[2] or m.entity_id
    part = _date(a.published_at, run_date)
    article_id = a.article_id  # hashes the whole text: once per article, not per entity
    for (entity, label), (mentions, first, entity_id) in sorted(agg.items(), key=lambda kv: (kv[1][1], kv[0])):
        yield (
            part,
            {
                "article_id": article_id,
                "source": a.source,
                "entity": entity,
                "label": label,
                "entity_id": entity_id,
                "mentions": mentions,
                "first_offset": first,
                "run_date": run_date,
            },
        )


def reject_row(r: Reject, run_date: dt.date) -> tuple[dt.date, dict[str, Any]]:
    """(partition date, row) for the rejects dataset."""
    return run_date, dataclasses.asdict(r)


def signature_row(s: Signature, run_date: dt.date) -> tuple[dt.date, dict[str, Any]]:
    """(partition date, row) for the signatures dataset."""
    row = _flat(s)
    row["minhash"] = np.frombuffer(s.minhash, "<u2").tolist()
    return run_date, row


def story_row(s: Story, run_date: dt.date) -> tuple[dt.date, dict[str, Any]]:
    """(partition date, row) for the stories dataset."""
    row = dataclasses.asdict(s)
    row["sources"] = list(s.sources)
    row["top_entities"] = [{"entity": e, "label": lab, "articles": n} for e, lab, n in s.top_entities]
    return run_date, row


def fetch_state_row(f: FetchState, run_date: dt.date) -> tuple[dt.date, dict[str, Any]]:
    """(partition date, row) for the fetch_state dataset."""
    return run_date, dataclasses.asdict(f)
