"""Storing the report: OUT/reports/run_date=D/report.json and report.html, and reading report.json back."""

from __future__ import annotations

import datetime as dt
import json

from apache_beam.io.filesystems import FileSystems

from pipelines.report.render import render_html
from transforms.write import write_json

REPORTS = "reports"


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
