"""The Stories PTransform: a run's articles and duplicates grouped by story id into Story rows."""

from __future__ import annotations

import apache_beam as beam

from schemas.elements import Story
from transforms.common import count
from transforms.stories.aggregate import Member, aggregate, member_of_article, member_of_duplicate
from transforms.stories.config import StoriesConfig


def _story(keyed, top_entities: int):
    story_id, grouped = keyed
    row = aggregate(story_id, grouped["members"], sum(grouped["stored"]), top_entities)
    if row is None:
        return
    count("stories.written")
    if row.started_here:
        count("stories.new")
    yield row


class Stories(beam.PTransform):
    """{'articles': Article (after entities), 'duplicates': Duplicate, 'stored_stories': (story_id, n)} -> Story,
    one per story with an article or duplicate in the run (per window when streaming)."""

    def __init__(self, cfg: StoriesConfig = StoriesConfig()):
        super().__init__()
        self._cfg = cfg

    def expand(self, inputs: dict):
        members = (
            inputs["articles"] | "ArticleMembers" >> beam.Map(member_of_article).with_output_types(tuple[str, Member]),
            inputs["duplicates"]
            | "DuplicateMembers" >> beam.Map(member_of_duplicate).with_output_types(tuple[str, Member]),
        ) | "AllMembers" >> beam.Flatten()
        grouped = {"members": members, "stored": inputs["stored_stories"]} | "GroupStories" >> beam.CoGroupByKey()
        return grouped | "Aggregate" >> beam.FlatMap(_story, self._cfg.top_entities).with_output_types(Story)
