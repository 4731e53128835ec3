"""The article chain, one composite for batch and streaming: extract, clean, deduplicate, recognise entities."""

from __future__ import annotations

import apache_beam as beam

from transforms.clean import Clean
from transforms.dedup import Dedup
from transforms.entities import ExtractEntities
from transforms.extract import Extract


class ArticleChain(beam.PTransform):
    """RawArticle -> {'articles', 'duplicates', 'signatures', 'rejects'}.

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
            "rejects": rejects,
        }
