"""The ingestion job: `build(p, cfg)` wires the stages, `run(argv)` parses, launches and summarises."""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, WorkerOptions

from pipelines import lock as run_lock
from pipelines import report as run_report
from pipelines import summary
from pipelines.options import IngestOptions, RunConfig, UsageError, help_parser, to_config
from pipelines.progress import Progress
from pipelines.runners import pin_offline_runner, private_tempdir
from pipelines.s3 import share_botocore_loader
from schemas.elements import FileTally
from transforms.chain import ArticleChain
from transforms.dedup import check_history
from transforms.entities import check_model
from transforms.feeds import FeedConfig, ReadFeeds, page_counts
from transforms.fetch import read_fetch_state
from transforms.read import ReadFiles, is_under
from transforms.write import (
    KNOWN_DATASETS,
    WriteDatasets,
    clear_refusal,
    committed_files,
    delete_tree,
    read_refusal,
    staging_dir,
)

MAX_LISTED_FILES = 200  # files with rejects listed in the manifest and report; the rest are counted


def _tally_row(tally: FileTally) -> dict:
    return dataclasses.asdict(tally)


def _listing_order(row: dict) -> tuple:
    # Unbalanced files first: a reader that lost records is what an operator must see.
    return row["expected"] == row["records"] + row["rejects"], row["path"]


class FirstFiles(beam.CombineFn):
    """The first `n` file rows in listing order, holding at most 2n rows at any time."""

    def __init__(self, n: int):
        self._n = n

    def create_accumulator(self):
        return []

    def _trim(self, rows: list) -> list:
        return sorted(rows, key=_listing_order)[: self._n] if len(rows) > 2 * self._n else rows

    def add_input(self, acc, row):
        acc.append(row)
        return self._trim(acc)

    def merge_accumulators(self, accumulators):
        return self._trim([row for acc in accumulators for row in acc])

    def extract_output(self, acc):
        return sorted(acc, key=_listing_order)[: self._n]


def _has_rejects_or_is_unbalanced(tally: FileTally) -> bool:
    return bool(tally.rejects) or not tally.balanced


def _input_counts(p: beam.Pipeline, files: dict | None, feeds: dict | None) -> dict:
    """Records read, counted apart from the readers that could lose them: per file from its bytes (FileTally),
    per feed item as fetched or rejected (a page unchanged since an earlier run is neither: it is counted apart,
    as `unchanged`). Plus the files matched and the files worth a look."""
    ones = []
    if files is not None:
        ones.append(files["tallies"] | "ExpectedPerFile" >> beam.Map(lambda t: t.expected))
    if feeds is not None:
        ones.append(
            (feeds["raw"], feeds["rejects"])
            | "FeedRecords" >> beam.Flatten()
            | "OnePerFeedItem" >> beam.Map(lambda _: 1)
        )
    if not ones:
        ones.append(p | "NoInput" >> beam.Create([0]))
    counts = {"records_read": ones | "AllExpected" >> beam.Flatten() | "CountRead" >> beam.CombineGlobally(sum)}
    if files is not None:
        tallies = files["tallies"]
        counts["files_matched"] = tallies | "CountFiles" >> beam.combiners.Count.Globally()
        counts["files_with_rejects"] = (
            tallies
            | "FilesWithRejects" >> beam.Filter(_has_rejects_or_is_unbalanced)
            | "TallyRows" >> beam.Map(_tally_row)
            # Bounded, not a list of every file: a day of many bad files must not fill one worker. (Not Top.Smallest:
            # it emits from finish_bundle, which Beam's DaskRunner drops.)
            | "FirstFiles" >> beam.CombineGlobally(FirstFiles(MAX_LISTED_FILES))
        )
    if feeds is not None:
        counts.update(page_counts(feeds["page_state"]))
    return counts


