"""Typed messages between the Dedup steps: NamedTuples of NumPy arrays, one per shard batch (Beam pickles them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from transforms.dedup.profiles import Profiles

# Each message carries a batch of one shard, so an article costs ~2 elements however many steps it crosses. Beam's
# default coder pickles a NamedTuple in one call (protocol 5: arrays as raw buffers); keys of the shuffles are ints.
# The two per-article messages, Doc and Pending, cross their shuffles as plain tuples of bytes (`wire`) and are
# rebuilt where they are read (`Doc.of`, `Pending.of`): Beam's default coder writes bytes natively, but pickles a
# NamedTuple (class and all) and any int over 64 bits (node ids and keys are wider) every time the runner
# re-encodes a value, which cost the stage 15-20% (profiled: 85k extra pickles per 10k articles).


def _to_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


def _from_bytes(data: bytes) -> int:
    return int.from_bytes(data, "big")


def wire(message: tuple) -> tuple:
    """A per-article message as it travels: its fields as a plain tuple, ints as big-endian bytes."""
    return tuple(_to_bytes(v) if isinstance(v, int) else v for v in message)


def _concat(cls: type, batches: Sequence, num_perm: int):
    """All rows of several batches of one row-aligned message (one batch of no rows when there are none)."""
    if len(batches) == 1:
        return batches[0]
    if not batches:
        empty = {"uids": np.zeros(0, np.uint64), "keys": [], "sigs": np.zeros((0, num_perm), np.uint16)}
        return cls(*(empty.get(f, Profiles.empty()) for f in cls._fields))
    return cls(*(_join([getattr(b, f) for b in batches]) for f in cls._fields))


def _join(parts: list):
    """One field of several batches, joined by its type: ragged Profiles, plain lists or NumPy arrays."""
    if isinstance(parts[0], Profiles):
        return Profiles.concat(parts)
    if isinstance(parts[0], list):
        return [x for p in parts for x in p]
    return np.concatenate(parts)


class Doc(NamedTuple):
    """An article to sign: node id, canonical-order key, normalised text, where its lead starts and how many words
    its paragraph has (profiles.lead_span)."""

    uid: int
    key: int
    text: bytes
    lead: int
    paragraph: int

    @classmethod
    def of(cls, fields: tuple) -> Doc:
        uid, key, text, lead, paragraph = fields
        return cls(_from_bytes(uid), _from_bytes(key), text, _from_bytes(lead), _from_bytes(paragraph))


class Pending(NamedTuple):
    """An article waiting for its decision: its node key and its fields, serialised once (records.seal)."""

    key: int
    sealed: bytes

    @classmethod
    def of(cls, fields: tuple) -> Pending:
        key, sealed = fields
        return cls(_from_bytes(key), sealed)


class Nodes(NamedTuple):
    """Graph nodes of one shard: ids, canonical-order keys, signatures and verification profiles, rows aligned."""

    uids: np.ndarray
    keys: list
    sigs: np.ndarray
    prof: Profiles

    @staticmethod
    def concat(batches: Sequence[Nodes], num_perm: int) -> Nodes:
        """All rows of several batches (a batch of no rows when there are none)."""
        return _concat(Nodes, batches, num_perm)

    def take(self, rows: Sequence[int]) -> Nodes:
        """The given rows, in that order."""
        return Nodes(self.uids[rows], [self.keys[i] for i in rows], self.sigs[rows], self.prof.take(rows))


class Fresh(NamedTuple):
    """This run's representative articles of one shard (one per text) with what their stored signature needs:
    keys, signatures and profiles (anchors included). A side input of the articles' last step, read per shard:
    no shuffle carries them."""

    uids: np.ndarray
    keys: list
    sigs: np.ndarray
    prof: Profiles

    @staticmethod
    def concat(batches: Sequence[Fresh], num_perm: int) -> Fresh:
        """All rows of several batches (a batch of no rows when there are none)."""
        return _concat(Fresh, batches, num_perm)

    def take(self, rows: Sequence[int]) -> Fresh:
        """The given rows, in that order."""
        return Fresh(self.uids[rows], [self.keys[i] for i in rows], self.sigs[rows], self.prof.take(rows))


class NodeKeys(NamedTuple):
    """Every node of one shard with its canonical-order key and signature, for the components' canonical choice
    (and a duplicate's similarity to its canonical)."""

    uids: np.ndarray
    keys: list
    sigs: np.ndarray

    @staticmethod
    def concat(batches: Sequence[NodeKeys], num_perm: int) -> NodeKeys:
        """All rows of several batches (a batch of no rows when there are none)."""
        return _concat(NodeKeys, batches, num_perm)


class BandMembers(NamedTuple):
    """LSH band keys and the node of each, routed by band key."""

    keys: np.ndarray
    uids: np.ndarray


class Table(NamedTuple):
    """What one shard's candidate pairs are verified with: its nodes' ids, signatures and profiles (without
    anchors, which only make candidates; and without keys, which travel apart as NodeKeys)."""

    uids: np.ndarray
    sigs: np.ndarray
    prof: Profiles

    @staticmethod
    def concat(batches: Sequence[Table], num_perm: int) -> Table:
        """All rows of several batches (a batch of no rows when there are none)."""
        return _concat(Table, batches, num_perm)


class Pairs(NamedTuple):
    """Candidate pairs (a < b), routed to the shards of both ends."""

    a: np.ndarray
    b: np.ndarray


class Ends(NamedTuple):
    """What one shard sends to where candidate pairs meet (b's shard modulo the graph shards): the pairs whose a
    end it holds, and the signature and profile of each of its articles those pairs (or pairs sent by others) need
    there, once per article however many pairs it is in."""

    a: np.ndarray
    b: np.ndarray
    uids: np.ndarray
    sigs: np.ndarray
    prof: Profiles


class Edges(NamedTuple):
    """Undirected edges of the story graph: exact copies and verified pairs, each with its kind (profiles.COPY or
    profiles.FOLLOW)."""

    a: np.ndarray
    b: np.ndarray
    kind: np.ndarray


class Adjacent(NamedTuple):
    """Directed edges u -> v, routed to u's graph shard (both directions of every edge travel)."""

    u: np.ndarray
    v: np.ndarray


class Members(NamedTuple):
    """Clustered nodes and their component (root node), routed to the node's shard."""

    nodes: np.ndarray
    roots: np.ndarray


class ComponentKeys(NamedTuple):
    """Components and the canonical-order key and signature of one member each, and the component's edges
    (comp, a, b, kind) found on the members' shard, routed to the component's shard."""

    comps: np.ndarray
    keys: list
    sigs: np.ndarray
    edge_comps: np.ndarray
    edges: Edges


class Decisions(NamedTuple):
    """(duplicate uid, canonical key, estimated similarity to the canonical, story), routed to the duplicate's
    shard."""

    items: list


class RootCounts(NamedTuple):
    """(canonical uid, duplicates of this run, story) for the canonical member's shard."""

    items: list
