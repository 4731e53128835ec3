"""The report dict as one self-contained HTML page, rendered from templates/report.html.j2 with autoescaping."""

from __future__ import annotations

import functools
import json
import re
from typing import NamedTuple

import jinja2

from pipelines.report.charts import figures
from pipelines.report.stats import rate

TOP_TABLE_ROWS = 20
REJECT_ALERT_RATE = 0.05  # the page flags a run above this; monitoring picks its own threshold


class Cell(NamedTuple):
    """One table cell: its text, right-aligned when numeric, monospace when a reference, a link when href is set."""

    value: object
    num: bool = False
    ref: bool = False
    href: str | None = None


def _thousands(value) -> str:
    return f"{value:,}"


def _num(value) -> str:
    return "not produced" if value is None else f"{value:,}"


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipelines.report", "templates"),
        # Every {{ value }} is HTML-escaped: source names, reject details and paths come from the crawled data.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # A missing value shows as nothing (e.g. data-value="" of a dataset the run did not produce), not "None".
        finalize=lambda value: "" if value is None else value,
    )
    env.filters.update(thousands=_thousands, num=_num, pct=_pct)
    return env


def _source_rows(report: dict) -> list[list[Cell]]:
    n_articles = report["counts"]["articles"] or 0
    return [
        [Cell(r["source"]), Cell(_thousands(r["articles"]), True), Cell(_pct(rate(r["articles"], n_articles)), True)]
        for r in (report.get("articles_per_source") or [])[:TOP_TABLE_ROWS]
    ]


def _language_rows(report: dict) -> list[list[Cell]]:
    n_articles = report["counts"]["articles"] or 0
    return [
        [Cell(r["language"]), Cell(_thousands(r["articles"]), True), Cell(_pct(rate(r["articles"], n_articles)), True)]
        for r in (report.get("articles_per_language") or [])[:TOP_TABLE_ROWS]
    ]


_METRICS = {
    "extraction_failure_rate": "extraction failure rate",
    "missing_date_rate": "missing-date rate",
    "mean_words": "words per article",
}


def _figure(value, places: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{places}f}"


def _moved_text(m: dict) -> str:
    if m["metric"] == "mean_words":
        return f"{_METRICS[m['metric']]} {_figure(m['baseline'])} → {_figure(m['current'])} (×{m['change']:.2f})"
    return f"{_METRICS.get(m['metric'], m['metric'])} {_pct(m['baseline'])} → {_pct(m['current'])}"


def _drift_items(report: dict) -> list[dict]:
    return [
        {
            "source": d["source"],
            "moved": "; ".join(_moved_text(m) for m in d["moved"]),
            "against": f"{d['records']:,} records this run, {d['baseline_records']:,} in the previous "
            f"{len(d['baseline_runs'])} run{'s' if len(d['baseline_runs']) != 1 else ''}",
        }
        for d in report.get("drift") or []
    ]


def _health_rows(report: dict) -> list[list[Cell]]:
    moved = {
        d["source"]: ", ".join(_METRICS.get(m["metric"], m["metric"]) for m in d["moved"])
        for d in report.get("drift") or []
    }
    return [
        [
            Cell(r["source"]),
            Cell(_num(r["articles"]), True),
            Cell(_num(r["duplicates"]), True),
            Cell(_thousands(r["rejected"]), True),
            Cell(" · ".join(f"{k} {v:,}" for k, v in r["rejected_by_reason"].items())),
            Cell(_thousands(r["extraction_failures"]), True),
            Cell(_pct(r["extraction_failure_rate"]), True),
            Cell(_pct(r["missing_date_rate"]), True),
            Cell(_figure(r["mean_words"]), True),
            Cell(_figure(r["removed_lines_per_article"], 2), True),
            Cell("" if r["fetched"] is None else _thousands(r["fetched"]), True),
            Cell("" if r["unchanged"] is None else _thousands(r["unchanged"]), True),
            Cell(moved.get(r["source"], "")),
        ]
        for r in report.get("sources") or []
    ]


def _removed_rows(report: dict) -> list[list[Cell]]:
    return [
        [Cell(r["rule_id"]), Cell(_thousands(r["lines"]), True), Cell(_thousands(r["articles"]), True)]
        for r in (report.get("removed_by_rule") or [])[:TOP_TABLE_ROWS]
    ]


