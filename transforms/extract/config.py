"""Extract-stage settings."""

from __future__ import annotations

import dataclasses
import datetime as dt

# How far past the run's clock a published or updated date may be and still be trusted: time zones written wrong
# and servers with fast clocks are common, a story dated next week is not news but a typo or a scheduled post.
MAX_CLOCK_SKEW = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class ExtractConfig:
    """Extract-stage settings."""

    favor_precision: bool = False
    # Hard per-page limit on HTML extraction, enforced in a worker process; None runs trafilatura in-process.
    timeout_s: float | None = 30.0
    # The run's time (aware): dates later than now + MAX_CLOCK_SKEW are dropped. None: no check.
    now: dt.datetime | None = None


def in_future(value: dt.datetime | None, now: dt.datetime | None) -> bool:
    """True when `value` is later than `now` + MAX_CLOCK_SKEW; never when either is unknown."""
    if value is None or now is None:
        return False
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)  # a naive run time is UTC, as naive dates in inputs are
    return value > now + MAX_CLOCK_SKEW
