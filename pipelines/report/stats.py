"""The run report as a dict: what a run read, rejected, cleaned, deduplicated and found, from its committed files.

`build_report(output, run_date, ...)` computes the report from the run manifest (`OUT/_manifests/run_date=D.json`,
which lists the files this run committed) plus the run's Beam metrics and options; `pipelines.report.io` stores it
as `OUT/reports/run_date=D/report.json` and `report.html` (rendered by `pipelines.report.render`).

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
- `articles_per_language`: `[{"language", "articles"}]`, most articles first; `language` is an ISO 639-1 code or
  "und" (too short to tell; also files written before languages were detected)
- `stories` (int|null): story threads with articles in this run (rows of the stories dataset)
- `largest_stories` and `fastest_growing_stories` (lists|null): up to 10 stories each, `{"story_id", "title" (the
  canonical article's), "articles" (canonical articles in the story: earlier runs' plus this run's), "added"
  (articles and copies this run added), "earlier" (the story's articles in earlier runs), "growth" (this run's
  canonical articles / (earlier + 1)), "first_seen", "last_seen" (ISO timestamps), "sources" (number of sources
  this run)}`; largest ranks by `articles`, fastest-growing by `growth`, both then by `added` and story_id
- `warnings` (list of str): things to look at although the run succeeded (an input glob that matched nothing,
  repaired Unicode, files under --output skipped, truncated NER, unreadable stored signatures, ...)
- `files_with_rejects` (list|null): per input file that produced rejects or did not balance, up to 200,
  `{"path", "expected", "records", "rejects", "bytes", "gzip_members"}`; `expected` is counted from the file's
  bytes apart from the parser (null for runs that read no files)
- `sample_rejects`: up to 20 `[{"input_ref", "stage", "reason", "detail"}]`, drawn round-robin over
  (stage, reason) so every reason has an example, smallest input_ref first
- `sources`: one row per source, most articles first, then by name (the articles' `source`; a reject is
  attributed to its input_ref's URL host, else to its path's folder, as the read stage names sources; hosts the
  fetch stage recorded are listed even with nothing else): `{"source", "articles", "duplicates" (null when not
  produced), "rejected", "rejected_by_reason" (reason -> n), "extraction_failures" (rejects of stage extract or
  fetch), "records" (articles + duplicates + rejects), "extraction_failure_rate" (failures / records),
  "missing_date_rate" (share of articles with date_source "run"), "mean_words" (word_count per article),
  "removed_lines_per_article", "fetched", "unchanged"}`; a rate over nothing is null; `fetched`/`unchanged` come
  from the manifest's `counts.fetch_by_source` and are null when the fetch stage recorded nothing for the source
- `drift`: sources whose figures moved against the previous up to 7 committed runs (rule and thresholds in
  `pipelines.report.sources`), `[{"source", "records", "baseline_records", "baseline_runs" (run dates),
  "moved": [{"metric", "baseline", "current", "change"}]}]`; `metric` is extraction_failure_rate or
  missing_date_rate (`change` = current - baseline) or mean_words (`change` = current / baseline); empty when
  nothing moved or there is no history
- `trends` (list|null): only with `news-ingest report --last N`: per committed run, oldest first,
  `{"run_date", "read", "articles", "duplicates", "rejected", "reject_rate", "duplicate_rate"}`

Keys derived from a dataset are null when the run did not produce it (`removed_*`, `cluster_sizes` and
`articles_per_*` follow articles, `top_entities` entities, `duplicates_*` duplicates). `news-ingest report`
rebuilds everything from the committed files and carries `metrics`, `options` and `wall_s` over from the
report.json the run wrote, since those exist only while the run is live.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence

from apache_beam.io.filesystems import FileSystems

from pipelines.report.scan import article_stats, duplicate_stats, entity_stats, reject_stats, story_stats
from pipelines.report.sources import source_report
from transforms.write import MANIFESTS, read_manifest

REPORT_VERSION = 1
KNOWN_DATASETS = ("articles", "duplicates", "entities", "rejects", "signatures", "stories")
NAMESPACE = "news"

_MANIFEST_NAME = re.compile(r"run_date=(\d{4}-\d{2}-\d{2})\.json$")
_SECRET = re.compile(r"secret|password|passwd|token|credential|access_key|api_key|private", re.IGNORECASE)


class ReportError(Exception):
    """A report that cannot be built (no committed run), reported as one line."""


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


def rate(part: int | None, whole: int | None) -> float | None:
    """part / whole to 6 places; 0.0 for an empty whole, None when either is unknown (not produced)."""
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
        "reject_rate": rate(rejected or 0, read),
        "duplicate_rate": None if duplicates is None else rate(duplicates, kept),
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
    articles = article_stats(output, files["articles"]) if files["articles"] is not None else None
    matches = duplicate_stats(output, files["duplicates"]) if files["duplicates"] is not None else None
    entities = entity_stats(output, files["entities"]) if files["entities"] is not None else None
    stories = story_stats(output, files["stories"]) if files["stories"] is not None else None
    by_reason, by_stage, samples = reject_stats(output, files["rejects"] or [])
    metrics = {str(k): int(v) for k, v in sorted((metrics or {}).items())} if metrics is not None else None
    accounted = (head["articles"] or 0) + (head["duplicates"] or 0) + head["rejected"]
    sources, drift = source_report(output, run_date, manifest, committed_runs(output))
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
        "articles_per_language": None if articles is None else articles["articles_per_language"],
        "stories": None if stories is None else stories["stories"],
        "largest_stories": None if stories is None else stories["largest"],
        "fastest_growing_stories": None if stories is None else stories["fastest_growing"],
        "sample_rejects": samples,
        "files_with_rejects": manifest.get("counts", {}).get("files_with_rejects"),
        "sources": sources,
        "drift": drift,
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
