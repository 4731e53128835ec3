"""Tests for per-article consistency in canonicalize: common labels, majority labels, missed mentions found again,
capitals lines matched to the body, entity ids, and the small repairs (dates, demonyms, headings, names)."""

from conftest import spans, table

from transforms import entities as E
from transforms.entities.canonical import KnownNames, caps_spans

# A stand-in gazetteer (known_names' shape: name -> (label, id, tier)); the names are only test inputs.
KNOWN = KnownNames.of(
    {
        "Italy": ("GPE", "iso3166-1:IT", "country"),
        "Ukraine": ("GPE", "iso3166-1:UA", "country"),
        "Rome": ("GPE", "geonames:3169070", "city"),
        "Rugby": ("GPE", "geonames:2638978", "minor"),
    }
)


def test_model_labels_map_to_the_common_set_and_are_kept():
    text = "Emmanuel Macron a parlé à Paris de la Coupe du monde."
    raw = spans(text, ("Emmanuel Macron", "PER"), ("Paris", "LOC"), ("Coupe du monde", "MISC"))
    got = [(m.canonical, m.label, m.model_label) for m in E.canonicalize(text, raw)]
    assert got == [("Emmanuel Macron", "PERSON", "PER"), ("Paris", "LOC", "LOC"), ("Coupe du monde", "MISC", "MISC")]


def test_one_name_gets_its_majority_label():
    text = "Apex said on Monday. Apex shares fell. Analysts at Apex were surprised."
    raw = spans(text, ("Apex", "ORG"), ("Monday", "DATE"), ("Apex", "ORG"), ("Apex", "PERSON"))
    assert {(m.canonical, m.label) for m in E.canonicalize(text, raw) if m.canonical == "Apex"} == {("Apex", "ORG")}


def test_missed_mentions_are_found_again_without_overlap():
    text = "Talks with Jane Okafor began. Okafor left the Okafor Foundation early. Later Okafor spoke."
    raw = spans(text, ("Jane Okafor", "PERSON"), ("Okafor Foundation", "ORG"))
    got = table(E.canonicalize(text, raw))
    assert got == [
        ("Jane Okafor", "PERSON", "Jane Okafor"),
        ("Okafor", "PERSON", "Jane Okafor"),  # the model missed it: the surname found again
        ("Okafor Foundation", "ORG", "Okafor Foundation"),  # not split by the surname
        ("Okafor", "PERSON", "Jane Okafor"),
    ]
    added = [m for m in E.canonicalize(text, raw) if m.text == "Okafor"]
    assert all(m.model_label == "" for m in added)


def test_found_again_only_as_whole_case_sensitive_words():
    text = "Zorvia signed. The Zorvians and zorvia fans cheered; ZorviaCorp did not."
    raw = spans(text, ("Zorvia", "ORG"))
    assert [m.start for m in E.canonicalize(text, raw)] == [0]


def test_a_longer_name_found_again_replaces_the_shorter_one_inside_it():
    text = "He spoke at the Varna Defence Forum. The Varna Defence Forum closed."
    raw = spans(text, ("Varna", "GPE"), ("Varna Defence Forum", "ORG"))
    assert table(E.canonicalize(text, raw)) == [("Varna Defence Forum", "ORG", "Varna Defence Forum")] * 2


def test_capitals_headline_gets_entities_consistent_with_the_body():
    text = (
        "RUGBY UNION - CUTTITTA BACK FOR ITALY AFTER A YEAR\n"
        "ROME 1996-12-06\n"
        "Italy recalled Marcello Cuttitta on Friday. Cuttitta said he was happy."
    )
    raw = spans(
        text,
        ("RUGBY UNION", "ORG"),  # the model on capitals: wrong, and nothing confirms it
        ("ROME", "GPE"),
        ("Italy", "GPE"),
        ("Marcello Cuttitta", "PERSON"),
        ("Friday", "DATE"),
        ("Cuttitta", "PERSON"),
    )
    got = [(m.text, m.label, m.canonical, m.entity_id) for m in E.canonicalize(text, raw, known=KNOWN)]
    assert got[:4] == [
        ("CUTTITTA", "PERSON", "Marcello Cuttitta", None),
        ("ITALY", "GPE", "Italy", "iso3166-1:IT"),
        ("ROME", "GPE", "Rome", "geonames:3169070"),  # a dateline: the gazetteer's name and id
        ("Italy", "GPE", "Italy", "iso3166-1:IT"),
    ]
    assert "RUGBY UNION" not in {m.text for m in E.canonicalize(text, raw, known=KNOWN)}
    # A "minor" gazetteer place is never added from capitals ("RUGBY" is a word of the headline).
    assert "RUGBY" not in {m.text for m in E.canonicalize(text, raw, known=KNOWN)}


def test_caps_spans_are_headlines_and_datelines_not_lone_acronyms():
    text = "SOCCER - JAPAN WIN\nAL-AIN , United Arab Emirates\nThe NATO summit and the EU met."
    assert [text[s:e] for s, e in caps_spans(text)] == ["SOCCER - JAPAN WIN", "AL-AIN"]


