"""Per-source health of a committed run, and drift of each source against the previous committed runs."""

from __future__ import annotations

import datetime as dt
import posixpath
from collections import Counter, defaultdict

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.report.scan import _read
from transforms.urls import host_of
from transforms.write import read_manifest

# Rejects of these stages mean the source gave us a page we could not turn into text: the "turned empty" signal.
FAILURE_STAGES = ("extract", "fetch")
DRIFT_BASELINE_RUNS = 7  # a week of daily runs: long enough to smooth one odd day, short enough to stay cheap
# Below these volumes one or two odd records move a rate by a lot: 1 failure in 4 records is already +0.25.
DRIFT_MIN_RECORDS = 5
DRIFT_MIN_BASELINE_RECORDS = 10
# A quarter of a source's records newly failing (or losing their date) is a site change, not day-to-day noise,
# which stays within a few percent on sources of that size. Only rises are flagged: a falling rate is good news.
DRIFT_RATE_RISE = 0.25
# Article length varies by day and story, but not halving or doubling on average: that is a template change
# (a boilerplate block now kept, or the article body no longer found).
DRIFT_LENGTH_LOW = 0.5
DRIFT_LENGTH_HIGH = 2.0

_SUMS = ("articles", "duplicates", "rejected", "failures", "run_dated", "words", "worded", "removed")


