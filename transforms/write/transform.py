"""The write stage: one graph for every dataset, published per run (batch) or per window (streaming)."""

from __future__ import annotations

import datetime as dt

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.common import count
from transforms.write.commit import WriteConfig, commit, staging_dir, window_manifest_path, write_json
from transforms.write.rows import (
    file_name,
    partition_dir,
    publish_table,
    rows_for,
    shard_of,
    to_table,
    window_file_name,
    write_table,
)


def window_start(window) -> dt.datetime:
    """A Beam window's start as an aware UTC datetime."""
    return window.start.to_utc_datetime(has_tz=True)


class PublishPerRun:
    """Batch: files are staged under `_staging/` and published by one commit at the end of the run."""

    needs_start = True  # the commit must run (and clear this date's old files) even when nothing was written

    def __init__(self, cfg: WriteConfig):
        self.cfg = cfg
        self.shards = cfg.shards

    def stamp(self, window, timestamp) -> tuple[dt.date, dt.datetime]:
        del window, timestamp  # one run date and one ingestion time for the whole run
        return self.cfg.run_date, self.cfg.ingested_at

    def place(self, dataset: str, partition: dt.date, shard: int, window, pane) -> tuple[str, str]:
        rel = f"{partition_dir(dataset, partition)}/{file_name(self.cfg.run_date, shard)}"
        return rel, FileSystems.join(staging_dir(self.cfg.output, self.cfg.run_date), rel)

    def store(self, path: str, table) -> None:
        write_table(path, table)

    def finish(self, entries: list[dict], datasets: tuple[str, ...], window, pane) -> dict:
        return commit(self.cfg, datasets, entries)


class PublishPerWindow:
    """Streaming: each window's files are published as they are written, then the window's manifest."""

    needs_start = False

    def __init__(self, output: str, shards: int = 1):
        self.output = output
        self.shards = shards

    def stamp(self, window, timestamp) -> tuple[dt.date, dt.datetime]:
        return window_start(window).date(), timestamp.to_utc_datetime(has_tz=True)

    def place(self, dataset: str, partition: dt.date, shard: int, window, pane) -> tuple[str, str]:
        rel = f"{partition_dir(dataset, partition)}/{window_file_name(window_start(window), shard, pane.index)}"
        return rel, FileSystems.join(self.output, rel)

    def store(self, path: str, table) -> None:
        publish_table(path, table)

    def finish(self, entries: list[dict], datasets: tuple[str, ...], window, pane) -> dict:
        del datasets  # a window lists only what it wrote
        manifest = {
            "window_start": window_start(window).isoformat(),
            "window_end": window.end.to_utc_datetime(has_tz=True).isoformat(),
            "pane": pane.index,
            "datasets": {},
            "counts": {e["name"]: e["value"] for e in entries if e["kind"] == "count"},
        }
        for e in sorted((e for e in entries if e["kind"] == "file"), key=lambda e: e["rel"]):
            manifest["datasets"].setdefault(e["dataset"], []).append({"path": e["rel"], "rows": e["rows"]})
        write_json(window_manifest_path(self.output, window_start(window), pane.index), manifest)
        return manifest


class _KeyRowsFn(beam.DoFn):
    def __init__(self, dataset: str, publish):
        self._dataset, self._publish = dataset, publish

    def process(self, element, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        run_date, ingested_at = self._publish.stamp(window, timestamp)
        # An element's rows travel together per file (an article's entity rows share one), not one by one.
        by_file: dict[tuple, list] = {}
        for partition, row in rows_for(self._dataset, element, run_date, ingested_at):
            key = (self._dataset, partition.isoformat(), shard_of(self._dataset, row, self._publish.shards))
            by_file.setdefault(key, []).append(row)
        yield from by_file.items()


class _WriteFileFn(beam.DoFn):
    def __init__(self, publish):
        self._publish = publish

    def process(self, keyed, window=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        (dataset, partition, shard), groups = keyed
        table = to_table(dataset, [row for rows in groups for row in rows])
        rel, path = self._publish.place(dataset, dt.date.fromisoformat(partition), shard, window, pane)
        self._publish.store(path, table)
        count(f"rows_written.{dataset}", table.num_rows)
        yield {"kind": "file", "dataset": dataset, "rel": rel, "rows": table.num_rows}


class _FinishFn(beam.DoFn):
    def __init__(self, publish, datasets: tuple[str, ...]):
        self._publish, self._datasets = publish, datasets

    def process(self, keyed, window=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        entries = [e for e in keyed[1] if e["kind"] != "start"]
        yield self._publish.finish(entries, self._datasets, window, pane)


def _as_count(value, name: str) -> dict:
    return {"kind": "count", "name": name, "value": value}


def _one_key(entry: dict) -> tuple[str, dict]:
    return "finish", entry


class WriteDatasets(beam.PTransform):
    """{dataset name: PCollection} plus named counts -> Parquet datasets and their manifests.

    `publish` is PublishPerRun (a WriteConfig is taken as one) or PublishPerWindow. Articles also feed the
    entities dataset. The output is the manifests: one per run, or one per window that had any data.
    """

    def __init__(self, publish, counts: dict | None = None):
        super().__init__()
        self._publish = PublishPerRun(publish) if isinstance(publish, WriteConfig) else publish
        self._counts = counts or {}

    def expand(self, pcolls: dict):
        inputs = dict(pcolls)
        if "articles" in inputs:
            inputs["entities"] = inputs["articles"]
        names = tuple(sorted(inputs))
        written = [
            inputs[name]
            | f"Key{name.title()}" >> beam.ParDo(_KeyRowsFn(name, self._publish))
            | f"Group{name.title()}" >> beam.GroupByKey()
            | f"Write{name.title()}" >> beam.ParDo(_WriteFileFn(self._publish))
            for name in names
        ]
        counts = [
            pcoll | f"Count{name.title()}" >> beam.Map(_as_count, name) for name, pcoll in sorted(self._counts.items())
        ]
        starts = []
        if self._publish.needs_start:
            starts = [pcolls[next(iter(pcolls))].pipeline | "Start" >> beam.Create([{"kind": "start"}])]
        return (
            written + counts + starts
            | "AllWritten" >> beam.Flatten()
            | "OneKey" >> beam.Map(_one_key)
            | "WaitForAll" >> beam.GroupByKey()
            | "Finish" >> beam.ParDo(_FinishFn(self._publish, names))
        )
