"""The fast path of rule matching: all rules' anchored alternatives as one regex per first character and length."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transforms.clean.rules import Rule

try:
    from re import _constants as _c
    from re import _parser
except ImportError:  # pragma: no cover - a Python whose re internals moved: no dispatch, same results
    _c = _parser = None


def _case(ch: int) -> set[str]:
    # Every case variant, even for case-sensitive parts: a superset only costs a wasted try.
    char = chr(ch)
    return {char.lower(), char.upper().lower(), char.casefold()[:1]}


def _walk_set(av) -> set[str] | None:
    """The characters a character class can match, or None when it is too wide to list."""
    found: set[str] = set()
    for kind, value in av:
        if kind is _c.LITERAL:
            found |= _case(value)
        elif kind is _c.CATEGORY and value is _c.CATEGORY_DIGIT:
            found |= set("0123456789")
        elif kind is _c.RANGE and value[1] - value[0] <= 256:
            for ch in range(value[0], value[1] + 1):
                found |= _case(ch)
        else:
            return None
    return found


def _walk(seq) -> tuple[set[str] | None, bool]:
    """(first characters, whether the sequence can match the empty string) of a parsed regex sequence."""
    found: set[str] = set()
    for op, av in seq:
        if op is _c.LITERAL:
            return found | _case(av), False
        if op is _c.IN:
            chars = _walk_set(av)
            return (None if chars is None else found | chars), False
        if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            continue  # zero width: the next item decides
        if op is _c.SUBPATTERN:
            first, nullable = _walk(av[3])
        elif op is _c.BRANCH:
            first, nullable = set(), False
            for alt in av[1]:
                f, n = _walk(alt)
                if f is None:
                    return None, False
                first |= f
                nullable = nullable or n
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
            lo, _, sub = av
            first, nullable = _walk(sub)
            nullable = nullable or lo == 0
        elif op is getattr(_c, "ATOMIC_GROUP", None):
            first, nullable = _walk(av)
        else:
            return None, False
        if first is None:
            return None, False
        found |= first
        if not nullable:
            return found, False
    return found, True


def _first_chars(pattern: str, flags: int) -> frozenset[str] | None:
    """Lower-cased characters a match of `pattern` can start with, or None when it can start with anything.

    Read off the parsed regex; anything the walk does not understand gives None, which only costs speed.
    """
    if _parser is None:  # pragma: no cover
        return None
    try:
        first, nullable = _walk(_parser.parse(pattern, flags))
    except Exception:  # noqa: BLE001 - an unexpected parse shape: no dispatch for this pattern
        return None
    return None if first is None or nullable else frozenset(first)


# Where a floating pattern's needle must be: within this many characters of the start or end of the line (its
# `.{0,N}` lead-in or its short tail). Paragraphs are long; searching their ends only keeps the gate cheap.
_NEEDLE_WINDOW = 300


def _ends(low: str) -> str:
    return low[:_NEEDLE_WINDOW] + "\n" + low[-_NEEDLE_WINDOW:]


class Matcher:
    """First rule (in file order) whose pattern matches a whole line: the cleaner's hot loop.

    The anchored alternatives of all rules become one regex per first character of the line: only the
    alternatives that can start with that character. A match whose rule does not allow lines that long is
    answered by slow(), the plain rule-by-rule reference (rare: anchored patterns bound their own length).
    Floating alternatives sit behind a substring gate. One regex per character, not per (character, length
    bucket): compiling those big case-insensitive alternations was ~2 s of every run's start.
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
        self._longest = max((r.max_chars for r in rules), default=0)
        self._by_char: dict[str, re.Pattern | None] = {}
        self.floating = [(k, rx, needs) for k, r in enumerate(rules) for rx, needs in r.floating]
        # One substring gate per line-length limit: a long paragraph is only searched for the few needles of
        # the rules that allow long lines.
        self._limits = sorted({rules[k].max_chars for k, _, _ in self.floating})
        self._gates: dict[int, tuple[str, ...]] = {}
        for limit in self._limits:
            needles = {n for k, _, needs in self.floating if rules[k].max_chars >= limit for n in needs}
            self._gates[limit] = tuple(sorted(needles))

    def _combined(self, char: str) -> re.Pattern | None:
        if char not in self._by_char:
            branches = [b for _, first, b in self._branches if first is None or char in first]
            self._by_char[char] = re.compile("|".join(branches)) if branches else None
        return self._by_char[char]

    def first(self, core: str) -> tuple[Rule | None, re.Match | None]:
        if not core:
            return None, None
        n = len(core)
        best_k, best_m = len(self.rules), None
        combined = self._combined(core[0].lower()) if n <= self._longest else None
        m = combined.fullmatch(core) if combined is not None else None
        if m is not None:
            best_k, best_m = int(m.lastgroup.split("_")[1]), m
            if n > self.rules[best_k].max_chars:
                return self.slow(core)  # a later rule that allows this length may still match
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
