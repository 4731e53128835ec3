"""Rows, tables and file names of the output datasets: what both ways of publishing share."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from schemas import datasets as ds
from schemas.elements import stable_hash

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
UTC = dt.timezone.utc


def rows_for(dataset: str, element, run_date: dt.date, ingested_at: dt.datetime) -> list:
    """(partition date, row) pairs of one element for one dataset (articles also feed the entities dataset)."""
    if dataset == "articles":
        return [ds.article_row(element, run_date, ingested_at)]
    if dataset == "entities":
        return list(ds.entity_rows(element, run_date))
    if dataset == "duplicates":
        return [ds.duplicate_row(element, run_date, ingested_at)]
    if dataset == "rejects":
        return [ds.reject_row(element, run_date)]
    if dataset == "signatures":
        return [ds.signature_row(element, run_date)]
    if dataset == "fetch_state":
        return [ds.fetch_state_row(element, run_date)]
    if dataset == "stories":
        return [ds.story_row(element, run_date)]
    raise ValueError(f"unknown dataset {dataset!r}")


def shard_of(dataset: str, row: dict, shards: int) -> int:
    """The file a row goes to within its partition: a stable hash of its first sort column."""
    return int(stable_hash(str(row.get(ds.DATASETS[dataset].sort_key[0])), 8), 16) % shards


def partition_dir(dataset: str, partition: dt.date) -> str:
    """`dataset/key=YYYY-MM-DD`, validated so that no input value can point outside the output folder."""
    spec = ds.DATASETS[dataset]
    value = partition.isoformat()
    if not _DATE.match(value):
        raise ValueError(f"invalid partition value {value!r}")
    return f"{spec.name}/{spec.partition_key}={value}"


def file_name(run_date: dt.date, shard: int) -> str:
    """Files are named by run, so a rerun can find and replace exactly its own."""
    return f"part-{run_date.isoformat()}-{shard:05d}.parquet"


def window_tag(start: dt.datetime) -> str:
    """'2026-11-23T1400Z': sortable, filesystem-safe, and never equal to a batch run's 'YYYY-MM-DD' tag."""
    return start.astimezone(UTC).strftime("%Y-%m-%dT%H%MZ")


def window_file_name(start: dt.datetime, shard: int, pane: int = 0) -> str:
    """part-<window start>-<shard>.parquet; a later pane of the same window (late data) gets its own file."""
    suffix = f"-p{pane}" if pane else ""
    return f"part-{window_tag(start)}-{shard:05d}{suffix}.parquet"


def to_table(dataset: str, rows: list[dict]) -> pa.Table:
    """Rows -> a table of the dataset's schema, sorted so that output bytes are reproducible."""
    spec = ds.DATASETS[dataset]
    rows = sorted(rows, key=lambda r: tuple(str(r.get(k) or "") for k in spec.sort_key))
    return pa.Table.from_pylist(rows, schema=spec.schema)


def write_table(path: str, table: pa.Table) -> None:
    """Write one Parquet file through Beam's FileSystems, so gs:// and s3:// work too."""
    with FileSystems.create(path) as f:
        pq.write_table(table, f, compression="zstd")


def ensure_dir(path: str) -> None:
    """Create a local folder for renames into it; object stores have no folders and need nothing."""
    if not FileSystems.exists(path):
        try:
            FileSystems.mkdirs(path)
        except OSError:
            pass  # created concurrently, or not a concept on this filesystem


def publish_table(path: str, table: pa.Table) -> None:
    """Write under a hidden temporary name in the target folder, then rename: readers never see half a file."""
    parent, name = path.rsplit("/", 1)
    ensure_dir(parent)
    tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp"
    write_table(tmp, table)
    FileSystems.rename([tmp], [path])
