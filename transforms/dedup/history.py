"""Stored signatures of previous runs: which days, a driver-side check, and reading them back as graph nodes."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator

import numpy as np

from transforms.dedup.config import DedupConfig
from transforms.dedup.keys import by_shard, make_uid, node_key, shards_of
from transforms.dedup.messages import Nodes
from transforms.dedup.profiles import Profiles

_LOG = logging.getLogger(__name__)

# Paths are listed and opened through Beam's FileSystems (imported where used), so gs:// and the like work too.


def _no_count(name: str, n: int = 1) -> None:
    """The default counter of `read_history` outside a pipeline."""


def _signature_dir(output: str, day: dt.date) -> str:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(output, "signatures", f"run_date={day.isoformat()}")


def history_dates(cfg: DedupConfig) -> list[dt.date]:
    """The previous run dates whose signatures are loaded: [run_date - lookback, run_date - 1], never run_date.

    Days before `date.min` do not exist and are skipped, so no run date makes this raise OverflowError."""
    if not cfg.output or cfg.run_date is None:
        return []
    days = min(cfg.lookback_days, (cfg.run_date - dt.date.min).days)
    return [cfg.run_date - dt.timedelta(days=d) for d in range(days, 0, -1)]


def _is_id(value) -> bool:
    try:
        return isinstance(value, str) and len(value) == 16 and int(value, 16) >= 0
    except ValueError:
        return False


# Only these are read, so extra columns in a signatures file do no harm.
_HISTORY_COLUMNS = ("article_id", "content_hash", "minhash", "published_at")
# Written since story threads; a file without them (or with another type) is read as before: no profile (its
# pairs are decided on the estimated similarity), no anchors, and each article its own story.
_OPTIONAL_COLUMNS = ("story_id", "profile", "anchors", "lead_start", "lead_length")


def history_schema_problem(schema) -> str | None:
    """Why a signatures file with this Arrow schema cannot be read back (one line), or None when it can.

    Only what the reader relies on is checked (strings, a list of integers, a timestamp), not the exact types of
    SIGNATURES: other integer widths load the same, and out-of-range values are counted as incompatible rows."""
    import pyarrow as pa

    def is_str(t):
        return pa.types.is_string(t) or pa.types.is_large_string(t)

    def is_int_list(t):
        return (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_integer(t.value_type)

    wanted = {
        "article_id": is_str,
        "content_hash": is_str,
        "minhash": is_int_list,
        "published_at": pa.types.is_timestamp,
    }
    problems = []
    for name, fits in wanted.items():
        found = schema.get_all_field_indices(name)
        if not found:
            problems.append(f"no {name} column")
        elif len(found) > 1:
            problems.append(f"{len(found)} {name} columns")
        elif not fits(schema.field(found[0]).type):
            problems.append(f"{name} is {schema.field(found[0]).type}")
    return "; ".join(problems) or None


def _one_line(error: Exception) -> str:
    """An exception as a short single line: Arrow's messages can run over several lines of internal detail."""
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _history_paths(output: str, day: dt.date) -> list[str]:
    """The signature files stored for one run date, sorted (none when the folder does not exist)."""
    from apache_beam.io.filesystems import FileSystems

    pattern = FileSystems.join(_signature_dir(output, day), "*.parquet")
    try:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception:  # noqa: BLE001 - Beam raises a bare error when the folder does not exist (first runs)
        return []


def _open(path: str):
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def check_history(cfg: DedupConfig) -> list[tuple[str, str]]:
    """(path, one-line reason) for each signatures file of the lookback window that a run cannot read.

    Driver-side, before a run: only footers are read, so it costs one small read per file. It never raises; a
    file listed here is skipped by the run (counted as `dedup.history_unreadable`), which can only miss
    duplicates of older articles, never drop an article. Damage inside the data pages, behind an intact footer,
    is found only when the run reads the file (and skipped the same way)."""
    import pyarrow.parquet as pq

    bad = []
    for day in history_dates(cfg):
        for path in _history_paths(cfg.output, day):
            try:
                with _open(path) as f:
                    problem = history_schema_problem(pq.read_metadata(f).schema.to_arrow_schema())
            except Exception as e:  # noqa: BLE001 - any damage is reported, none is fatal
                problem = _one_line(e)
            if problem:
                bad.append((path, problem))
    return bad


