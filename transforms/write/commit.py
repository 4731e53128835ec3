"""Publishing a batch run: staging, the one commit step, manifests, and the refusal of empty runs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable

from apache_beam.io.filesystems import FileSystems

from schemas import datasets as ds
from transforms.write.rows import ensure_dir, window_tag

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
        ensure_dir(parent)
    # Every dataset, not only those this run produced: a rerun without feeds must not leave the date's old
    # fetch state behind, which would tell the next day that pages no longer in the output are unchanged.
    previous = committed_files(cfg, KNOWN_DATASETS)
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
    ensure_dir(path.rsplit("/", 1)[0])
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


def window_manifest_path(output: str, start: dt.datetime, pane: int = 0) -> str:
    """Per-window manifest of a streaming run: files written and counts of that window (and pane)."""
    suffix = f"-p{pane}" if pane else ""
    return FileSystems.join(output, MANIFESTS, f"window={window_tag(start)}{suffix}.json")
