"""`news-ingest report DIR [--run-date D | --last N]`: rebuild a run's report from its committed output."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence

from apache_beam.io.filesystems import FileSystems

from pipelines.report.io import read_report, write_report
from pipelines.report.stats import ReportError, build_report, committed_runs, trends
from pipelines.s3 import share_botocore_loader
from transforms.write import MANIFESTS


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
    share_botocore_loader()
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