def _load_history_file(path: str, cfg: DedupConfig) -> tuple[Nodes, int]:
    """The comparable stored signatures of one file as history nodes, and how many rows were incompatible.
    Raises on a file that cannot be read."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with _open(path) as f:
        pfile = pq.ParquetFile(f)
        names = set(pfile.schema_arrow.names)
        table = pfile.read(columns=list(_HISTORY_COLUMNS) + [c for c in _OPTIONAL_COLUMNS if c in names])
    problem = history_schema_problem(table.select(list(_HISTORY_COLUMNS)).schema)
    if problem:
        raise ValueError(problem)
    none = Nodes(np.zeros(0, np.uint64), [], np.zeros((0, cfg.num_perm), np.uint16), Profiles.empty())
    # A signature of another length or value range was made with other settings and cannot be compared.
    fits = pc.fill_null(pc.equal(pc.list_value_length(table["minhash"]), cfg.num_perm), False)
    good = table.filter(fits)
    flat = pc.list_flatten(good["minhash"].combine_chunks()).to_numpy(zero_copy_only=False)
    if not good.num_rows or flat.min() < 0 or flat.max() > 0xFFFF:
        return none, table.num_rows
    sigs = flat.astype(np.uint16).reshape(good.num_rows, cfg.num_perm)
    uids, keys, rows = [], [], []
    columns = (good[c].to_pylist() for c in ("article_id", "content_hash", "published_at"))
    stories = _optional(good, "story_id", pa.types.is_string)
    profiles = _optional(good, "profile", pa.types.is_binary)
    anchors = _optional(good, "anchors", pa.types.is_binary)
    starts = _optional(good, "lead_start", pa.types.is_integer)
    lengths = _optional(good, "lead_length", pa.types.is_integer)
    items, anchor_rows, leads = [], [], []
    for i, (aid, chash, published) in enumerate(zip(*columns, strict=True)):
        if _is_id(aid) and _is_id(chash):
            uid = make_uid(aid, "", chash, cfg.shards, history=True)
            story = stories[i] if _is_id(stories[i]) else aid
            uids.append(uid)
            keys.append(node_key(uid, aid, chash, published, 0, True, int(story, 16)))
            rows.append(i)
            items.append(_values(profiles[i], "<u4", np.uint16))  # the low 16 bits, as profile_items keeps
            anchor_rows.append(_values(anchors[i], "<u8", np.uint64))
            leads.append((_clip(starts[i], cfg.max_lead_start), _clip(lengths[i], cfg.lead_max_words)))
    nodes = Nodes(np.array(uids, dtype=np.uint64), keys, sigs[rows], Profiles.of_rows(items, anchor_rows, leads))
    return nodes, table.num_rows - len(rows)


def _values(data: bytes | None, stored: str, dtype) -> np.ndarray:
    """Stored little-endian integers; damaged bytes (not whole values) count as none: decided as before."""
    width = np.dtype(stored).itemsize
    if not data or len(data) % width:
        return np.zeros(0, dtype)
    return np.frombuffer(data, dtype=stored).astype(dtype)


def _clip(value: int | None, most: int) -> int:
    """A stored count kept within 0..most (a missing or damaged one is 0: unknown)."""
    return min(max(value or 0, 0), most)


def _optional(table, name: str, fits) -> list:
    """An optional column's values, or Nones when the file has no such column (or one of another type)."""
    if name in table.column_names and fits(table.schema.field(name).type):
        return table[name].to_pylist()
    return [None] * table.num_rows


def read_history(day: dt.date, cfg: DedupConfig, count: Callable[..., None] = _no_count) -> Iterator[tuple[int, Nodes]]:
    """Stored signatures of one previous run date as per-shard node batches (nothing when none were written);
    `count(name, n)` records what was loaded, incompatible or unreadable.

    A file that cannot be read is skipped, counted and logged with its path rather than failing the run: stored
    signatures only turn today's repeats into duplicates, so without them some repeats stay articles, and
    nothing is lost. A damaged file would otherwise fail every run of its lookback window."""
    for path in _history_paths(cfg.output, day):
        try:
            nodes, incompatible = _load_history_file(path, cfg)
        except Exception as e:  # noqa: BLE001 - truncated, garbage, empty or wrong-schema files all land here
            count("dedup.history_unreadable")
            _LOG.warning("dedup: skipped unreadable signatures file %s (%s)", path, _one_line(e))
            continue
        if incompatible:
            count("dedup.history_incompatible", incompatible)
        if not nodes.keys:
            continue
        count("dedup.history_loaded", len(nodes.keys))
        for shard, part in by_shard(shards_of(nodes.uids)):
            yield shard, nodes.take(part)