def test_acronyms_the_model_found_are_kept():
    text = "NATO said on Monday it would meet."
    raw = spans(text, ("NATO", "ORG"), ("Monday", "DATE"))
    assert table(E.canonicalize(text, raw, known=KNOWN)) == [("NATO", "ORG", "NATO"), ("Monday", "DATE", "Monday")]


def test_place_names_the_gazetteer_knows_get_its_id():
    text = "Troops left Ukraine for Rome. Ukraine's army and Rome FC."
    raw = spans(text, ("Ukraine", "GPE"), ("Rome", "GPE"), ("Ukraine", "GPE"), ("Rome FC", "ORG"))
    got = {(m.canonical, m.label, m.entity_id) for m in E.canonicalize(text, raw, known=KNOWN)}
    assert got == {
        ("Ukraine", "GPE", "iso3166-1:UA"),
        ("Rome", "GPE", "geonames:3169070"),
        ("Rome FC", "ORG", None),
    }


def test_nationality_tagged_as_place_becomes_norp():
    text = "Ukrainian officials met in Ukraine."
    raw = spans(text, ("Ukrainian", "GPE"), ("Ukraine", "GPE"))
    assert table(E.canonicalize(text, raw, known=KNOWN))[0] == ("Ukrainian", "NORP", "Ukrainian")
    # Without a country to form it from, the model's label stands.
    assert table(E.canonicalize(text, raw))[0] == ("Ukrainian", "GPE", "Ukrainian")


def test_a_date_cut_at_its_commas_is_one_date():
    text = "It happened on Wednesday, 26 March 2025, and 12 people came on Friday, 3 said."
    raw = spans(
        text,
        ("Wednesday", "DATE"),
        ("26", "CARDINAL"),
        ("March 2025", "DATE"),
        ("12", "CARDINAL"),
        ("Friday", "DATE"),
        ("3", "CARDINAL"),
    )
    dates = [m.text for m in E.canonicalize(text, raw) if m.label == "DATE"]
    assert dates == ["Wednesday, 26 March 2025", "Friday"]


def test_a_subheading_word_is_not_a_name():
    text = "Officials met.\nBattlefield outlook\nThe talks went on.\nKowalczyk outlook\nKowalczyk was there."
    raw = spans(text, ("Battlefield", "PERSON"), ("Kowalczyk", "PERSON"), ("Kowalczyk", "PERSON"))
    assert [m.text for m in E.canonicalize(text, raw)] == ["Kowalczyk", "Kowalczyk"]


def test_a_person_with_a_lower_case_surname_found_elsewhere_is_joined_and_repaired():
    text = "He met Donald trump at noon. Trump later spoke. Trump left."
    raw = spans(text, ("Donald", "PERSON"), ("Trump", "ORG"), ("Trump", "ORG"))
    got = {(m.text, m.label, m.canonical) for m in E.canonicalize(text, raw)}
    assert got == {
        ("Donald trump", "PERSON", "Donald Trump"),
        ("Trump", "PERSON", "Donald Trump"),
    }


def test_consistency_is_deterministic_whatever_the_span_order():
    text = "RUGBY - OKAFOR FOR ITALY\nJane Okafor and Apex met in Rome. Okafor and Apex left Italy."
    raw = spans(text, ("Jane Okafor", "PERSON"), ("Apex", "ORG"), ("Rome", "GPE"), ("Okafor", "PERSON"))
    first = E.canonicalize(text, raw, known=KNOWN)
    assert first == E.canonicalize(text, list(reversed(raw)), known=KNOWN)
    assert {m.text for m in first} >= {"OKAFOR", "ITALY", "Okafor", "Apex"}


def test_a_place_the_model_called_a_person_is_the_person_the_article_names():
    text = "Russian President Vladimir) Putin spoke. Vladimir Putin then left."
    first = text.index("Vladimir")
    raw = [(first, first + 8, "GPE", "geonames:473247", "PERSON")]
    raw += spans(text, ("Putin", "PERSON"), ("Vladimir Putin", "PERSON"))
    got = [(m.text, m.label, m.canonical) for m in E.canonicalize(text, raw)]
    assert got[0] == ("Vladimir", "PERSON", "Vladimir Putin")
    # The model never called it a person: the place stays.
    raw[0] = (first, first + 8, "GPE", "geonames:473247", "")
    assert [(m.text, m.label) for m in E.canonicalize(text, raw)][0] == ("Vladimir", "GPE")


def test_places_with_scores_in_a_results_line_are_teams():
    text = "Milwaukee 5 Seattle 3\nJapan 2 Syria 1\nSeattle is rainy. Milwaukee won 5 games."
    raw = spans(
        text,
        ("Milwaukee", "GPE"),
        ("Seattle", "GPE"),
        ("Japan", "GPE"),
        ("Syria", "GPE"),
        ("Seattle", "GPE"),
        ("Milwaukee", "GPE"),
    )
    raw[2] = raw[2][:3] + ("iso3166-1:JP",)
    raw[3] = raw[3][:3] + ("iso3166-1:SY",)
    got = {(m.canonical, m.label) for m in E.canonicalize(text, raw)}
    # Two results-line votes against one prose vote: the city teams are ORG; countries stay places.
    assert got == {("Milwaukee", "ORG"), ("Seattle", "ORG"), ("Japan", "GPE"), ("Syria", "GPE")}
