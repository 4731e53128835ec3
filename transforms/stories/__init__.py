"""Stories stage: story threads (ids given by dedup) summarised per run into the stories dataset."""

from transforms.stories.aggregate import Member, aggregate, member_of_article, member_of_duplicate, story_of_article
from transforms.stories.config import StoriesConfig
from transforms.stories.transform import Stories

__all__ = [
    "Member",
    "Stories",
    "StoriesConfig",
    "aggregate",
    "member_of_article",
    "member_of_duplicate",
    "story_of_article",
]
