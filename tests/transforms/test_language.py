"""Tests of language detection (transforms/language), the clean stage setting it, and cleaning in every script."""

from __future__ import annotations

import dataclasses
import time

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.elements import Article, RawArticle
from transforms.clean import LEARNED_RULE, Clean, CleanConfig, clean_text, learn_key, learnable_keys, load_rules
from transforms.clean.text import display_width, word_count
from transforms.language import (
    AGREED,
    DETECTED,
    HINT_SHORT,
    HINT_TIE,
    OVERRIDDEN,
    TOO_SHORT,
    UND,
    LanguageConfig,
    decide,
    detect_language,
    iso639_1,
    letter_weight,
    load_ranker,
    sample,
)

RUNNER = "pipelines.runners.OfflineDirectRunner"

# Written for these tests (not taken from any evaluation set): one news-like paragraph per language.
TEXTS = {
    "en": "The city council voted on Wednesday to close two libraries and cut bus services, despite protests.",
    "fr": "Le conseil municipal a voté mercredi la fermeture de deux bibliothèques malgré les protestations.",
    "de": "Der Stadtrat hat am Mittwoch beschlossen, zwei Bibliotheken zu schließen und Buslinien zu kürzen.",
    "es": "El ayuntamiento votó el miércoles el cierre de dos bibliotecas y recortes en el servicio de autobuses.",
    "it": "Il consiglio comunale ha votato mercoledì la chiusura di due biblioteche nonostante le proteste.",
    "ru": "Городской совет в среду проголосовал за закрытие двух библиотек, несмотря на протесты жителей.",
    "zh": "市议会周三投票决定关闭两座图书馆并削减公交服务，尽管遭到居民抗议。",
    "ja": "市議会は水曜日、住民の抗議にもかかわらず、図書館二館の閉鎖を可決した。",
    "ar": "صوت مجلس المدينة يوم الأربعاء على إغلاق مكتبتين رغم احتجاجات السكان.",
}


@pytest.fixture(scope="module")
def ranker():
    return load_ranker()


# ------------------------------------------------------------------------------------------ codes and sizes


@pytest.mark.parametrize(
    "tag, code",
    [
        ("en", "en"),
        ("en-US", "en"),
        ("EN_gb", "en"),
        (" fr-CA ", "fr"),
        ("fra", "fr"),
        ("ger", "de"),
        ("deu", "de"),
        ("iw", "he"),
        ("nb", "no"),
        ("zh-Hant-TW", "zh"),
        ("arz", "ar"),
        ("zz", None),
        ("english", None),
        ("", None),
        (None, None),
        ("12", None),
        ("ü", None),
        ("en" * 1000, None),
    ],
)
def test_iso639_1(tag, code):
    assert iso639_1(tag) == code


def test_letter_weight_counts_wide_letters_three_times():
    assert letter_weight("abc 123 !!") == 3
    assert letter_weight("政府宣布") == 12
    assert letter_weight("😀😀 \u200b") == 0


def test_sample_is_bounded_and_drops_addresses():
    s = sample("Read it at https://example.com/x or mail desk@example.org, @handle #tag. " + "x" * 5000, None, 100)
    assert len(s) <= 100 and "example" not in s and "handle" not in s
    assert sample("Body text", "Headline", 50).startswith("Headline\n")
    assert sample("Headline\nBody text", "Headline", 50) == "Headline\nBody text"
    assert len(sample("b" * 10_000, "t" * 10_000, 100)) == 100


# ------------------------------------------------------------------------------------------ decision rules


@pytest.mark.parametrize(
    "ranking, hint, enough, expected",
    [
        ([("de", 0.9), ("en", 0.05)], None, True, ("de", DETECTED)),
        ([("de", 0.9), ("en", 0.05)], "de", True, ("de", AGREED)),
        ([("de", 0.9), ("en", 0.05)], "en", True, ("de", OVERRIDDEN)),
        ([("bs", 0.5), ("hr", 0.4), ("sr", 0.1)], "hr", True, ("hr", HINT_TIE)),
        ([("bs", 0.5), ("hr", 0.2), ("sr", 0.1)], "hr", True, ("bs", OVERRIDDEN)),
        ([("bs", 0.5), ("hr", 0.4)], "fr", True, ("bs", OVERRIDDEN)),
        ((), "fr", False, ("fr", HINT_SHORT)),
        ((), None, False, (UND, TOO_SHORT)),
    ],
)
def test_decide(ranking, hint, enough, expected):
    d = decide(ranking, hint, enough, LanguageConfig().hint_ratio)
    assert (d.language, d.how) == expected


