"""Shared dead-letter plumbing: reject tags, counted drops and the stage output convention."""

from __future__ import annotations

import inspect
import sys
import traceback

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.core import _DoFnParam

from schemas.elements import Reject, stable_hash

REJECTS = "rejects"
NAMESPACE = "news"


def count(name: str, n: int = 1) -> None:
    """Increment a pipeline counter in the project's metrics namespace."""
    Metrics.counter(NAMESPACE, name).inc(n)


def reject(input_ref: str, stage: str, reason: str, detail: str, content=None) -> beam.pvalue.TaggedOutput:
    """A counted, tagged reject: the one way a stage drops a record on purpose."""
    count(f"rejected.{stage}.{reason}")
    return beam.pvalue.TaggedOutput(REJECTS, Reject.of(input_ref, stage, reason, detail, content))


def _input_ref_of(element) -> str:
    # Files travel as Beam FileMetadata, whose repr is no reference a user can follow.
    ref = getattr(element, "input_ref", None) or getattr(element, "path", None)
    if ref is None and isinstance(element, tuple) and element:
        ref = getattr(element[-1], "input_ref", None) or (element[0] if isinstance(element[0], str) else None)
    return str(ref) if ref is not None else repr(element)[:200]


def failures_to_rejects(stage: str):
    """Turn `with_exception_handling()` dead letters (element, (type, value, tb)) into Reject records."""

    def _convert(failure) -> Reject:
        element, (_, exc_repr, _traceback) = failure
        count(f"rejected.{stage}.internal_error")
        return Reject.of(_input_ref_of(element), stage, "internal_error", str(exc_repr)[:2000])

    return beam.Map(_convert)


class _Routed(beam.DoFn):
    """Runs a DoFn and emits its outputs as (tag, value) pairs on one output; with a dead-letter tag, an
    exception becomes a (dead_letter, (element, (type, repr, traceback))) pair instead of a failure."""

    def __init__(self, fn: beam.DoFn, dead_letter=None):
        self._fn, self._dead_letter = fn, dead_letter

    def setup(self):
        self._fn.setup()

    def start_bundle(self):
        self._fn.start_bundle()

    def process(self, element, *args, **kwargs):
        if self._dead_letter is None:
            out = self._fn.process(element, *args, **kwargs) or ()
        else:
            try:
                out = list(self._fn.process(element, *args, **kwargs) or ())
            except Exception as e:  # noqa: BLE001 - the dead letter is the point
                yield self._dead_letter, (element, (type(e), repr(e), traceback.format_exception(*sys.exc_info())))
                return
        for value in out:
            if isinstance(value, beam.pvalue.TaggedOutput):
                yield value.tag, value.value
            else:
                yield "main", value

    def finish_bundle(self):
        # Beam's DaskRunner drops what finish_bundle emits, so a stage DoFn must not emit there.
        if list(self._fn.finish_bundle() or ()):
            raise RuntimeError(f"{type(self._fn).__name__}.finish_bundle must not emit elements")

    def teardown(self):
        self._fn.teardown()


def _select(pair, tag):
    if pair[0] == tag:
        yield pair[1]


class TaggedParDo(beam.PTransform):
    """`beam.ParDo(fn).with_outputs(*tags, main=...)` that every runner routes correctly.

    Beam's DaskRunner hands every output of a multi-output ParDo to every consumer, so the outputs travel as
    (tag, value) pairs on one output and one filter per tag splits them. Returns {main or tag: PCollection};
    with `dead_letter`, exceptions go to that tag as (element, (type, repr, traceback)), like
    `with_exception_handling`.
    """

    def __init__(self, fn, *tags, main="main", dead_letter=None, args=(), kwargs=None, output_types=None):
        super().__init__()
        # The wrapper calls fn.process itself, so Beam would not fill window, timestamp, state or timer params.
        params = [n for n, p in inspect.signature(fn.process).parameters.items() if isinstance(p.default, _DoFnParam)]
        if params:
            raise TypeError(f"TaggedParDo cannot pass DoFn parameters ({', '.join(params)}) to {type(fn).__name__}")
        self._fn, self._tags, self._main, self._dead = fn, tags, main, dead_letter
        self._args, self._kwargs, self._types = args, kwargs or {}, output_types or {}

    def expand(self, pcoll):
        pairs = pcoll | "Run" >> beam.ParDo(_Routed(self._fn, self._dead), *self._args, **self._kwargs)
        names = (self._main, *self._tags) + ((self._dead,) if self._dead else ())
        outs = {}
        for name in names:
            tag = "main" if name == self._main else name
            select = beam.FlatMap(_select, tag)
            if name in self._types:
                select = select.with_output_types(self._types[name])
            outs[name] = pairs | f"Only{name.title()}" >> select
        return outs


def _default_batch_key(x) -> str:
    return str(getattr(x, "article_id", None) or getattr(x, "input_ref", None) or repr(x))


def _shard_of(x, shards, key):
    return int(stable_hash(key(x), 8), 16) % shards, x


def _chunks(keyed, size, key):
    items = sorted(keyed[1], key=key)
    for i in range(0, len(items), size):
        yield items[i : i + size]


class Batch(beam.PTransform):
    """Lists of up to `size` elements on every runner, with a deterministic make-up: shard by a stable hash of
    `key`, group, cut into chunks. (BatchElements, and buffering in a DoFn, emit the last batch of a bundle
    from finish_bundle, which Beam's DaskRunner silently drops.)"""

    def __init__(self, size: int, shards: int = 16, key=_default_batch_key):
        super().__init__()
        self._size, self._shards, self._key = size, shards, key

    def expand(self, pcoll):
        return (
            pcoll
            | "Shard" >> beam.Map(_shard_of, self._shards, self._key)
            | "Group" >> beam.GroupByKey()
            | "Chunk" >> beam.FlatMap(_chunks, self._size, self._key)
        )


def run_guarded(pcoll, label: str, stage: str, dofn, *args, tags=(REJECTS,), **kwargs):
    """ParDo with tagged rejects plus a dead letter for unexpected errors.

    Returns (main, rejects, *other_tags); unexpected exceptions become `internal_error` rejects
    instead of failing the whole run.
    """
    others = tuple(t for t in tags if t != REJECTS)
    result = pcoll | label >> TaggedParDo(dofn, REJECTS, *others, dead_letter="failed", args=args, kwargs=kwargs)
    errors = result["failed"] | f"{label}Failures" >> failures_to_rejects(stage)
    rejects = (result[REJECTS], errors) | f"{label}Rejects" >> beam.Flatten()
    return (result["main"], rejects, *(result[t] for t in others))
