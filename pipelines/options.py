"""The command line: `news-ingest`'s flags and their translation into one typed RunConfig of frozen stage settings."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import lock
from pipelines.lock import LockConfig
from transforms import clean, dedup, entities, feeds
from transforms.clean import CleanConfig
from transforms.dedup import DedupConfig
from transforms.entities import EntityConfig
from transforms.extract import ExtractConfig
from transforms.feeds import FeedConfig
from transforms.read import ReadConfig
from transforms.write import WriteConfig

# RunConfig field -> the module that owns its flags: add_arguments(parser) and config_from_options(opts, ...).
STAGES = {"feeds": feeds, "clean": clean, "dedup": dedup, "entities": entities, "lock": lock}


class IngestOptions(PipelineOptions):
    """Flags of `news-ingest`; any other flag is passed on to Beam."""

    @classmethod
    def _add_argparse_args(cls, parser):
        g = parser.add_argument_group("input and output")
        g.add_argument(
            "--input",
            action="append",
            default=None,
            help="File glob to read (repeatable): .txt, .html/.htm, .jsonl/.json, any of them .gz; "
            "local paths or gs:// / s3:// URLs; ** matches across folders.",
        )
        g.add_argument("--output", default=None, help="Output folder (local, gs:// or s3://). Required.")
        g.add_argument(
            "--run-date",
            "--run_date",
            dest="run_date",
            default=None,
            help="The run's name, YYYY-MM-DD (default: today in UTC). Rerunning a date replaces its files.",
        )
        g.add_argument(
            "--max-file-mb",
            "--max_file_mb",
            dest="max_file_mb",
            type=float,
            default=ReadConfig.max_bytes / 2**20,
            help="Files larger than this (after gunzip) become 'too_large' rejects "
            f"(default {ReadConfig.max_bytes / 2**20:g}).",
        )
        g.add_argument(
            "--write-shards",
            "--write_shards",
            dest="write_shards",
            type=int,
            default=WriteConfig.shards,
            help=f"Parquet files per dataset partition and run (default {WriteConfig.shards}; raise for very large "
            "days).",
        )
        g.add_argument(
            "--allow-empty",
            "--allow_empty",
            dest="allow_empty",
            action="store_true",
            default=False,
            help="Let a run that reads no records replace a run date that already has data (default: refuse, "
            "so that a glob matching nothing or an unmounted folder never wipes a committed day).",
        )
        g.add_argument("--verbose", action="store_true", default=False, help="Show Beam's logs and full tracebacks.")
        for module in STAGES.values():
            module.add_arguments(parser)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything `build()` needs, resolved from the command line once."""

    inputs: tuple[str, ...]
    output: str
    run_date: dt.date
    verbose: bool
    read: ReadConfig
    extract: ExtractConfig
    write: WriteConfig
    feeds: FeedConfig = FeedConfig()
    clean: CleanConfig = CleanConfig()
    dedup: DedupConfig = DedupConfig()
    entities: EntityConfig = EntityConfig()
    lock: LockConfig = LockConfig()

    @property
    def streaming(self) -> bool:
        return self.feeds.streaming


class UsageError(Exception):
    """A command-line mistake, reported as one line."""


# Run dates are partition names and the anchor of date arithmetic (lookback, trends): a plausible range keeps
# every later step out of OverflowError territory.
MIN_RUN_DATE, MAX_RUN_DATE = dt.date(1900, 1, 1), dt.date(2100, 12, 31)
MAX_FILE_MB = 100_000.0  # 100 GB: beyond this a "file" is a mistake, and int() of inf would overflow
MAX_WRITE_SHARDS = 10_000


def help_parser() -> argparse.ArgumentParser:
    """An argparse parser with the product's flags, for --help and validation."""
    parser = argparse.ArgumentParser(
        prog="news-ingest",
        description="Ingest news articles into deduplicated, entity-tagged, Hive-partitioned Parquet.",
        epilog="Any other --flag is passed to Apache Beam (e.g. --runner, --direct_num_workers, --project). "
        "`news-ingest report DIR` rebuilds a run report.",
    )
    IngestOptions._add_argparse_args(parser)
    return parser


def resolve_inputs(inputs) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(globs to match, folders among them): a local folder given as --input means every file below it."""
    patterns, folders = [], []
    for pattern in inputs:
        local = pattern[len("file://") :] if pattern.startswith("file://") else pattern
        if "://" not in local and os.path.isdir(local):
            folder = local.rstrip(os.sep) or os.sep
            folders.append(folder)
            pattern = os.path.join(folder, "**")
        patterns.append(pattern)
    return tuple(patterns), tuple(folders)


def to_config(opts: IngestOptions, now: dt.datetime | None = None) -> RunConfig:
    """Validate options and build the per-stage configs."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if not opts.output:
        raise UsageError("--output is required")
    try:
        run_date = dt.date.fromisoformat(opts.run_date) if opts.run_date else now.date()
    except ValueError:
        raise UsageError(f"--run-date must be YYYY-MM-DD, got {opts.run_date!r}") from None
    if not MIN_RUN_DATE <= run_date <= MAX_RUN_DATE:
        raise UsageError(f"--run-date must be between {MIN_RUN_DATE} and {MAX_RUN_DATE}, got {run_date}")
    if not 0 < opts.max_file_mb <= MAX_FILE_MB:  # also false for NaN
        raise UsageError(f"--max-file-mb must be positive and at most {MAX_FILE_MB:g}")
    if not 1 <= opts.write_shards <= MAX_WRITE_SHARDS:
        raise UsageError(f"--write-shards must be between 1 and {MAX_WRITE_SHARDS}")
    output = opts.output.rstrip("/") or "/"
    inputs, folders = resolve_inputs(opts.input or ())
    try:
        stages = {
            name: module.config_from_options(opts, run_date=run_date, output=output, now=now)
            for name, module in STAGES.items()
        }
    except (ValueError, OverflowError) as e:
        raise UsageError(str(e)) from None
    return RunConfig(
        inputs=inputs,
        output=output,
        run_date=run_date,
        verbose=bool(opts.verbose),
        # The run's own output (reports, manifests, Parquet) is never read back as input.
        read=ReadConfig(max_bytes=int(opts.max_file_mb * 2**20), exclude=(output,), folders=folders),
        # --extract-timeout is registered by the feeds module; it limits every HTML page, files included.
        extract=ExtractConfig(timeout_s=stages["feeds"].extract_timeout_s, now=now),
        write=WriteConfig(
            output=output,
            run_date=run_date,
            ingested_at=now,
            shards=opts.write_shards,
            allow_empty=bool(opts.allow_empty),
        ),
        **stages,
    )
