"""Line splitting and normalisation, mojibake repair, line cores, and the keys of learned lines."""

from __future__ import annotations

import hashlib
import re
import unicodedata

WS = re.compile(r"\s+")
QUOTE_OPEN = ("“", '"', "‘", "'", "«", "„", "‹", "「", "『", "〝", "»")
CLOSERS = "\"'”’»›)] "  # what may follow a line's last word: quotes, brackets, a space

_NEWLINES = re.compile(r"\r\n|[\r\n\u2028\u2029\x0b\x0c]")
# Zero-width space, word joiner, BOM and soft hyphen carry nothing in plain text; ZWJ/ZWNJ do (scripts, emoji).
_INVISIBLE_CHARS = "\u200b\u2060\ufeff\u00ad"
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARS}]")
_SPECIAL = re.compile(f"[{_INVISIBLE_CHARS}ÃÂâÅÐÑÎÏ]")  # one pass decides whether a line needs the slow repairs
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
# UTF-8 read as cp1252/latin-1: a lead byte shown as Ã Â â Å Ð Ñ followed by a continuation byte's glyph.
_WORD = re.compile(r"[^ \t]+")  # NBSP stays inside a word: "Â\u00a0" is itself mojibake of a NBSP
_MOJIBAKE = re.compile(
    "[ÃÂâÅÐÑÎÏ][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)


def _unmangle(token: str) -> str:
    raw = bytearray()
    for ch in token:
        o = ord(ch)
        if o < 256:
            raw.append(o)
            continue
        try:
            raw += ch.encode("cp1252")
        except UnicodeEncodeError:
            return token
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return token


def _fix_mojibake(line: str) -> str:
    """Undo UTF-8-decoded-as-cp1252 word by word, where a word round-trips; genuine text never does."""
    if not _MOJIBAKE.search(line):
        return line
    return _WORD.sub(lambda m: _unmangle(m.group(0)) if _MOJIBAKE.search(m.group(0)) else m.group(0), line)


def _normalize_line(line: str) -> str:
    if not line.isascii():
        if _SPECIAL.search(line):
            line = _INVISIBLE.sub("", _fix_mojibake(line))
        if not unicodedata.is_normalized("NFC", line):
            line = unicodedata.normalize("NFC", line)
    if not line.isprintable():
        line = _CONTROL.sub("", line)
    # str.split() splits on every Unicode space (NBSP, thin and ideographic spaces, tabs) and strips.
    return " ".join(line.split())


def split_lines(text: str) -> list[str]:
    """Lines as the cleaner sees them: any newline convention, NFC, mojibake repaired, spaces collapsed."""
    plain = not any(ch in text for ch in "\r\u2028\u2029\x0b\x0c")
    return [_normalize_line(line) for line in (text.split("\n") if plain else _NEWLINES.split(text))]


_LEAD = re.compile(r"^(?:[•·▪▫◦‣►▶▸➤➔→»›>*|]|[-–—](?=\s))+\s*")
_LEAD_CHARS = frozenset("•·▪▫◦‣►▶▸➤➔→»›>*|-–—")
_TRAIL_STRIP = " »›>→▶►|…"
_TRAIL_CHARS = frozenset(_TRAIL_STRIP + ".")
_PAIRS = {"(": ")", "[": "]", "{": "}"}


def line_core(line: str) -> str:
    """The part of a line that line rules look at: without bullets, arrows and one pair of outer brackets."""
    core = line
    if core[:1] in _LEAD_CHARS:
        core = _LEAD.sub("", core)
    if core[-1:] in _TRAIL_CHARS:
        core = core.rstrip(_TRAIL_STRIP)
        while core.endswith("..."):
            core = core[:-3].rstrip(_TRAIL_STRIP)
    if len(core) > 2 and core[0] in _PAIRS and core[-1] == _PAIRS[core[0]]:
        opening, closing = core[0], core[-1]
        if core.count(opening) == 1 and core.count(closing) == 1:
            core = core[1:-1].strip()
    return core


# Scripts written without spaces between words, and about how many characters one of their words has: a run of
# them counts as len // n words (Chinese words are 1-2 characters, Japanese a little longer, Thai and its
# neighbours 4-6). Korean and the RTL scripts (Arabic, Hebrew) put spaces between words like Latin.
_SPACELESS = (
    ("\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f", 2),  # kana, CJK ideographs
    ("\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff", 4),  # Thai, Lao, Myanmar, Khmer
)
_SPACELESS_RUNS = tuple((re.compile(f"[{chars}]+"), n) for chars, n in _SPACELESS)
_ANY_SPACELESS = re.compile("[" + "".join(chars for chars, _ in _SPACELESS) + "]")
# Invisible marks that copies of one line may or may not carry: bidi controls (RTL text), the Arabic tatweel
# (justification), besides the zero-width characters split_lines already drops.
_KEY_INVISIBLE = re.compile("[\u061c\u0640\u200c-\u200f\u202a-\u202e\u2066-\u2069]")


def word_count(line: str) -> int:
    """Words in a line, in any script: spaces separate them, and spaceless scripts count by characters."""
    if line.isascii() or not _ANY_SPACELESS.search(line):
        return len(line.split())
    words = 0
    for token in line.split():
        found = 0
        for run, per_word in _SPACELESS_RUNS:
            for m in run.finditer(token):
                found += max(1, len(m.group(0)) // per_word)
        # The token's other letters (Latin words, numbers glued to CJK) count as one word more.
        rest = token
        if found:
            for run, _ in _SPACELESS_RUNS:
                rest = run.sub(" ", rest)
            found += sum(1 for part in rest.split() if any(ch.isalnum() for ch in part))
        words += found or 1
    return words


def display_width(line: str) -> int:
    """Characters of a line, wide East Asian ones counting two (a 15-character rule means the same in CJK)."""
    if line.isascii():
        return len(line)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def learn_key(line: str) -> str | None:
    """The key a normalised line is counted under for learned boilerplate, or None if it may not be learned.

    Only lines of at least 3 words and 15 characters are learned: one- and two-word lines that recur within a
    source are mostly its section subheadings ("Analysis", "Key points") or common words, which are content,
    while the short widget words that are boilerplate already have named rules. Lines that open with a
    quotation mark are never learned: an outlet's follow-up stories re-run the same quote, and it is content.
    Every script is measured alike: words of spaceless scripts (Chinese, Japanese, Thai) are counted from their
    characters, wide characters count two towards the length, and the key ignores case, compatibility forms
    (full-width Latin, Arabic presentation forms) and invisible bidi marks.
    """
    if len(line) > 1000 or line.startswith(QUOTE_OPEN) or word_count(line) < 3:
        return None
    if len(line) < 15 and display_width(line) < 15:
        return None
    key = line
    if not key.isascii():
        key = unicodedata.normalize("NFKC", _KEY_INVISIBLE.sub("", key))
    return hashlib.blake2b(WS.sub(" ", key.casefold()).strip().encode("utf-8"), digest_size=8).hexdigest()


def learnable_keys(text: str) -> frozenset[str]:
    """Distinct learn keys of a text's lines (each line counts once per article)."""
    return frozenset(k for k in map(learn_key, split_lines(text)) if k)