def _run_scoped(feeds: FeedConfig) -> FeedConfig:
    """The feed settings with a robots.txt scope of their own: this run's DoFns share robots.txt, no other run's."""
    if feeds.fetch.robots_scope:
        return feeds
    fetch = dataclasses.replace(feeds.fetch, robots_scope=uuid.uuid4().hex)
    return dataclasses.replace(feeds, fetch=fetch)


def build(p: beam.Pipeline, cfg: RunConfig):
    """Wire read -> the article chain -> write. Returns the manifest PCollection."""
    files = p | "ReadFiles" >> ReadFiles(cfg.inputs, cfg.read) if cfg.inputs else None
    feeds = None
    if cfg.feeds.feeds:
        # Validators of earlier run dates only (see read_fetch_state); small, so loaded here and shipped with the DoFns.
        validators = read_fetch_state(cfg.output, cfg.run_date)
        feeds = p | "ReadFeeds" >> ReadFeeds(_run_scoped(cfg.feeds), validators)
    sources = [s for s in (files, feeds) if s is not None]
    raw = [s["raw"] for s in sources] | "AllRaw" >> beam.Flatten()
    read_rejects = [s["rejects"] for s in sources] | "AllReadRejects" >> beam.Flatten()
    chain = raw | "Chain" >> ArticleChain(cfg)
    # The chain's datasets, with the read stage's rejects joining the chain's.
    datasets = {**chain, "rejects": (read_rejects, chain["rejects"]) | "AllRejects" >> beam.Flatten()}
    if feeds is not None:
        datasets["fetch_state"] = feeds["state"]
    return datasets | "Write" >> WriteDatasets(cfg.write, counts=_input_counts(p, files, feeds))


def _quiet_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.ERROR
    logging.getLogger().setLevel(level)
    for name in ("apache_beam", "trafilatura", "htmldate", "courlan", "charset_normalizer"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.CRITICAL)


def _check_inputs(cfg: RunConfig) -> list[str]:
    """Fail fast on a literal path that does not exist; warn on globs that match nothing; refuse a run that
    would read nothing at all and so replace a committed date with emptiness (unless --allow-empty)."""
    warnings, matched = [], 0
    for pattern in cfg.inputs:
        try:
            found = FileSystems.match([pattern])[0].metadata_list
        except Exception:  # noqa: BLE001 - Beam raises a bare error when the folder is missing
            found = []
        found = [m for m in found if not is_under(m.path, cfg.output)]
        matched += len(found)
        if not found:
            if any(c in pattern for c in "*?["):
                warnings.append(f"--input {pattern!r} matched no files")
            else:
                raise UsageError(f"--input {pattern!r}: no such file")
    if not matched and not cfg.feeds.feeds and not cfg.write.allow_empty:
        kept = committed_files(cfg.write, KNOWN_DATASETS)
        if kept:
            raise UsageError(
                f"no input file matched; run {cfg.run_date.isoformat()} already has {len(kept)} committed files, "
                "which an empty run would replace (check the globs and mounts, or pass --allow-empty)"
            )
    return warnings


def _run_streaming(options, cfg: RunConfig, started: float) -> int:
    if cfg.inputs:
        raise UsageError("--streaming polls feeds only; drop --input")
    pin_offline_runner(options)
    from pipelines.streaming import build_streaming

    with beam.Pipeline(options=options) as p:
        build_streaming(p, cfg)
    print(
        f"news-ingest: streaming stopped after {time.monotonic() - started:.1f}s; "
        f"per-window manifests are in {cfg.output}/_manifests/",
        file=sys.stderr,
    )
    return 0


