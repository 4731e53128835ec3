"""Clean stage: named boilerplate rules, learned per-source repeated lines, and metadata lifted from the text."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import hashlib
import pathlib
import re
import unicodedata
from collections.abc import Iterable, Mapping

import apache_beam as beam
import yaml

from schemas.elements import Article, Removed, normalize_for_hash
from transforms.common import count, reject, run_guarded

STAGE = "clean"
RULES_PATH = pathlib.Path(__file__).resolve().parent / "data" / "boilerplate_rules.yaml"
LEARNED_RULE = "learned.repeated_line"
DATELINE_RULE = "meta.dateline"
DEFAULT_MIN_ARTICLES = 3

# Output text: one paragraph per line, lines joined by a single "\n", blank lines dropped. Plain-text seeds
# and trafilatura's output already use one line per paragraph, so clean text changes only where it must.
PARAGRAPH_SEPARATOR = "\n"

_SCOPES = ("line", "block", "prefix", "inline")
_PREFIX_HEAD = 160  # a prefix rule's needle must lie within this many characters of the line start
_METAS = (None, "agency", "tags", "sources")
_DEFAULT_MAX_CHARS = 300


# ----------------------------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class CleanConfig:
    """Clean-stage settings."""

    min_articles_for_learned: int = DEFAULT_MIN_ARTICLES  # 0 turns the learned rule off
    extra_rules: str | None = None  # path given with --clean-rules, for messages
    extra_rules_yaml: str | None = None  # its content, read once so that workers need no access to the file
    now: dt.datetime | None = None  # anchor of relative datelines ("Updated 3 hours ago")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The clean stage's flags."""
    g = parser.add_argument_group("cleaning")
    g.add_argument(
        "--boilerplate-min-articles",
        dest="boilerplate_min_articles",
        type=int,
        metavar="N",
        default=DEFAULT_MIN_ARTICLES,
        help="A line repeated verbatim in at least this many articles of one source in a run is removed as "
        f"that source's boilerplate (default {DEFAULT_MIN_ARTICLES}; 0 turns this off).",
    )
    g.add_argument(
        "--clean-rules",
        dest="clean_rules",
        default=None,
        metavar="FILE",
        help="Extra boilerplate rules (YAML, same format as transforms/data/boilerplate_rules.yaml): "
        "rules are added, a rule with an existing id replaces it, `disable:` lists ids to drop.",
    )


def config_from_options(opts, *, run_date: dt.date, output: str, now: dt.datetime) -> CleanConfig:
    """CleanConfig from parsed options; the extra rules file is read and compiled here to fail fast."""
    del run_date, output
    n = getattr(opts, "boilerplate_min_articles", DEFAULT_MIN_ARTICLES)
    n = DEFAULT_MIN_ARTICLES if n is None else n
    if n < 0 or n == 1:
        raise ValueError("--boilerplate-min-articles must be 0 (off) or at least 2")
    path = getattr(opts, "clean_rules", None)
    content = None
    if path:
        from apache_beam.io.filesystems import FileSystems

        try:
            with FileSystems.open(path) as f:
                content = f.read().decode("utf-8")
        except (OSError, ValueError) as e:
            raise ValueError(f"--clean-rules {path}: cannot read it ({e})") from None
        load_rules(extra_yaml=content, origin=path)
    return CleanConfig(min_articles_for_learned=n, extra_rules=path, extra_rules_yaml=content, now=now)


# ------------------------------------------------------------------------------------------------ rules


@dataclasses.dataclass(frozen=True)
class Rule:
    """One compiled boilerplate rule."""

    id: str
    family: str
    scope: str
    regex: re.Pattern | None  # the anchored (non-floating) alternatives, as one regex
    max_chars: int
    meta: str | None = None
    max_lines: int = 10
    line_max_chars: int | None = None
    continuation: str | None = None  # block: only "headline" (teaser) or "tag" shaped lines follow
    needs_neighbour: bool = False  # line: only next to a removed line or another such match (menus)
    requires_continuation: bool = False  # block: the header goes only when at least one line follows it
    fills_gap: int = 0  # line: a line up to this long directly between two lines of this rule goes too
    takes_line_above: int = 0  # line: a one-line paragraph up to this long right above a match goes too
    # Alternatives that float (".{0,200}\\ball rights reserved"), each with substrings one of which the line
    # must contain: a substring test is far cheaper than letting the regex backtrack over a long paragraph.
    floating: tuple[tuple[re.Pattern, tuple[str, ...]], ...] = ()
    case_sensitive: bool = False
    anchored: tuple[str, ...] = ()  # the sources of `regex`'s alternatives

    def fullmatch(self, core: str, low: str) -> re.Match | None:
        if self.regex is not None:
            m = self.regex.fullmatch(core)
            if m:
                return m
        for regex, needs in self.floating:
            if any(n in low for n in needs):
                m = regex.fullmatch(core)
                if m:
                    return m
        return None

    def match(self, text: str) -> re.Match | None:
        """Prefix scope: the first alternative that matches at the start of `text` (needles: in its head)."""
        m = self.regex.match(text) if self.regex is not None else None
        if m is None and self.floating:
            head = text[:_PREFIX_HEAD].casefold()
            for regex, needs in self.floating:
                if any(n in head for n in needs):
                    m = regex.match(text)
                    if m:
                        break
        return m

    def spans(self, text: str, present: frozenset[str]) -> list[re.Match]:
        """Inline scope: the matches of every alternative whose needles are in `text`, left to right.

        `present` holds the needles found anywhere in the article; most articles have none."""
        found = list(self.regex.finditer(text)) if self.regex is not None else []
        if self.floating and present:
            low = None
            for regex, needs in self.floating:
                if not present.isdisjoint(needs):
                    low = low if low is not None else text.casefold()
                    if any(n in low for n in needs):
                        found += regex.finditer(text)
        found.sort(key=lambda m: m.start())
        return [m for k, m in enumerate(found) if m.end() > m.start() and (k == 0 or m.start() >= found[k - 1].end())]


