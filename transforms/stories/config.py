"""Stories-stage settings."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class StoriesConfig:
    """How a story is summarised in the stories dataset."""

    top_entities: int = 5  # entities listed per story, by the number of its articles that mention them

    def __post_init__(self):
        if not 0 <= self.top_entities <= 100:
            raise ValueError(f"stories: top_entities must be between 0 and 100, got {self.top_entities}")