def _reject_rows(report: dict) -> list[list[Cell]]:
    """Rejects per stage and reason, most first within a stage, each linking to its first sample row."""
    first_sample: dict[tuple[str, str], int] = {}
    for i, s in enumerate(report.get("sample_rejects") or [], 1):
        first_sample.setdefault((s["stage"], s["reason"]), i)
    return [
        [
            Cell(stage),
            Cell(reason),
            Cell(_thousands(n), True),
            Cell("example", href=f"#reject-{first_sample[(stage, reason)]}")
            if (stage, reason) in first_sample
            else Cell(""),
        ]
        for stage, reasons in (report["counts"].get("rejected_by_stage") or {}).items()
        for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _dataset_rows(report: dict) -> list[list[Cell]]:
    return [
        [
            Cell(name),
            Cell("yes" if d["produced"] else "not produced by this run"),
            Cell(d["files"], True),
            Cell("" if d["rows"] is None else _thousands(d["rows"]), True),
        ]
        for name, d in report["datasets"].items()
    ]


def _story_rows(stories: list[dict] | None) -> list[list[Cell]]:
    return [
        [
            Cell(s["title"] or s["story_id"]),
            Cell(_thousands(s["articles"]), True),
            Cell(_thousands(s["added"]), True),
            Cell(_thousands(s["earlier"]), True),
            Cell(_figure(s["growth"], 2), True),
            Cell(_thousands(s["sources"]), True),
            Cell((s["first_seen"] or "")[:10]),
        ]
        for s in stories or []
    ]


def _entity_tables(report: dict) -> list[dict]:
    return [
        {
            "label": label,
            # An element id from a label the NER model chose: keep it a plain token.
            "id": "entities-" + re.sub(r"[^A-Za-z0-9_-]", "_", label),
            "rows": [
                [Cell(r["entity"]), Cell(_thousands(r["articles"]), True), Cell(_thousands(r["mentions"]), True)]
                for r in rows
            ],
        }
        for label, rows in (report.get("top_entities") or {}).items()
    ]


def _trend_rows(report: dict) -> list[list[Cell]] | None:
    if report.get("trends") is None:
        return None
    return [
        [
            Cell(p["run_date"]),
            Cell(_thousands(p["read"]), True),
            Cell(_num(p["articles"]), True),
            Cell(_num(p["duplicates"]), True),
            Cell(_thousands(p["rejected"]), True),
            Cell(_pct(p["reject_rate"]), True),
            Cell(_pct(p["duplicate_rate"]), True),
        ]
        for p in report["trends"]
    ]


def _file_rows(report: dict) -> list[list[Cell]]:
    return [
        [
            Cell(f["path"], ref=True),
            Cell(_thousands(f["expected"]), True),
            Cell(_thousands(f["records"]), True),
            Cell(_thousands(f["rejects"]), True),
            Cell("yes" if f["expected"] == f["records"] + f["rejects"] else "NO"),
        ]
        for f in report.get("files_with_rejects") or []
    ]


def render_html(report: dict) -> str:
    """The report as one self-contained HTML page: inline CSS and SVG, no scripts, no external resources."""
    options, metrics, wall = report.get("options"), report.get("metrics"), report.get("wall_s")
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            report=report,
            counts=report["counts"],
            wall_time=None if wall is None else f"{wall:,.1f}",
            reject_alert=(report["reject_rate"] or 0) > REJECT_ALERT_RATE,
            figures=figures(report),
            source_rows=_source_rows(report),
            language_rows=_language_rows(report),
            health_rows=_health_rows(report),
            drift_items=_drift_items(report),
            removed_rows=_removed_rows(report),
            reject_rows=_reject_rows(report),
            dataset_rows=_dataset_rows(report),
            entity_tables=_entity_tables(report),
            largest_rows=_story_rows(report.get("largest_stories")),
            growing_rows=_story_rows(report.get("fastest_growing_stories")),
            trend_rows=_trend_rows(report),
            file_rows=_file_rows(report),
            option_rows=None if options is None else [[Cell(k), Cell(json.dumps(v))] for k, v in options.items()],
            metric_rows=None if metrics is None else [[Cell(k), Cell(_thousands(v), True)] for k, v in metrics.items()],
        )
    )
