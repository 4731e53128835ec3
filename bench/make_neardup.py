"""Generate the labelled near-duplicate set: seeds, follow-up stories and syndicated copies (deterministic)."""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import pathlib
import random
import re
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DATA = ROOT / "tests" / "data" / "neardup"

# Seed lines (1-based) each hand-written follow-up reuses as background: context paragraphs, never the seed's
# whole news core. The follow-up is a different story (new news on top), so it must not merge with the seed.
BACKGROUND = {
    "000_a": [5, 6],
    "000_b": [2, 5],
    "001_a": [10, 11, 17],
    "001_b": [10, 11, 14, 17],
    "002_a": [10, 12, 16],
    "002_b": [12, 16, 18, 20],
    "003_a": [6, 10, 13],
    "003_b": [3, 6, 9, 11, 14],
    "004_a": [30, 32, 34],
    "004_b": [21, 23, 25, 34],
}
SEED_DATES = [
    "2025-03-26T10:00:00Z",
    "2025-11-24T09:30:00Z",
    "2025-03-22T01:33:00Z",
    "2025-06-10T12:00:00Z",
    "2025-09-04T14:05:00Z",
]

HEADLINES = [
    "NATO chief says Moscow will not dictate alliance policy",
    "Rutte: Russia has no veto over NATO decisions",
    "UPDATE 2-NATO's Rutte speaks on Russia, Ukraine and the alliance",
    "What the NATO secretary general said about Russia",
    "Alliance chief sets out position on Ukraine war",
    "Rutte weighs in on peace efforts and Russian demands",
    "NATO head comments on Russia ahead of allied talks",
    "Rutte remarks draw attention in European capitals",
]
DATELINES = [
    "BRUSSELS, March 27 (Reuters) - ",
    "KYIV (AP) — ",
    "WARSAW, Poland — ",
    "LONDON: ",
    "The Hague, Netherlands -- ",
    "By Staff Writer | ",
]
BOILERPLATE = [
    "Advertisement",
    "Read more: Europe's defence spending in five charts",
    "Follow us on X and Telegram for the latest updates.",
    "© 2025 Example Wire. All rights reserved.",
    "Share this article",
    "Related: Allies meet in Brussels",
    "This article was produced by our partner news agency and edited for length.",
    "Sign up for our morning briefing",
    "Photo: Reuters",
    "Comments are closed.",
]
SYNONYMS = {
    "said": "stated",
    "says": "states",
    "told": "informed",
    "stressed": "emphasised",
    "noted": "observed",
    "comments": "remarks",
    "remarks": "comments",
    "alliance": "bloc",
    "allies": "partners",
    "war": "conflict",
    "conflict": "war",
    "support": "backing",
    "warned": "cautioned",
    "added": "continued",
    "also": "further",
    "strong": "firm",
    "statement": "declaration",
    "decide": "determine",
    "demands": "conditions",
    "recent": "latest",
    "military": "armed",
    "security": "safety",
    "future": "outlook",
    "leaders": "heads",
    "countries": "nations",
    "nations": "countries",
    "threat": "danger",
    "clear": "plain",
    "ongoing": "continuing",
    "expected": "likely",
    "officials": "authorities",
    "major": "key",
    "increase": "boost",
    "help": "assist",
}
_SENT = re.compile(r"(?<=[.!?”\"])\s+(?=[A-Z“\"])")


def _rng(*parts) -> random.Random:
    return random.Random(zlib.crc32("/".join(map(str, parts)).encode()))


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _substantial(line: str) -> bool:
    return len(line.split()) >= 8 and not line.startswith(("MENAFN provides", "Legal Disclaimer"))


def _swap_word(word: str, rng: random.Random, vocab: list[str]) -> str:
    """A synonym when one is known, else another word of the same article (an editor's substitution)."""
    core = word.strip(".,;:“”\"'’()")
    if core.lower() in SYNONYMS:
        return word.replace(core, SYNONYMS[core.lower()])
    return word.replace(core, rng.choice(vocab)) if core else word


def _vocab(lines: list[str]) -> list[str]:
    return sorted({w for ln in lines for w in re.findall(r"[a-z]{3,}", ln)})


def retitle(lines: list[str], rng: random.Random) -> list[str]:
    """New headline and dateline, boilerplate lines swapped for other boilerplate."""
    body = [ln for ln in lines if _substantial(ln)]
    body[0] = rng.choice(DATELINES) + re.sub(r"^\(MENAFN\)\s*", "", body[0])
    out = [rng.choice(HEADLINES)] + body
    for text in rng.sample(BOILERPLATE, 3):
        out.insert(rng.choice([1, len(out)]), text)
    return out


def trim(lines: list[str], rng: random.Random) -> list[str]:
    """The last substantial paragraph cut (syndication trims from the bottom)."""
    last = max(i for i, ln in enumerate(lines) if _substantial(ln))
    return lines[:last] + [ln for ln in lines[last + 1 :] if not _substantial(ln)]