def _first_chars(pattern: str, flags: int) -> frozenset[str] | None:
    """Lower-cased characters a match of `pattern` can start with, or None when it can start with anything.

    Read off the parsed regex; anything the walk does not understand gives None, which only costs speed.
    """
    try:
        from re import _constants as c
        from re import _parser
    except ImportError:  # pragma: no cover - a Python whose re internals moved: no dispatch, same results
        return None

    def case(ch: int) -> set[str]:
        # Every case variant, even for case-sensitive parts: a superset only costs a wasted try.
        char = chr(ch)
        return {char.lower(), char.upper().lower(), char.casefold()[:1]}

    def walk(seq) -> tuple[set[str] | None, bool]:
        found: set[str] = set()
        for op, av in seq:
            if op is c.LITERAL:
                return found | case(av), False
            if op is c.IN:
                for kind, value in av:
                    if kind is c.LITERAL:
                        found |= case(value)
                    elif kind is c.CATEGORY and value is c.CATEGORY_DIGIT:
                        found |= set("0123456789")
                    elif kind is c.RANGE and value[1] - value[0] <= 256:
                        for ch in range(value[0], value[1] + 1):
                            found |= case(ch)
                    else:
                        return None, False
                return found, False
            if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
                continue  # zero width: the next item decides
            if op is c.SUBPATTERN:
                first, nullable = walk(av[3])
            elif op is c.BRANCH:
                first, nullable = set(), False
                for alt in av[1]:
                    f, n = walk(alt)
                    if f is None:
                        return None, False
                    first |= f
                    nullable = nullable or n
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
                lo, _, sub = av
                first, nullable = walk(sub)
                nullable = nullable or lo == 0
            elif op is getattr(c, "ATOMIC_GROUP", None):
                first, nullable = walk(av)
            else:
                return None, False
            if first is None:
                return None, False
            found |= first
            if not nullable:
                return found, False
        return found, True

    try:
        first, nullable = walk(_parser.parse(pattern, flags))
    except Exception:  # noqa: BLE001 - an unexpected parse shape: no dispatch for this pattern
        return None
    return None if first is None or nullable else frozenset(first)


# Where a floating pattern's needle must be: within this many characters of the start or end of the line (its
# `.{0,N}` lead-in or its short tail). Paragraphs are long; searching their ends only keeps the gate cheap.
_NEEDLE_WINDOW = 300


def _ends(low: str) -> str:
    return low[:_NEEDLE_WINDOW] + "\n" + low[-_NEEDLE_WINDOW:]


class _Matcher:
    """First rule (in file order) whose pattern matches a whole line: the cleaner's hot loop.

    The anchored alternatives of all rules become one regex per (first character, length bucket) of the line:
    only the alternatives that can start with that character and whose rule allows lines that long. Floating
    alternatives sit behind a substring gate. slow() is the plain rule-by-rule reference.
    """

    def __init__(self, rules: tuple[Rule, ...]):
        self.rules = rules
        self._branches: list[tuple[int, frozenset | None, str]] = []
        for k, rule in enumerate(rules):
            flags = 0 if rule.case_sensitive else re.IGNORECASE
            for j, source in enumerate(rule.anchored):
                source = re.sub(r"\(\?P<(value|agency)__", rf"(?P<\1__{k}_{j}_", source)
                scoped = f"(?i:{source})" if flags else source
                self._branches.append((k, _first_chars(source, flags), f"(?P<r_{k}_{j}>{scoped})"))
        # Lines are bucketed by length: a long paragraph only meets the rules whose max_chars allow it.
        self._buckets = sorted({r.max_chars for r in rules})
        self._by_key: dict[tuple[str, int], re.Pattern | None] = {}
        self.floating = [(k, rx, needs) for k, r in enumerate(rules) for rx, needs in r.floating]
        # One substring gate per line-length limit: a long paragraph is only searched for the few needles of
        # the rules that allow long lines.
        self._limits = sorted({rules[k].max_chars for k, _, _ in self.floating})
        self._gates: dict[int, tuple[str, ...]] = {}
        for limit in self._limits:
            needles = {n for k, _, needs in self.floating if rules[k].max_chars >= limit for n in needs}
            self._gates[limit] = tuple(sorted(needles))

    def _combined(self, char: str, n: int) -> re.Pattern | None:
        bucket = next((b for b in self._buckets if n <= b), None)
        if bucket is None:
            return None
        key = (char, bucket)
        if key not in self._by_key:
            branches = [
                b
                for k, first, b in self._branches
                if self.rules[k].max_chars >= bucket and (first is None or char in first)
            ]
            self._by_key[key] = re.compile("|".join(branches)) if branches else None
        return self._by_key[key]

    def first(self, core: str) -> tuple[Rule | None, re.Match | None]:
        if not core:
            return None, None
        n = len(core)
        best_k, best_m = len(self.rules), None
        combined = self._combined(core[0].lower(), n)
        m = combined.fullmatch(core) if combined is not None else None
        if m is not None:
            best_k, best_m = int(m.lastgroup.split("_")[1]), m
        gate = next((self._gates[limit] for limit in self._limits if n <= limit), None)
        low = core.casefold() if gate is not None else ""
        probe = low if n <= 2 * _NEEDLE_WINDOW else _ends(low)
        if gate is not None and any(x in probe for x in gate):
            for k, rx, needs in self.floating:
                if k >= best_k:
                    break
                if n <= self.rules[k].max_chars and any(x in low for x in needs):
                    fm = rx.fullmatch(core)
                    if fm:
                        best_k, best_m = k, fm
                        break
        return (self.rules[best_k], best_m) if best_m is not None else (None, None)

    def slow(self, core: str) -> tuple[Rule | None, re.Match | None]:
        """The same answer as first(), rule by rule (the reference the fast path is tested against)."""
        n, low = len(core), core.casefold()
        for rule in self.rules:
            if n <= rule.max_chars:
                m = rule.fullmatch(core, low)
                if m:
                    return rule, m
        return None, None


