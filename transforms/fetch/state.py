"""Fetch state across runs: the ETag/Last-Modified of every URL fetched, read back from earlier run dates."""

from __future__ import annotations

import datetime as dt
import logging
import re

from schemas.elements import FetchState
from transforms.fetch.config import Page

_LOG = logging.getLogger(__name__)
DATASET = "fetch_state"
_RUN_DIR = re.compile(r"/run_date=(\d{4}-\d{2}-\d{2})/")

# Only this many days of state are read: a URL not fetched for a month is simply fetched whole again, and the
# state a run loads (and ships to its workers) stays bounded however long the output has been growing.
STATE_DAYS = 30

# Validators of one URL: (ETag, Last-Modified), either may be None.
Validators = tuple[str | None, str | None]


def state_of(page: Page, fetched_at: dt.datetime) -> FetchState:
    """The fetch-state row of a page (200) or an unchanged answer (304)."""
    return FetchState(page.url, page.etag, page.last_modified, fetched_at, page.status)


def latest_validators(rows, before: dt.date) -> dict[str, Validators]:
    """{url: validators} from (run date, row dict) pairs: the latest fetch of each URL among run dates before
    `before` (never `before` itself: a rerun of a date must not be told its own pages are unchanged, or they would
    vanish from the output it replaces). URLs whose latest fetch had no validators are left out."""
    best: dict[str, tuple[tuple, Validators]] = {}
    for day, row in rows:
        if day >= before or not row.get("url"):
            continue
        at = row.get("fetched_at")
        key = (day, at.timestamp() if at else 0.0)
        if row["url"] not in best or key >= best[row["url"]][0]:
            best[row["url"]] = (key, (row.get("etag"), row.get("last_modified")))
    return {url: v for url, (_, v) in best.items() if v[0] or v[1]}


def read_fetch_state(output: str, run_date: dt.date) -> dict[str, Validators]:
    """The validators stored by the runs of the STATE_DAYS dates before `run_date` under `output` (driver side;
    one row per URL)."""
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    pattern = FileSystems.join(output, DATASET, "run_date=*", "*.parquet")
    try:
        paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception:  # noqa: BLE001 - Beam raises a bare error when the folder does not exist yet
        return {}
    rows = []
    for path in paths:
        m = _RUN_DIR.search(path.replace("\\", "/"))
        if not m or not 0 < (run_date - dt.date.fromisoformat(m.group(1))).days <= STATE_DAYS:
            continue
        try:
            with FileSystems.open(path) as f:
                table = pq.read_table(f, columns=["url", "etag", "last_modified", "fetched_at"])
        except Exception as e:  # noqa: BLE001 - a damaged state file only costs unconditional fetches
            _LOG.warning("fetch state %s is unreadable and skipped: %s", path, e)
            continue
        day = dt.date.fromisoformat(m.group(1))
        rows += [(day, row) for row in table.to_pylist()]
    return latest_validators(rows, run_date)
