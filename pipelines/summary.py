"""End-of-run summary: counts from the committed manifest, the nothing-lost check, and the exit code."""

from __future__ import annotations

import os
import sys
from collections import Counter

import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from transforms.write import read_manifest


def _rows_by(output: str, rel_paths: list[str], column: str) -> Counter:
    counts: Counter = Counter()
    for rel in rel_paths:
        with FileSystems.open(FileSystems.join(output, rel)) as f:
            counts.update(pq.read_table(f, columns=[column]).column(column).to_pylist())
    return counts


def check(manifest: dict, output: str) -> dict:
    """Totals per dataset and the invariant read == articles + duplicates + rejects."""
    rows = {name: sum(f["rows"] for f in files) for name, files in manifest["datasets"].items()}
    read = manifest["counts"].get("records_read", 0)
    accounted = rows.get("articles", 0) + rows.get("duplicates", 0) + rows.get("rejects", 0)
    reasons = _rows_by(output, [f["path"] for f in manifest["datasets"].get("rejects", [])], "reason")
    return {"read": read, "rows": rows, "accounted": accounted, "ok": read == accounted, "reject_reasons": reasons}


# Counters that mean "look at this" although the run succeeded, with the sentence the summary prints.
NOTEWORTHY = {
    "read.skipped_output_files": "{n} file(s) under --output matched an input glob and were not read",
    "read.skipped_unsupported_in_folder": "{n} file(s) of unsupported types in input folders were not read",
    "read.repaired_unicode": "{n} record(s) had invalid Unicode (lone surrogates), repaired to U+FFFD and flagged",
    "read.unbalanced_files": "{n} file(s) gave a different number of records than they hold (see below)",
    "entities.truncated": "{n} article(s) over --ner-max-chars got entities from their leading part only (flagged)",
    "dedup.history_unreadable": "{n} stored signature file(s) could not be read and were skipped",
    "fetch.robots_unavailable": "{n} host(s) had a robots.txt that could not be fetched: their links were not "
    "requested this run (robots_unavailable)",
    "fetch.unchanged": "{n} page(s) answered 304 Not Modified: not downloaded again and not emitted (unchanged)",
}


def noteworthy(metrics: dict) -> list[str]:
    """One line per noteworthy counter that is not zero."""
    return [text.format(n=metrics[name]) for name, text in NOTEWORTHY.items() if metrics.get(name)]


def file_lines(manifest: dict) -> list[str]:
    """Per-file counts of the files that produced rejects or did not balance, as the summary prints them."""
    files = manifest.get("counts", {}).get("files_with_rejects") or []
    lines = []
    for f in files:
        mark = "" if f["expected"] == f["records"] + f["rejects"] else "  UNBALANCED"
        lines.append(
            f"    {f['path']}: holds {f['expected']}, read {f['records']}, rejected {f['rejects']}"
            + (f" ({f['gzip_members']} gzip members)" if f.get("gzip_members", 0) > 1 else "")
            + mark
        )
    return lines


def summary_lines(cfg, manifest: dict, totals: dict, runner: str, wall_s: float, warnings: list[str]) -> list[str]:
    """The summary as it is printed."""
    lines = [f"news-ingest run {cfg.run_date.isoformat()} ({runner.rsplit('.', 1)[-1]}) in {wall_s:.1f}s"]
    lines += [f"  warning: {w}" for w in warnings]
    matched = manifest["counts"].get("files_matched")
    if matched is not None:
        lines.append(f"  files read        {matched:>8}")
    lines.append(f"  records read      {totals['read']:>8}")
    lines += [
        f"  {name:<17} {totals['rows'][name]:>8}"
        for name in ("articles", "duplicates", "rejects", "entities", "signatures")
        if name in totals["rows"]
    ]
    lines += [f"    rejected: {reason:<20} {n:>6}" for reason, n in sorted(totals["reject_reasons"].items())]
    listed = file_lines(manifest)
    if listed:
        lines += ["  files with rejects", *listed]
    lines.append(f"  output            {cfg.output}")
    lines += [f"    {FileSystems.join(cfg.output, name)}" for name in sorted(manifest["datasets"])]
    return lines


def finish(cfg, result, runner: str, wall_s: float, warnings: list[str]) -> int:
    """Print the summary; exit code 0 only when every record read is accounted for."""
    manifest = read_manifest(cfg.output, cfg.run_date)
    if manifest is None:
        print("news-ingest: error: the run finished but committed no manifest", file=sys.stderr)
        return 1
    totals = check(manifest, cfg.output)
    try:
        print("\n".join(summary_lines(cfg, manifest, totals, runner, wall_s, warnings)), flush=True)
    except BrokenPipeError:
        # `news-ingest ... | head`: the reader left, the run is committed; its exit code still says how it went.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if not totals["ok"]:
        print(
            f"news-ingest: error: {totals['read']} records read but {totals['accounted']} accounted for "
            "(articles + duplicates + rejects)",
            file=sys.stderr,
        )
        return 3
    return 0
