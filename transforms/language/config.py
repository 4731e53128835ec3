"""Language-detection settings (LanguageConfig), used by the clean stage, which sets every article's language."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class LanguageConfig:
    """How an article's language is decided from its cleaned text and its metadata hint.

    `min_letters`: below this many letters (a CJK, kana or Hangul character counts as three) the text is too
    short to tell: the article takes its metadata hint when it has one, else "und". 20 letters is about four
    words of a Latin-script language, or seven Chinese characters: published evaluations of character n-gram
    identifiers (langid.py, lingua's single-word and word-pair tables) show accuracy falling steeply below that,
    while a headline-sized text of five words or more is identified well. It was fixed before looking at any
    evaluation text.
    `max_chars`: detection reads at most this many leading characters (the title, then the body): cost stays
    bounded on a 1 MB record, and 2,000 characters (300 words) are far more than identification needs.
    `hint_ratio`: a hint the detector finds nearly as likely as its first choice (probability at least this
    fraction of the first's) wins: close relatives (bs/hr/sr, da/no, id/ms, gl/pt) are where a text alone is
    ambiguous and the publisher knows better. A hint the text clearly contradicts (a German page labelled "en"
    by a CMS default) loses.
    """

    min_letters: int = 20
    max_chars: int = 2_000
    hint_ratio: float = 0.5
