"""Run report: what a run read, rejected, cleaned, deduplicated and found, as report.json and a self-contained page.

`build_report(output, run_date, ...)` computes the report from the run manifest (`OUT/_manifests/run_date=D.json`,
which lists the files this run committed) plus the run's Beam metrics and options; `write_report` stores it as
`OUT/reports/run_date=D/report.json` and `report.html`; `main(argv)` is `news-ingest report DIR [...]`.

report.json keys (stable; a key is added, never renamed; `null` means "not produced by this run"):

- `report_version` (int, 1), `run_date` ("YYYY-MM-DD"), `ingested_at` (ISO timestamp of the run, from the manifest)
- `ok` (bool): records read == articles + duplicates + rejects
- `wall_s` (float|null): wall time of the run in seconds
- `options` (object|null): the run's options; values of secret-looking names are replaced by "***"
- `metrics` (object|null): Beam counters of the `news` namespace, name -> int (e.g. `rejected.read.bad_json`)
- `datasets`: name -> `{"produced": bool, "files": int, "rows": int|null}` for articles, duplicates, entities,
  rejects, signatures (and any other dataset in the manifest); `produced` is false when the run wrote no such
  dataset (a stage not in the pipeline), which is not the same as producing it with 0 rows
- `counts`: `read` (records read, rejects included), `files_read` (from metrics, else null), `articles`,
  `rejected`, `rejected_by_reason` (reason -> n), `rejected_by_stage` (stage -> reason -> n), `duplicates`,
  `duplicates_exact`, `duplicates_near`, `entity_rows`, `accounted` (articles + duplicates + rejects)
- `reject_rate` (float): rejected / read (0.0 when nothing was read) -- alert on it, e.g. above 0.05
- `duplicate_rate` (float|null): duplicates / (articles + duplicates); null when duplicates were not produced
- `removed_lines` (int|null) and `removed_by_rule`: `[{"rule_id", "lines", "articles"}]`, from the articles'
  `removed` column: lines (entries) removed per cleaning rule and how many articles had one; most lines first
- `cluster_sizes`: `[{"size", "clusters"}]`, from the articles' `duplicate_count` (size = duplicate_count + 1,
  so a story seen once is a cluster of size 1); ascending size
- `top_entities`: label -> up to 20 `[{"entity", "articles", "mentions"}]`, ranked by the number of articles that
  mention the entity (one entities row per article), then by total `mentions`, then by name; a name repeated
  in one article counts once, so the ranking is "who was in the news", not "who was named most often"
- `articles_per_source`: `[{"source", "articles"}]`, most articles first (all sources)
- `articles_per_published_date`: `[{"date", "articles"}]` ascending, the Hive partition of each articles file
- `warnings` (list of str): things to look at although the run succeeded (an input glob that matched nothing,
  repaired Unicode, files under --output skipped, truncated NER, unreadable stored signatures, ...)
- `files_with_rejects` (list|null): per input file that produced rejects or did not balance, up to 200,
  `{"path", "expected", "records", "rejects", "bytes", "gzip_members"}`; `expected` is counted from the file's
  bytes apart from the parser (null for runs that read no files)
- `sample_rejects`: up to 20 `[{"input_ref", "stage", "reason", "detail"}]`, drawn round-robin over
  (stage, reason) so every reason has an example, smallest input_ref first
- `trends` (list|null): only with `news-ingest report --last N`: per committed run, oldest first,
  `{"run_date", "read", "articles", "duplicates", "rejected", "reject_rate", "duplicate_rate"}`

Keys derived from a dataset are null when the run did not produce it (`removed_*`, `cluster_sizes` and
`articles_per_*` follow articles, `top_entities` entities, `duplicates_*` duplicates). `news-ingest report`
rebuilds everything from the committed files and carries `metrics`, `options` and `wall_s` over from the
report.json the run wrote, since those exist only while the run is live.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import html
import io
import json
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.write import MANIFESTS, read_manifest, write_json

REPORT_VERSION = 1
REPORTS = "reports"
TOP_ENTITIES = 20
SAMPLE_REJECTS = 20
TOP_TABLE_ROWS = 20
REJECT_ALERT_RATE = 0.05  # the page flags a run above this; monitoring picks its own threshold
KNOWN_DATASETS = ("articles", "duplicates", "entities", "rejects", "signatures")
NAMESPACE = "news"

_PARTITION = re.compile(r"(?:^|/)published_date=(\d{4}-\d{2}-\d{2})(?:/|$)")
_MANIFEST_NAME = re.compile(r"run_date=(\d{4}-\d{2}-\d{2})\.json$")
_SECRET = re.compile(r"secret|password|passwd|token|credential|access_key|api_key|private", re.IGNORECASE)


class ReportError(Exception):
    """A report that cannot be built (no committed run), reported as one line."""


# ---------------------------------------------------------------- reading the run's datasets


def _read(output: str, rel: str, columns: Sequence[str]) -> pa.Table:
    """Only the wanted columns of one committed file that exist in it; `removed.rule_id` reads just the ids."""
    with FileSystems.open(FileSystems.join(output, rel), compression_type=CompressionTypes.UNCOMPRESSED) as f:
        pf = pq.ParquetFile(f)
        paths = [pf.metadata.schema.column(i).path for i in range(pf.metadata.num_columns)]
        wanted = []
        for col in columns:
            if col == "removed.rule_id":
                # The cleaner's removed text can be large; the report only needs the rule ids.
                wanted += [p for p in paths if p.startswith("removed.") and p.endswith(".rule_id")]
            elif col in paths or any(p.startswith(col + ".") for p in paths):
                wanted.append(col)
        return pf.read(columns=wanted) if wanted else pa.table({"_": pa.nulls(pf.metadata.num_rows)})


def _value_counts(column: pa.ChunkedArray, null_as=None) -> Counter:
    counts: Counter = Counter()
    for item in pc.value_counts(column).to_pylist():
        value = item["values"]
        counts[null_as if value is None else value] += item["counts"]
    return counts


def _partition_date(rel: str) -> str | None:
    m = _PARTITION.search(rel)
    return m.group(1) if m else None


def _count_removed(column: pa.ChunkedArray, lines: Counter, articles_with: Counter) -> None:
    """Removed entries per rule id, and the number of articles with at least one, without a Python row loop."""
    for chunk in column.chunks:
        if not len(chunk):
            continue
        flat = pc.list_flatten(chunk)
        if not len(flat):
            continue
        ids = pc.fill_null(flat.field("rule_id"), "unknown")
        lines.update(_value_counts(ids))
        pairs = pa.table({"article": pc.list_parent_indices(chunk), "rule_id": ids})
        articles_with.update(_value_counts(pairs.group_by(["article", "rule_id"]).aggregate([]).column("rule_id")))


def _article_stats(output: str, files: list[dict]) -> dict:
    per_source: Counter = Counter()
    per_date: Counter = Counter()
    lines: Counter = Counter()
    articles_with: Counter = Counter()
    clusters: Counter = Counter()
    for f in files:
        table = _read(output, f["path"], ["source", "duplicate_count", "removed.rule_id"])
        per_date[_partition_date(f["path"]) or "unknown"] += table.num_rows
        if "source" in table.column_names:
            per_source.update(_value_counts(table.column("source"), null_as="unknown"))
        if "duplicate_count" in table.column_names:
            sizes = pc.add(pc.fill_null(table.column("duplicate_count"), 0), 1)
            clusters.update(_value_counts(sizes))
        else:
            clusters[1] += table.num_rows
        if "removed" in table.column_names:
            _count_removed(table.column("removed"), lines, articles_with)
    return {
        "articles_per_source": [
            {"source": s, "articles": n} for s, n in sorted(per_source.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "articles_per_published_date": [{"date": d, "articles": n} for d, n in sorted(per_date.items())],
        "cluster_sizes": [{"size": int(s), "clusters": n} for s, n in sorted(clusters.items())],
        "removed_lines": sum(lines.values()),
        "removed_by_rule": [
            {"rule_id": r, "lines": n, "articles": articles_with[r]}
            for r, n in sorted(lines.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }


def _duplicate_stats(output: str, files: list[dict]) -> Counter:
    matches: Counter = Counter()
    for f in files:
        table = _read(output, f["path"], ["match"])
        if "match" in table.column_names:
            matches.update(_value_counts(table.column("match"), null_as="unknown"))
        else:
            matches["unknown"] += table.num_rows
    return matches


def _entity_stats(output: str, files: list[dict]) -> dict:
    articles: Counter = Counter()
    mentions: Counter = Counter()
    for f in files:
        table = _read(output, f["path"], ["entity", "label", "mentions"])
        if not {"entity", "label"} <= set(table.column_names) or not table.num_rows:
            continue
        if "mentions" not in table.column_names:
            table = table.append_column("mentions", pa.array([1] * table.num_rows, pa.int32()))
        grouped = table.group_by(["label", "entity"]).aggregate([("mentions", "sum"), ("mentions", "count")])
        for row in grouped.to_pylist():
            key = (row["label"] or "unknown", row["entity"] or "")
            articles[key] += row["mentions_count"]
            mentions[key] += row["mentions_sum"] or 0
    per_label: dict[str, list] = defaultdict(list)
    for (label, entity), n in articles.items():
        per_label[label].append({"entity": entity, "articles": n, "mentions": mentions[(label, entity)]})
    return {
        label: sorted(rows, key=lambda r: (-r["articles"], -r["mentions"], r["entity"]))[:TOP_ENTITIES]
        for label, rows in sorted(per_label.items())
    }


def _reject_stats(output: str, files: list[dict]) -> tuple[dict, dict, list]:
    by_reason: Counter = Counter()
    by_stage: dict[str, Counter] = defaultdict(Counter)
    samples: dict[tuple[str, str], list] = {}
    columns = ("input_ref", "stage", "reason", "detail")
    for f in files:
        table = _read(output, f["path"], columns)
        # Missing or null columns read as "unknown"/"" so that an odd file still counts, never fails the report.
        table = pa.table(
            {
                c: pc.fill_null(table.column(c).cast(pa.string()), "unknown" if c in ("stage", "reason") else "")
                if c in table.column_names
                else pa.array(["unknown" if c in ("stage", "reason") else ""] * table.num_rows, pa.string())
                for c in columns
            }
        )
        groups = table.group_by(["stage", "reason"]).aggregate([("input_ref", "count")]).to_pylist()
        for g in groups:
            stage, reason, n = g["stage"], g["reason"], g["input_ref_count"]
            by_reason[reason] += n
            by_stage[stage][reason] += n
            mask = pc.and_(pc.equal(table.column("stage"), stage), pc.equal(table.column("reason"), reason))
            first = table.filter(mask).sort_by("input_ref").slice(0, SAMPLE_REJECTS).to_pylist()
            kept = samples.setdefault((stage, reason), [])
            kept += [(r["input_ref"], r["detail"][:300]) for r in first]
    picked: list[dict] = []
    queues = {key: heapq.nsmallest(SAMPLE_REJECTS, kept) for key, kept in sorted(samples.items())}
    depth = 0
    while len(picked) < SAMPLE_REJECTS and any(len(q) > depth for q in queues.values()):
        for (stage, reason), q in queues.items():
            if len(q) > depth and len(picked) < SAMPLE_REJECTS:
                ref, detail = q[depth]
                picked.append({"input_ref": ref, "stage": stage, "reason": reason, "detail": detail})
        depth += 1
    return (
        dict(sorted(by_reason.items())),
        {s: dict(sorted(c.items())) for s, c in sorted(by_stage.items())},
        picked,
    )


# ---------------------------------------------------------------- the report


def _json_safe(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_json_safe(v) for v in items]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _redact(options: dict) -> dict:
    return {k: ("***" if _SECRET.search(str(k)) and v not in (None, "", False) else v) for k, v in options.items()}


def _rate(part: int | None, whole: int | None) -> float | None:
    if part is None or whole is None:
        return None
    return round(part / whole, 6) if whole else 0.0


def _rows(manifest: dict, name: str) -> int | None:
    files = manifest.get("datasets", {}).get(name)
    return None if files is None else sum(int(f.get("rows", 0)) for f in files)


def _headline(manifest: dict) -> dict:
    """Counts that need only the manifest: what trends are made of."""
    read = int(manifest.get("counts", {}).get("records_read", 0))
    articles, duplicates = _rows(manifest, "articles"), _rows(manifest, "duplicates")
    rejected = _rows(manifest, "rejects")
    kept = None if articles is None and duplicates is None else (articles or 0) + (duplicates or 0)
    return {
        "run_date": manifest.get("run_date"),
        "read": read,
        "articles": articles,
        "duplicates": duplicates,
        "rejected": rejected or 0,
        "reject_rate": _rate(rejected or 0, read),
        "duplicate_rate": None if duplicates is None else _rate(duplicates, kept),
    }


def build_report(
    output: str,
    run_date: dt.date,
    *,
    metrics: dict | None = None,
    options: dict | None = None,
    wall_s: float | None = None,
    warnings: Sequence[str] | None = None,
) -> dict:
    """The report dict of the committed run `run_date` in `output` (keys: see the module docstring)."""
    output = output.rstrip("/") or "/"
    manifest = read_manifest(output, run_date)
    if manifest is None:
        raise ReportError(f"no committed run {run_date.isoformat()} in {output} (no manifest)")
    listed = manifest.get("datasets", {})
    files = {name: listed.get(name) for name in sorted(set(KNOWN_DATASETS) | set(listed))}
    head = _headline(manifest)
    articles = _article_stats(output, files["articles"]) if files["articles"] is not None else None
    matches = _duplicate_stats(output, files["duplicates"]) if files["duplicates"] is not None else None
    entities = _entity_stats(output, files["entities"]) if files["entities"] is not None else None
    by_reason, by_stage, samples = _reject_stats(output, files["rejects"] or [])
    metrics = {str(k): int(v) for k, v in sorted((metrics or {}).items())} if metrics is not None else None
    accounted = (head["articles"] or 0) + (head["duplicates"] or 0) + head["rejected"]
    return {
        "report_version": REPORT_VERSION,
        "run_date": run_date.isoformat(),
        "ingested_at": manifest.get("ingested_at"),
        "ok": head["read"] == accounted,
        "wall_s": None if wall_s is None else round(float(wall_s), 3),
        "warnings": list(warnings or ()),
        "options": None if options is None else _json_safe(_redact(dict(options))),
        "metrics": metrics,
        "datasets": {
            name: {
                "produced": f is not None,
                "files": len(f or ()),
                "rows": _rows(manifest, name),
            }
            for name, f in files.items()
        },
        "counts": {
            "read": head["read"],
            "files_read": (metrics or {}).get("files_read"),
            "files_matched": manifest.get("counts", {}).get("files_matched"),
            "articles": head["articles"],
            "rejected": head["rejected"],
            "rejected_by_reason": by_reason,
            "rejected_by_stage": by_stage,
            "duplicates": head["duplicates"],
            "duplicates_exact": None if matches is None else matches.get("exact", 0),
            "duplicates_near": None if matches is None else matches.get("near", 0),
            "entity_rows": _rows(manifest, "entities"),
            "accounted": accounted,
        },
        "reject_rate": head["reject_rate"],
        "duplicate_rate": head["duplicate_rate"],
        "removed_lines": None if articles is None else articles["removed_lines"],
        "removed_by_rule": None if articles is None else articles["removed_by_rule"],
        "cluster_sizes": None if articles is None else articles["cluster_sizes"],
        "top_entities": entities,
        "articles_per_source": None if articles is None else articles["articles_per_source"],
        "articles_per_published_date": None if articles is None else articles["articles_per_published_date"],
        "sample_rejects": samples,
        "files_with_rejects": manifest.get("counts", {}).get("files_with_rejects"),
        "trends": None,
    }


def committed_runs(output: str) -> list[dt.date]:
    """Run dates with a committed manifest in `output`, oldest first."""
    pattern = FileSystems.join(output.rstrip("/") or "/", MANIFESTS, "run_date=*.json")
    try:
        paths = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except Exception:  # noqa: BLE001 - Beam raises a bare error when the folder is missing
        paths = []
    dates = []
    for path in paths:
        m = _MANIFEST_NAME.search(path)
        if m:
            try:
                dates.append(dt.date.fromisoformat(m.group(1)))
            except ValueError:
                continue
    return sorted(set(dates))


def trends(output: str, run_dates: Sequence[dt.date]) -> list[dict]:
    """Per-run headline counts and rates from the manifests alone (cheap for many runs), oldest first."""
    points = []
    for run_date in sorted(run_dates):
        manifest = read_manifest(output, run_date)
        if manifest is not None:
            points.append(_headline(manifest) | {"run_date": run_date.isoformat()})
    return points


def metrics_from_result(result, *, live: bool = False) -> dict:
    """The `news` counters of a PipelineResult as a flat dict name -> int (committed, else attempted values)."""
    from apache_beam.metrics.metric import MetricsFilter

    totals: Counter = Counter()
    try:
        counters = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    except Exception:  # noqa: BLE001 - some runners have no metrics support, or none until the end
        return {}
    for c in counters:
        value = None if live else c.committed
        totals[c.key.metric.name] += int(value if value is not None else (c.attempted or 0))
    return dict(sorted(totals.items()))


# ---------------------------------------------------------------- writing


def report_dir(output: str, run_date: dt.date) -> str:
    """`OUT/reports/run_date=D`."""
    return FileSystems.join(output.rstrip("/") or "/", REPORTS, f"run_date={run_date.isoformat()}")


def _write_text(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with FileSystems.create(tmp) as f:
        f.write(text.encode("utf-8"))
    FileSystems.rename([tmp], [path])


def write_report(output: str, run_date: dt.date, report: dict) -> tuple[str, str]:
    """Write report.json and report.html (each via a temporary name); returns their paths."""
    folder = report_dir(output, run_date)
    json_path = FileSystems.join(folder, "report.json")
    html_path = FileSystems.join(folder, "report.html")
    write_json(json_path, report)  # creates the folder
    _write_text(html_path, render_html(report))
    return json_path, html_path


def read_report(output: str, run_date: dt.date) -> dict | None:
    """A previously written report.json, or None."""
    path = FileSystems.join(report_dir(output, run_date), "report.json")
    if not FileSystems.exists(path):
        return None
    try:
        with FileSystems.open(path) as f:
            value = json.loads(f.read().decode("utf-8"))
    except (ValueError, OSError):
        return None
    return value if isinstance(value, dict) else None


# ---------------------------------------------------------------- charts


_LABEL_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
_MAIN = "#4c72b0"


def _figure(height: float = 3.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, height), dpi=100)
    return fig, fig.add_subplot(1, 1, 1)


def _svg(fig) -> str:
    import matplotlib

    buf = io.StringIO()
    # Fixed salt and no date: the same report renders the same bytes; text stays text (no font files needed).
    with matplotlib.rc_context({"svg.hashsalt": "news-ingest-report", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def _empty(message: str) -> str:
    fig, ax = _figure(1.6)
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="#666666", transform=ax.transAxes)
    return _svg(fig)


def _style(ax, grid_axis: str = "y") -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis=grid_axis, color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=8)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bars(labels: list[str], values: list[int], *, horizontal: bool, colors=None, xlabel: str = "") -> str:
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False, "font.family": "DejaVu Sans"}):
        from matplotlib.ticker import MaxNLocator

        n = len(labels)
        # A lone bar should not fill the whole chart: lay out at least this many slots.
        pad = max(0, 6 - n) / 2
        if horizontal:
            fig, ax = _figure(max(1.6, 0.28 * n + 0.8))
            pos = list(range(n))[::-1]  # biggest on top
            bars = ax.barh(pos, values, color=colors or _MAIN, height=0.75)
            ax.set_yticks(pos, [_short(x) for x in labels])
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            _style(ax, "x")
            ax.margins(x=0.08)
            ax.set_ylim(-0.5 - min(pad, 0.5), n - 0.5 + min(pad, 0.5))
        else:
            fig, ax = _figure(3.0)
            pos = list(range(n))
            bars = ax.bar(pos, values, color=colors or _MAIN, width=0.75)
            step = max(1, -(-n // 20))  # at most ~20 tick labels, whatever the range of dates
            ticks = pos[::step]
            if n > 6:
                ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=45, ha="right")
            else:
                ax.set_xticks(ticks, [labels[i] for i in ticks])
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            _style(ax, "y")
            ax.margins(y=0.12)
            ax.set_xlim(-0.6 - pad, n - 0.4 + pad)
        if n <= 40:
            ax.bar_label(bars, padding=2, fontsize=7, color="#333333")
        if xlabel:
            ax.set_xlabel(xlabel, fontsize=8)
        fig.tight_layout()
        return _svg(fig)


def _chart_dates(report: dict) -> str:
    rows = report.get("articles_per_published_date")
    if rows is None:
        return _empty("Articles not produced by this run")
    if not rows:
        return _empty("No articles in this run")
    return _bars([r["date"] for r in rows], [r["articles"] for r in rows], horizontal=False)


def _chart_rejects(report: dict) -> str:
    by_reason = report["counts"]["rejected_by_reason"]
    if not by_reason:
        return _empty("No rejects in this run")
    items = sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    return _bars([k for k, _ in items], [v for _, v in items], horizontal=True, colors="#c44e52")


def _chart_clusters(report: dict) -> str:
    rows = report.get("cluster_sizes")
    if rows is None:
        return _empty("Articles not produced by this run")
    if not rows:
        return _empty("No articles in this run")
    return _bars([str(r["size"]) for r in rows], [r["clusters"] for r in rows], horizontal=False, xlabel="cluster size")


def _chart_entities(report: dict) -> str:
    top = report.get("top_entities")
    if top is None:
        return _empty("Entities not produced by this run")
    labels = sorted(top)
    flat = [(r["articles"], r["mentions"], r["entity"], label) for label in labels for r in top[label]]
    if not flat:
        return _empty("No entities in this run")
    flat = sorted(flat, key=lambda x: (-x[0], -x[1], x[2], x[3]))[:TOP_ENTITIES]
    color = {label: _LABEL_COLORS[i % len(_LABEL_COLORS)] for i, label in enumerate(labels)}
    return _bars(
        [f"{e} · {label}" for _, _, e, label in flat],
        [a for a, _, _, _ in flat],
        horizontal=True,
        colors=[color[label] for *_, label in flat],
        xlabel="articles mentioning",
    )


def _chart_trends(report: dict) -> str:
    import matplotlib

    points = report.get("trends") or []
    if not points:
        return _empty("No runs to compare")
    with matplotlib.rc_context({"text.parse_math": False, "font.family": "DejaVu Sans"}):
        fig, ax = _figure(3.0)
        pos = list(range(len(points)))
        ax.bar(pos, [p["articles"] or 0 for p in points], color=_MAIN, width=0.7, label="articles")
        ax.set_ylabel("articles", fontsize=8)
        step = max(1, -(-len(points) // 15))
        ax.set_xticks(pos[::step], [points[i]["run_date"] for i in pos[::step]], rotation=45, ha="right")
        _style(ax, "y")
        rates = ax.twinx()
        rates.plot(pos, [100 * (p["reject_rate"] or 0) for p in points], color="#c44e52", marker="o", label="reject %")
        dup = [(i, 100 * p["duplicate_rate"]) for i, p in enumerate(points) if p["duplicate_rate"] is not None]
        if dup:
            rates.plot([i for i, _ in dup], [v for _, v in dup], color="#55a868", marker="s", label="duplicate %")
        rates.set_ylabel("%", fontsize=8)
        rates.set_ylim(bottom=0)
        rates.tick_params(labelsize=8)
        handles = ax.get_legend_handles_labels()[0] + rates.get_legend_handles_labels()[0]
        ax.legend(handles=handles, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
        rates.spines["top"].set_visible(False)
        fig.tight_layout()
        return _svg(fig)


CHARTS = (
    ("articles-per-date", "Articles per published date", _chart_dates),
    ("rejects-by-reason", "Rejects by reason", _chart_rejects),
    ("cluster-sizes", "Duplicate cluster sizes (stories seen N times)", _chart_clusters),
    ("top-entities", "Top entities (articles mentioning)", _chart_entities),
)


# ---------------------------------------------------------------- HTML


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value) -> str:
    return "not produced" if value is None else f"{value:,}"


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _card(key: str, title: str, value, sub: str = "", alert: bool = False) -> str:
    produced = "false" if value is None else "true"
    raw = "" if value is None else value
    cls = "card alert" if alert else "card"
    return (
        f'<div class="{cls}"><div class="label">{_e(title)}</div>'
        f'<span class="value" id="count-{key}" data-value="{_e(raw)}" data-produced="{produced}">{_e(_num(value))}'
        f'</span><div class="sub">{sub}</div></div>'
    )


def _table(table_id: str, headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="empty" id="{table_id}" data-rows="0">{_e(empty)}</p>'
    # A header sits over its numbers: right-aligned when the column's cells are.
    head = "".join(
        f'<th class="num">{_e(h)}</th>' if i < len(rows[0]) and 'class="num"' in rows[0][i] else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f'<table id="{table_id}" data-rows="{len(rows)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _td(value, numeric: bool = False) -> str:
    return f'<td class="num">{_e(value)}</td>' if numeric else f"<td>{_e(value)}</td>"


_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:0;color:#1f2328;
background:#f6f8fa;line-height:1.4}
header{background:#24292f;color:#fff;padding:16px 28px}
header h1{margin:0;font-size:20px;font-weight:600}
header .meta{color:#c9d1d9;font-size:13px;margin-top:4px}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600;margin-left:8px}
.badge.ok{background:#2da44e}.badge.bad{background:#cf222e}
main{padding:20px 28px;max-width:1400px}
h2{font-size:16px;margin:28px 0 10px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px 14px}
.card.alert{border-color:#cf222e;background:#fff5f5}
.card .label{font-size:12px;color:#57606a;text-transform:uppercase;letter-spacing:.03em}
.card .value{display:block;font-size:26px;font-weight:600;margin-top:2px}
.card .value[data-produced=false]{font-size:15px;color:#8c959f;font-weight:500;padding:8px 0}
.card .sub{font-size:12px;color:#57606a;min-height:1em}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
figure{margin:0;background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:10px 12px}
figcaption{font-weight:600;font-size:14px;margin-bottom:6px}
figure svg{width:100%;height:auto;display:block}
.grid2{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:14px;align-items:start}
.panel{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:10px 12px;overflow-x:auto}
.panel h3{font-size:14px;margin:0 0 8px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.ref{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;word-break:break-all}
tr:target{background:#fff8c5}
.empty{color:#8c959f;font-style:italic;margin:4px 0}
details{margin-top:8px}summary{cursor:pointer;font-weight:600}
a{color:#0969da}
footer{color:#8c959f;font-size:12px;padding:10px 28px 24px}
"""


