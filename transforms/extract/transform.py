"""The extract stage's Beam code: RawArticle -> Article or a reject, HTML through a time-limited worker."""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam

from schemas.elements import Article, RawArticle
from transforms.common import count, reject, run_guarded
from transforms.extract.config import ExtractConfig
from transforms.extract.html import to_article
from transforms.extract.worker import borrow_extractor, return_extractor

STAGE = "extract"


class _ExtractFn(beam.DoFn):
    """RawArticle -> Article or a reject; one extraction worker per DoFn instance, borrowed from the idle pool."""

    def __init__(self, cfg: ExtractConfig):
        self._cfg = cfg

    def setup(self):
        self._extractor = borrow_extractor(self._cfg.timeout_s) if self._cfg.timeout_s else None

    def teardown(self):
        extractor, self._extractor = getattr(self, "_extractor", None), None
        if extractor is not None:
            return_extractor(extractor)

    def process(self, raw: RawArticle) -> Iterable:
        result = to_article(raw, self._cfg, self._extractor)
        if isinstance(result, Article):
            count(f"extracted.{result.content_source}")
            yield result
        else:
            reason, detail = result
            yield reject(raw.input_ref, STAGE, reason, detail, raw.content)


class Extract(beam.PTransform):
    """RawArticle -> {'articles': Article, 'rejects': Reject}."""

    def __init__(self, cfg: ExtractConfig = ExtractConfig()):
        super().__init__()
        self._cfg = cfg

    def expand(self, raw):
        articles, rejects = run_guarded(raw, "ExtractText", STAGE, _ExtractFn(self._cfg))
        return {"articles": articles, "rejects": rejects}
