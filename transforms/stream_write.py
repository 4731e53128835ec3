"""Windowed writer for streaming: one set of Parquet files per window in the batch Hive layout, plus a manifest."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from schemas import datasets as ds
from schemas.elements import stable_hash
from transforms.common import count
from transforms.write import MANIFESTS, partition_dir, to_table, write_json, write_table

UTC = dt.timezone.utc


@dataclasses.dataclass(frozen=True)
class StreamWriteConfig:
    """Where windowed output goes and how many files per (dataset, partition, window)."""

    output: str
    shards: int = 1


def window_start(window) -> dt.datetime:
    """A Beam window's start as an aware UTC datetime."""
    return window.start.to_utc_datetime(has_tz=True)


def window_tag(start: dt.datetime) -> str:
    """'2026-11-23T1400Z': sortable, filesystem-safe, and never equal to a batch run's 'YYYY-MM-DD' tag."""
    return start.astimezone(UTC).strftime("%Y-%m-%dT%H%MZ")


def window_file_name(start: dt.datetime, shard: int, pane: int = 0) -> str:
    """part-<window start>-<shard>.parquet; a later pane of the same window (late data) gets its own file."""
    suffix = f"-p{pane}" if pane else ""
    return f"part-{window_tag(start)}-{shard:05d}{suffix}.parquet"


def window_manifest_path(output: str, start: dt.datetime) -> str:
    """Per-window manifest: files written and counts of that window."""
    return FileSystems.join(output, MANIFESTS, f"window={window_tag(start)}.json")


def rows_for(dataset: str, element, run_date: dt.date, ingested_at: dt.datetime):
    """(partition date, row) pairs of one element for one dataset."""
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
    raise ValueError(f"unknown dataset {dataset!r}")


def _ensure_dir(path: str) -> None:
    # Local renames need the folder; object stores have no folders.
    if not FileSystems.exists(path):
        try:
            FileSystems.mkdirs(path)
        except OSError:
            pass  # created concurrently


def publish_table(path: str, table) -> None:
    """Write under a hidden temporary name in the target folder, then rename: readers never see half a file."""
    parent, name = path.rsplit("/", 1)
    _ensure_dir(parent)
    tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp"
    write_table(tmp, table)
    FileSystems.rename([tmp], [path])


class _KeyRowsFn(beam.DoFn):
    def __init__(self, dataset: str, shards: int):
        self._dataset, self._shards = dataset, shards

    def process(self, element, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        run_date = window_start(window).date()
        ingested_at = timestamp.to_utc_datetime(has_tz=True)
        sort_key = ds.DATASETS[self._dataset].sort_key[0]
        for partition, row in rows_for(self._dataset, element, run_date, ingested_at):
            shard = int(stable_hash(str(row.get(sort_key)), 8), 16) % self._shards
            yield (self._dataset, partition.isoformat(), shard), row


class _WriteFileFn(beam.DoFn):
    def __init__(self, output: str):
        self._output = output

    def process(self, keyed, window=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        (dataset, partition, shard), rows = keyed
        table = to_table(dataset, list(rows))
        start = window_start(window)
        rel = f"{partition_dir(dataset, dt.date.fromisoformat(partition))}/{window_file_name(start, shard, pane.index)}"
        publish_table(FileSystems.join(self._output, rel), table)
        count(f"rows_written.{dataset}", table.num_rows)
        yield {"kind": "file", "dataset": dataset, "rel": rel, "rows": table.num_rows}


class _WriteManifestFn(beam.DoFn):
    def __init__(self, output: str):
        self._output = output

    def process(self, keyed, window=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        _, entries = keyed
        entries = list(entries)
        start = window_start(window)
        files = sorted((e for e in entries if e["kind"] == "file"), key=lambda e: e["rel"])
        manifest = {
            "window_start": start.isoformat(),
            "window_end": window.end.to_utc_datetime(has_tz=True).isoformat(),
            "pane": pane.index,
            "datasets": {},
            "counts": {e["name"]: e["value"] for e in entries if e["kind"] == "count"},
        }
        for e in files:
            manifest["datasets"].setdefault(e["dataset"], []).append({"path": e["rel"], "rows": e["rows"]})
        path = window_manifest_path(self._output, start)
        if pane.index:
            path = path[: -len(".json")] + f"-p{pane.index}.json"
        write_json(path, manifest)
        yield manifest


class WriteWindowed(beam.PTransform):
    """{dataset: windowed PCollection} (+ windowed counts) -> Parquet files per window, and one manifest per window.

    Articles also feed the entities dataset. Output: the manifests (one per window that had any data).
    """

    def __init__(self, cfg: StreamWriteConfig, counts: dict | None = None):
        super().__init__()
        self._cfg = cfg
        self._counts = counts or {}

    def expand(self, pcolls: dict):
        inputs = dict(pcolls)
        if "articles" in inputs:
            inputs["entities"] = inputs["articles"]
        staged = []
        for name in sorted(inputs):
            staged.append(
                inputs[name]
                | f"Key{name.title()}" >> beam.ParDo(_KeyRowsFn(name, self._cfg.shards))
                | f"Group{name.title()}" >> beam.GroupByKey()
                | f"Write{name.title()}" >> beam.ParDo(_WriteFileFn(self._cfg.output))
            )
        for name, pcoll in sorted(self._counts.items()):
            staged.append(
                pcoll | f"Count{name.title()}" >> beam.Map(lambda v, n=name: {"kind": "count", "name": n, "value": v})
            )
        return (
            staged
            | "AllWritten" >> beam.Flatten()
            | "OneManifest" >> beam.Map(lambda e: ("manifest", e))
            | "PerWindow" >> beam.GroupByKey()
            | "WriteManifest" >> beam.ParDo(_WriteManifestFn(self._cfg.output))
        )
