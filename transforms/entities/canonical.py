"""Canonical names: one cleaned name, one majority label and one id per entity of an article, its missed mentions
found again, and its mentions in capitals lines (headlines, datelines) made consistent with the body."""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence

from schemas.elements import EntityMention
from transforms.entities.gazetteer import is_entity_id
from transforms.entities.labels import COMMON_LABELS, common_label

# Named things analysts query, plus DATE. Numeric types (CARDINAL, MONEY, PERCENT, ...) are noise per article.
NAME_LABELS = tuple(label for label in COMMON_LABELS if label != "DATE")
DEFAULT_LABELS = NAME_LABELS + ("DATE",)
# Labels of places: a model entity with one of them gets the gazetteer's id for its name.
PLACE_LABELS = ("GPE", "LOC")

_WS = re.compile(r"\s+")
_POSSESSIVE = re.compile(r"(?:['’]s|(?<=[sS])['’])$")
_EDGE_PUNCT = "\"'“”‘’«»()[]{}<>,;:"
_SENTENCE_START = re.compile(r"(?:^|[.!?…:\n])[\s\"'“”‘’(\[]*$")
# A word in capitals (two letters or more), and a run of them with only punctuation, digits and spaces between.
_CAPS_WORD = r"[^\W\d_a-z]*[A-Z][^\W\d_a-z]*[A-Z][^\W\d_a-z]*"
_CAPS_RUN = re.compile(rf"{_CAPS_WORD}(?:(?:[ \t\d_]|[^\w\s])+?{_CAPS_WORD})*", re.UNICODE)
_LINE_START = re.compile(r"(?:^|\n)[ \t\"'“(\[]*$")
_WORD = re.compile(r"[^\W_]+(?:[-'’.][^\W_]+)*", re.UNICODE)
_NEXT_WORD = re.compile(r" ([^\W\d_]+)\b")
_NEXT_CAPITAL = re.compile(r"\s+[A-Z]")
_SCORE = re.compile(r"[ \t]+\d")
TEAM_PAIRS = 2
_DAY = re.compile(r"(?:[1-9]|[12]\d|3[01])")
# A nationality formed from a country's name: its stem (4 letters or more) and a demonym ending.
_DEMONYM = re.compile(r"([A-Z][a-z]{3,}?)(?:ian|ean|an|ese|ish|i|ic)")
MAX_CAPS_NGRAM = 5
# A capitals run of this many words is a headline, where the model's own entities are mostly wrong ("LUCKY WIN"
# as ORG): only those the body or the gazetteer confirm are kept. Shorter runs are acronyms ("NATO") and
# datelines, which the model reads well.
HEADLINE_WORDS = 3


@dataclasses.dataclass(frozen=True)
class KnownNames:
    """A gazetteer's names with ids: by exact name, and by casefolded name for lines in capitals."""

    by_name: Mapping[str, tuple[str, str]]
    by_fold: Mapping[str, tuple[str, str, str]]
    countries: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # by first letter
    subdivision_words: frozenset[str] = frozenset()

    @classmethod
    def of(cls, names: Mapping[str, tuple[str, str, str]]) -> KnownNames:
        """From {name: (label, id, tier)} (gazetteer.known_names). Capitals lines look up only names of tiers that
        may add an entity anywhere ("minor" places are added only beside lower-case text); a casefolded name
        shared by several keeps the first.
        """
        by_fold: dict[str, tuple[str, str, str]] = {}
        countries: dict[str, list[str]] = collections.defaultdict(list)
        for name, (label, eid, tier) in names.items():
            if tier != "minor":
                by_fold.setdefault(_fold(name), (name, label, eid))
            if eid.startswith("iso3166-1:") and " " not in name:
                countries[name[:1]].append(name)
        by_name = {name: (label, eid) for name, (label, eid, _) in names.items()}
        from transforms.entities.places import subdivision_words

        words = subdivision_words() if names else frozenset()
        return cls(by_name, by_fold, {k: tuple(v) for k, v in countries.items()}, words)


