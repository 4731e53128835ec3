"""The clean stage's Beam wiring: the Clean PTransform, learning each source's repeated lines, the cleaning DoFn."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import apache_beam as beam

from schemas.elements import Article, Removed
from transforms.clean.cleaner import clean_article
from transforms.clean.config import CleanConfig
from transforms.clean.rules import Rules, load_rules
from transforms.clean.text import learnable_keys
from transforms.common import count, reject, run_guarded
from transforms.language.detect import HINT_SHORT, HINT_TIE, OVERRIDDEN, Ranker, detect_language, load_ranker

STAGE = "clean"


class _DistinctUpTo(beam.CombineFn):
    """Distinct values counted up to a cap, so an accumulator never holds more than `cap` values."""

    def __init__(self, cap: int):
        self._cap = cap

    def create_accumulator(self):
        return set()

    def add_input(self, acc, value):
        if len(acc) < self._cap:
            acc.add(value)
        return acc

    def merge_accumulators(self, accumulators):
        merged: set = set()
        for acc in accumulators:
            merged |= acc
        # Any `cap` of them give the same count; the smallest keep the accumulator deterministic.
        return merged if len(merged) <= self._cap else set(sorted(merged)[: self._cap])

    def extract_output(self, acc):
        return len(acc)


def _line_keys(article: Article):
    # The article id, not the record: exact copies of one story must not make its lines look like boilerplate.
    ident = article.article_id
    for key in sorted(learnable_keys(article.text)):
        yield (article.source, key), ident


def _recurring(item, n: int) -> bool:
    return item[1] >= n


def _source_and_key(item):
    (source, key), _ = item
    return source, key


def _as_set(source, keys):
    return source, frozenset(keys)


class _LearnRepeatedLines(beam.PTransform):
    """Article -> (source, frozenset of learn keys seen in >= n distinct articles of that source)."""

    def __init__(self, min_articles: int):
        super().__init__()
        self._n = min_articles

    def expand(self, articles):
        return (
            articles
            | "LineKeys" >> beam.FlatMap(_line_keys)
            | "CountArticlesPerLine" >> beam.CombinePerKey(_DistinctUpTo(self._n))
            | "KeepRecurring" >> beam.Filter(_recurring, self._n)
            | "BySource" >> beam.Map(_source_and_key)
            | "GroupBySource" >> beam.GroupByKey()
            | "AsSets" >> beam.MapTuple(_as_set)
        )


class _CleanFn(beam.DoFn):
    """Article -> cleaned Article with its language, or a reject when nothing is left of it; counts removals by
    rule family and languages."""

    def __init__(self, cfg: CleanConfig):
        self._cfg = cfg
        self._rules: Rules | None = None
        self._ranker: Ranker | None = None

    def setup(self):
        self._rules = load_rules(self._cfg.extra_rules_yaml, self._cfg.extra_rules or "extra rules")
        self._ranker = load_ranker()  # once per process (lru_cache): some runners call setup() per bundle

    def process(self, article: Article, learned: Mapping[str, frozenset] | None = None):
        lines = learned.get(article.source, frozenset()) if learned else frozenset()
        cleaned, result = clean_article(article, self._rules, lines, self._cfg.now)
        for family, n in _family_counts(result.removed).items():
            count(f"clean.removed.{family}", n)
        if result.learned_skipped:
            count("clean.learned_skipped")
        if cleaned is None:
            detail = f"nothing left after removing {len(result.removed)} boilerplate line(s)"
            yield reject(article.input_ref, STAGE, "empty_after_clean", detail, article.text)
            return
        count("clean.articles")
        yield with_language(cleaned, article.language, self._ranker, self._cfg)


def with_language(article: Article, hint: str | None, ranker: Ranker, cfg: CleanConfig) -> Article:
    """The article with its language detected on its cleaned text, `hint` (the metadata language) as a hint."""
    decision = detect_language(article.text, ranker, hint=hint, title=article.title, cfg=cfg.language)
    count(f"language.{decision.language}")
    if decision.how in (HINT_SHORT, HINT_TIE):
        count("language.from_hint")
    elif decision.how == OVERRIDDEN:
        count("language.hint_overridden")
    return dataclasses.replace(article, language=decision.language)


def _family_counts(removed: Iterable[Removed]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in removed:
        family = r.rule_id.split(".", 1)[0]
        counts[family] = counts.get(family, 0) + 1
    return counts


class Clean(beam.PTransform):
    """Article -> {'articles': cleaned Article, 'rejects': Reject}: named rules, learned lines, text metadata."""

    def __init__(self, cfg: CleanConfig = CleanConfig()):
        super().__init__()
        self._cfg = cfg

    def expand(self, articles):
        side = ()
        if self._cfg.min_articles_for_learned:
            learned = articles | "LearnRepeatedLines" >> _LearnRepeatedLines(self._cfg.min_articles_for_learned)
            side = (beam.pvalue.AsDict(learned),)
        cleaned, rejects = run_guarded(articles, "CleanText", STAGE, _CleanFn(self._cfg), *side)
        return {"articles": cleaned, "rejects": rejects}
