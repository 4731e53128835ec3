"""Boilerplate rules: the compiled Rule and Rules, and the compiler of the packaged and extra YAML rule files."""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import re
from collections.abc import Mapping

import yaml

from transforms.clean.matcher import Matcher
from transforms.clean.text import WS

RULES_PATH = pathlib.Path(__file__).resolve().parent.parent / "data" / "boilerplate_rules.yaml"
# Rule ids of removals no YAML rule makes.
LEARNED_RULE = "learned.repeated_line"
DATELINE_RULE = "meta.dateline"

_SCOPES = ("line", "block", "prefix", "inline")
_PREFIX_HEAD = 160  # a prefix rule's needle must lie within this many characters of the line start
_METAS = (None, "agency", "tags", "sources")
_DEFAULT_MAX_CHARS = 300
_LANGUAGE = re.compile(r"[a-z]{2}|any")


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
    languages: tuple[str, ...] = ()  # whose phrasing it matches (ISO 639-1, "any" = language-neutral); () unsaid

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
            "whole": Matcher(self.block + self.line),
            "line": Matcher(self.line),
            "menu": Matcher(self.menu),
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

    def coverage(self) -> dict[str, tuple[str, ...]]:
        """Family -> the languages its rules declare ("any": language-neutral patterns), sorted."""
        found: dict[str, set[str]] = {}
        for r in self.block + self.line + self.menu + self.prefix + self.inline:
            found.setdefault(r.family, set()).update(r.languages)
        return {family: tuple(sorted(langs)) for family, langs in sorted(found.items())}

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.block + self.line + self.menu + self.prefix + self.inline)

    def agency_of(self, alias: str | None) -> str | None:
        if not alias:
            return None
        return self.agencies.get(WS.sub(" ", alias).strip().casefold())


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


def _agencies(doc: dict) -> tuple[dict[str, str], str]:
    """(casefolded alias -> canonical name, a regex alternation of every alias, longest first)."""
    agencies, spellings = {}, set()
    for canonical, aliases in (doc.get("agencies") or {}).items():
        for alias in [canonical, *aliases]:
            alias = WS.sub(" ", str(alias)).strip()
            agencies[alias.casefold()] = str(canonical)
            spellings.add(alias)  # as written: a case-sensitive rule must see "CNN", not "cnn"
    alternation = "|".join(
        re.escape(a).replace(r"\ ", r"\s+") for a in sorted(spellings, key=lambda a: (-len(a), a)) if a
    )
    return agencies, alternation


def _check(spec: dict, scope: str, where: str) -> None:
    """ValueError naming the first option of a rule that is unknown or does not fit its scope."""
    if scope not in _SCOPES:
        raise ValueError(f"{where}: scope must be one of {', '.join(_SCOPES)}")
    if spec.get("meta") not in _METAS:
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
    languages = spec.get("languages")
    if languages is not None and (
        not isinstance(languages, list) or not all(_LANGUAGE.fullmatch(str(x)) for x in languages)
    ):
        raise ValueError(f"{where}: languages must be a list of ISO 639-1 codes or 'any', like [en, fr]")


def _patterns(spec: dict, placeholders: dict, where: str) -> tuple[list[str], list[tuple[str, tuple[str, ...]]]]:
    """A rule's patterns with placeholders filled in: (anchored sources, floating (source, needles))."""
    patterns = spec.get("patterns") or ([spec["pattern"]] if spec.get("pattern") else [])
    if not patterns:
        raise ValueError(f"{where}: needs `pattern` or a list of `patterns`")
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
    return anchored, floating


def _rule(spec: dict, rid, scope: str, placeholders: dict, where: str) -> Rule:
    anchored, floating = _patterns(spec, placeholders, where)
    flags = 0 if spec.get("case_sensitive") else re.IGNORECASE
    try:
        regex = re.compile("|".join(f"(?:{p})" for p in anchored), flags) if anchored else None
        floats = tuple((re.compile(p, flags), needs) for p, needs in floating)
    except re.error as e:
        raise ValueError(f"{where}: bad regex ({e})") from None
    return Rule(
        id=str(rid),
        family=str(spec.get("family") or str(rid).split(".", 1)[0]),
        scope=scope,
        regex=regex,
        max_chars=int(spec.get("max_chars", _DEFAULT_MAX_CHARS)),
        meta=spec.get("meta"),
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
        languages=tuple(str(x) for x in spec.get("languages") or ()),
    )


def _compile(doc: dict, origin: str) -> Rules:
    agencies, alternation = _agencies(doc)
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
        _check(spec, scope, where)
        by_scope[scope].append(_rule(spec, rid, scope, placeholders, where))
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
