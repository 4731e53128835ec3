"""Keeps element types and the Parquet schemas consistent: every row a converter builds fits its schema."""

import dataclasses
import datetime as dt

import pyarrow as pa
import pytest

from schemas import datasets as ds
from schemas.elements import (
    Article,
    Duplicate,
    EntityMention,
    FetchState,
    Reject,
    Removed,
    Signature,
    Story,
    stable_hash,
)

RUN = dt.date(2026, 11, 23)
AT = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.timezone.utc)
PUB = dt.datetime(2025, 3, 22, 1, 33, tzinfo=dt.timezone.utc)

ARTICLE = Article(
    input_ref="/x/a.txt",
    source="seeds",
    text="NATO chief Mark Rutte spoke. Rutte said more.",
    url="https://e.com/a",
    title="T",
    published_at=PUB,
    date_source="dateline",
    agency="AA",
    tags=("NATO",),
    sources=("El País",),
    removed=(Removed("engagement.also_read", "Also read"),),
    cluster_id="c1",
    duplicate_count=2,
    entities=(
        EntityMention("Mark Rutte", "PERSON", 11, 21, "Mark Rutte"),
        EntityMention("Rutte", "PERSON", 29, 34, "Mark Rutte", model_label="PER"),
        EntityMention("NATO", "ORG", 0, 4, "NATO", entity_id="wikidata:Q7184"),
    ),
    language="en",
    story_id="s1",
)
STORY = Story(
    story_id="s1",
    first_seen=PUB,
    last_seen=AT,
    canonical_id="a",
    canonical_title="T",
    article_count=2,
    duplicate_count=1,
    sources=("seeds", "wire"),
    top_entities=(("Mark Rutte", "PERSON", 2),),
    earlier_articles=3,
    started_here=False,
)
ROWS = {
    "articles": [ds.article_row(ARTICLE, RUN, AT)],
    "duplicates": [ds.duplicate_row(Duplicate("d", "a", 0.9, "near", "s", "/x/b.txt", published_at=PUB), RUN, AT)],
    "entities": list(ds.entity_rows(ARTICLE, RUN)),
    "rejects": [ds.reject_row(Reject.of("/x/c.txt", "read", "empty", "file is empty"), RUN)],
    "signatures": [
        ds.signature_row(Signature("a", "h", b"\x01\x00\xff\xff", PUB), RUN),
        ds.signature_row(Signature("b", "h", b"\x01\x00", PUB, "s1", b"\x01\x00\x00\x00", b"\x02" * 8, 12), RUN),
    ],
    "stories": [ds.story_row(STORY, RUN)],
    "fetch_state": [ds.fetch_state_row(FetchState("https://e.com/a", '"v1"', "Sat, 22 Mar 2025", AT, 304), RUN)],
}


@pytest.mark.parametrize("name", sorted(ds.DATASETS))
def test_rows_match_schema_exactly(name):
    spec = ds.DATASETS[name]
    rows = ROWS[name]
    assert rows, name
    for partition, row in rows:
        assert isinstance(partition, dt.date)
        assert list(row) == spec.schema.names, f"{name}: row keys differ from schema columns"
    table = pa.Table.from_pylist([r for _, r in rows], schema=spec.schema)
    assert table.num_rows == len(rows)


def test_partition_keys_are_not_stored_in_files():
    # DuckDB and pyarrow add the Hive key from the path; a same-named column in the file would clash.
    for spec in ds.DATASETS.values():
        assert spec.partition_key not in spec.schema.names


def test_article_fields_cover_article_columns():
    fields = {f.name for f in dataclasses.fields(Article)} | {"article_id", "content_hash", "word_count"}
    derived = {"ingested_at", "run_date"}
    assert set(ds.ARTICLES.names) - derived <= fields


def test_duplicate_and_signature_fields_are_columns():
    assert {f.name for f in dataclasses.fields(Duplicate)} <= set(ds.DUPLICATES.names)
    assert {f.name for f in dataclasses.fields(Signature)} <= set(ds.SIGNATURES.names)
    assert {f.name for f in dataclasses.fields(Reject)} == set(ds.REJECTS.names)
    assert [f.name for f in dataclasses.fields(FetchState)] == ds.FETCH_STATE.names


def test_entity_rows_aggregate_mentions_per_canonical():
    rows = [r for _, r in ds.entity_rows(ARTICLE, RUN)]
    assert [(r["entity"], r["label"], r["mentions"], r["first_offset"]) for r in rows] == [
        ("NATO", "ORG", 1, 0),
        ("Mark Rutte", "PERSON", 2, 11),
    ]


def test_partition_is_published_date_else_run_date():
    assert ds.article_row(ARTICLE, RUN, AT)[0] == dt.date(2025, 3, 22)
    assert ds.article_row(dataclasses.replace(ARTICLE, published_at=None), RUN, AT)[0] == RUN


def test_ids_are_deterministic_and_url_first():
    assert ARTICLE.article_id == stable_hash("url:https://e.com/a")
    no_url = dataclasses.replace(ARTICLE, url=None)
    assert (
        no_url.article_id
        == dataclasses.replace(no_url, text="  nato CHIEF  mark rutte spoke. rutte said more.").article_id
    )
    assert ARTICLE.content_hash == no_url.content_hash


def test_articles_have_updated_at_right_after_published_at():
    names = ds.ARTICLES.names
    assert names[names.index("published_at") + 1] == "updated_at"
    assert ds.ARTICLES.field("updated_at").type == pa.timestamp("us", tz="UTC")
    updated = dt.datetime(2025, 3, 23, 8, 0, tzinfo=dt.timezone.utc)
    row = ds.article_row(dataclasses.replace(ARTICLE, updated_at=updated), RUN, AT)[1]
    assert row["updated_at"] == updated and ds.article_row(ARTICLE, RUN, AT)[1]["updated_at"] is None
