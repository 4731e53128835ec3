"""Generate a deterministic corpus of N distinct article files (txt, html, jsonl) from the seed sentences."""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import re

SEEDS = pathlib.Path(__file__).resolve().parent.parent / "seeds"
_SENT = re.compile(r"(?<=[.!?”\"])\s+(?=[A-Z“\"])")
WORDS = ("alliance", "ministers", "summit", "officials", "defence", "talks", "budget", "border", "energy", "troops")


def _sentences() -> list[str]:
    out = []
    for path in sorted(SEEDS.glob("*.txt")):
        for para in path.read_text(encoding="utf-8").splitlines():
            out += [s.strip() for s in _SENT.split(para) if len(s.split()) >= 8]
    return out


def article(rng: random.Random, pool: list[str], n_words: int = 600) -> tuple[str, str]:
    """A headline and a body of about n_words, from shuffled seed sentences with a few words swapped."""
    body, count = [], 0
    while count < n_words:
        sentence = rng.choice(pool).split()
        for _ in range(2):
            sentence[rng.randrange(len(sentence))] = rng.choice(WORDS)
        body.append(" ".join(sentence))
        count += len(sentence)
    paras = [" ".join(body[i : i + 4]) for i in range(0, len(body), 4)]
    title = " ".join(rng.choice(pool).split()[:8]).rstrip(".,")
    return title, "\n\n".join(paras)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("n", type=int)
    ap.add_argument("outdir", type=pathlib.Path)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    rng, pool = random.Random(args.seed), _sentences()
    for sub in ("txt", "html", "jsonl"):
        (args.outdir / sub).mkdir(parents=True, exist_ok=True)
    jsonl = []
    for i in range(args.n):
        title, body = article(rng, pool)
        kind = ("txt", "html", "jsonl")[i % 3]
        if kind == "txt":
            (args.outdir / "txt" / f"a{i:06d}.txt").write_text(f"{title}\n\n{body}\n", encoding="utf-8")
        elif kind == "html":
            paras = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
            page = (
                f'<html lang="en"><head><title>{title}</title><meta property="article:published_time" '
                f'content="2025-03-{1 + i % 28:02d}T08:00:00Z"></head><body><nav>Home Menu</nav>'
                f"<article><h1>{title}</h1>{paras}</article><footer>© 2025 Bench News</footer></body></html>"
            )
            (args.outdir / "html" / f"a{i:06d}.html").write_text(page, encoding="utf-8")
        else:
            jsonl.append({"text": body, "title": title, "url": f"https://bench.example.com/a/{i}", "source": "bench"})
    with open(args.outdir / "jsonl" / "articles.jsonl", "w", encoding="utf-8") as f:
        for rec in jsonl:
            f.write(json.dumps(rec) + "\n")
    print(f"wrote {args.n} articles under {args.outdir}")


if __name__ == "__main__":
    main()
