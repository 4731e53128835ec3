"""One clean_text call's state, and the passes that drop whole lines: rules, blocks, bars, gaps, captions, menus."""

from __future__ import annotations

import datetime as dt
import re

from schemas.elements import Removed
from transforms.clean.datelines import Dateline, read_dateline
from transforms.clean.rules import DATELINE_RULE, Rule, Rules
from transforms.clean.text import CLOSERS, QUOTE_OPEN, line_core

_SPLIT_META = re.compile(r"\s*[,;|·•]\s*")


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


class Collector:
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
        self.datelines: list[Dateline] = []
        self.prefixed: set[int] = set()  # lines that lost a prefix: such a first line is no headline

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
    last = line.rstrip(CLOSERS)[-1:]
    return 5 <= len(words) <= 20 and len(line) <= 150 and last not in ".:;," and line[0] not in "-–—•*\"“‘'"


def _tag_like(line: str) -> bool:
    """A topic link under a "Topics" header: up to 5 words and 40 characters, no sentence punctuation."""
    return len(line) <= 40 and len(line.split()) <= 5 and line[-1] not in ".!?:;,"


def _block(c: Collector, rule: Rule, i: int, paragraph_mode: bool) -> bool:
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
        if (rule.line_max_chars or rule.continuation) and c.rules.first("line", line_core(line))[0]:
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


def _bar(c: Collector, i: int, core: str, now: dt.datetime | None) -> None:
    """A line of widgets joined by bars ("World News | Press Trust of India | Updated: ...") goes when every
    part of it is boilerplate, a dateline or a menu word; a bar with any content in it stays whole."""
    found, rule_id = [], None
    for part in _BAR.split(core):
        part = line_core(part)
        if not part:
            continue
        rule, m = c.rules.first("line", part)
        if rule is None:
            rule, m = c.rules.first("menu", part)
        if rule is not None:
            found.append((rule, m, part))
            rule_id = rule_id or rule.id
            continue
        date = read_dateline(part, now)
        if date is None:
            return
        found.append((None, date, part))
        rule_id = DATELINE_RULE
    c.drop(i, rule_id or DATELINE_RULE)
    for rule, m, part in found:
        if rule is None:
            c.datelines.append(m)
        else:
            c.meta(rule, m, part)


def _fill_gaps(c: Collector) -> None:
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
            and not c.lines[i].startswith(QUOTE_OPEN)
        ):
            c.drop(i, rule_id)


def _captions_above(c: Collector) -> None:
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
            and not c.lines[above].startswith(QUOTE_OPEN)
            and (above == 0 or not c.lines[above - 1] or above - 1 in c.gone)
        ):
            c.drop(above, c.gone[i])


def _menus(c: Collector, nonblank: list[int]) -> None:
    """Section words ("World", "Business") go only as part of a menu: next to a removed line or to each other."""
    matched = {}
    for i in nonblank:
        if i not in c.gone:
            rule, _ = c.rules.first("menu", line_core(c.lines[i]))
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


def drop_whole_lines(c: Collector, nonblank: list[int], paragraph_mode: bool, now: dt.datetime | None) -> None:
    """Drop the lines that rules, block headers and bars remove whole, then the lines next to them that belong
    with them (gap fillers, captions, menus)."""
    for i in nonblank:
        if i in c.gone:
            continue
        core = line_core(c.lines[i]) or c.lines[i]  # a line of bullets or bars only: the rules see it as it is
        rule, m = c.rules.first("whole", core)
        if rule and rule.scope == "block":
            if _block(c, rule, i, paragraph_mode):
                continue
            rule, m = c.rules.first("line", core)  # a header with nothing under it may still be a line rule's
        if rule:
            c.drop(i, rule.id)
            c.meta(rule, m, core)
        elif (" | " in core or " · " in core or " • " in core) and _BAR.search(core):
            _bar(c, i, core, now)
    if c.rules.gap_fillers:
        _fill_gaps(c)
    if paragraph_mode and c.rules.caption_takers:
        _captions_above(c)
    if c.rules.menu:
        _menus(c, nonblank)
