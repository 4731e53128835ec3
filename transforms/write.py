"""Write stage: Hive-partitioned Parquet datasets, staged per run and committed atomically at the end."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from schemas import datasets as ds
from schemas.elements import stable_hash
from transforms.common import count

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MANIFESTS = "_manifests"
KNOWN_DATASETS = tuple(ds.DATASETS)
STAGING = "_staging"


@dataclasses.dataclass(frozen=True)
class WriteConfig:
    """Where and as which run the datasets are written."""

    output: str
    run_date: dt.date
    ingested_at: dt.datetime
    shards: int = 1  # files per (dataset, partition); raise it for very large days
    allow_empty: bool = False  # a run that read no records may replace a date that has data

    @property
    def run_tag(self) -> str:
        return self.run_date.isoformat()


def staging_dir(output: str, run_date: dt.date) -> str:
    """The run's private staging folder; readers never look under names starting with '_'."""
    return FileSystems.join(output, STAGING, f"run_date={run_date.isoformat()}")


def manifest_path(output: str, run_date: dt.date) -> str:
    """The committed run's manifest: files written and counts, read by the summary and the report."""
    return FileSystems.join(output, MANIFESTS, f"run_date={run_date.isoformat()}.json")


def refusal_path(output: str, run_date: dt.date) -> str:
    """Left by a commit that refused to replace a date's data with an empty run; read by the run summary."""
    return FileSystems.join(output, MANIFESTS, f"run_date={run_date.isoformat()}.refused.json")


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


def to_table(dataset: str, rows: list[dict]) -> pa.Table:
    """Rows -> a table of the dataset's schema, sorted so that output bytes are reproducible."""
    spec = ds.DATASETS[dataset]
    rows = sorted(rows, key=lambda r: tuple(str(r.get(k) or "") for k in spec.sort_key))
    return pa.Table.from_pylist(rows, schema=spec.schema)


def write_table(path: str, table: pa.Table) -> None:
    """Write one Parquet file through Beam's FileSystems, so gs:// and s3:// work too."""
    with FileSystems.create(path) as f:
        pq.write_table(table, f, compression="zstd")


def _rows(name: str, cfg: WriteConfig):
    run_date, at = cfg.run_date, cfg.ingested_at
    if name == "articles":
        return lambda a: [ds.article_row(a, run_date, at)]
    if name == "entities":
        return lambda a: list(ds.entity_rows(a, run_date))
    if name == "duplicates":
        return lambda d: [ds.duplicate_row(d, run_date, at)]
    if name == "rejects":
        return lambda r: [ds.reject_row(r, run_date)]
    if name == "signatures":
        return lambda s: [ds.signature_row(s, run_date)]
    raise ValueError(f"unknown dataset {name!r}")


class _KeyRowsFn(beam.DoFn):
    def __init__(self, dataset: str, cfg: WriteConfig):
        self._dataset, self._cfg = dataset, cfg

    def setup(self):
        self._to_rows = _rows(self._dataset, self._cfg)
        self._sort_key = ds.DATASETS[self._dataset].sort_key

    def process(self, element):
        for partition, row in self._to_rows(element):
            shard = int(stable_hash(str(row.get(self._sort_key[0])), 8), 16) % self._cfg.shards
            yield (self._dataset, partition.isoformat(), shard), row


class _WriteShardFn(beam.DoFn):
    def __init__(self, cfg: WriteConfig):
        self._cfg = cfg

    def process(self, keyed):
        (dataset, partition, shard), rows = keyed
        table = to_table(dataset, list(rows))
        rel = f"{partition_dir(dataset, dt.date.fromisoformat(partition))}/{file_name(self._cfg.run_date, shard)}"
        write_table(FileSystems.join(staging_dir(self._cfg.output, self._cfg.run_date), rel), table)
        count(f"rows_written.{dataset}", table.num_rows)
        yield {"kind": "file", "dataset": dataset, "rel": rel, "rows": table.num_rows}


def _ensure_dir(path: str) -> None:
    # Local renames need the folder; object stores have no folders and ignore this.
    if not FileSystems.exists(path):
        try:
            FileSystems.mkdirs(path)
        except OSError:
            pass  # created concurrently, or not a concept on this filesystem


def delete_tree(path: str) -> None:
    """Delete a folder and all below it; on gs:// and s3:// a folder is only a key prefix, so match its files."""
    files = _match(FileSystems.join(path, "**"))
    if files:
        FileSystems.delete(files)
    if FileSystems.exists(path):  # local: the emptied folders
        FileSystems.delete([path])


def _match(pattern: str) -> list[str]:
    try:
        return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except Exception:  # noqa: BLE001 - Beam raises a bare error for a pattern with no folder yet
        return []