def ref_sources(refs: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The source of each reject's input_ref: a URL's host, else the folder of its path (a `:line` suffix dropped).

    The same rule as transforms.read.source_for, which the rejects could not apply (they have no source column).
    Worked out once per distinct reference, not per row: a JSONL file's rejects share one path.
    """
    if not len(refs):
        return pa.array([], pa.string())
    refs = pc.fill_null(pa.chunked_array([refs]) if isinstance(refs, pa.Array) else refs, "").cast(pa.string())
    is_url = pc.match_substring(refs, "://")
    # Only a path has a `:line` suffix; a URL's `:8080` is its port, which host_of drops anyway.
    paths = pc.if_else(is_url, refs, pc.replace_substring_regex(refs, r":\d+$", ""))
    encoded = pc.dictionary_encode(paths).combine_chunks()
    names = []
    for ref in encoded.dictionary.to_pylist():
        if "://" in ref:
            names.append(host_of(ref) or "unknown")
        else:
            names.append(posixpath.basename(posixpath.dirname(ref.replace("\\", "/"))) or "unknown")
    return pc.take(pa.array(names, pa.string()), encoded.indices)


def _sources_of(table: pa.Table) -> pa.ChunkedArray:
    if "source" not in table.column_names:
        return pa.chunked_array([pa.array(["unknown"] * table.num_rows, pa.string())])
    return pc.fill_null(table.column("source").cast(pa.string()), "unknown")


def _add_articles(table: pa.Table, sums: dict) -> None:
    n = table.num_rows
    cols = table.column_names
    zeros = pa.array([0] * n, pa.int64())
    run_dated = (
        pc.cast(pc.fill_null(pc.equal(table.column("date_source"), "run"), False), pa.int64())
        if "date_source" in cols
        else zeros
    )
    words = table.column("word_count").cast(pa.int64()) if "word_count" in cols else pa.nulls(n, pa.int64())
    removed = pc.fill_null(pc.list_value_length(table.column("removed")), 0) if "removed" in cols else zeros
    grouped = (
        pa.table({"source": _sources_of(table), "run": run_dated, "words": words, "removed": removed})
        .group_by("source")
        .aggregate([("run", "count"), ("run", "sum"), ("words", "sum"), ("words", "count"), ("removed", "sum")])
    )
    for row in grouped.to_pylist():
        s = sums[row["source"]]
        s["articles"] += row["run_count"]
        s["run_dated"] += row["run_sum"] or 0
        s["words"] += row["words_sum"] or 0
        s["worded"] += row["words_count"]
        s["removed"] += row["removed_sum"] or 0


def _add_rejects(table: pa.Table, sums: dict, reasons: dict) -> None:
    n = table.num_rows
    refs = table.column("input_ref") if "input_ref" in table.column_names else pa.nulls(n, pa.string())

    def text(name: str) -> pa.ChunkedArray | pa.Array:
        if name not in table.column_names:
            return pa.array(["unknown"] * n, pa.string())
        return pc.fill_null(table.column(name).cast(pa.string()), "unknown")

    keyed = pa.table({"source": ref_sources(refs), "stage": text("stage"), "reason": text("reason")})
    for row in keyed.group_by(["source", "stage", "reason"]).aggregate([("source", "count")]).to_pylist():
        s, k = sums[row["source"]], row["source_count"]
        s["rejected"] += k
        if row["stage"] in FAILURE_STAGES:
            s["failures"] += k
        if reasons is not None:
            reasons[row["source"]][row["reason"]] += k


def tally(output: str, manifest: dict, *, detail: bool = True) -> tuple[dict, dict | None]:
    """Per-source sums of one committed run from its files (only the needed columns), and rejects per reason.

    `detail=False` (the baseline runs) skips the cleaner's removed lists and the reject reasons.
    """
    sums: dict[str, Counter] = defaultdict(Counter)
    reasons: dict[str, Counter] | None = defaultdict(Counter) if detail else None
    listed = manifest.get("datasets", {})
    article_cols = ["source", "date_source", "word_count"] + (["removed.rule_id"] if detail else [])
    for f in listed.get("articles") or []:
        _add_articles(_read(output, f["path"], article_cols), sums)
    for f in listed.get("duplicates") or []:
        for row in (
            pa.table({"source": _sources_of(_read(output, f["path"], ["source"]))})
            .group_by("source")
            .aggregate([("source", "count")])
            .to_pylist()
        ):
            sums[row["source"]]["duplicates"] += row["source_count"]
    for f in listed.get("rejects") or []:
        _add_rejects(_read(output, f["path"], ["input_ref", "stage"] + (["reason"] if detail else [])), sums, reasons)
    return sums, reasons


def _ratio(part: float, whole: float, places: int = 6) -> float | None:
    return round(part / whole, places) if whole else None


def figures(s: Counter) -> dict:
    """The rates drift compares; a rate over no records (or no articles) is null, not 0."""
    records = s["articles"] + s["duplicates"] + s["rejected"]
    return {
        "records": records,
        "extraction_failure_rate": _ratio(s["failures"], records),
        "missing_date_rate": _ratio(s["run_dated"], s["articles"]),
        "mean_words": _ratio(s["words"], s["worded"], 1),
    }


def source_health(sums: dict, reasons: dict, manifest: dict, produced: dict) -> list[dict]:
    """The `sources` rows of report.json: one per source, most articles first, then by name."""
    fetch = manifest.get("counts", {}).get("fetch_by_source")
    names = set(sums) | set(fetch or {})
    rows = []
    for name in names:
        s = sums.get(name, Counter())
        pages = (fetch or {}).get(name) or {}
        rows.append(
            {
                "source": name,
                "articles": s["articles"] if produced["articles"] else None,
                "duplicates": s["duplicates"] if produced["duplicates"] else None,
                "rejected": s["rejected"],
                "rejected_by_reason": dict(sorted(reasons.get(name, Counter()).items())),
                "extraction_failures": s["failures"],
                **figures(s),
                "removed_lines_per_article": _ratio(s["removed"], s["articles"], 3),
                "fetched": None if fetch is None or name not in fetch else int(pages.get("fetched") or 0),
                "unchanged": None if fetch is None or name not in fetch else int(pages.get("unchanged") or 0),
            }
        )
    return sorted(rows, key=lambda r: (-(r["articles"] or 0), r["source"]))


def _moved(metric: str, base: float | None, now: float | None) -> dict | None:
    if base is None or now is None:
        return None
    if metric == "mean_words":
        # A baseline of 0 words has no meaningful factor; pages that never had text are not a drift.
        factor = now / base if base else None
        if factor is None or DRIFT_LENGTH_LOW <= factor <= DRIFT_LENGTH_HIGH:
            return None
        return {"metric": metric, "baseline": base, "current": now, "change": round(factor, 3)}
    if now - base <= DRIFT_RATE_RISE:
        return None
    return {"metric": metric, "baseline": base, "current": now, "change": round(now - base, 6)}


def drift(current: dict, baseline: dict, baseline_runs: list[str], *, articles_produced: bool = True) -> list[dict]:
    """Sources whose failure rate, missing-date rate or mean length moved against the pooled baseline runs.

    The baseline pools the previous runs' records (a busy day weighs more than a quiet one) rather than
    averaging their rates, so one tiny run cannot set it.
    """
    flags = []
    for name in sorted(current):
        now, base = figures(current[name]), figures(baseline.get(name, Counter()))
        now_volume = current[name]["articles"] + current[name]["rejected"]
        base_volume = baseline.get(name, Counter())["articles"] + baseline.get(name, Counter())["rejected"]
        if now_volume < DRIFT_MIN_RECORDS or base_volume < DRIFT_MIN_BASELINE_RECORDS:
            continue
        if articles_produced and current[name]["articles"] == 0 and base["mean_words"]:
            # No article at all this run: the length collapsed to nothing (failures usually say so too).
            now["mean_words"] = 0.0
        moved = [
            m
            for m in (
                _moved(k, base[k], now[k]) for k in ("extraction_failure_rate", "missing_date_rate", "mean_words")
            )
            if m
        ]
        if moved:
            flags.append(
                {
                    "source": name,
                    "records": now_volume,
                    "baseline_records": base_volume,
                    "baseline_runs": baseline_runs,
                    "moved": moved,
                }
            )
    return flags


def source_report(output: str, run_date: dt.date, manifest: dict, runs: list[dt.date]) -> tuple[list, list]:
    """(`sources`, `drift`) of the run `run_date`, given the committed runs of `output`."""
    listed = manifest.get("datasets", {})
    sums, reasons = tally(output, manifest)
    produced = {name: listed.get(name) is not None for name in ("articles", "duplicates")}
    rows = source_health(sums, reasons, manifest, produced)
    previous = [d for d in sorted(runs) if d < run_date][-DRIFT_BASELINE_RUNS:]
    baseline: dict[str, Counter] = defaultdict(Counter)
    used = []
    for day in previous:
        old = read_manifest(output, day)
        if old is None:
            continue
        for name, s in tally(output, old, detail=False)[0].items():
            baseline[name].update(s)
        used.append(day.isoformat())
    return rows, drift(sums, baseline, used, articles_produced=produced["articles"])