def _run_batch(options, cfg: RunConfig, started: float) -> int:
    warnings = _check_inputs(cfg)
    # A damaged history file is skipped by the run (nothing is lost, some repeats may stay articles): name it.
    warnings += [
        f"stored signatures {path} are unreadable and skipped ({reason})" for path, reason in check_history(cfg.dedup)
    ]
    runner = pin_offline_runner(options)
    with run_lock.acquire(cfg.output, cfg.run_date, cfg.lock, options=options):
        stage = staging_dir(cfg.output, cfg.run_date)
        # Left behind by a crashed run of the same date; nothing in it was ever published.
        delete_tree(stage)
        clear_refusal(cfg.output, cfg.run_date)
        with private_tempdir(), Progress():
            with beam.Pipeline(options=options) as p:
                build(p, cfg)
        result = p.result
        wall = time.monotonic() - started
        refused = read_refusal(cfg.output, cfg.run_date)
        if refused is not None:
            clear_refusal(cfg.output, cfg.run_date)
            print(
                f"news-ingest: error: the run read no records, so run {cfg.run_date.isoformat()} keeps its "
                f"{refused.get('kept_files', 0)} committed files (check the inputs, or pass --allow-empty)",
                file=sys.stderr,
            )
            return 1
        metrics = run_report.metrics_from_result(result)
        warnings += summary.noteworthy(metrics)
        try:
            rep = run_report.build_report(
                cfg.output,
                cfg.run_date,
                wall_s=wall,
                metrics=metrics,
                warnings=warnings,
                options=options.get_all_options(drop_default=True),
            )
            run_report.write_report(cfg.output, cfg.run_date, rep)
        except Exception as e:  # noqa: BLE001 - a report failure must not fail a committed run
            warnings.append(f"report not written: {type(e).__name__}: {e}")
    return summary.finish(cfg, result, runner, wall, warnings)


def _configure(argv: list[str]) -> tuple[PipelineOptions, RunConfig]:
    help_parser().parse_known_args(argv)  # argparse validates types; PipelineOptions keeps the values
    options = PipelineOptions(argv)
    # Driver-side file access (checks, commit, summary, report) needs the same S3/GCS settings as workers.
    FileSystems.set_options(options)
    cfg = to_config(options.view_as(IngestOptions))
    if not cfg.verbose and not options.view_as(WorkerOptions).default_sdk_harness_log_level:
        # Worker processes (multi-processing, portable runners) log to the same terminal.
        options.view_as(WorkerOptions).default_sdk_harness_log_level = "ERROR"
    if not cfg.inputs and not cfg.feeds.feeds:
        raise UsageError("nothing to read: give --input, --feed or --feeds")
    try:
        # A missing model is a start-up error, never a surprise on the first article.
        check_model(cfg.entities)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return options, cfg


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point of `news-ingest` and `python -m pipelines.ingest`; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        return run_report.main(argv[1:])
    if any(a in ("-h", "--help") for a in argv):
        help_parser().print_help()
        return 0
    verbose = "--verbose" in argv
    _quiet_logging(verbose)
    share_botocore_loader()
    started = time.monotonic()
    try:
        options, cfg = _configure(argv)
        if cfg.streaming:
            return _run_streaming(options, cfg, started)
        return _run_batch(options, cfg, started)
    except UsageError as e:
        print(f"news-ingest: error: {e}", file=sys.stderr)
        return 2
    except run_lock.LockHeld as e:
        print(f"news-ingest: error: {e}", file=sys.stderr)
        return 4
    except SystemExit as e:  # argparse already printed its one-line message
        return int(e.code or 0)
    except KeyboardInterrupt:
        print("news-ingest: interrupted; the previous output is unchanged", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the user interface is one line, not a traceback
        if verbose:
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"news-ingest: error: {type(e).__name__}: {first} (run with --verbose for details)", file=sys.stderr)
        return 1


def _interrupted(signum, _frame):
    # A scheduler stops a job with SIGTERM: unwind like Ctrl-C, so the lock and temp folders are released.
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    """Console-script wrapper: exits with run()'s status."""
    signal.signal(signal.SIGTERM, _interrupted)
    code = run()
    # The run is complete by now: output committed, summary printed. Beam's multi-process runner can leave gRPC
    # threads behind that abort interpreter teardown now and then ("terminate called without an active exception",
    # exit -6), which would turn a good run into a failure for the scheduler. So run the exit handlers, flush, and
    # leave without the native teardown.
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


if __name__ == "__main__":
    main()