NO_NAMES = KnownNames({}, {})


def _fold(name: str) -> str:
    return " ".join(name.replace("-", " ").casefold().split())


def _sentence_initial(text: str, start: int) -> bool:
    return bool(_SENTENCE_START.search(text[max(0, start - 20) : start]))


def clean_name(mention: str, sentence_initial: bool = False) -> str:
    """A mention's name: whitespace collapsed, possessive and edge punctuation stripped, a leading article dropped.

    "Russia's" and "Russia’s" -> "Russia"; "the United States" -> "United States". A capital "The" is part of
    the name ("The Hague") unless the mention opens a sentence.
    """
    name = _WS.sub(" ", mention).strip().strip(_EDGE_PUNCT).strip()
    name = _POSSESSIVE.sub("", name).strip().strip(_EDGE_PUNCT).strip()
    if name.startswith("the ") or (sentence_initial and name.startswith("The ")):
        name = name[4:].strip()
    return name


@dataclasses.dataclass
class _Item:
    start: int
    end: int
    label: str
    name: str
    model_label: str = ""
    entity_id: str | None = None
    votes: bool = True  # found by the model or the gazetteer, not only by consistency: its label counts


def _pick(candidates: Iterable[str], weight: dict[str, int], first: dict[str, int]) -> str:
    return min(candidates, key=lambda c: (-weight[c], first[c], c))


def _named_items(text: str, raw: Sequence[tuple]) -> list[_Item]:
    """Items in text order, without nameless mentions and lower-case proper names.

    A raw span is (start, end, label, pattern_id[, model_label]); the label is mapped to the common one.
    """
    items = []
    for r in sorted(raw, key=lambda r: (r[0], r[1], r[2])):
        start, end, label, pid = r[:4]
        model_label = r[4] if len(r) > 4 else label
        label = common_label(label)
        eid = pid if is_entity_id(pid) else None
        name = pid.strip() if pid and not eid else clean_name(text[start:end], _sentence_initial(text, start))
        if not name or (label in NAME_LABELS and not any(ch.isupper() for ch in name)):
            continue
        items.append(_Item(start, end, label, name, model_label, eid))
    return items


def caps_spans(text: str) -> list[tuple[int, int]]:
    """Runs of words in capitals: two words or more ("RUGBY UNION - CUTTITTA BACK FOR ITALY"), or one that opens
    a line (the dateline "AL-AIN , United Arab Emirates"). A lone acronym inside a sentence is not one.
    """
    out = []
    for m in _CAPS_RUN.finditer(text):
        if _caps_words(m.group()) >= 2 or _LINE_START.search(text[max(0, m.start() - 5) : m.start()]):
            out.append((m.start(), m.end()))
    return out


def _caps_words(run: str) -> int:
    return len(re.findall(_CAPS_WORD, run))


class _CapsIndex:
    """Which capitals run (index into caps) holds each character, for constant-time tests per mention."""

    def __init__(self, text: str, caps: Sequence[tuple[int, int]]):
        self.caps = list(caps)
        self.run = [-1] * (len(text) + 1)
        for k, (cs, ce) in enumerate(self.caps):
            self.run[cs:ce] = [k] * (ce - cs)

    def of(self, item: _Item) -> int:
        """The run holding the whole mention, else -1."""
        k = self.run[item.start]
        return k if k >= 0 and item.end <= self.caps[k][1] else -1


def _surname(name: str) -> str | None:
    from transforms.entities.places import is_common_word

    words = name.split(" ")
    last = words[-1]
    if len(words) < 2 or len(last) < 2 or not last[:1].isupper() or is_common_word(last):
        return None
    return last