def reword(lines: list[str], rng: random.Random, sentences: int = 2, words: int = 4) -> list[str]:
    """A sentence reworded here and there (clause swap or synonyms), then a few single words changed."""
    lines = list(lines)
    idx = [i for i, ln in enumerate(lines) if _substantial(ln)]
    for i in rng.sample(idx, min(sentences, len(idx))):
        sents = _SENT.split(lines[i])
        j = rng.randrange(len(sents))
        s = sents[j]
        if ", " in s and rng.random() < 0.5:
            a, b = s.split(", ", 1)
            s = b.rstrip(".") + ", " + a[0].lower() + a[1:] + "."
        else:
            ws = s.split()
            for k in rng.sample(range(len(ws)), min(3, len(ws))):
                ws[k] = _swap_word(ws[k], rng, _vocab(lines))
            s = " ".join(ws)
        sents[j] = s
        lines[i] = " ".join(sents)
    return scatter(lines, rng, count=words)


def scatter(lines: list[str], rng: random.Random, rate: float = 0.0, count: int = 0) -> list[str]:
    """Change `count` words, or a `rate` share of all words, uniformly at random over the body."""
    pos = [(i, k) for i, ln in enumerate(lines) if _substantial(ln) for k in range(len(ln.split()))]
    n = count or round(rate * len(pos))
    split = {i: ln.split() for i, ln in enumerate(lines)}
    vocab = _vocab(lines)
    for i, k in rng.sample(pos, min(n, len(pos))):
        split[i][k] = _swap_word(split[i][k], rng, vocab)
    return [" ".join(split[i]) for i in range(len(lines))]


def typography(lines: list[str], rng: random.Random) -> list[str]:
    """Straight quotes and dashes, paragraphs re-wrapped: what a CMS does to a wire copy."""
    table = str.maketrans({"“": '"', "”": '"', "’": "'", "‘": "'", "—": "-", "–": "-"})
    out = [ln.translate(table) for ln in lines]
    if len(out) > 3:
        i = rng.randrange(1, len(out) - 1)
        out[i : i + 2] = [out[i] + " " + out[i + 1]]
    return out


COPIES = {
    "retitle": lambda ls, r: retitle(ls, r),
    "trim": lambda ls, r: typography(trim(ls, r), r),
    "edit": lambda ls, r: reword(ls, r, sentences=2, words=4),
    "syndicated": lambda ls, r: typography(retitle(reword(trim(ls, r), r), r), r),
    "syndicated2": lambda ls, r: retitle(reword(trim(ls, r), r, sentences=3, words=6), r),
    "scatter3": lambda ls, r: retitle(scatter(ls, r, rate=0.03), r),
    "scatter5": lambda ls, r: typography(retitle(scatter(ls, r, rate=0.05), r), r),
}


def _published(base: str, hours: float) -> str:
    t = dt.datetime.fromisoformat(base.replace("Z", "+00:00")) + dt.timedelta(hours=hours)
    return t.isoformat().replace("+00:00", "Z")


def generate(seed: int = 1, followups_dir: pathlib.Path = DATA / "followups") -> list[dict]:
    """All documents of the set: originals, follow-ups, and copies labelled with the story they repeat."""
    docs = []
    seeds = sorted(SEEDS.glob("*.txt"))
    for n, path in enumerate(seeds):
        key = path.name[:3]
        lines = _lines(path.read_text(encoding="utf-8"))
        story = f"seed{key}"
        docs.append(dict(id=f"{story}", story=story, kind="original", text="\n".join(lines), published=SEED_DATES[n]))
        for m, (kind, fn) in enumerate(COPIES.items()):
            text = "\n".join(fn(lines, _rng(seed, story, kind)))
            docs.append(
                dict(
                    id=f"{story}-{kind}", story=story, kind=kind, text=text, published=_published(SEED_DATES[n], 1 + m)
                )
            )
        raw = path.read_text(encoding="utf-8").splitlines()
        for variant in ("a", "b"):
            name = f"{key}_{variant}"
            core = _lines((followups_dir / f"{name}.txt").read_text(encoding="utf-8"))
            background = [raw[i - 1].strip() for i in BACKGROUND[name]]
            lines_f = core + background
            fstory = f"followup{name}"
            published = _published(SEED_DATES[n], 30 if variant == "a" else 54)
            docs.append(dict(id=fstory, story=fstory, kind="followup", text="\n".join(lines_f), published=published))
            text = "\n".join(COPIES["syndicated"](lines_f, _rng(seed, fstory, "syndicated")))
            docs.append(
                dict(
                    id=f"{fstory}-syndicated",
                    story=fstory,
                    kind="syndicated",
                    text=text,
                    published=_published(published, 2),
                )
            )
    return docs


def pairs(docs: list[dict]) -> list[dict]:
    """Every pair of documents, labelled 1 when both carry the same story."""
    return [
        dict(a=a["id"], b=b["id"], same=int(a["story"] == b["story"]), kinds=f"{a['kind']}/{b['kind']}")
        for a, b in itertools.combinations(docs, 2)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=1, help="variant seed (default 1, the stored set)")
    ap.add_argument("--out", type=pathlib.Path, default=DATA, help="output folder (default tests/data/neardup)")
    args = ap.parse_args()
    docs = generate(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "docs.jsonl", "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    with open(args.out / "pairs.csv", "w", encoding="utf-8") as f:
        f.write("a,b,same,kinds\n")
        for p in pairs(docs):
            f.write(f"{p['a']},{p['b']},{p['same']},{p['kinds']}\n")
    print(f"wrote {len(docs)} documents and {len(pairs(docs))} labelled pairs to {args.out}")


if __name__ == "__main__":
    main()