@pytest.mark.parametrize("lang", sorted(TEXTS))
def test_detects_each_language(ranker, lang):
    d = detect_language(TEXTS[lang], ranker)
    assert (d.language, d.how) == (lang, DETECTED)


def test_metadata_is_a_hint_not_the_truth(ranker):
    assert detect_language(TEXTS["de"], ranker, hint="en-US").language == "de"  # a CMS default, contradicted
    assert detect_language(TEXTS["de"], ranker, hint="de-AT").how == AGREED
    assert detect_language("Breaking news", ranker, hint="en").language == "en"  # too short: the hint
    assert detect_language("Breaking news", ranker, hint="not-a-language").language == UND
    assert detect_language("Breaking news", ranker).language == UND


def test_title_helps_a_short_body(ranker):
    d = detect_language("Mehr dazu später.", ranker, title="Der Stadtrat schließt zwei Bibliotheken in Berlin")
    assert d.language == "de"


@pytest.mark.parametrize(
    "text",
    ["", "   \n\t  ", "😀🎉🔥" * 30, "1234 5678 — 90 %", "\ufffd\ufffd\ufffd" * 50, "\u200b" * 100],
)
def test_hostile_input_is_und(ranker, text):
    assert detect_language(text, ranker).language == UND


def test_repaired_invalid_unicode_still_detects(ranker):
    raw = RawArticle(input_ref="x", source="s", content=TEXTS["fr"] + "\udcff\ud800 suite", content_type="text")
    assert "repaired_unicode:content" in raw.flags
    assert detect_language(raw.content, ranker).language == "fr"


def test_one_megabyte_text_reads_a_bounded_prefix(ranker):
    seen = []

    def recording(text):
        seen.append(len(text))
        return ranker(text)

    huge = (TEXTS["es"] + "\n") * 10_000
    assert len(huge) > 1_000_000
    start = time.perf_counter()
    d = detect_language(huge, recording)
    assert d.language == "es"
    assert seen == [LanguageConfig().max_chars]
    assert time.perf_counter() - start < 1.0


