"""Build the held-out story-thread set from real news: copies, follow-ups and hard negatives, labelled (seeded).

Usage: python bench/make_threads.py [--split dev|test|both|blind] [--seed N]

Input: bench/heldout/conll2003_{dev,test}.jsonl.gz (real Reuters articles, {"doc_id", "text"}: one sentence per
line, the first line a headline), or for `--split blind` bench/heldout/news_blind.jsonl.gz (real news from
package test fixtures, same shape; see bench/heldout/README.md). Neither the seeds nor tests/data are used.
Output: bench/heldout/threads_<split>.jsonl.gz, one document per line with its labels:

- `cluster`: the copy group (an original and its copies; a follow-up and its copies);
- `story`: the thread (an original, its copies, its follow-ups and their copies); `continues`: for a follow-up,
  the original it continues;
- `kind`: original | copy | followup | followup_copy | negative_title | negative_quote | standalone;
- `day`: 1 or 2 (for the cross-day runs); `published`: ISO time.

Copies are what syndication does: a new title and dateline, the last sentences cut, sentences reworded (a clause
moved, a word dropped, two words swapped, a word replaced by another of the article), boilerplate lines added
at the top or the bottom, typography changed. A follow-up takes its title and lead (1-3 sentences) from another
real article, then reuses background sentences of the original from below its lead, in order. Hard negatives:
another real article under the original's title (and dateline), or quoting one sentence of it. Every other
article is a standalone story. The dev split is for tuning; score the test split only at the end. The blind split
is never used for tuning: score it once, after the change is final, and report the number whatever it is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import pathlib
import random
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "bench" / "heldout"
DAY1 = dt.datetime(2026, 5, 4, 6, tzinfo=dt.timezone.utc)

# Written for this set: generic web furniture, none of it from the seeds or the test data.
BOILERPLATE = [
    "Advertisement",
    "Story continues below",
    "Click here to subscribe to our daily newsletter.",
    "Copyright 2026 Wire Services. All rights reserved. This material may not be republished without permission.",
    "Share on Facebook Share on Twitter Share via Email",
    "Related coverage",
    "Reporting by our correspondents; editing by the news desk",
    "Get the latest headlines delivered to your inbox every morning",
    "Photo: file image",
    "This story was originally published by a partner agency and has been edited for length and style.",
    "Listen to this article",
    "Most read",
]
SOURCES = {
    "dev": "conll2003_dev.jsonl.gz",
    "test": "conll2003_test.jsonl.gz",
    "blind": "news_blind.jsonl.gz",
}
DATELINES = ["", "UPDATE 1-", "UPDATE 2-", "WRAPUP 1-", "CORRECTED-", "REFILE-"]
_WORD = re.compile(r"[A-Za-z]{4,}")


def read_docs(path: pathlib.Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _prose(lines: list[str], min_lines: int, min_words: int) -> bool:
    body = lines[1:]
    words = " ".join(body).split()
    if len(body) < min_lines or len(words) < min_words:
        return False
    digits = sum(any(c.isdigit() for c in w) for w in words)
    return digits / len(words) < 0.15


def is_article(lines: list[str]) -> bool:
    """Prose, not a results table: enough sentences and words, few number tokens."""
    return _prose(lines, 5, 100)


def is_lead_donor(lines: list[str]) -> bool:
    """A short prose item whose title and first sentences can open a follow-up."""
    return _prose(lines, 2, 30)


def _vocab(lines: list[str]) -> list[str]:
    return sorted({w for ln in lines for w in _WORD.findall(ln)})


def reword(sentence: str, rng: random.Random, vocab: list[str]) -> str:
    """One editor's change to a sentence."""
    words = sentence.split()
    if len(words) < 6:
        return sentence
    move = rng.random()
    if move < 0.25 and ", " in sentence:
        head, tail = sentence.split(", ", 1)
        return tail.rstrip(".") + ", " + head[0].lower() + head[1:] + "."
    i = rng.randrange(1, len(words) - 1)
    if move < 0.5:
        del words[i]
    elif move < 0.75:
        words[i], words[i + 1] = words[i + 1], words[i]
    elif vocab:
        words[i] = rng.choice(vocab)
    return " ".join(words)