def _propagate(text: str, items: list[_Item], caps: Sequence[tuple[int, int]]) -> list[_Item]:
    """The items plus exact, case-sensitive, word-bounded occurrences of names the model found in the body (and
    of persons' surnames) where it missed them, outside capitals runs: an occurrence is added where nothing
    overlaps it, or replaces the shorter entities it contains ("Prague" inside a second "IISS Prague Defence
    Summit"). Added mentions take the name's label and do not vote.
    """
    from transforms.entities.places import is_common_word

    forms: dict[str, tuple[str, str]] = {}  # surface -> (label, name)
    index = _CapsIndex(text, caps)
    for it in items:
        if it.label not in NAME_LABELS or index.of(it) >= 0:
            continue
        surface = clean_name(text[it.start : it.end], _sentence_initial(text, it.start))
        for form in (surface, _surname(surface) if it.label == "PERSON" else None):
            if form and len(form) > 1 and any(c.isupper() for c in form) and not is_common_word(form):
                forms.setdefault(form, (it.label, it.name if form == surface else form))
    if not forms:
        return items
    alternation = "|".join(re.escape(f) for f in sorted(forms, key=lambda f: (-len(f), f)))
    pattern = re.compile(rf"(?<![\w\-])(?:{alternation})(?![\w\-]|['’][^\Ws])")
    items = list(items)
    # Who holds each character (an index into items, -1 none; -2 a capitals run): overlap tests stay linear in
    # the text, whatever the number of mentions.
    owner = [-1] * len(text)
    for cs, ce in caps:
        owner[cs:ce] = [-2] * (ce - cs)
    for i, it in enumerate(items):
        owner[it.start : it.end] = [i] * (it.end - it.start)
    removed: set[int] = set()
    for m in sorted(pattern.finditer(text), key=lambda m: (m.start() - m.end(), m.start())):
        s, e = m.start(), m.end()
        over = set(owner[s:e]) - {-1}
        if -2 in over or any(
            not (s <= items[i].start and items[i].end <= e) or (items[i].start, items[i].end) == (s, e) for i in over
        ):
            continue
        label, name = forms[m.group()]
        removed |= over
        items.append(_Item(s, e, label, name, "", None, votes=False))
        owner[s:e] = [len(items) - 1] * (e - s)
    return [it for i, it in enumerate(items) if i not in removed]


def _extend_places(text: str, items: list[_Item], suffixes: frozenset[str]) -> None:
    """A place followed by a subdivision word takes it ("Donetsk" + " Oblast"), unless a name goes on after it."""
    for it in items:
        if it.label not in PLACE_LABELS:
            continue
        m = _NEXT_WORD.match(text, it.end)
        word = m.group(1) if m else ""
        if word[:1].isupper() and word.lower() in suffixes and not _NEXT_CAPITAL.match(text, m.end()):
            it.end = m.end()
            it.name = f"{it.name} {m.group(1)}"


def _extend_persons(text: str, items: list[_Item]) -> None:
    """A person followed by a lower-case word that is a capitalised name elsewhere in the article takes it:
    "Donald trump" when "Trump" is found elsewhere (case repair then writes "Donald Trump")."""
    names = {w.casefold() for it in items for w in it.name.split(" ") if w[:1].isupper()}
    for it in items:
        if it.label != "PERSON":
            continue
        m = _NEXT_WORD.match(text, it.end)
        if m and m.group(1).islower() and m.group(1).casefold() in names:
            if all(o is it or o.end <= it.start or m.end() <= o.start for o in items):
                it.end = m.end()
                it.name = f"{it.name} {m.group(1)}"


def _merge_dates(text: str, items: list[_Item]) -> list[_Item]:
    """A date the model cut at its commas ("Wednesday" DATE, "26" CARDINAL, "March 2025" DATE) is one DATE: a chain
    of DATE and day-number mentions apart by a space or ", ", from a DATE to a DATE."""
    out: list[_Item] = []
    i = 0
    while i < len(items):
        it = items[i]
        j, last_date = i, i if it.label == "DATE" else -1
        while it.label == "DATE" and j + 1 < len(items):
            nxt = items[j + 1]
            gap = text[items[j].end : nxt.start]
            day = nxt.label == "CARDINAL" and _DAY.fullmatch(text[nxt.start : nxt.end])
            if gap not in (" ", ", ") or not (nxt.label == "DATE" or day):
                break
            j += 1
            if nxt.label == "DATE":
                last_date = j
        if it.label == "DATE" and last_date > i:
            end = items[last_date].end
            out.append(_Item(it.start, end, "DATE", clean_name(text[it.start : end]), it.model_label))
            i = last_date + 1
        else:
            out.append(it)
            i += 1
    return out


