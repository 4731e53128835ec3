"""Tests for the write stage: partition paths, sorting, staging, commit and run replacement."""

import datetime as dt
import pathlib

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from conftest import read_dataset

from schemas.elements import Article, Reject
from transforms.write import WriteConfig, WriteDatasets, partition_dir, read_manifest, to_table

RUN = dt.date(2026, 11, 23)
AT = dt.datetime(2026, 11, 23, 6, tzinfo=dt.timezone.utc)
RUNNER = "pipelines.runners.OfflineDirectRunner"


def _art(ref, text, day=None):
    published = dt.datetime(2025, 3, day, tzinfo=dt.timezone.utc) if day else None
    return Article(
        input_ref=ref, source="s", text=text, published_at=published, date_source="published" if day else "run"
    )


def _write(out, articles, rejects=(), run_date=RUN):
    cfg = WriteConfig(output=str(out), run_date=run_date, ingested_at=AT)
    with TestPipeline(runner=RUNNER) as p:
        a = p | "A" >> beam.Create(list(articles))
        r = p | "R" >> beam.Create(list(rejects))
        n = p | "N" >> beam.Create([len(articles) + len(rejects)])
        _ = {"articles": a, "rejects": r} | WriteDatasets(cfg, counts={"records_read": n})
    return read_manifest(str(out), run_date)


def _files(out: pathlib.Path):
    return sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet"))


def test_partition_dir_is_validated():
    assert partition_dir("articles", dt.date(2025, 3, 22)) == "articles/published_date=2025-03-22"
    assert partition_dir("rejects", RUN) == "rejects/run_date=2026-11-23"
    with pytest.raises(KeyError):
        partition_dir("../etc", RUN)


def test_to_table_sorts_rows_for_reproducible_files():
    rows = [{"input_ref": b, "stage": "read", "reason": "empty", "detail": "d", "excerpt": None} for b in "cab"]
    assert to_table("rejects", rows).column("input_ref").to_pylist() == ["a", "b", "c"]


def test_writes_hive_partitions_and_manifest(tmp_path):
    manifest = _write(
        tmp_path,
        [_art("a", "one", 22), _art("b", "two", 26), _art("c", "three")],
        [Reject.of("x", "read", "empty", "file is empty")],
    )
    assert _files(tmp_path) == [
        "articles/published_date=2025-03-22/part-2026-11-23-00000.parquet",
        "articles/published_date=2025-03-26/part-2026-11-23-00000.parquet",
        "articles/published_date=2026-11-23/part-2026-11-23-00000.parquet",
        "rejects/run_date=2026-11-23/part-2026-11-23-00000.parquet",
    ]
    assert manifest["counts"] == {"records_read": 4}
    assert sum(f["rows"] for f in manifest["datasets"]["articles"]) == 3
    assert manifest["datasets"]["entities"] == []
    table = read_dataset(tmp_path, "articles")
    got = sorted(zip(table["input_ref"].to_pylist(), map(str, table["published_date"].to_pylist()), strict=True))
    assert got == [("a", "2025-03-22"), ("b", "2025-03-26"), ("c", "2026-11-23")]
    assert not (tmp_path / "_staging" / "run_date=2026-11-23").exists()
    assert not list(tmp_path.rglob("*.temp*")) and not list(tmp_path.rglob(".temp*"))


def test_rerun_replaces_its_own_files_and_keeps_other_runs(tmp_path):
    _write(tmp_path, [_art("a", "one", 22), _art("b", "two", 26)], run_date=dt.date(2026, 11, 22))
    _write(tmp_path, [_art("a", "one", 22), _art("b", "two", 26)])
    # Same run date again, but the article moved partition and one is gone: no stale file may survive.
    _write(tmp_path, [_art("a", "one", 24)])
    table = read_dataset(tmp_path, "articles")
    got = sorted(zip(table["input_ref"].to_pylist(), table["run_date"].to_pylist(), strict=True))
    assert got == [("a", dt.date(2026, 11, 22)), ("a", RUN), ("b", dt.date(2026, 11, 22))]
    assert "rejects" not in {p.parts[0] for p in map(pathlib.Path, _files(tmp_path))}


def test_empty_run_still_commits(tmp_path):
    manifest = _write(tmp_path, [])
    assert manifest["counts"] == {"records_read": 0}
    assert _files(tmp_path) == []


def test_a_rerun_replaces_the_dates_files_in_every_dataset_even_those_it_does_not_produce(tmp_path):
    # A feed run left fetch state for the date; a rerun from files alone must not leave it behind, or the next day
    # would be told that pages no longer in this date's output are unchanged.
    stale = tmp_path / "fetch_state" / f"run_date={RUN.isoformat()}" / f"part-{RUN.isoformat()}-00000.parquet"
    other_day = tmp_path / "fetch_state" / "run_date=2026-11-22" / "part-2026-11-22-00000.parquet"
    for path in (stale, other_day):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"PAR1")
    _write(tmp_path, [_art("/in/a.txt", "Body.")])
    assert not stale.exists()
    assert other_day.exists()
