"""Extract-stage settings."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ExtractConfig:
    """Extract-stage settings."""

    favor_precision: bool = False
    # Hard per-page limit on HTML extraction, enforced in a worker process; None runs trafilatura in-process.
    timeout_s: float | None = 30.0