def _drop_heading_words(text: str, items: list[_Item], known: KnownNames) -> list[_Item]:
    """A lone mention that is only a sub-heading's first word and an English word ("Battlefield outlook" tagged
    PERSON) is the heading, not a name: dropped when the name has no other mention and no gazetteer entry."""
    from transforms.entities.places import is_common_word

    count = collections.Counter(it.name for it in items)
    out = []
    for it in items:
        line_start = text.rfind("\n", 0, it.start) + 1
        line_end = text.find("\n", it.end)
        line = text[line_start : len(text) if line_end < 0 else line_end]
        heading = (
            it.start == line_start
            and len(line.split()) <= 6
            and not line.rstrip().endswith((".", "!", "?", ":"))
            and not any(ch.isdigit() for ch in line)  # a results or table line, not a heading
        )
        if (
            heading
            and " " not in it.name
            and count[it.name] == 1
            and it.name not in known.by_name
            and not it.entity_id
            and it.label in NAME_LABELS
            and is_common_word(it.name, nouns_too=True)
        ):
            continue
        out.append(it)
    return out


def _persons_back(items: list[_Item]) -> None:
    """A place the gazetteer made of a word the model tagged PERSON is the person again when the article names a
    person with that word as first name or surname ("Vladimir" beside "Vladimir Putin")."""
    full = [it.name.split(" ") for it in items if it.label == "PERSON" and " " in it.name]
    words = {w for parts in full for w in (parts[0], parts[-1])}
    for it in items:
        if it.label in PLACE_LABELS and common_label(it.model_label) == "PERSON" and it.name in words:
            it.label = "PERSON"


def _teams(text: str, items: list[_Item]) -> None:
    """A city or region followed by a score in a results line ("Milwaukee 5 Seattle 3") is a team: ORG, as the
    OntoNotes guidelines have it. A results line holds TEAM_PAIRS names each followed by a number; countries
    (ISO 3166-1 ids) stay places, national teams being GPE there."""
    by_line: dict[int, list[_Item]] = collections.defaultdict(list)
    for it in items:
        if _SCORE.match(text, it.end):
            by_line[text.count("\n", 0, it.start)].append(it)
    for line_items in by_line.values():
        if len(line_items) < TEAM_PAIRS:
            continue
        for it in line_items:
            if it.label in PLACE_LABELS and not (it.entity_id or "").startswith("iso3166-1:"):
                it.label = "ORG"


def _demonyms(items: list[_Item], known: KnownNames) -> None:
    """A one-word place the gazetteer does not know, formed from a country's name with a nationality ending
    ("Ukrainian" from "Ukraine", "Chinese" from "China"), is a nationality: NORP."""
    for it in items:
        if it.label in PLACE_LABELS and " " not in it.name and it.name not in known.by_name:
            m = _DEMONYM.fullmatch(it.name)
            if m and any(c.startswith(m.group(1)[:4]) for c in known.countries.get(it.name[:1], ())):
                it.label = "NORP"