def _cards_html(report: dict) -> str:
    c = report["counts"]
    rate = report["reject_rate"]
    dup = report["duplicate_rate"]
    dup_sub = (
        ""
        if c["duplicates"] is None
        else f"exact {c['duplicates_exact']:,} · near {c['duplicates_near']:,} · {_pct(dup)}"
    )
    files_read = c.get("files_read")
    return "".join(
        [
            _card("read", "Records read", c["read"], f"{files_read:,} files" if files_read is not None else ""),
            _card("articles", "Articles", c["articles"]),
            _card(
                "rejected",
                "Rejected",
                c["rejected"],
                f'<span id="reject-rate" data-value="{_e(rate)}">{_pct(rate)}</span> of records read',
                alert=(rate or 0) > REJECT_ALERT_RATE,
            ),
            _card(
                "duplicates",
                "Duplicates",
                c["duplicates"],
                f'<span id="duplicate-rate" data-value="{_e(dup)}">{_e(dup_sub)}</span>',
            ),
            _card("entity-rows", "Entity rows", c["entity_rows"]),
            _card("removed-lines", "Lines removed", report.get("removed_lines")),
        ]
    )


def _rejects_html(report: dict) -> tuple[str, str]:
    """The rejects-by-reason table, each reason linking to its first example, and the sample rejects table."""
    samples = report.get("sample_rejects") or []
    first_sample: dict[tuple[str, str], int] = {}
    for i, s in enumerate(samples, 1):
        first_sample.setdefault((s["stage"], s["reason"]), i)
    rows = [
        [
            _td(stage),
            _td(reason),
            _td(f"{n:,}", True),
            f'<td><a href="#reject-{first_sample[(stage, reason)]}">example</a></td>'
            if (stage, reason) in first_sample
            else "<td></td>",
        ]
        for stage, reasons in (report["counts"].get("rejected_by_stage") or {}).items()
        for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    by_reason = _table("rejects-by-reason", ["stage", "reason", "rejects", ""], rows, "No rejects in this run.")
    if not samples:
        return by_reason, '<p class="empty" id="sample-rejects" data-rows="0">No rejects in this run.</p>'
    body = "".join(
        f'<tr id="reject-{i}"><td class="num">{i}</td><td class="ref">{_e(s["input_ref"])}</td>'
        f"<td>{_e(s['stage'])}</td><td>{_e(s['reason'])}</td><td>{_e(s['detail'])}</td></tr>"
        for i, s in enumerate(samples, 1)
    )
    head = "".join(f"<th>{h}</th>" for h in ("#", "input_ref", "stage", "reason", "detail"))
    table = (
        f'<table id="sample-rejects" data-rows="{len(samples)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )
    return by_reason, table


def _panels_html(report: dict, rejects_table: str) -> str:
    """Top sources, top removed rules, rejects by reason and datasets, as panels of a grid."""
    sources = report.get("articles_per_source")
    n_articles = report["counts"]["articles"] or 0
    source_rows = [
        [_td(r["source"]), _td(f"{r['articles']:,}", True), _td(_pct(_rate(r["articles"], n_articles)), True)]
        for r in (sources or [])[:TOP_TABLE_ROWS]
    ]
    removed = report.get("removed_by_rule")
    removed_rows = [
        [_td(r["rule_id"]), _td(f"{r['lines']:,}", True), _td(f"{r['articles']:,}", True)]
        for r in (removed or [])[:TOP_TABLE_ROWS]
    ]
    dataset_rows = [
        [
            _td(name),
            _td("yes" if d["produced"] else "not produced by this run"),
            _td(d["files"], True),
            _td("" if d["rows"] is None else f"{d['rows']:,}", True),
        ]
        for name, d in report["datasets"].items()
    ]
    no_articles = "Articles not produced by this run."
    panels = (
        (
            "Top sources",
            _table(
                "top-sources",
                ["source", "articles", "share"],
                source_rows,
                no_articles if sources is None else "No articles in this run.",
            ),
        ),
        (
            "Top removed rules",
            _table(
                "top-removed-rules",
                ["rule", "lines", "articles"],
                removed_rows,
                no_articles if removed is None else "Nothing removed in this run.",
            ),
        ),
        ("Rejects by stage and reason", rejects_table),
        ("Datasets", _table("datasets", ["dataset", "produced", "files", "rows"], dataset_rows, "")),
    )
    return "".join(f'<div class="panel"><h3>{_e(title)}</h3>{body}</div>' for title, body in panels)


def _entities_html(report: dict) -> str:
    top = report.get("top_entities")
    if not top:
        return '<p class="empty">{}</p>'.format(
            "Entities not produced by this run." if top is None else "No entities in this run."
        )
    return "".join(
        f'<div class="panel"><h3>{_e(label)}</h3>'
        + _table(
            f"entities-{re.sub(r'[^A-Za-z0-9_-]', '_', label)}",
            ["entity", "articles", "mentions"],
            [[_td(r["entity"]), _td(f"{r['articles']:,}", True), _td(f"{r['mentions']:,}", True)] for r in rows],
            "none",
        )
        + "</div>"
        for label, rows in top.items()
    )


def _trends_html(report: dict) -> str:
    if report.get("trends") is None:
        return ""
    rows = [
        [
            _td(p["run_date"]),
            _td(f"{p['read']:,}", True),
            _td(_num(p["articles"]), True),
            _td(_num(p["duplicates"]), True),
            _td(f"{p['rejected']:,}", True),
            _td(_pct(p["reject_rate"]), True),
            _td(_pct(p["duplicate_rate"]), True),
        ]
        for p in report["trends"]
    ]
    headers = ["run", "read", "articles", "duplicates", "rejected", "reject rate", "duplicate rate"]
    return "<h2>Trends</h2>" + _table("trends-table", headers, rows, "no committed runs")


def _details_html(report: dict) -> str:
    options, metrics = report.get("options"), report.get("metrics")
    options_html = (
        _table("run-options", ["option", "value"], [[_td(k), _td(json.dumps(v))] for k, v in options.items()], "none")
        if options is not None
        else '<p class="empty">Not recorded.</p>'
    )
    metrics_html = (
        _table("run-metrics", ["counter", "value"], [[_td(k), _td(f"{v:,}", True)] for k, v in metrics.items()], "none")
        if metrics is not None
        else '<p class="empty">Not recorded (report rebuilt without the run\'s metrics).</p>'
    )
    return (
        f'<details><summary>Run options</summary><div class="panel">{options_html}</div></details>'
        f'<details><summary>Beam metrics</summary><div class="panel">{metrics_html}</div></details>'
    )


def _warnings_html(report: dict) -> str:
    warnings = report.get("warnings") or []
    if not warnings:
        return ""
    items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
    head = f'<section class="panel" id="warnings" data-rows="{len(warnings)}">'
    return f"{head}<h2>Warnings</h2><ul>{items}</ul></section>"


def _files_html(report: dict) -> str:
    files = report.get("files_with_rejects") or []
    rows = [
        [
            f'<td class="ref">{_e(f["path"])}</td>',
            _td(f"{f['expected']:,}", True),
            _td(f"{f['records']:,}", True),
            _td(f"{f['rejects']:,}", True),
            _td("yes" if f["expected"] == f["records"] + f["rejects"] else "NO"),
        ]
        for f in files
    ]
    headers = ["file", "records held", "read", "rejected", "balanced"]
    return _table("files-with-rejects", headers, rows, "No file produced a reject.")


def render_html(report: dict) -> str:
    """The report as one self-contained HTML page: inline CSS and SVG, no scripts, no external resources."""
    run = report["run_date"]
    charts = list(CHARTS)
    if report.get("trends") is not None:
        charts.append(("trends", f"Trends over the last {len(report['trends'])} runs", _chart_trends))
    figures = "".join(
        f'<figure id="chart-{key}" data-chart="{key}"><figcaption>{_e(title)}</figcaption>{fn(report)}</figure>'
        for key, title, fn in charts
    )
    rejects_table, samples_html = _rejects_html(report)
    wall = report.get("wall_s")
    meta = f"ingested {_e(report.get('ingested_at') or '?')}"
    if wall is not None:
        meta += f" · wall time {wall:,.1f} s"
    badge = (
        '<span class="badge ok" id="status" data-ok="true">all records accounted for</span>'
        if report.get("ok")
        else '<span class="badge bad" id="status" data-ok="false">records missing: read ≠ articles + duplicates + '
        "rejects</span>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>news-ingest run {_e(run)}</title>
<style>{_CSS}</style></head>
<body data-run-date="{_e(run)}" data-report-version="{_e(report.get("report_version"))}">
<header><h1>news-ingest run {_e(run)}{badge}</h1><div class="meta">{meta}</div></header>
<main>
{_warnings_html(report)}
<section class="cards" id="headline">{_cards_html(report)}</section>
<h2>Charts</h2>
<section class="charts">{figures}</section>
{_trends_html(report)}
<h2>Tables</h2>
<section class="grid2">{_panels_html(report, rejects_table)}</section>
<h2>Top entities per label</h2>
<section class="grid2" id="entities">{_entities_html(report)}</section>
<h2 id="rejects">Sample rejects</h2>
<div class="panel">{samples_html}</div>
<h2 id="files">Files with rejects</h2>
<div class="panel">{_files_html(report)}</div>
{_details_html(report)}
</main>
<footer>report.json holds the same figures for monitoring. Generated by news-ingest.</footer>
</body></html>
"""


# ---------------------------------------------------------------- progress


class Progress:
    """A one-line ticker on the terminal for long local runs; silent when the stream is not a TTY.

    The local FnApiRunner runs the whole pipeline inside `p.run()` and only returns its result (and metrics) at
    the end, so under `with beam.Pipeline() as p:` no live counters exist: the ticker then shows the elapsed
    time and the number of input files matched. Runners whose `p.run()` returns while the job runs (Dataflow,
    Flink) can `attach(result)` before `wait_until_finish()`, and the ticker adds files read and articles written
    from the live metrics.
    """

    def __init__(self, stream=None, interval: float = 5.0, files: int | None = None):
        self._stream = stream if stream is not None else sys.stdout
        self._interval = interval
        self._files = files
        self._result = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._shown = False

    @property
    def enabled(self) -> bool:
        try:
            return bool(self._stream.isatty())
        except (AttributeError, ValueError):
            return False

    def attach(self, result) -> None:
        """Poll this (running) PipelineResult's metrics from now on."""
        self._result = result

    def line(self) -> str:
        """The status text, e.g. `running 00:35 · 120 files read · 4,310 articles written`."""
        elapsed = int(time.monotonic() - self._started)
        parts = [f"running {elapsed // 60:02d}:{elapsed % 60:02d}"]
        live = metrics_from_result(self._result, live=True) if self._result is not None else {}
        if "files_read" in live:
            total = f"/{self._files:,}" if self._files is not None else ""
            parts.append(f"{live['files_read']:,}{total} files read")
        elif self._files is not None:
            parts.append(f"{self._files:,} input files")
        if "rows_written.articles" in live:
            parts.append(f"{live['rows_written.articles']:,} articles written")
        return " · ".join(parts)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._stream.write("\r" + self.line() + "\x1b[K")
            self._stream.flush()
            self._shown = True

    def start(self) -> Progress:
        self._started = time.monotonic()
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="news-ingest-progress", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._shown:
            self._stream.write("\r\x1b[K")  # leave the terminal clean for the summary
            self._stream.flush()
            self._shown = False

    def __enter__(self) -> Progress:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------- CLI


class UsageError(Exception):
    """A command-line mistake, reported as one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage block and exit; we want one line
        raise UsageError(message)


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date in YYYY-MM-DD form: {value!r}") from None


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number: {value!r}")
    return n


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="news-ingest report",
        description="Rebuild the run report (report.json and report.html under DIR/reports/run_date=D/) "
        "from a run's committed output.",
        epilog="Beam filesystem flags (e.g. --s3_endpoint_url, --s3_region_name) are passed to Apache Beam.",
    )
    parser.add_argument("output", metavar="DIR", help="The output folder of news-ingest (local, gs:// or s3://).")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--run-date",
        dest="run_date",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="The run to report on (default: the latest).",
    )
    which.add_argument(
        "--last",
        dest="last",
        type=_positive_int,
        metavar="N",
        default=None,
        help="Report on the latest run and add trends over the last N committed runs.",
    )
    return parser


def _use_filesystem_options(beam_args: list[str]) -> None:
    """Pass Beam's own flags (e.g. --s3_endpoint_url, --project) to FileSystems; anything else is a usage error."""
    if not beam_args:
        return
    from apache_beam.options.pipeline_options import PipelineOptions

    known = set(PipelineOptions([]).get_all_options())
    expects_value = False
    for token in beam_args:
        if token.startswith("--"):
            name = token[2:].split("=", 1)[0].replace("-", "_")
            if name not in known:
                raise UsageError(f"unrecognized arguments: {token}")
            expects_value = "=" not in token
        elif expects_value:
            expects_value = False
        else:
            raise UsageError(f"unrecognized arguments: {token}")
    FileSystems.set_options(PipelineOptions(beam_args))


def main(argv: Sequence[str] | None = None) -> int:
    """`news-ingest report DIR [--run-date D | --last N]`; returns the exit code (2 for usage errors)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args, beam_args = _parser().parse_known_args(argv)
        _use_filesystem_options(beam_args)
        output = args.output.rstrip("/") or "/"
        runs = committed_runs(output)
        if not runs and "://" not in output and not FileSystems.exists(output):
            raise UsageError(f"DIR {args.output!r}: no such folder")
        if args.run_date is not None:
            if args.run_date not in runs:
                raise ReportError(f"no committed run {args.run_date.isoformat()} in {output}")
            target = args.run_date
        elif runs:
            target = runs[-1]
        else:
            raise ReportError(f"no committed run in {output} (no {MANIFESTS}/run_date=*.json)")
        # Beam metrics, options and wall time exist only while the run is live: keep what the run recorded.
        previous = read_report(output, target) or {}
        report = build_report(
            output,
            target,
            metrics=previous.get("metrics"),
            options=previous.get("options"),
            wall_s=previous.get("wall_s"),
            warnings=previous.get("warnings"),
        )
        if args.last is not None:
            report["trends"] = trends(output, runs[-args.last :])
        json_path, html_path = write_report(output, target, report)
        status = "" if report["ok"] else " (records missing: read != articles + duplicates + rejects)"
        print(f"news-ingest report {target.isoformat()}{status}")
        print(f"  {json_path}")
        print(f"  {html_path}")
        return 0
    except UsageError as e:
        print(f"news-ingest report: error: {e}", file=sys.stderr)
        return 2
    except ReportError as e:
        print(f"news-ingest report: error: {e}", file=sys.stderr)
        return 1
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except Exception as e:  # noqa: BLE001 - the user interface is one line, not a traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"news-ingest report: error: {type(e).__name__}: {first}", file=sys.stderr)
        return 1


__all__ = [
    "Progress",
    "ReportError",
    "build_report",
    "committed_runs",
    "main",
    "metrics_from_result",
    "read_report",
    "render_html",
    "report_dir",
    "trends",
    "write_report",
]