def make_copy(lines: list[str], rng: random.Random) -> list[str]:
    """A syndicated copy: each change with some probability, at least two of them."""
    vocab = _vocab(lines)
    head, body = lines[0], list(lines[1:])
    changes = rng.sample(["retitle", "trim", "reword", "boilerplate", "typography"], rng.randint(2, 4))
    if "trim" in changes and len(body) > 6:
        cut = rng.randint(1, max(1, min(4, len(body) // 5)))
        body = body[:-cut]
    if "reword" in changes:
        for i in rng.sample(range(len(body)), min(len(body), rng.randint(2, 4))):
            body[i] = reword(body[i], rng, vocab)
    if "retitle" in changes:
        words = head.split()
        if len(words) > 4 and rng.random() < 0.5:
            del words[rng.randrange(len(words))]
        head = rng.choice(DATELINES) + " ".join(words).title()
    out = [head, *body]
    if "boilerplate" in changes:
        for line in rng.sample(BOILERPLATE, rng.randint(1, 3)):
            out.insert(rng.choice([1, len(out)]), line)
    if "typography" in changes:
        table = str.maketrans({'"': "\u201c", "'": "\u2019", "-": "\u2013"})
        out = [ln.translate(table) for ln in out]
    return out


def opening(lines: list[str]) -> int:
    """How many lines open an article before its first sentence: the title, then short lines (byline, place,
    dateline), up to the first line of more than 8 words."""
    n = 1
    while n < min(len(lines), 4) and len(lines[n].split()) <= 8:
        n += 1
    return n


def make_followup(original: list[str], donor: list[str], rng: random.Random) -> list[str]:
    """Another article's title and lead (1-3 sentences), then background reused from below the original's lead
    (its first two sentences), in order."""
    lead = donor[: opening(donor) + rng.randint(1, 3)]
    below = original[opening(original) + 2 :]
    share = rng.uniform(0.35, 0.7)
    n = max(3, round(share * len(below)))
    if rng.random() < 0.5:
        start = rng.randrange(0, max(1, len(below) - n + 1))
        background = below[start : start + n]
    else:
        background = [below[i] for i in sorted(rng.sample(range(len(below)), min(n, len(below))))]
    vocab = _vocab(original)
    background = [reword(s, rng, vocab) if rng.random() < 0.2 else s for s in background]
    tail = donor[len(lead) : len(lead) + rng.randint(0, 2)]
    return [*lead, *background, *tail]


def build(docs: list[dict], seed: int, prefix: str) -> list[dict]:
    """The labelled set from one split's articles."""
    rng = random.Random(seed)
    pool = [(d["doc_id"], _lines(d["text"])) for d in docs]
    articles = [(i, ls) for i, ls in pool if is_article(ls)]
    rng.shuffle(articles)
    n_orig = len(articles) // 2
    originals, rest = articles[:n_orig], articles[n_orig:]
    # Leads come from short items first, then from articles that are then not in the set (a lead must be new).
    short = [(i, ls) for i, ls in pool if is_lead_donor(ls) and not is_article(ls)]
    rng.shuffle(short)
    need = max(0, n_orig - len(short))
    donors, others = short + rest[:need], rest[need:]
    out: list[dict] = []

    def emit(doc_id, lines, kind, cluster, story, day, hours, continues=None):
        published = DAY1 + dt.timedelta(days=day - 1, hours=hours)
        out.append(
            dict(
                id=f"{prefix}-{doc_id}",
                kind=kind,
                cluster=f"{prefix}-{cluster}",
                story=f"{prefix}-{story}",
                continues=f"{prefix}-{continues}" if continues else None,
                day=day,
                published=published.isoformat().replace("+00:00", "Z"),
                text="\n".join(lines),
            )
        )

    donor_iter = iter(donors)
    negatives = iter(others)
    for n, (oid, lines) in enumerate(originals):
        r = random.Random(f"{seed}/{oid}")
        hour = r.uniform(0, 12)
        emit(oid, lines, "original", oid, oid, 1, hour)
        for c in range(r.choice([1, 2, 2, 3])):
            day = 2 if r.random() < 0.25 else 1
            emit(f"{oid}~copy{c}", make_copy(lines, r), "copy", oid, oid, day, hour + r.uniform(1, 10))
        donor = next(donor_iter, None)
        if donor is not None:
            fid = f"{oid}~followup"
            day = 2 if r.random() < 0.5 else 1
            follow = make_followup(lines, donor[1], r)
            emit(fid, follow, "followup", fid, oid, day, hour + r.uniform(12, 20), continues=oid)
            if r.random() < 0.5:
                emit(f"{fid}~copy", make_copy(follow, r), "followup_copy", fid, oid, day, hour + 21, continues=oid)
        if n % 3 == 1:
            neg = next(negatives, None)
            if neg is not None:
                nid, nl = neg
                kind = "negative_title" if r.random() < 0.5 else "negative_quote"
                if kind == "negative_title":
                    text = [lines[0], *nl[1:]]
                else:
                    body = list(nl)
                    body.insert(r.randint(2, len(body)), r.choice(lines[1:]))
                    text = body
                emit(f"{nid}~neg", text, kind, f"{nid}~neg", f"{nid}~neg", 1, hour + r.uniform(0, 10))
    for nid, nl in negatives:
        emit(nid, nl, "standalone", nid, nid, rng.choice((1, 2)), rng.uniform(0, 20))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("dev", "test", "both", "blind"), default="both", help="blind: news_blind")
    ap.add_argument("--seed", type=int, default=16)
    args = ap.parse_args()
    for split in ("dev", "test") if args.split == "both" else (args.split,):
        src = HELDOUT / SOURCES[split]
        docs = build(read_docs(src), args.seed, split)
        dst = HELDOUT / f"threads_{split}.jsonl.gz"
        payload = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")
        with open(dst, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as f:
            f.write(payload)  # mtime 0: the same input and seed give the same bytes
        kinds: dict[str, int] = {}
        for d in docs:
            kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
        print(f"{split}: {len(docs)} documents -> {dst.relative_to(ROOT)} {dict(sorted(kinds.items()))}")


if __name__ == "__main__":
    main()