def _caps_items(text: str, items: list[_Item], caps: Sequence[tuple[int, int]], known: KnownNames) -> list[_Item]:
    """Capitals runs made consistent with the body: the model's entities in them take the body's name when
    their casefolded names match one (else the gazetteer's, else in a headline they are dropped: the model reads
    capitals poorly), and case-insensitive occurrences of body names, persons' surnames and gazetteer names
    are added.
    """
    body: dict[str, tuple[str, str]] = {}  # folded form -> (label, name)
    index = _CapsIndex(text, caps)
    for it in items:
        if index.of(it) >= 0 or it.label not in NAME_LABELS:
            continue
        surface = clean_name(text[it.start : it.end], _sentence_initial(text, it.start))
        body.setdefault(_fold(surface), (it.label, it.name))
        body.setdefault(_fold(it.name), (it.label, it.name))
        surname = _surname(surface) if it.label == "PERSON" else None
        if surname:
            body.setdefault(_fold(surname), (it.label, surname))

    def lookup(s: str) -> tuple[str, str, str | None] | None:
        key = _fold(clean_name(s))
        if key in body:
            return body[key][0], body[key][1], None
        if key in known.by_fold:
            name, label, eid = known.by_fold[key]
            return label, name, eid
        return None

    out = [it for it in items if index.of(it) < 0]
    busy = bytearray(len(text))  # characters some kept mention covers
    for it in out:
        busy[it.start : it.end] = b"\x01" * (it.end - it.start)
    headline = [_caps_words(text[cs:ce]) >= HEADLINE_WORDS for cs, ce in caps]
    for it in items:
        k = index.of(it)
        if k < 0:
            continue
        hit = lookup(text[it.start : it.end])
        if hit:
            it.label, it.name, it.entity_id = hit[0], hit[1], it.entity_id or hit[2]
        if hit or not headline[k]:
            out.append(it)
            busy[it.start : it.end] = b"\x01" * (it.end - it.start)
    for cs, ce in caps:
        words = list(_WORD.finditer(text, cs, ce))
        for n in range(min(MAX_CAPS_NGRAM, len(words)), 0, -1):
            for i in range(len(words) - n + 1):
                s, e = words[i].start(), words[i + n - 1].end()
                if any(busy[s:e]):
                    continue
                hit = lookup(text[s:e])
                if hit:
                    out.append(_Item(s, e, hit[0], hit[1], "", hit[2], votes=False))
                    busy[s:e] = b"\x01" * (e - s)
    return sorted(out, key=lambda it: (it.start, it.end, it.label))


def _repair_person_case(items: list[_Item]) -> None:
    """Lower-case words of PERSON names take a capitalised form seen anywhere in the article ("Donald trump")."""
    capitalised: dict[str, str] = {}
    for it in items:
        for tok in it.name.split(" "):
            if tok[:1].isupper():
                capitalised.setdefault(tok.casefold(), tok)
    for it in items:
        if it.label == "PERSON" and any(t.islower() for t in it.name.split(" ")):
            it.name = " ".join(capitalised.get(t.casefold(), t) if t.islower() else t for t in it.name.split(" "))


def _resolve_one_word_persons(items: list[_Item]) -> None:
    """A one-word PERSON name becomes the full PERSON name ending, else starting, with it (see canonicalize); a
    one-word name under other labels that is a full PERSON name's last word becomes that person too ("Trump"
    tagged ORG beside "Donald Trump"), unless it is a place."""
    person_count: collections.Counter = collections.Counter(it.name for it in items if it.label == "PERSON")
    first_seen: dict[str, int] = {}
    for it in items:
        first_seen.setdefault(it.name, it.start)
    full_names = [n for n in person_count if " " in n]
    # A full name the model gave another label ("Marcello Cuttitta" as ORG): two or three capitalised words.
    name_count = collections.Counter(it.name for it in items)
    other_names = [n for n in name_count if n not in person_count and 2 <= len(n.split(" ")) <= 3 and n.istitle()]
    places = {it.name for it in items if it.label in PLACE_LABELS}
    resolved: dict[str, str] = {}
    relabel: set[str] = set()
    for name in name_count:
        if " " in name:
            continue
        key = name.casefold()
        by_surname = [f for f in full_names if f.split(" ")[-1].casefold() == key]
        if name not in person_count:
            if by_surname and name not in places:
                resolved[name] = _pick(by_surname, person_count, first_seen)
                relabel.add(name)
            continue
        by_first = [f for f in full_names if f.split(" ")[0].casefold() == key]
        if by_surname or by_first:
            resolved[name] = _pick(by_surname or by_first, person_count, first_seen)
            continue
        by_other = [f for f in other_names if f.split(" ")[-1].casefold() == key]
        if by_other:
            resolved[name] = _pick(by_other, name_count, first_seen)
    for it in items:
        # The same word elsewhere in the article, even under another label, is the same person.
        if it.name in relabel:
            it.label = "PERSON"
        it.name = resolved.get(it.name, it.name)


