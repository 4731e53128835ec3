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
from transforms.entities.gazetteer import DEFAULT_GAZETTEER, gazetteer_patterns
from transforms.entities.model import load_nlp, model_for_language, primary_language

STAGE = "entities"


class _NerBatchFn(beam.DoFn):
    """list[Article] -> Article with entities by its language's model (or a reject); each model loads once per
    worker process, when the first article in its language comes."""

    def __init__(self, cfg: EntityConfig, patterns: Sequence[dict] | None):
        """`patterns` are a user's gazetteer file, read on the driver; None means the built-in gazetteer, which
        each worker process builds from the installed data packages (shipping its 35k patterns with the DoFn
        would cost every bundle a 2.5 MB unpickling on runners that send the DoFn per task, such as Dask)."""
        self._cfg = cfg
        self._patterns = None if patterns is None else list(patterns)
        self._nlps: dict[str, object] = {}
        # One Shared per model: a Shared holds one object, and acquiring it with another tag would replace it.
        self._shared = {model: shared.Shared() for _, model in cfg.models}
        shipped = "builtin" if self._patterns is None else self._patterns
        self._tag = stable_hash(json.dumps([cfg.gazetteer_mode, shipped], sort_keys=True))
        self._ranker = None

    def setup(self):
        self._nlps = {}

    def _nlp(self, model: str):
        if model not in self._nlps:
            cfg, patterns = self._cfg, self._patterns

            def load():
                return load_nlp(model, gazetteer_patterns(cfg) if patterns is None else patterns, cfg.gazetteer_mode)

            # One model per worker process: some runners (Dask) call setup() for every bundle.
            self._nlps[model] = self._shared[model].acquire(load, tag=f"{model}:{self._tag}")
        return self._nlps[model]

    def _language(self, a: Article) -> str | None:
        if a.language is not None:
            return a.language
        # Only outside the pipeline (clean sets every article's language): detect it rather than assume one.
        from transforms.language import LanguageConfig, detect_language, load_ranker

        self._ranker = self._ranker or load_ranker()
        count("entities.language_detected_here")
        return detect_language(a.text, self._ranker, title=a.title, cfg=LanguageConfig()).language

    def process(self, batch: list[Article]) -> Iterator:
        cfg = self._cfg
        batch = list(batch)
        # Everything is computed before anything is yielded, so a failure never half-emits a batch.
        out: dict[int, object] = {}
        by_model: dict[str, list[int]] = {}
        for i, a in enumerate(batch):
            language = self._language(a)
            if a.language is None:
                batch[i] = a = dataclasses.replace(a, language=language)
            model = model_for_language(language, cfg.models)
            if model is None:
                count(f"entities.no_model.{primary_language(language) or 'und'}")
                out[i] = dataclasses.replace(a, entities=())
            else:
                by_model.setdefault(model, []).append(i)
        for model, todo in sorted(by_model.items()):
            found_each = annotate_each(self._nlp(model), [batch[i].text for i in todo], cfg)
            for i, found in zip(todo, found_each, strict=True):
                a = batch[i]
                if isinstance(found, Exception):
                    detail = f"{type(found).__name__}: {found}"[:500]
                    out[i] = reject(a.input_ref, STAGE, "ner_failed", detail, a.text)
                    continue
                if ner_truncated(a.text, cfg.max_chars):
                    count("entities.truncated")
                out[i] = with_entities(a, found, cfg.max_chars)
            _count_batch(len(todo), [out[i] for i in todo])
        yield from (out[i] for i in range(len(batch)))


def _count_batch(n_todo: int, out: list) -> None:
    """Counters of one model's share of a batch: articles through NER and their mentions."""
    n_done = n_todo - sum(isinstance(o, beam.pvalue.TaggedOutput) for o in out)
    count("entities.articles", n_done)
    count("entities.mentions", sum(len(o.entities) for o in out if isinstance(o, Article)))


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
        # A user's file is read here, on the driver, so workers need not see it; the built-in gazetteer is built
        # by each worker from its installed packages.
        cfg = self._cfg
        patterns = None if cfg.gazetteer == DEFAULT_GAZETTEER else gazetteer_patterns(cfg)
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