@dataclasses.dataclass(frozen=True)
class Rules:
    """The compiled rule set, split by scope, and the agency alias table."""

    line: tuple[Rule, ...]
    block: tuple[Rule, ...]
    menu: tuple[Rule, ...]  # line rules that need a removed neighbour
    prefix: tuple[Rule, ...]
    inline: tuple[Rule, ...]
    agencies: Mapping[str, str]  # casefolded alias -> canonical name

    def __post_init__(self):
        # Block headers are tried before line rules, in one pass: one matcher holds both, blocks first.
        matchers = {
            "whole": _Matcher(self.block + self.line),
            "line": _Matcher(self.line),
            "menu": _Matcher(self.menu),
        }
        object.__setattr__(self, "_matchers", matchers)
        needles = {n for r in self.inline for _, needs in r.floating for n in needs}
        object.__setattr__(self, "_needles", tuple(sorted(needles)))

    @functools.cached_property
    def gap_fillers(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.line if r.fills_gap)

    @functools.cached_property
    def caption_takers(self) -> dict[str, int]:
        return {r.id: r.takes_line_above for r in self.line if r.takes_line_above}

    def first(self, kind: str, core: str) -> tuple[Rule | None, re.Match | None]:
        """The first rule matching the whole of `core`: kind "whole" (block headers, then line rules),
        "line" or "menu"."""
        return self._matchers[kind].first(core)

    def needles_in(self, low_text: str) -> frozenset[str]:
        """The inline rules' needles that occur in a (casefolded) article: once per article, as inline
        rules would otherwise scan every paragraph."""
        return frozenset(n for n in self._needles if n in low_text)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.block + self.line + self.menu + self.prefix + self.inline)

    def agency_of(self, alias: str | None) -> str | None:
        if not alias:
            return None
        return self.agencies.get(_WS.sub(" ", alias).strip().casefold())


def _merge(base: dict, extra: dict, origin: str) -> dict:
    if not isinstance(extra, dict):
        raise ValueError(f"{origin}: a YAML mapping with `rules:` is expected")
    merged = {
        "placeholders": {**base.get("placeholders", {}), **(extra.get("placeholders") or {})},
        "agencies": {k: list(v) for k, v in base.get("agencies", {}).items()},
    }
    for name, aliases in (extra.get("agencies") or {}).items():
        merged["agencies"].setdefault(name, [])
        merged["agencies"][name] += [a for a in aliases if a not in merged["agencies"][name]]
    disabled = set(extra.get("disable") or ())
    rules = {r["id"]: r for r in base.get("rules", [])}
    for r in extra.get("rules") or []:
        if not isinstance(r, dict) or "id" not in r:
            raise ValueError(f"{origin}: every rule needs an `id`")
        rules[r["id"]] = r
    unknown = disabled - set(rules)
    if unknown:
        raise ValueError(f"{origin}: `disable` names unknown rule ids: {', '.join(sorted(unknown))}")
    merged["rules"] = [r for rid, r in rules.items() if rid not in disabled]
    return merged


def _compile(doc: dict, origin: str) -> Rules:
    agencies, spellings = {}, set()
    for canonical, aliases in (doc.get("agencies") or {}).items():
        for alias in [canonical, *aliases]:
            alias = _WS.sub(" ", str(alias)).strip()
            agencies[alias.casefold()] = str(canonical)
            spellings.add(alias)  # as written: a case-sensitive rule must see "CNN", not "cnn"
    alternation = "|".join(
        re.escape(a).replace(r"\ ", r"\s+") for a in sorted(spellings, key=lambda a: (-len(a), a)) if a
    )
    placeholders = {**(doc.get("placeholders") or {}), "agency": f"(?:{alternation})"}
    by_scope: dict[str, list[Rule]] = {s: [] for s in _SCOPES}
    seen = set()
    for spec in doc.get("rules") or []:
        rid = spec.get("id")
        where = f"{origin}: rule {rid!r}"
        if not rid or rid in seen:
            raise ValueError(f"{where}: missing or duplicate id")
        seen.add(rid)
        scope = spec.get("scope", "line")
        if scope not in _SCOPES:
            raise ValueError(f"{where}: scope must be one of {', '.join(_SCOPES)}")
        meta = spec.get("meta")
        if meta not in _METAS:
            raise ValueError(f"{where}: meta must be agency, tags or sources")
        if spec.get("continuation") not in (None, "headline", "tag"):
            raise ValueError(f"{where}: continuation must be 'headline' or 'tag'")
        if spec.get("needs_neighbour") and scope != "line":
            raise ValueError(f"{where}: needs_neighbour works with line scope only")
        if spec.get("requires_continuation") and scope != "block":
            raise ValueError(f"{where}: requires_continuation works with block scope only")
        for option in ("fills_gap", "takes_line_above"):
            if spec.get(option) and scope != "line":
                raise ValueError(f"{where}: {option} works with line scope only")
        patterns = spec.get("patterns") or ([spec["pattern"]] if spec.get("pattern") else [])
        if not patterns:
            raise ValueError(f"{where}: needs `pattern` or a list of `patterns`")
        flags = 0 if spec.get("case_sensitive") else re.IGNORECASE
        anchored, floating = [], []
        for k, item in enumerate(patterns):
            pattern, needs = (item.get("pattern"), item.get("needs")) if isinstance(item, dict) else (item, None)
            if not isinstance(pattern, str) or not pattern:
                raise ValueError(f"{where}: pattern {k + 1} is not a string")
            # Alternatives may each name a group `value`/`agency`; Python wants unique names, so number them.
            pattern = re.sub(r"\(\?P<(value|agency)>", rf"(?P<\1__{k}>", pattern)
            for name, value in placeholders.items():
                pattern = pattern.replace("{" + name + "}", str(value))
            if needs:
                floating.append((pattern, tuple(str(n).casefold() for n in needs)))
            else:
                anchored.append(pattern)
        try:
            regex = re.compile("|".join(f"(?:{p})" for p in anchored), flags) if anchored else None
            floats = tuple((re.compile(p, flags), needs) for p, needs in floating)
        except re.error as e:
            raise ValueError(f"{where}: bad regex ({e})") from None
        by_scope[scope].append(
            Rule(
                id=str(rid),
                family=str(spec.get("family") or str(rid).split(".", 1)[0]),
                scope=scope,
                regex=regex,
                max_chars=int(spec.get("max_chars", _DEFAULT_MAX_CHARS)),
                meta=meta,
                max_lines=int(spec.get("max_lines", 10)),
                line_max_chars=spec.get("line_max_chars"),
                continuation=spec.get("continuation"),
                needs_neighbour=bool(spec.get("needs_neighbour")),
                requires_continuation=bool(spec.get("requires_continuation")),
                fills_gap=int(spec.get("fills_gap") or 0),
                takes_line_above=int(spec.get("takes_line_above") or 0),
                floating=floats,
                case_sensitive=bool(spec.get("case_sensitive")),
                anchored=tuple(anchored),
            )
        )
    return Rules(
        line=tuple(r for r in by_scope["line"] if not r.needs_neighbour),
        block=tuple(by_scope["block"]),
        menu=tuple(r for r in by_scope["line"] if r.needs_neighbour),
        prefix=tuple(by_scope["prefix"]),
        inline=tuple(by_scope["inline"]),
        agencies=agencies,
    )


