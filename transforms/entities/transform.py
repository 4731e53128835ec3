"""The entity stage's Beam code: batches of articles through the model loaded once per worker process."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence

import apache_beam as beam
from apache_beam.utils import shared

from schemas.elements import Article, Reject, stable_hash
from transforms.common import REJECTS, Batch, TaggedParDo, count, reject
from transforms.entities.annotate import annotate_each, ner_truncated, with_entities
from transforms.entities.config import EntityConfig
from transforms.entities.gazetteer import gazetteer_patterns
from transforms.entities.model import load_nlp, serves_language

STAGE = "entities"


class _NerBatchFn(beam.DoFn):
    """list[Article] -> Article with entities (or a reject); the model loads once per DoFn instance."""

    def __init__(self, cfg: EntityConfig, patterns: Sequence[dict]):
        self._cfg = cfg
        self._patterns = list(patterns)
        self._nlp = None
        self._shared = shared.Shared()
        self._tag = stable_hash(json.dumps([cfg.model, cfg.gazetteer_mode, self._patterns], sort_keys=True))

    def setup(self):
        cfg, patterns = self._cfg, self._patterns
        # One model per worker process: some runners (Dask) call setup() for every bundle.
        self._nlp = self._shared.acquire(lambda: load_nlp(cfg.model, patterns, cfg.gazetteer_mode), tag=self._tag)

    def process(self, batch: list[Article]) -> Iterator:
        cfg = self._cfg
        # Everything is computed before anything is yielded, so a failure never half-emits a batch.
        out: list = []
        todo: list[Article] = []
        for a in batch:
            if serves_language(a.language, cfg.languages):
                todo.append(a)
            else:
                count("entities.skipped_language")
                out.append(dataclasses.replace(a, entities=()))
        for a, found in zip(todo, annotate_each(self._nlp, [a.text for a in todo], cfg), strict=True):
            if isinstance(found, Exception):
                out.append(reject(a.input_ref, STAGE, "ner_failed", f"{type(found).__name__}: {found}"[:500], a.text))
                continue
            if ner_truncated(a.text, cfg.max_chars):
                count("entities.truncated")
            out.append(with_entities(a, found, cfg.max_chars))
        _count_batch(todo, out)
        yield from out


def _count_batch(todo: list[Article], out: list) -> None:
    """Counters of one batch: articles through NER, their mentions, and articles of assumed language."""
    n_done = len(todo) - sum(isinstance(o, beam.pvalue.TaggedOutput) for o in out)
    count("entities.articles", n_done)
    count("entities.mentions", sum(len(o.entities) for o in out if isinstance(o, Article)))
    if any(a.language is None for a in todo):
        count("entities.language_assumed", sum(a.language is None for a in todo))


def _batch_failures_to_rejects(failure) -> Iterator[Reject]:
    """An unexpected failure of a whole batch: one internal_error reject per article, so none is lost."""
    batch, (_, exc_repr, _) = failure
    for a in batch:
        count(f"rejected.{STAGE}.internal_error")
        yield Reject.of(a.input_ref, STAGE, "internal_error", str(exc_repr)[:2000])


class ExtractEntities(beam.PTransform):
    """Article -> {'articles': Article with entities, 'rejects': Reject}."""

    def __init__(self, cfg: EntityConfig = EntityConfig()):
        super().__init__()
        self._cfg = cfg

    def expand(self, articles):
        patterns = gazetteer_patterns(self._cfg)  # read here, on the driver: workers need not see the file
        result = (
            articles
            # Fixed sizes: adaptive sizing trims per-batch overhead, which is nil next to ~0.1 s of NER per
            # article, and would make batches depend on timings.
            | "Batch" >> Batch(self._cfg.batch_size)
            | "Recognise" >> TaggedParDo(_NerBatchFn(self._cfg, patterns), REJECTS, dead_letter="failed")
        )
        failed = result["failed"] | "RecogniseFailures" >> beam.FlatMap(_batch_failures_to_rejects)
        rejects = (result[REJECTS], failed) | "RecogniseRejects" >> beam.Flatten()
        return {"articles": result["main"], "rejects": rejects}