def _majority_labels(items: list[_Item]) -> dict[str, str]:
    """{name: its most frequent label among voting mentions}; ties go to the label seen first, then by label."""
    votes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    label_first: dict[tuple[str, str], int] = {}
    for it in items:
        if it.votes or it.name not in votes:
            votes[it.name][it.label] += 1 if it.votes else 0
            label_first.setdefault((it.name, it.label), it.start)
    return {
        name: min(c, key=lambda lab, name=name: (-c[lab], label_first[(name, lab)], lab)) for name, c in votes.items()
    }


def _entity_ids(items: list[_Item], majority: dict[str, str], known: KnownNames) -> dict[str, str | None]:
    """{name: its id}: the first id a mention of it carries, else the gazetteer's for a place name."""
    ids: dict[str, str | None] = {}
    for it in items:
        if it.entity_id and majority[it.name] == it.label:
            ids.setdefault(it.name, it.entity_id)
    for name, label in majority.items():
        if name not in ids and label in PLACE_LABELS and name in known.by_name:
            ids[name] = known.by_name[name][1]
    return ids


def canonicalize(
    text: str,
    raw: Sequence[tuple],
    labels: Sequence[str] | None = DEFAULT_LABELS,
    known: KnownNames = NO_NAMES,
) -> tuple[EntityMention, ...]:
    """Per-article canonical mentions from raw (start, end, label, pattern_id[, model_label]) spans of `text`.

    - labels are mapped to the common set (labels.common_label); `model_label` keeps the raw one (what the model
      said, "" where only the gazetteer or the rules below found the mention);
    - names are cleaned (`clean_name`); a gazetteer pattern's id is the name, unless it is an entity id
      ("geonames:703448"), which becomes the mention's `entity_id`;
    - proper-name labels without any capital letter are dropped ("the max" tagged PERSON);
    - capitals runs (headlines, datelines) are matched to the body case-insensitively (`_caps_items`);
    - names found in the body are found again where the model missed them (`_propagate`);
    - a lower-case token of a PERSON name is repaired from a capitalised form seen in the article;
    - a one-word PERSON resolves to the longer PERSON name ending with it ("Rutte" -> "Mark Rutte"), else to one
      starting with it ("Vladimir" -> "Vladimir Putin"); several candidates: most mentions, then first seen;
      the word's mentions under other labels follow it;
    - every mention of a name gets the name's majority label among the model's and the gazetteer's mentions
      (ties: the label seen first, then by name), and the name's id (a matched pattern's, or the gazetteer's
      for a place name);
    - only `labels` are kept (None keeps all). Mentions come back in text order.
    """
    items = _named_items(text, raw)
    caps = caps_spans(text)
    if caps:
        items = _caps_items(text, items, caps, known)
    items = _drop_heading_words(text, _merge_dates(text, items), known)
    _extend_places(text, items, known.subdivision_words)
    _extend_persons(text, items)
    _demonyms(items, known)
    _persons_back(items)
    _teams(text, items)
    items = sorted(_propagate(text, items, caps), key=lambda it: (it.start, it.end, it.label))
    if not items:
        return ()
    # Order matters: case repair first, so that "Donald trump" and "Trump" meet as one full name and its word.
    _repair_person_case(items)
    _resolve_one_word_persons(items)
    majority = _majority_labels(items)
    ids = _entity_ids(items, majority, known)
    keep = None if labels is None else set(labels)
    return tuple(
        EntityMention(
            text=text[it.start : it.end],
            label=majority[it.name],
            start=it.start,
            end=it.end,
            canonical=it.name,
            model_label=it.model_label,
            entity_id=ids.get(it.name),
        )
        for it in items
        if keep is None or majority[it.name] in keep
    )