@functools.lru_cache(maxsize=1)
def _base_doc() -> dict:
    return yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=8)
def load_rules(extra_yaml: str | None = None, origin: str = "extra rules") -> Rules:
    """The packaged rules, plus the rules of an extra YAML document; ValueError names what is wrong."""
    doc = _base_doc()
    if extra_yaml:
        try:
            extra = yaml.safe_load(extra_yaml)
        except yaml.YAMLError as e:
            raise ValueError(f"{origin}: not valid YAML ({str(e).splitlines()[0]})") from None
        doc = _merge(doc, extra or {}, origin)
    return _compile(doc, str(RULES_PATH.name) if not extra_yaml else origin)


# ------------------------------------------------------------------------------------- text normalising

_WS = re.compile(r"\s+")
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


def _core(line: str) -> str:
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


# ---------------------------------------------------------------------------------------------- dates

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_TZ_MINUTES = {
    "gmt": 0, "utc": 0, "z": 0, "wet": 0, "bst": 60, "cet": 60, "wat": 60, "west": 60, "cest": 120, "eet": 120,
    "cat": 120, "sast": 120, "eest": 180, "msk": 180, "eat": 180, "trt": 180, "ast": 180, "gst": 240,
    "pkt": 300, "ist": 330, "ict": 420, "wib": 420, "hkt": 480, "sgt": 480, "awst": 480, "jst": 540,
    "kst": 540, "aest": 600, "aedt": 660, "nzst": 720, "nzdt": 780, "est": -300, "edt": -240, "cst": -360,
    "cdt": -300, "mst": -420, "mdt": -360, "pst": -480, "pdt": -420,
}  # fmt: skip
# Bare US zone names follow daylight saving, so they need the real zone rules.
_TZ_NAMES = {"et": "America/New_York", "ct": "America/Chicago", "mt": "America/Denver", "pt": "America/Los_Angeles"}
_MONTH_RE = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])"
)
_WEEKDAY_RE = (
    r"(?:mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?|sat(?:urday)?"
    r"|sun(?:day)?)(?![a-z])"
)
_TZ_RE = "|".join(sorted((*_TZ_MINUTES, *_TZ_NAMES), key=lambda z: -len(z)))
_DATE_TOKEN = re.compile(
    rf"""
    (?P<iso>(?P<iy>\d{{4}})-(?P<im>\d{{1,2}})-(?P<id>\d{{1,2}})
        (?:[T\s](?P<iH>\d{{1,2}}):(?P<iM>\d{{2}})(?::(?P<iS>\d{{2}})(?:\.\d+)?)?)?(?P<itz>Z|[+-]\d{{2}}:?\d{{2}})?)
    |(?P<ymd>(?P<yy>\d{{4}})[./](?P<ym>\d{{1,2}})[./](?P<yd>\d{{1,2}}))
    |(?P<num>(?P<na>\d{{1,2}})[./-](?P<nb>\d{{1,2}})[./-](?P<ny>\d{{4}}))
    |(?P<dmy>(?P<dd>\d{{1,2}})(?:st|nd|rd|th)?\.?\s+(?:of\s+)?(?P<dmon>{_MONTH_RE})\.?,?\s+(?P<dy>\d{{4}}))
    |(?P<mdy>(?P<mmon>{_MONTH_RE})\.?\s+(?P<md>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<my>\d{{4}}))
    |(?P<time>(?P<H>\d{{1,2}})(?::(?P<M>\d{{2}})(?::(?P<S>\d{{2}}))?|[.h](?P<M2>\d{{2}})(?!\d))
        (?:\s*(?P<ampm>[ap])\.?m\.?(?![a-z]))?)
    |(?P<hour>(?P<H2>\d{{1,2}})\s*(?P<ampm2>[ap])\.?m\.?(?![a-z]))
    |(?P<off>(?:gmt|utc)\s*(?P<sign>[+-])\s*(?P<oh>\d{{1,2}})(?::?(?P<om>\d{{2}}))?(?!\d)
        |(?P<sign2>[+-])(?P<oh2>\d{{2}}):?(?P<om2>\d{{2}})(?!\d))
    |(?P<tz>(?:{_TZ_RE})(?![a-z]))
    |(?P<wd>{_WEEKDAY_RE})\.?
    |(?P<sep>[\s,|·•/–—-]+|at(?![a-z])|on(?![a-z]))
    """,
    re.VERBOSE | re.IGNORECASE,
)
_DATE_PREFIX = re.compile(
    r"^(?:(?P<kind>(?:first |last )?(?:published|updated|posted|modified|created|released|issued)"
    r"|date|dated|pub\.|upd\.)(?:\s+(?:on|at))?\s*[:|-]?\s*)",
    re.IGNORECASE,
)
_RELATIVE = re.compile(
    r"^(?P<n>\d{1,3}|an?|one)\s*(?P<unit>s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)\s+ago\.?$",
    re.IGNORECASE,
)
_DATE_HINT = re.compile(r"\d|\bago\b", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MIN_YEAR, _MAX_YEAR = 1900, 2100


@dataclasses.dataclass(frozen=True)
class _Dateline:
    when: dt.datetime | None  # None for a relative dateline without a run time
    updated: bool


def _offset(g: dict, local: dt.datetime) -> dt.timedelta | None:
    if g.get("itz"):
        z = g["itz"]
        if z.upper() == "Z":
            return dt.timedelta(0)
        sign = -1 if z[0] == "-" else 1
        digits = z[1:].replace(":", "")
        return sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4]))
    if g.get("off"):
        sign = -1 if (g.get("sign") or g.get("sign2")) == "-" else 1
        return sign * dt.timedelta(hours=int(g.get("oh") or g["oh2"]), minutes=int(g.get("om") or g.get("om2") or 0))
    if g.get("tz"):
        name = g["tz"].lower()
        if name in _TZ_NAMES:
            try:
                from zoneinfo import ZoneInfo

                return local.replace(tzinfo=ZoneInfo(_TZ_NAMES[name])).utcoffset()
            except Exception:  # noqa: BLE001 - no tz database: standard time is the better guess than nothing
                return dt.timedelta(minutes={"et": -300, "ct": -360, "mt": -420, "pt": -480}[name])
        return dt.timedelta(minutes=_TZ_MINUTES[name])
    return None