def test_detector_never_downloads(ranker, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("language detection tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    load_ranker.cache_clear()
    try:
        assert detect_language(TEXTS["it"], load_ranker()).language == "it"
    finally:
        load_ranker.cache_clear()


# ------------------------------------------------------------------------------------------ learned lines, any script

# Footers in several scripts: spaceless (Chinese, Japanese, Thai), RTL (Arabic, Hebrew), Cyrillic, Hangul.
FOOTERS = {
    "zh": "本文版权归本报所有，未经授权不得转载。",
    "ja": "この記事の無断転載を禁じます。",
    "th": "สงวนลิขสิทธิ์ตามพระราชบัญญัติลิขสิทธิ์",
    "ar": "جميع الحقوق محفوظة للصحيفة ولا يجوز النقل",
    "he": "כל הזכויות שמורות לעיתון ואין להעתיק",
    "ru": "Все права защищены. Перепечатка запрещена.",
    "ko": "무단 전재 및 재배포 금지 저작권자 신문",
}


@pytest.mark.parametrize("lang", sorted(FOOTERS))
def test_learn_key_accepts_footers_in_every_script(lang):
    assert learn_key(FOOTERS[lang]) is not None


def test_learn_key_counts_words_and_width_per_script():
    assert word_count("本文版权归本报所有") == 4  # 9 ideographs, about 2 a word
    assert word_count("ข่าวนี้สงวนลิขสิทธิ์") >= 3
    assert word_count("Top 10 政府宣布新政策") == 5  # "Top", "10", and 6 ideographs as 3 words
    assert display_width("政府宣布") == 8
    for short in ("要点", "新闻速递", "ニュース", "تحليل", "Главное"):  # subheadings: never learned
        assert learn_key(short) is None
    assert learn_key("「本报记者：这是一句被反复引用的话」") is None  # quotes are content


def test_learn_key_ignores_bidi_marks_and_compatibility_forms():
    line = FOOTERS["ar"]
    assert learn_key("\u200f" + line + "\u200e") == learn_key(line)
    assert learn_key(line.replace("جميع", "ﺟﻤﻴﻊ")) == learn_key(line)  # Arabic presentation forms
    assert learn_key("ＡＢＣ ｎｅｗｓ ａｌｌ ｒｉｇｈｔｓ") == learn_key("abc news all rights")
    assert learn_key("ABC news all rights") == learn_key("abc  news ALL rights")


def _cjk_story(i: int, footer: str) -> Article:
    body = (
        f"市政府周三宣布，将在未来{i + 2}年内新建{i + 5}座公园，并扩建地铁网络。\n"
        f"官员表示，该计划预计耗资{i + 10}亿元，资金主要来自地方财政。\n"
        f"{footer}"
    )
    return Article(input_ref=f"z{i}", source="bao.example", text=body, url=f"https://bao.example/{i}")


def test_clean_learns_a_repeated_chinese_footer():
    stories = [_cjk_story(i, FOOTERS["zh"]) for i in range(3)]
    with TestPipeline(runner=RUNNER) as p:
        out = p | beam.Create(stories) | Clean(CleanConfig(min_articles_for_learned=3))
        got = out["articles"] | beam.Map(
            lambda a: (a.input_ref, FOOTERS["zh"] in a.text, [r.rule_id for r in a.removed], a.language)
        )
        assert_that(got, equal_to([(f"z{i}", False, [LEARNED_RULE], "zh") for i in range(3)]))


@pytest.mark.parametrize("lang", sorted(FOOTERS))
def test_learned_footer_is_removed_in_every_script(lang):
    lead = TEXTS.get(lang, TEXTS["en"])
    result = clean_text(f"{lead}\n{FOOTERS[lang]}", load_rules(), frozenset({learn_key(FOOTERS[lang])}))
    assert FOOTERS[lang] not in result.text and lead in result.text
    assert learnable_keys(f"{lead}\n{FOOTERS[lang]}") >= {learn_key(FOOTERS[lang])}


def test_every_packaged_rule_says_which_languages_it_covers():
    rules = load_rules()
    every = rules.block + rules.line + rules.menu + rules.prefix + rules.inline
    assert every and all(r.languages for r in every)
    coverage = rules.coverage()
    assert "en" in coverage["engagement"] and {"de", "fr"} <= set(coverage["engagement"])
    with pytest.raises(ValueError, match="languages must be"):
        load_rules("rules:\n  - id: x.y\n    pattern: foo\n    languages: english\n", "extra.yaml")


# ------------------------------------------------------------------------------------------ the clean stage


def test_clean_sets_every_articles_language_and_counts_it():
    arts = [
        Article(input_ref="de", source="s", text=TEXTS["de"], language="en"),  # mislabelled by metadata
        Article(input_ref="fr", source="s", text=TEXTS["fr"]),
        Article(input_ref="short", source="s", text="Kurz notiert.", language="de-DE"),
        Article(input_ref="tiny", source="s", text="Kurz notiert."),
    ]
    p = TestPipeline(runner=RUNNER)
    out = p | beam.Create(arts) | Clean(CleanConfig(min_articles_for_learned=0))
    got = out["articles"] | beam.Map(lambda a: (a.input_ref, a.language))
    assert_that(got, equal_to([("de", "de"), ("fr", "fr"), ("short", "de"), ("tiny", UND)]))
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(MetricsFilter())["counters"]}
    assert counters["language.de"] == 2 and counters["language.fr"] == 1 and counters["language.und"] == 1
    assert counters["language.hint_overridden"] == 1 and counters["language.from_hint"] == 1


def test_clean_config_carries_the_language_settings():
    assert CleanConfig().language == LanguageConfig()
    assert dataclasses.replace(CleanConfig(), language=LanguageConfig(min_letters=5)).language.min_letters == 5
