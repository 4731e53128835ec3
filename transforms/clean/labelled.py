"""The labelled-article format (K/R/T/P lines, @metadata) and scoring clean_text's removals and metadata on it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib

from transforms.clean.cleaner import CleanResult, clean_text
from transforms.clean.rules import Rules, load_rules


@dataclasses.dataclass
class Labelled:
    """One labelled article: its lines, their labels, and the metadata the cleaner must find."""

    name: str
    lines: list[str]
    labels: list[str]  # K, R, T or P per line
    expected: dict[int, str]  # P line index -> text that must remain
    meta: dict[str, str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def list_meta(self, key: str) -> tuple[str, ...]:
        value = self.meta.get(key, "")
        return tuple(v.strip() for v in value.split(" | ") if v.strip())

    def when(self, key: str) -> dt.datetime | None:
        return dt.datetime.fromisoformat(self.meta[key]) if key in self.meta else None


def load_labelled(path: pathlib.Path) -> Labelled:
    """One labelled file: each line starts with its label, `=|` gives the text a P line must become."""
    lines, labels, expected, meta = [], [], {}, {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if raw.startswith("@"):
            key, _, value = raw[1:].partition(":")
            meta[key.strip()] = value.strip()
        elif raw.startswith("=|"):
            expected[len(lines) - 1] = raw[2:]
        elif raw[:2] in ("K|", "R|", "T|", "P|"):
            labels.append(raw[0])
            lines.append(raw[2:])
        elif raw == "" and n > 1:
            continue  # the file's final newline
        else:
            raise ValueError(f"{path.name}:{n}: a line must start with K| R| T| P| =| or @")
    return Labelled(path.stem, lines, labels, expected, meta)


def load_set(folder: pathlib.Path) -> list[Labelled]:
    """Every labelled *.txt article in `folder`, by name."""
    return [load_labelled(p) for p in sorted(folder.glob("*.txt"))]


def kept_lines(doc: Labelled, result: CleanResult) -> dict[int, str]:
    """Line index -> the text it became in the body, for the lines that stayed in the body."""
    alive = [
        i
        for i, line in enumerate(doc.lines)
        if line.strip() and i not in result.removed_lines and i != result.title_line
    ]
    body = result.text.split("\n") if result.text else []
    if len(body) != len(alive):
        raise AssertionError(f"{doc.name}: {len(alive)} kept lines but {len(body)} body lines")
    return dict(zip(alive, body, strict=True))


@dataclasses.dataclass
class Score:
    """Line-removal counts, prefix/inline spans and metadata checks over a labelled set, with what went wrong."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    spans_ok: int = 0
    spans: int = 0
    checks: dict = dataclasses.field(default_factory=dict)  # metadata field -> [ok, total]
    errors: list = dataclasses.field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def check(self, field: str, ok: bool, doc: str, got, want) -> None:
        counts = self.checks.setdefault(field, [0, 0])
        counts[0] += ok
        counts[1] += 1
        if not ok:
            self.errors.append(f"{doc}: {field} is {got!r}, expected {want!r}")


def score(docs: list[Labelled], rules: Rules | None = None) -> Score:
    """Clean every labelled article (packaged rules by default) and score it against its labels."""
    rules = rules or load_rules()
    s = Score()
    for doc in docs:
        given_title = doc.meta.get("meta_title")
        result = clean_text(doc.text, rules, title=given_title, now=doc.when("now"))
        body = kept_lines(doc, result)
        for i, (line, label) in enumerate(zip(doc.lines, doc.labels, strict=True)):
            if not line.strip():
                continue
            removed = i in result.removed_lines
            if label == "R":
                s.tp += removed
                s.fn += not removed
                if not removed:
                    s.errors.append(f"{doc.name}:{i + 1}: missed      | {line[:100]}")
            else:
                s.tn += not removed
                s.fp += removed
                if removed:
                    s.errors.append(f"{doc.name}:{i + 1}: wrongly cut | {line[:100]}")
            if label == "P" and not removed:
                s.spans += 1
                ok = body.get(i) == doc.expected.get(i)
                s.spans_ok += ok
                if not ok:
                    s.errors.append(f"{doc.name}:{i + 1}: prefix left | {body.get(i, '')[:100]}")
        title = given_title or result.title
        s.check("title", title == doc.meta.get("title"), doc.name, title, doc.meta.get("title"))
        title_line = next((i for i, label in enumerate(doc.labels) if label == "T"), None)
        s.check("title_line", result.title_line == title_line, doc.name, result.title_line, title_line)
        s.check("published_at", result.published_at == doc.when("published_at"), doc.name,
                result.published_at, doc.when("published_at"))  # fmt: skip
        s.check("agency", result.agency == doc.meta.get("agency"), doc.name, result.agency, doc.meta.get("agency"))
        s.check("tags", result.tags == doc.list_meta("tags"), doc.name, result.tags, doc.list_meta("tags"))
        s.check("sources", result.sources == doc.list_meta("sources"), doc.name, result.sources,
                doc.list_meta("sources"))  # fmt: skip
    return s