def _date_candidates(g: dict) -> list[tuple[int, int, int]]:
    if g.get("iso"):
        return [(int(g["iy"]), int(g["im"]), int(g["id"]))]
    if g.get("ymd"):
        return [(int(g["yy"]), int(g["ym"]), int(g["yd"]))]
    if g.get("dmy"):
        return [(int(g["dy"]), _MONTHS[g["dmon"][:3].lower()], int(g["dd"]))]
    if g.get("mdy"):
        return [(int(g["my"]), _MONTHS[g["mmon"][:3].lower()], int(g["md"]))]
    a, b, y = int(g["na"]), int(g["nb"]), int(g["ny"])
    # Day first is the international default; month first only when the numbers or the weekday say so.
    return [(y, b, a), (y, a, b)] if a != b else [(y, b, a)]


def _valid_date(y: int, m: int, d: int) -> dt.date | None:
    try:
        return dt.date(y, m, d) if _MIN_YEAR <= y <= _MAX_YEAR else None
    except ValueError:
        return None


def _dateline(line: str, now: dt.datetime | None) -> _Dateline | None:
    """A whole line that is only a date (with weekday, time, zone, 'Published/Updated' label) or None."""
    s = line.strip().rstrip(".")
    updated = False
    p = _DATE_PREFIX.match(s)
    if p:
        updated = bool(re.search(r"upd|modified", p.group(0), re.IGNORECASE))
        s = s[p.end() :]
    rel = _RELATIVE.match(s)
    if rel:
        if now is None:
            return _Dateline(None, updated)
        n = rel.group("n").lower()
        amount = 1 if n in ("a", "an", "one") else int(n)
        unit = rel.group("unit").lower()[0]
        return _Dateline(
            (now - dt.timedelta(seconds=amount * _UNIT_SECONDS[unit])).astimezone(dt.timezone.utc), updated
        )
    found: dict[str, str] = {}
    pos = 0
    while pos < len(s):
        m = _DATE_TOKEN.match(s, pos)
        if not m or m.end() == pos:
            return None
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        kind = next(
            k for k in ("iso", "ymd", "num", "dmy", "mdy", "time", "hour", "off", "tz", "wd", "sep") if k in groups
        )
        if kind != "sep":
            slot = (
                "date" if kind in ("iso", "ymd", "num", "dmy", "mdy") else "time" if kind in ("time", "hour") else kind
            )
            if slot in ("off", "tz"):
                slot = "zone"
            if slot in found:
                return None
            found[slot] = kind
            for k, v in groups.items():
                found.setdefault("g." + k, v)
        pos = m.end()
    if "date" not in found:
        return None
    g = {k[2:]: v for k, v in found.items() if k.startswith("g.")}
    dates = [d for d in (_valid_date(*c) for c in _date_candidates(g)) if d]
    if now is not None:
        # A dateline from the future is a misreading of a day/month order, never news.
        dates = [d for d in dates if d <= (now + dt.timedelta(days=1)).date()] or []
    if "wd" in g:
        weekday = _WEEKDAYS[g["wd"][:3].lower()]
        dates = [d for d in dates if d.weekday() == weekday] or dates
    if not dates:
        return None
    day = dates[0]
    hour = int(g.get("iH") or g.get("H") or g.get("H2") or 0)
    minute = int(g.get("iM") or g.get("M") or g.get("M2") or 0)
    second = int(g.get("iS") or g.get("S") or 0)
    ampm = (g.get("ampm") or g.get("ampm2") or "").lower()
    if ampm == "p" and hour < 12:
        hour += 12
    elif ampm == "a" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59 or second > 59:
        return None
    local = dt.datetime(day.year, day.month, day.day, hour, minute, second)
    offset = _offset(g, local) or dt.timedelta(0)
    when = (local - offset).replace(tzinfo=dt.timezone.utc)
    return _Dateline(when, updated)