def commit(cfg: WriteConfig, datasets: Iterable[str], entries: Iterable[dict]) -> dict:
    """Publish the staged files of this run, drop files this run wrote before, and write the manifest.

    New files are renamed over old ones first and stale ones deleted after, so a reader sees either the
    old run or the new one for each file, and a crash here is completed by the rerun.
    """
    files = [e for e in entries if e["kind"] == "file"]
    counts = {e["name"]: e["value"] for e in entries if e["kind"] == "count"}
    stage = staging_dir(cfg.output, cfg.run_date)
    srcs = [FileSystems.join(stage, e["rel"]) for e in files]
    dsts = [FileSystems.join(cfg.output, e["rel"]) for e in files]
    for parent in sorted({d.rsplit("/", 1)[0] for d in dsts}):
        _ensure_dir(parent)
    previous = committed_files(cfg, datasets)
    if not files and previous and counts.get("records_read", 0) == 0 and not cfg.allow_empty:
        # A glob that matched nothing, an unmounted folder, a feed that answered empty: never a reason to wipe a day.
        refusal = {"run_date": cfg.run_tag, "kept_files": len(previous), "counts": counts}
        write_json(refusal_path(cfg.output, cfg.run_date), refusal)
        delete_tree(stage)
        return {"refused": refusal}
    if srcs:
        FileSystems.rename(srcs, dsts)
    keep = set(dsts)
    stale = [p for p in previous if p not in keep]
    if stale:
        FileSystems.delete(stale)
    manifest = {
        "run_date": cfg.run_tag,
        "ingested_at": cfg.ingested_at.isoformat(),
        "datasets": {
            name: sorted(
                ({"path": e["rel"], "rows": e["rows"]} for e in files if e["dataset"] == name),
                key=lambda x: x["path"],
            )
            for name in sorted(datasets)
        },
        "counts": counts,
    }
    write_json(manifest_path(cfg.output, cfg.run_date), manifest)
    delete_tree(stage)
    return manifest


def committed_files(cfg: WriteConfig, datasets: Iterable[str]) -> list[str]:
    """The files an earlier run of this run date published in these datasets."""
    found = []
    for name in sorted(datasets):
        found += _match(FileSystems.join(cfg.output, name, "*", f"part-{cfg.run_tag}-*.parquet"))
    return found


def write_json(path: str, value: dict) -> None:
    """Write JSON via a temporary name and a rename, so readers never see half a file."""
    tmp = path + ".tmp"
    _ensure_dir(path.rsplit("/", 1)[0])
    with FileSystems.create(tmp) as f:
        f.write(json.dumps(value, indent=2, sort_keys=True, default=str).encode("utf-8"))
    FileSystems.rename([tmp], [path])


def read_refusal(output: str, run_date: dt.date) -> dict | None:
    """What a commit that refused an empty run left for the summary, or None."""
    path = refusal_path(output, run_date)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def clear_refusal(output: str, run_date: dt.date) -> None:
    """Forget a refusal once reported (and before a new run of the date)."""
    path = refusal_path(output, run_date)
    if FileSystems.exists(path):
        FileSystems.delete([path])


def read_manifest(output: str, run_date: dt.date) -> dict | None:
    """The manifest of a committed run, or None."""
    path = manifest_path(output, run_date)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


class _CommitFn(beam.DoFn):
    def __init__(self, cfg: WriteConfig, datasets: tuple[str, ...]):
        self._cfg, self._datasets = cfg, datasets

    def process(self, keyed):
        _, entries = keyed
        yield commit(self._cfg, self._datasets, [e for e in entries if e["kind"] != "start"])


class WriteDatasets(beam.PTransform):
    """{dataset name: PCollection} plus named counts -> committed Parquet datasets and a run manifest.

    Articles also feed the entities dataset. The output is one element, the manifest, after commit.
    """

    def __init__(self, cfg: WriteConfig, counts: dict | None = None):
        super().__init__()
        self._cfg = cfg
        self._counts = counts or {}

    def expand(self, pcolls: dict):
        inputs = dict(pcolls)
        if "articles" in inputs:
            inputs["entities"] = inputs["articles"]
        names = tuple(sorted(inputs))
        staged = []
        for name in names:
            staged.append(
                inputs[name]
                | f"Key{name.title()}" >> beam.ParDo(_KeyRowsFn(name, self._cfg))
                | f"Group{name.title()}" >> beam.GroupByKey()
                | f"Write{name.title()}" >> beam.ParDo(_WriteShardFn(self._cfg))
            )
        for name, pcoll in sorted(self._counts.items()):
            staged.append(
                pcoll | f"Count{name.title()}" >> beam.Map(lambda v, n=name: {"kind": "count", "name": n, "value": v})
            )
        # A start marker guarantees the commit runs (and clears stale files) even when nothing was written.
        staged.append(pcolls[next(iter(pcolls))].pipeline | "Start" >> beam.Create([{"kind": "start"}]))
        return (
            staged
            | "AllStaged" >> beam.Flatten()
            | "OneCommit" >> beam.Map(lambda e: ("commit", e))
            | "WaitForAll" >> beam.GroupByKey()
            | "Commit" >> beam.ParDo(_CommitFn(self._cfg, names))
        )
