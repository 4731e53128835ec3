"""Language detection: every article's ISO 639-1 language (or "und") from its text, metadata as a hint."""

from transforms.language.config import LanguageConfig
from transforms.language.detect import (
    AGREED,
    DETECTED,
    HINT_SHORT,
    HINT_TIE,
    OVERRIDDEN,
    TOO_SHORT,
    UND,
    Decision,
    decide,
    detect_language,
    iso639_1,
    letter_weight,
    load_ranker,
    sample,
)

__all__ = [
    "AGREED",
    "DETECTED",
    "HINT_SHORT",
    "HINT_TIE",
    "OVERRIDDEN",
    "TOO_SHORT",
    "UND",
    "Decision",
    "LanguageConfig",
    "decide",
    "detect_language",
    "iso639_1",
    "letter_weight",
    "load_ranker",
    "sample",
]