def parse_dateline(line: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """The UTC datetime of a line that is only a dateline ('Saturday 22 March 2025 01:33 GMT',
    '14:054/09/2025, Thursday', 'Updated 3 hours ago' given `now`), else None."""
    found = _dateline(line, now)
    return found.when if found else None


# ------------------------------------------------------------------------------------ learned lines

_QUOTE_OPEN = ("“", '"', "‘", "'", "«", "„", "‹", "「", "»")


def learn_key(line: str) -> str | None:
    """The key a normalised line is counted under for learned boilerplate, or None if it may not be learned.

    Only lines of at least 3 words and 15 characters are learned: one- and two-word lines that recur within a
    source are mostly its section subheadings ("Analysis", "Key points") or common words, which are content,
    while the short widget words that are boilerplate already have named rules. Lines that open with a
    quotation mark are never learned: an outlet's follow-up stories re-run the same quote, and it is content.
    """
    if len(line) < 15 or len(line) > 1000 or line.startswith(_QUOTE_OPEN) or len(line.split()) < 3:
        return None
    return hashlib.blake2b(_WS.sub(" ", line.casefold()).strip().encode("utf-8"), digest_size=8).hexdigest()


def learnable_keys(text: str) -> frozenset[str]:
    """Distinct learn keys of a text's lines (each line counts once per article)."""
    return frozenset(k for k in map(learn_key, split_lines(text)) if k)


# ------------------------------------------------------------------------------------------ cleaning


@dataclasses.dataclass(frozen=True)
class CleanResult:
    """What clean_text found: the body, the metadata in it, and the audit of what went."""

    text: str
    title: str | None = None  # the first line, when it reads as a headline (only when no title was given)
    published_at: dt.datetime | None = None
    agency: str | None = None
    tags: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    removed: tuple[Removed, ...] = ()
    removed_lines: frozenset[int] = frozenset()  # indices into split_lines(text) of lines removed whole
    title_line: int | None = None  # index of the line moved out of the body as the title
    learned_skipped: bool = False  # learned lines were most of the article, so they were left in


_SPLIT_META = re.compile(r"\s*[,;|·•]\s*")
_BYLINE = re.compile(r"^by\s+[A-Z][\w.’'-]*(?:\s+[A-Z][\w.’'-]*){0,4}(?:\s*[,|]\s*.{0,60})?$", re.IGNORECASE)
_SENTENCE_BREAK = re.compile(r"(?<![A-Z])[.!?][\"'”’]?\s+[A-Z“\"‘]")
_CLOSERS = "\"'”’»›)] "


def _headline_like(line: str, next_line: str) -> bool:
    """Short, headline-shaped: no final period, or a period on a one-sentence line shorter than the lead."""
    words = line.split()
    if not 3 <= len(words) <= 25 or len(line) > 200:
        return False
    first = line[0]
    if first in "-–—•*·#" or not (first.isupper() or first.isdigit() or first in "“\"‘'«"):
        return False
    if _BYLINE.match(line):
        return False
    body = line.rstrip(_CLOSERS)
    last = body[-1:] or ""
    if last in (",", ";", ":"):
        return False
    if last == ".":
        if first in _QUOTE_OPEN or len(words) > 14 or _SENTENCE_BREAK.search(body[:-1]):
            return False
        return len(next_line.split()) > len(words)
    return True


def _same_title(line: str, title: str) -> bool:
    def key(s: str) -> str:
        return normalize_for_hash(s).rstrip(" .!?:")

    return bool(title) and key(line) == key(title)


def _group(match: re.Match | None, name: str) -> str | None:
    """The named group `name` (numbered per alternative at compile time) that took part in the match."""
    if match is None:
        return None
    return next((v for k, v in match.groupdict().items() if v is not None and k.split("__")[0] == name), None)


def _meta_values(rule: Rule, match: re.Match, core: str) -> list[str]:
    value = _group(match, "value")
    if value is None and rule.meta == "tags":
        parts = core.split("#") if "#" in core else [core]
    else:
        parts = _SPLIT_META.split(value if value is not None else core)
    return [p.strip(" ,;|·•#.") for p in parts if p.strip(" ,;|·•#.")]


class _Collector:
    """Mutable state of one clean_text call: what was removed, and the metadata found on the way."""

    def __init__(self, lines: list[str], rules: Rules):
        self.lines = lines
        self.rules = rules
        self.present = rules.needles_in("\n".join(lines).casefold())
        self.out = list(lines)
        self.gone: dict[int, str] = {}
        self.removed: list[tuple[int, int, Removed]] = []
        self.agency: str | None = None
        self.tags: list[str] = []
        self.sources: list[str] = []

    def drop(self, i: int, rule_id: str) -> None:
        self.gone[i] = rule_id
        self.out[i] = ""
        self.removed.append((i, len(self.removed), Removed(rule_id, self.lines[i])))

    def cut(self, i: int, rule_id: str, span: str) -> None:
        self.removed.append((i, len(self.removed), Removed(rule_id, span.strip())))

    def meta(self, rule: Rule, match: re.Match | None, core: str) -> None:
        if rule.meta == "agency":
            self.agency = self.agency or self.rules.agency_of(_group(match, "agency") or core)
        elif rule.meta in ("tags", "sources"):
            values = _meta_values(rule, match, core) if match is not None else [core.strip(" ,;|·•#.")]
            bucket = self.tags if rule.meta == "tags" else self.sources
            bucket.extend(v for v in values if v and v not in bucket)


def _teaser_like(line: str) -> bool:
    """A link teaser under a widget header: a headline of 5-20 words, no final period, not a quote or bullet."""
    words = line.split()
    last = line.rstrip(_CLOSERS)[-1:]
    return 5 <= len(words) <= 20 and len(line) <= 150 and last not in ".:;," and line[0] not in "-–—•*\"“‘'"


def _tag_like(line: str) -> bool:
    """A topic link under a "Topics" header: up to 5 words and 40 characters, no sentence punctuation."""
    return len(line) <= 40 and len(line.split()) <= 5 and line[-1] not in ".!?:;,"


def _block(c: _Collector, rule: Rule, i: int, paragraph_mode: bool) -> bool:
    """Drop a block header and the lines it owns; False (nothing dropped) when the header needs a follower
    and has none."""
    lines, j, taken = c.lines, i + 1, 0
    owned: list[int] = []
    if paragraph_mode:
        while j < len(lines) and not lines[j]:
            j += 1
        limit = rule.max_lines
    else:
        # Without blank lines every line is a paragraph: a header owns the one after it, or a run of short ones.
        limit = rule.max_lines if (rule.line_max_chars or rule.continuation) else 1
    while j < len(lines) and lines[j] and taken < limit and j not in c.gone:
        line = lines[j]
        if rule.line_max_chars and len(line) > rule.line_max_chars:
            break
        if rule.continuation == "headline" and not _teaser_like(line):
            break
        if rule.continuation == "tag" and not _tag_like(line):
            break
        if (rule.line_max_chars or rule.continuation) and c.rules.first("line", _core(line))[0]:
            break  # the next widget starts here; the main loop names it
        owned.append(j)
        taken += 1
        j += 1
    if rule.requires_continuation and not owned:
        return False
    c.drop(i, rule.id)
    for j in owned:
        c.drop(j, rule.id)
        if rule.meta:
            c.meta(rule, None, lines[j])
    return True


_BAR = re.compile(r"\s[|·•]\s")


def _bar(c: _Collector, i: int, core: str, now: dt.datetime | None, datelines: list) -> None:
    """A line of widgets joined by bars ("World News | Press Trust of India | Updated: ...") goes when every
    part of it is boilerplate, a dateline or a menu word; a bar with any content in it stays whole."""
    found, rule_id = [], None
    for part in _BAR.split(core):
        part = _core(part)
        if not part:
            continue
        rule, m = c.rules.first("line", part)
        if rule is None:
            rule, m = c.rules.first("menu", part)
        if rule is not None:
            found.append((rule, m, part))
            rule_id = rule_id or rule.id
            continue
        date = _dateline(part, now)
        if date is None:
            return
        found.append((None, date, part))
        rule_id = DATELINE_RULE
    c.drop(i, rule_id or DATELINE_RULE)
    for rule, m, part in found:
        if rule is None:
            datelines.append(m)
        else:
            c.meta(rule, m, part)


def _fill_gaps(c: _Collector) -> None:
    """A short line directly between two lines one `fills_gap` rule removed belongs to their box (a newsletter
    promo's blurb). Only adjacent lines count: a blank line ends a box."""
    fillers = {r.id: r.fills_gap for r in c.rules.gap_fillers}
    for i in range(1, len(c.lines) - 1):
        rule_id = c.gone.get(i - 1)
        if (
            rule_id in fillers
            and c.gone.get(i + 1) == rule_id
            and i not in c.gone
            and c.lines[i]
            and len(c.lines[i]) <= fillers[rule_id]
            and not c.lines[i].startswith(_QUOTE_OPEN)
        ):
            c.drop(i, rule_id)


def _captions_above(c: _Collector) -> None:
    """In a text with blank lines, a credit line glued under a one-line paragraph is that photo's caption
    block: the caption goes with it. Without blank lines every line is a paragraph, so nothing can tell."""
    takers = c.rules.caption_takers
    for i in sorted(c.gone):
        limit = takers.get(c.gone[i])
        above = i - 1
        if (
            limit
            and above >= 0
            and above not in c.gone
            and c.lines[above]
            and len(c.lines[above]) <= limit
            and not c.lines[above].startswith(_QUOTE_OPEN)
            and (above == 0 or not c.lines[above - 1] or above - 1 in c.gone)
        ):
            c.drop(above, c.gone[i])


def _menus(c: _Collector, nonblank: list[int]) -> None:
    """Section words ("World", "Business") go only as part of a menu: next to a removed line or to each other."""
    matched = {}
    for i in nonblank:
        if i not in c.gone:
            rule, _ = c.rules.first("menu", _core(c.lines[i]))
            if rule:
                matched[i] = rule
    changed = True
    while changed:
        changed = False
        for k, i in enumerate(nonblank):
            if i not in matched or i in c.gone:
                continue
            neighbours = [nonblank[k - 1]] if k else []
            neighbours += [nonblank[k + 1]] if k + 1 < len(nonblank) else []
            if any(j in c.gone or j in matched for j in neighbours):
                c.drop(i, matched[i].id)
                changed = True


def clean_text(
    text: str,
    rules: Rules,
    learned: frozenset[str] | set[str] = frozenset(),
    *,
    title: str | None = None,
    now: dt.datetime | None = None,
) -> CleanResult:
    """Remove boilerplate lines from `text` and lift the metadata in it.

    `learned` holds learn_key()s of the source's recurring lines. When `title` (from HTML/JSON metadata) is
    given it is kept: the first line is dropped only if it repeats it, and no title is taken from the text.
    """
    lines = split_lines(text)
    c = _Collector(lines, rules)
    nonblank = [i for i, line in enumerate(lines) if line]
    if not nonblank:
        return CleanResult(text="")
    paragraph_mode = any(not lines[i] for i in range(nonblank[0], nonblank[-1]))
    datelines: list[_Dateline] = []
    prefixed: set[int] = set()

    for i in nonblank:
        if i in c.gone:
            continue
        core = _core(lines[i]) or lines[i]  # a line of bullets or bars only: the rules see it as it is
        rule, m = rules.first("whole", core)
        if rule and rule.scope == "block":
            if _block(c, rule, i, paragraph_mode):
                continue
            rule, m = rules.first("line", core)  # a header with nothing under it may still be a line rule's
        if rule:
            c.drop(i, rule.id)
            c.meta(rule, m, core)
        elif (" | " in core or " · " in core or " • " in core) and _BAR.search(core):
            _bar(c, i, core, now, datelines)
    if rules.gap_fillers:
        _fill_gaps(c)
    if paragraph_mode and rules.caption_takers:
        _captions_above(c)
    if rules.menu:
        _menus(c, nonblank)

    alive = [i for i in nonblank if i not in c.gone]
    # Bare dates are datelines near the top or bottom only; mid-article they are timeline subheadings.
    edge = set(alive[:6]) | set(alive[-3:])
    for i in alive:
        line = lines[i]
        if len(line) <= 100 and (i in edge or _DATE_PREFIX.match(line)) and _DATE_HINT.search(line):
            found = _dateline(line, now)
            if found:
                c.drop(i, DATELINE_RULE)
                datelines.append(found)
                continue
        kept = line
        for rule in rules.prefix:
            m = rule.match(kept)
            if m:
                c.cut(i, rule.id, m.group(0))
                c.meta(rule, m, m.group(0))
                kept = kept[m.end() :]
                prefixed.add(i)
                break
        for rule in rules.inline:
            pieces, last = [], 0
            for m in rule.spans(kept, c.present):
                c.cut(i, rule.id, m.group(0))
                pieces.append(kept[last : m.start()])
                last = m.end()
            if pieces:
                kept = "".join(pieces) + kept[last:]
        if kept is not line:
            kept = " ".join(kept.split())
        if not kept:
            c.gone[i] = "empty"
        c.out[i] = kept

    learned_skipped = False
    if learned:
        alive = [i for i in nonblank if i not in c.gone]
        hits = [i for i in alive if learn_key(lines[i]) in learned]
        # A footer is a minority of an article. When several recurring lines are most of it, or all of it,
        # this is the same story more than once (an update, a re-run): dedup must see it whole.
        share = sum(len(c.out[i]) for i in hits) / max(1, sum(len(c.out[i]) for i in alive))
        if hits and (len(hits) == len(alive) or (len(hits) >= 2 and share > 0.5)):
            learned_skipped = True
        else:
            for i in hits:
                c.drop(i, LEARNED_RULE)

    alive = [i for i in nonblank if i not in c.gone]
    found_title, title_line = None, None
    if len(alive) > 1:
        first = alive[0]
        if title:
            if _same_title(c.out[first], title):
                title_line = first
        elif first not in prefixed and _headline_like(c.out[first], c.out[alive[1]]):
            found_title, title_line = c.out[first], first

    dated = [d for d in datelines if d.when]
    published = next((d.when for d in dated if not d.updated), None) or next((d.when for d in dated), None)
    body = PARAGRAPH_SEPARATOR.join(c.out[i] for i in alive if i != title_line)
    return CleanResult(
        text=body,
        title=found_title,
        published_at=published,
        agency=c.agency,
        tags=tuple(c.tags),
        sources=tuple(c.sources),
        removed=tuple(r for _, _, r in sorted(c.removed, key=lambda t: (t[0], t[1]))),
        removed_lines=frozenset(c.gone),
        title_line=title_line,
        learned_skipped=learned_skipped,
    )


def clean_article(
    article: Article,
    rules: Rules,
    learned: frozenset[str] | set[str] = frozenset(),
    now: dt.datetime | None = None,
) -> tuple[Article | None, CleanResult]:
    """Article -> (cleaned Article, result), or (None, result) when nothing is left of its body.

    Metadata from HTML/JSON wins: a title that came with the record is kept, and a dateline sets the date
    only when the record had none (date_source 'run').
    """
    result = clean_text(article.text, rules, learned, title=article.title, now=now)
    if not result.text:
        return None, result
    fields: dict = dict(
        text=result.text,
        removed=article.removed + result.removed,
        agency=article.agency or result.agency,
        tags=tuple(dict.fromkeys(article.tags + result.tags)),
        sources=tuple(dict.fromkeys(article.sources + result.sources)),
    )
    if not article.title and result.title:
        fields["title"] = result.title
    if article.date_source == "run" and result.published_at is not None:
        fields.update(published_at=result.published_at, date_source="dateline")
    return dataclasses.replace(article, **fields), result


# ------------------------------------------------------------------------------------------------ Beam


class _DistinctUpTo(beam.CombineFn):
    """Distinct values counted up to a cap, so an accumulator never holds more than `cap` values."""

    def __init__(self, cap: int):
        self._cap = cap

    def create_accumulator(self):
        return set()

    def add_input(self, acc, value):
        if len(acc) < self._cap:
            acc.add(value)
        return acc

    def merge_accumulators(self, accumulators):
        merged: set = set()
        for acc in accumulators:
            merged |= acc
        # Any `cap` of them give the same count; the smallest keep the accumulator deterministic.
        return merged if len(merged) <= self._cap else set(sorted(merged)[: self._cap])

    def extract_output(self, acc):
        return len(acc)


def _line_keys(article: Article):
    # The article id, not the record: exact copies of one story must not make its lines look like boilerplate.
    ident = article.article_id
    for key in sorted(learnable_keys(article.text)):
        yield (article.source, key), ident


def _recurring(item, n: int) -> bool:
    return item[1] >= n


def _source_and_key(item):
    (source, key), _ = item
    return source, key


def _as_set(source, keys):
    return source, frozenset(keys)


class _LearnRepeatedLines(beam.PTransform):
    """Article -> (source, frozenset of learn keys seen in >= n distinct articles of that source)."""

    def __init__(self, min_articles: int):
        super().__init__()
        self._n = min_articles

    def expand(self, articles):
        return (
            articles
            | "LineKeys" >> beam.FlatMap(_line_keys)
            | "CountArticlesPerLine" >> beam.CombinePerKey(_DistinctUpTo(self._n))
            | "KeepRecurring" >> beam.Filter(_recurring, self._n)
            | "BySource" >> beam.Map(_source_and_key)
            | "GroupBySource" >> beam.GroupByKey()
            | "AsSets" >> beam.MapTuple(_as_set)
        )


class _CleanFn(beam.DoFn):
    def __init__(self, cfg: CleanConfig):
        self._cfg = cfg
        self._rules: Rules | None = None

    def setup(self):
        self._rules = load_rules(self._cfg.extra_rules_yaml, self._cfg.extra_rules or "extra rules")

    def process(self, article: Article, learned: Mapping[str, frozenset] | None = None):
        lines = learned.get(article.source, frozenset()) if learned else frozenset()
        cleaned, result = clean_article(article, self._rules, lines, self._cfg.now)
        for family, n in _family_counts(result.removed).items():
            count(f"clean.removed.{family}", n)
        if result.learned_skipped:
            count("clean.learned_skipped")
        if cleaned is None:
            detail = f"nothing left after removing {len(result.removed)} boilerplate line(s)"
            yield reject(article.input_ref, STAGE, "empty_after_clean", detail, article.text)
            return
        count("clean.articles")
        yield cleaned


def _family_counts(removed: Iterable[Removed]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in removed:
        family = r.rule_id.split(".", 1)[0]
        counts[family] = counts.get(family, 0) + 1
    return counts


class Clean(beam.PTransform):
    """Article -> {'articles': cleaned Article, 'rejects': Reject}: named rules, learned lines, text metadata."""

    def __init__(self, cfg: CleanConfig = CleanConfig()):
        super().__init__()
        self._cfg = cfg

    def expand(self, articles):
        side = ()
        if self._cfg.min_articles_for_learned:
            learned = articles | "LearnRepeatedLines" >> _LearnRepeatedLines(self._cfg.min_articles_for_learned)
            side = (beam.pvalue.AsDict(learned),)
        cleaned, rejects = run_guarded(articles, "CleanText", STAGE, _CleanFn(self._cfg), *side)
        return {"articles": cleaned, "rejects": rejects}
