"""The run report: statistics of a committed run as report.json, a self-contained report.html, and its CLI."""

from pipelines.progress import Progress  # the ticker moved to the command line; kept here for old imports
from pipelines.report.charts import CHARTS
from pipelines.report.cli import main
from pipelines.report.io import read_report, report_dir, write_report
from pipelines.report.render import render_html
from pipelines.report.scan import SAMPLE_REJECTS, TOP_ENTITIES
from pipelines.report.stats import ReportError, build_report, committed_runs, metrics_from_result, trends

__all__ = [
    "CHARTS",
    "SAMPLE_REJECTS",
    "TOP_ENTITIES",
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
