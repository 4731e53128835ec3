"""Shared fixtures: the seeds, a one-call pipeline run, and dataset readers."""

from __future__ import annotations

import pathlib

import pyarrow as pa
import pyarrow.dataset as pads
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.fixture
def seeds_dir() -> pathlib.Path:
    return SEEDS


def run_ingest(*args: str) -> int:
    """Run the CLI in-process (offline runner by default) and return its exit code."""
    from pipelines.ingest import run

    return run([str(a) for a in args])


def read_dataset(output: pathlib.Path | str, name: str) -> pa.Table:
    """A dataset read back the way users read it: pyarrow.dataset with Hive partition discovery."""
    path = pathlib.Path(output) / name
    if not path.exists():
        return pa.table({})
    return pads.dataset(str(path), format="parquet", partitioning="hive").to_table()


def spans(text, *wanted):
    """Raw (start, end, label, id) spans for (surface, label) pairs, found left to right in `text`."""
    out, pos = [], 0
    for surface, label in wanted:
        start = text.index(surface, pos)
        out.append((start, start + len(surface), label, ""))
        pos = start + 1
    return out


def table(mentions):
    return [(m.text, m.label, m.canonical) for m in mentions]
