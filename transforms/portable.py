"""Runner portability: the one place for multi-output wiring and batching that every tested runner routes alike.

Rules (enforced by tests/test_portability_rules.py across the code):
- multi-output ParDos go through `TaggedParDo` (or a DoFn that yields (tag, value) pairs split by `split_tagged`),
  never `.with_outputs()`: Beam's DaskRunner hands every output of a multi-output ParDo to every consumer;
- batches come from `Batch`, never `BatchElements`, no DoFn emits from `finish_bundle`, and no `combiners.Top`
  (its per-bundle DoFn emits there): the DaskRunner drops what finish_bundle emits.
A side input computed from a shuffle used to fail on Dask ("Could not serialize _HLGExprSequence"); with Beam
2.77 it works (tests/pipelines/test_runners.py keeps a Dask test of it), so that rule was dropped.
"""

from __future__ import annotations

import inspect
import sys
import traceback

import apache_beam as beam
from apache_beam.transforms.core import _DoFnParam

from schemas.elements import stable_hash


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
        tags = {name: "main" if name == self._main else name for name in names}
        return split_tagged(pairs, tags, self._types)


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


def split_tagged(pairs, tags: dict, output_types: dict | None = None) -> dict:
    """{name: PCollection} from a PCollection of (tag, value) pairs; `tags` maps each output name to its tag.

    For DoFns that must be called by Beam itself (state, timers, window or timestamp parameters) and so cannot
    be wrapped by TaggedParDo: they yield (tag, value) pairs and this splits them.
    """
    outs = {}
    for name, tag in tags.items():
        select = beam.FlatMap(_select, tag)
        if output_types and name in output_types:
            select = select.with_output_types(output_types[name])
        outs[name] = pairs | f"Only{name.title()}" >> select
    return outs
