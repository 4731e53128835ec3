"""Language detection: an article's ISO 639-1 language from its text, with its metadata language as a hint."""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from collections.abc import Callable, Sequence

from transforms.language.config import LanguageConfig

UND = "und"  # ISO 639-2 "undetermined": the text is too short to tell and no hint says otherwise

# How a language was decided: the counters and tests name these.
DETECTED = "detected"  # from the text, no hint given
AGREED = "agreed"  # from the text, the hint says the same
HINT_SHORT = "hint_short"  # the text is too short: the hint is taken
HINT_TIE = "hint_tie"  # the text is ambiguous between the hint and another language: the hint is taken
OVERRIDDEN = "overridden"  # the text clearly contradicts the hint: the text wins
TOO_SHORT = "too_short"  # too short and no usable hint: "und"

# A ranking: (ISO 639-1 code, probability) pairs, most likely first.
Ranking = Sequence[tuple[str, float]]
Ranker = Callable[[str], Ranking]

# Deprecated ISO 639-1 codes still sent by CMSs, and Norwegian Bokmål folded into "no" as the detector says.
_ALIASES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro", "nb": "no"}
# ISO 639-3 individual languages the detector names, mapped to the ISO 639-1 macrolanguage they belong to;
# a label with no ISO 639-1 code at all is dropped from the detector (it could never be output).
MACROLANGUAGES = {"ary": "ar", "arz": "ar", "yue": "zh", "wuu": "zh", "uzs": "uz", "gug": "gn", "fuv": "ff"}
MACROLANGUAGES |= {"sdh": "ku", "ltg": "lv"}
# Addresses, handles and hashtags are English-looking tokens in any language.
_NOISE = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\w+|[@#]\w+")


@dataclasses.dataclass(frozen=True)
class Decision:
    """The language an article gets (ISO 639-1 or "und") and how it was decided (DETECTED, HINT_TIE, ...)."""

    language: str
    how: str
    detected: str | None = None  # the detector's first choice, when it ran


def iso639_1(tag: str | None) -> str | None:
    """The ISO 639-1 code of a language tag ("en-US", "EN_gb", "fra", "iw"), or None when it names none."""
    # Real tags are short (BCP 47 primary subtags are 2-3 letters); a huge metadata value is not one.
    if not tag or not isinstance(tag, str) or len(tag) > 64:
        return None
    return _iso639_1(tag.strip().lower().replace("_", "-").split("-")[0])


@functools.lru_cache(maxsize=512)
def _iso639_1(primary: str) -> str | None:
    if not primary.isascii() or not primary.isalpha():
        return None
    primary = _ALIASES.get(primary, primary)
    if primary in MACROLANGUAGES:
        return MACROLANGUAGES[primary]
    import pycountry

    if len(primary) == 2:
        return primary if pycountry.languages.get(alpha_2=primary) is not None else None
    if len(primary) == 3:
        found = pycountry.languages.get(alpha_3=primary) or pycountry.languages.get(bibliographic=primary)
        code = getattr(found, "alpha_2", None)
        return _ALIASES.get(code, code) if code else None
    return None


def letter_weight(text: str) -> int:
    """Letters in `text`, a wide one (CJK, kana, Hangul) counting three: a Chinese word is one or two of them,
    an English one about five letters, so each carries about three letters' worth."""
    if text.isascii():
        return sum(ch.isalpha() for ch in text)
    n = 0
    for ch in text:
        if ch.isalpha():
            n += 3 if ch > "\u1100" and unicodedata.east_asian_width(ch) in "WF" else 1
    return n


def sample(text: str, title: str | None, max_chars: int) -> str:
    """What the detector reads: the title and the text, at most `max_chars` of them, without URLs and handles."""
    title = (title or "")[:max_chars]
    head = text[:max_chars]
    if title and title not in head[: len(title) + 10]:
        head = f"{title}\n{head}"[:max_chars]
    return _NOISE.sub(" ", head) if ("/" in head or "@" in head or "#" in head or "www." in head) else head


def decide(ranking: Ranking, hint: str | None, enough_text: bool, hint_ratio: float) -> Decision:
    """The language from a detector ranking (empty when the text was too short to run it) and a hint."""
    if not enough_text or not ranking:
        return Decision(hint, HINT_SHORT) if hint else Decision(UND, TOO_SHORT)
    best, p_best = ranking[0]
    if not hint:
        return Decision(best, DETECTED, best)
    if hint == best:
        return Decision(best, AGREED, best)
    p_hint = next((p for code, p in ranking if code == hint), 0.0)
    if p_hint > 0 and p_hint >= hint_ratio * p_best:
        return Decision(hint, HINT_TIE, best)
    return Decision(best, OVERRIDDEN, best)


def detect_language(
    text: str | None,
    ranker: Ranker,
    hint: str | None = None,
    title: str | None = None,
    cfg: LanguageConfig = LanguageConfig(),
) -> Decision:
    """The article's language: detected from (title and) text, the metadata `hint` breaking near ties and
    standing in when the text is too short (LanguageConfig)."""
    hint_code = iso639_1(hint)
    head = sample(text or "", title, cfg.max_chars)
    enough = letter_weight(head) >= cfg.min_letters
    return decide(ranker(head) if enough else (), hint_code, enough, cfg.hint_ratio)


class Py3LangidRanker:
    """py3langid's naive Bayes model (shipped inside the package: no download) ranking ISO 639-1 codes.

    Labels sharing a macrolanguage (ar, ary, arz) are summed under it; labels with no ISO 639-1 code (ancient
    Greek, Nigerian Pidgin, "zxx") are dropped from the ranking, since they could never be reported. Dropping
    them there rather than with set_languages() avoids a second copy of the model's weights.
    """

    def __init__(self, top: int = 5):
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self._codes = {label: iso639_1(label) for label in self._ident.labels}
        self._top = top

    def __call__(self, text: str) -> Ranking:
        merged: dict[str, float] = {}
        for label, p in self._ident.rank(text):
            code = self._codes.get(label)
            if code:
                merged[code] = merged.get(code, 0.0) + float(p)
        return sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[: self._top]


@functools.lru_cache(maxsize=1)
def load_ranker() -> Ranker:
    """The detector, loaded once per process (about 0.5 s, 30 MB of weights, a 100 MB peak while it unpacks them):
    call it in DoFn.setup(), never at import."""
    return Py3LangidRanker()
