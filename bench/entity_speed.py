"""NER throughput: (a) raw nlp.pipe in one process, (b) the entities stage on 1 worker, (c) on 2 worker processes.

(d), the same raw nlp.pipe in 2 bare processes, shows what the machine itself allows in parallel right now.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import random
import resource
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
# Worker processes of the multi-processing runner unpickle our DoFns: they must find the project's modules.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

import apache_beam as beam  # noqa: E402
import make_corpus  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from schemas.elements import Article  # noqa: E402
from transforms import entities as E  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the multi-processing workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def corpus(n: int, words: int, seed: int) -> list[Article]:
    """n distinct articles of about `words` words, from shuffled seed sentences (bench/make_corpus.py)."""
    rng, pool = random.Random(seed), make_corpus._sentences()
    return [
        Article(input_ref=f"bench:{i}", source="bench", text=make_corpus.article(rng, pool, words)[1]) for i in range(n)
    ]


def raw_pipe(cfg: E.EntityConfig, texts: list[str]) -> tuple[float, int]:
    """(a) wall and CPU seconds and entity count of nlp.pipe over all texts, the model already loaded."""
    patterns = E.gazetteer_patterns(cfg)
    nlp = E.load_nlp(cfg.model, patterns, cfg.gazetteer_mode)
    start, cpu = time.perf_counter(), cpu_seconds()
    n = sum(len(doc.ents) for doc in nlp.pipe(texts, batch_size=cfg.batch_size))
    return time.perf_counter() - start, cpu_seconds() - cpu, n


def in_process(cfg: E.EntityConfig, texts: list[str]) -> tuple[float, int]:
    """(a') wall and CPU seconds and mention count of annotate() (pipe + chunking + canonical names), in one process."""
    patterns = E.gazetteer_patterns(cfg)
    nlp = E.load_nlp(cfg.model, patterns, cfg.gazetteer_mode)
    start, cpu = time.perf_counter(), cpu_seconds()
    n = 0
    for i in range(0, len(texts), cfg.batch_size):
        n += sum(map(len, E.annotate(nlp, texts[i : i + cfg.batch_size], cfg)))
    return time.perf_counter() - start, cpu_seconds() - cpu, n


def _pipe_share(args) -> int:
    cfg, texts = args
    nlp = E.load_nlp(cfg.model, E.gazetteer_patterns(cfg), cfg.gazetteer_mode)
    return sum(len(doc.ents) for doc in nlp.pipe(texts, batch_size=cfg.batch_size))


def two_raw_processes(cfg: E.EntityConfig, texts: list[str]) -> tuple[float, float, int]:
    """(d) raw nlp.pipe in 2 fresh processes, half the texts each, start-up and model loads included: what this
    machine gives two processes right now, without Beam. c/d is Beam's own multi-process cost."""
    import multiprocessing

    start, cpu = time.perf_counter(), cpu_seconds()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        n = sum(pool.map(_pipe_share, [(cfg, texts[0::2]), (cfg, texts[1::2])]))
    return time.perf_counter() - start, cpu_seconds() - cpu, n


class _SpacyHandler:
    """A RunInference ModelHandler around the same load_nlp/annotate, to compare with BatchElements + ParDo."""

    def __new__(cls, cfg: E.EntityConfig, patterns: list[dict]):
        from apache_beam.ml.inference.base import ModelHandler

        class Handler(ModelHandler):
            def load_model(self):
                return E.load_nlp(cfg.model, patterns, cfg.gazetteer_mode)

            def run_inference(self, batch, model, inference_args=None):
                found = E.annotate(model, [a.text for a in batch], cfg)
                return [dataclasses.replace(a, entities=m) for a, m in zip(batch, found, strict=True)]

            def batch_elements_kwargs(self):
                return {"min_batch_size": cfg.batch_size, "max_batch_size": cfg.batch_size}

        return Handler()


def on_runner(cfg: E.EntityConfig, articles: list[Article], workers: int, runinference: bool = False):
    """(b)/(c) wall and CPU seconds of a pipeline Create -> stage -> count (model loads included), and its mentions."""
    mode = "in_memory" if workers == 1 else "multi_processing"
    options = PipelineOptions(
        runner="pipelines.runners.OfflineDirectRunner",
        direct_num_workers=workers,
        direct_running_mode=mode,
        default_sdk_harness_log_level="WARNING",
    )
    with tempfile.TemporaryDirectory() as tmp:
        result_file = os.path.join(tmp, "count.json")
        start, cpu = time.perf_counter(), cpu_seconds()
        with beam.Pipeline(options=options) as p:
            arts = p | beam.Create(articles)
            if runinference:
                from apache_beam.ml.inference.base import RunInference

                patterns = E.gazetteer_patterns(cfg)
                tagged = arts | RunInference(_SpacyHandler(cfg, patterns))
            else:
                tagged = (arts | E.ExtractEntities(cfg))["articles"]
            _ = (
                tagged
                | beam.Map(lambda a: len(a.entities))
                | beam.CombineGlobally(sum)
                | beam.Map(lambda n, path=result_file: pathlib.Path(path).write_text(json.dumps(n)))
            )
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        return seconds, cpu, json.loads(pathlib.Path(result_file).read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("n", type=int, nargs="?", default=2000, help="articles (default 2000)")
    ap.add_argument("--words", type=int, default=600, help="words per article (default 600)")
    ap.add_argument("--batch-size", type=int, default=E.EntityConfig.batch_size)
    ap.add_argument("--gazetteer", default=E.DEFAULT_GAZETTEER, help="'builtin' (default), a patterns file, or 'none'")
    ap.add_argument("--only", default="abcd", help="which measurements to run, e.g. 'ab' (default abcd)")
    ap.add_argument("--in-process", action="store_true", help="also time annotate() in one process (a')")
    ap.add_argument("--runinference", action="store_true", help="also time (b) with RunInference instead")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    gazetteer = None if args.gazetteer.lower() == "none" else args.gazetteer
    cfg = E.EntityConfig(gazetteer=gazetteer, batch_size=args.batch_size)
    E.check_model(cfg)
    articles = corpus(args.n, args.words, args.seed)
    texts = [a.text for a in articles]
    words = sum(len(t.split()) for t in texts)
    per = words / max(1, args.n)
    print(f"{args.n} articles, {words} words ({per:.0f}/article), batch {cfg.batch_size}, cores={os.cpu_count()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rate: dict[str, float] = {}

    def report(key: str, label: str, run) -> None:
        seconds, cpu, found = run()
        rate[key] = words / seconds
        print(
            f"({key}) {label:<44} {seconds:7.1f} s wall {rate[key]:7.0f} words/s | {cpu:7.1f} s CPU "
            f"{words / cpu:6.0f} words/CPU-s | entities {found}",
            flush=True,
        )

    if "a" in args.only:
        report("a", "raw nlp.pipe, one process", lambda: raw_pipe(cfg, texts))
    if args.in_process:
        report("a'", "annotate() (pipe + canonical names), 1 process", lambda: in_process(cfg, texts))
    if "b" in args.only:
        report("b", "ExtractEntities, DirectRunner, 1 worker", lambda: on_runner(cfg, articles, 1))
    if args.runinference:
        report("b'", "RunInference(spaCy handler), 1 worker", lambda: on_runner(cfg, articles, 1, True))
    if "c" in args.only:
        report("c", "ExtractEntities, DirectRunner, 2 processes", lambda: on_runner(cfg, articles, 2))
    if "d" in args.only:
        report("d", "raw nlp.pipe in 2 fresh processes (no Beam)", lambda: two_raw_processes(cfg, texts))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if "a" in rate:
        for key in [k for k in rate if k != "a"]:
            target = {"b": " (target >= 0.9)", "c": " (target >= 1.7)"}.get(key, "")
            print(f"{key}/a = {rate[key] / rate['a']:.2f}{target}")
    if "c" in rate and "d" in rate:
        print(f"c/d = {rate['c'] / rate['d']:.2f} (Beam's 2-process stage against 2 bare processes)")


if __name__ == "__main__":
    main()
