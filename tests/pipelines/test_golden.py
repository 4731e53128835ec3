"""Golden output: the rows and IDs of the seeds and the repo's test corpora stay what they were.

Regenerate (only when a change of output is intended, and say so in the commit):
    GOLDEN_REGENERATE=1 .venv/bin/python -m pytest -q tests/pipelines/test_golden.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import shutil
import tempfile

import pytest
from conftest import ROOT, read_dataset, run_ingest

GOLDEN = ROOT / "tests" / "data" / "golden" / "output.json"
DAY = "2026-11-23"
# Columns that differ by design between runs or were added after the golden file was made.
VOLATILE = {"ingested_at", "flags", "updated_at"}
# (folder under the input root, files): folder names are the sources of plain files.
CORPORA = [
    ("seeds", sorted((ROOT / "seeds").glob("*.txt"))),
    ("clean", sorted((ROOT / "tests" / "data" / "clean").glob("*.txt"))),
    ("clean/blind", sorted((ROOT / "tests" / "data" / "clean" / "blind").glob("*.txt"))),
    ("neardup", [ROOT / "tests" / "data" / "neardup" / "docs.jsonl"]),
]
# Exact copies with the same date and length are told apart by a hash of their path, so the corpora are read
# from one fixed place: the golden file must not depend on where the repository is checked out.
INPUT_ROOT = pathlib.Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()) / "news-ingest-golden-input"


def _plain(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, float):
        return round(value, 6)
    return value


def _rows(out: pathlib.Path, name: str, key: tuple[str, ...]) -> list[dict]:
    rows = []
    for row in read_dataset(out, name).to_pylist():
        row = {k: _plain(v) for k, v in row.items() if k not in VOLATILE}
        # Paths are the repo's, wherever it is checked out.
        for field in ("input_ref",):
            if isinstance(row.get(field), str):
                row[field] = row[field].replace(str(INPUT_ROOT), "IN")
        rows.append(row)
    return sorted(rows, key=lambda r: tuple(str(r.get(k)) for k in key))


def _output(tmp_path: pathlib.Path) -> dict:
    out = tmp_path / "out"
    shutil.rmtree(INPUT_ROOT, ignore_errors=True)
    args = []
    for folder, files in CORPORA:
        (INPUT_ROOT / folder).mkdir(parents=True)
        for f in files:
            shutil.copyfile(f, INPUT_ROOT / folder / f.name)
        args += ["--input", str(INPUT_ROOT / folder / "*.*")]
    assert run_ingest(*args, "--output", str(out), "--run-date", DAY) == 0
    return {
        "articles": _rows(out, "articles", ("article_id",)),
        "duplicates": _rows(out, "duplicates", ("article_id", "input_ref")),
        "entities": _rows(out, "entities", ("article_id", "entity", "label")),
        "rejects": _rows(out, "rejects", ("input_ref", "reason")),
    }


@pytest.mark.timeout(600)
def test_output_matches_the_golden_file(tmp_path):
    got = _output(tmp_path)
    if os.environ.get("GOLDEN_REGENERATE"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for name in ("articles", "duplicates", "entities", "rejects"):
        assert len(got[name]) == len(want[name]), name
        ids = [r.get("article_id") or r.get("input_ref") for r in got[name]]
        assert ids == [r.get("article_id") or r.get("input_ref") for r in want[name]], name
        for g, w in zip(got[name], want[name], strict=True):
            assert g == w, (name, g.get("article_id") or g.get("input_ref"))
