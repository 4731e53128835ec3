"""The cleaner: clean_text removes boilerplate and lifts metadata from a text; clean_article applies it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from schemas.elements import Article, Removed, normalize_for_hash
from transforms.clean.collector import Collector, drop_whole_lines
from transforms.clean.datelines import DATE_HINT, DATE_PREFIX, read_dateline
from transforms.clean.rules import DATELINE_RULE, LEARNED_RULE, Rules
from transforms.clean.text import CLOSERS, QUOTE_OPEN, learn_key, split_lines
from transforms.common import count
from transforms.extract.config import in_future

# Output text: one paragraph per line, lines joined by a single "\n", blank lines dropped. Plain-text seeds
# and trafilatura's output already use one line per paragraph, so clean text changes only where it must.
PARAGRAPH_SEPARATOR = "\n"

_BYLINE = re.compile(r"^by\s+[A-Z][\w.’'-]*(?:\s+[A-Z][\w.’'-]*){0,4}(?:\s*[,|]\s*.{0,60})?$", re.IGNORECASE)
_SENTENCE_BREAK = re.compile(r"(?<![A-Z])[.!?][\"'”’]?\s+[A-Z“\"‘]")


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
    body = line.rstrip(CLOSERS)
    last = body[-1:] or ""
    if last in (",", ";", ":"):
        return False
    if last == ".":
        if first in QUOTE_OPEN or len(words) > 14 or _SENTENCE_BREAK.search(body[:-1]):
            return False
        return len(next_line.split()) > len(words)
    return True


def _same_title(line: str, title: str) -> bool:
    def key(s: str) -> str:
        return normalize_for_hash(s).rstrip(" .!?:")

    return bool(title) and key(line) == key(title)


def _drop_datelines_and_spans(c: Collector, nonblank: list[int], now: dt.datetime | None) -> None:
    """Drop datelines near the edges, and cut prefix and inline spans out of the lines that stay."""
    alive = [i for i in nonblank if i not in c.gone]
    # Bare dates are datelines near the top or bottom only; mid-article they are timeline subheadings.
    edge = set(alive[:6]) | set(alive[-3:])
    for i in alive:
        line = c.lines[i]
        if len(line) <= 100 and (i in edge or DATE_PREFIX.match(line)) and DATE_HINT.search(line):
            found = read_dateline(line, now)
            if found:
                c.drop(i, DATELINE_RULE)
                c.datelines.append(found)
                continue
        kept = _cut_spans(c, i, line)
        if not kept:
            c.gone[i] = "empty"
        c.out[i] = kept


def _cut_spans(c: Collector, i: int, line: str) -> str:
    """The line without its first matching prefix and its inline spans, spaces collapsed where cut."""
    kept = line
    for rule in c.rules.prefix:
        m = rule.match(kept)
        if m:
            c.cut(i, rule.id, m.group(0))
            c.meta(rule, m, m.group(0))
            kept = kept[m.end() :]
            c.prefixed.add(i)
            break
    for rule in c.rules.inline:
        pieces, last = [], 0
        for m in rule.spans(kept, c.present):
            c.cut(i, rule.id, m.group(0))
            pieces.append(kept[last : m.start()])
            last = m.end()
        if pieces:
            kept = "".join(pieces) + kept[last:]
    if kept is not line:
        kept = " ".join(kept.split())
    return kept


def _drop_learned(c: Collector, nonblank: list[int], learned: frozenset[str] | set[str]) -> bool:
    """Drop the source's recurring lines; True when they were left in because they are most of the article."""
    alive = [i for i in nonblank if i not in c.gone]
    hits = [i for i in alive if learn_key(c.lines[i]) in learned]
    # A footer is a minority of an article. When several recurring lines are most of it, or all of it,
    # this is the same story more than once (an update, a re-run): dedup must see it whole.
    share = sum(len(c.out[i]) for i in hits) / max(1, sum(len(c.out[i]) for i in alive))
    if hits and (len(hits) == len(alive) or (len(hits) >= 2 and share > 0.5)):
        return True
    for i in hits:
        c.drop(i, LEARNED_RULE)
    return False


def _title_line(c: Collector, alive: list[int], title: str | None) -> tuple[str | None, int | None]:
    """(title found in the text, index of the line that goes as the title): a given title is only matched."""
    if len(alive) > 1:
        first = alive[0]
        if title:
            if _same_title(c.out[first], title):
                return None, first
        elif first not in c.prefixed and _headline_like(c.out[first], c.out[alive[1]]):
            return c.out[first], first
    return None, None


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
    c = Collector(lines, rules)
    nonblank = [i for i, line in enumerate(lines) if line]
    if not nonblank:
        return CleanResult(text="")
    paragraph_mode = any(not lines[i] for i in range(nonblank[0], nonblank[-1]))
    drop_whole_lines(c, nonblank, paragraph_mode, now)
    _drop_datelines_and_spans(c, nonblank, now)
    learned_skipped = _drop_learned(c, nonblank, learned) if learned else False

    alive = [i for i in nonblank if i not in c.gone]
    found_title, title_line = _title_line(c, alive, title)
    dated = [d for d in c.datelines if d.when]
    published = next((d.when for d in dated if not d.updated), None) or next((d.when for d in dated), None)
    return CleanResult(
        text=PARAGRAPH_SEPARATOR.join(c.out[i] for i in alive if i != title_line),
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
    only when the record had none (date_source 'run') and, given `now`, it is not beyond now + MAX_CLOCK_SKEW.
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
    dateline = result.published_at
    if article.date_source == "run" and dateline is not None:
        if in_future(dateline, now):
            count("clean.future_dateline")  # a misread or scheduled date: the run date stays
        else:
            fields.update(published_at=dateline, date_source="dateline")
            if article.updated_at is not None and article.updated_at < dateline:
                fields["updated_at"] = None  # never an updated date before the published one
    return dataclasses.replace(article, **fields), result
