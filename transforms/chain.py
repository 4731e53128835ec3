"""The article chain, one composite for batch and streaming: extract, clean, deduplicate, recognise entities, and
summarise story threads."""

from __future__ import annotations

import apache_beam as beam

from transforms.clean import Clean
from transforms.dedup import Dedup
from transforms.entities import ExtractEntities
from transforms.extract import Extract
from transforms.stories import Stories, StoriesConfig


class ArticleChain(beam.PTransform):
    """RawArticle -> {'articles', 'duplicates', 'signatures', 'stories', 'rejects'}.

    Every raw record ends in exactly one of articles, duplicates or rejects. `cfg` is the RunConfig (its
    extract, clean, dedup and entities settings are used).
    """

    def __init__(self, cfg):
        super().__init__()
        self._cfg = cfg

    def expand(self, raw):
        cfg = self._cfg
        extracted = raw | "Extract" >> Extract(cfg.extract)
        cleaned = extracted["articles"] | "Clean" >> Clean(cfg.clean)
        deduped = cleaned["articles"] | "Dedup" >> Dedup(cfg.dedup)
        tagged = deduped["articles"] | "Entities" >> ExtractEntities(cfg.entities)
        stories = {
            "articles": tagged["articles"],
            "duplicates": deduped["duplicates"],
            "stored_stories": deduped["stored_stories"],
        } | "Stories" >> Stories(getattr(cfg, "stories", StoriesConfig()))
        rejects = (
            extracted["rejects"],
            cleaned["rejects"],
            deduped["rejects"],
            tagged["rejects"],
        ) | "ChainRejects" >> beam.Flatten()
        return {
            "articles": tagged["articles"],
            "duplicates": deduped["duplicates"],
            "signatures": deduped["signatures"],
            "stories": stories,
            "rejects": rejects,
        }
