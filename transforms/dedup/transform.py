"""The Dedup PTransform: thin DoFns that route, batch and count, joined by CoGroupByKey over typed messages."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np

from schemas.elements import Article, Duplicate, Signature
from transforms.common import REJECTS, TaggedParDo, count, reject, run_guarded
from transforms.dedup import messages as m
from transforms.dedup.components import bucket_pairs, shared_keys, star_roots, star_step, unique_pairs
from transforms.dedup.config import DedupConfig
from transforms.dedup.history import history_dates, read_history
from transforms.dedup.keys import (
    HIST_BIT,
    by_shard,
    collapse_exact,
    key_is_new,
    key_story,
    key_uid,
    make_uid,
    node_key,
    shards_of,
    uid_shard,
)
from transforms.dedup.minhash import (
    ANCHOR_BIT,
    band_keys,
    content_hash_of,
    estimate_similarity,
    normalize_text,
    sketches_in_batches,
)
from transforms.dedup.profiles import COPY, FOLLOW, lead_span, verify_rows
from transforms.dedup.records import assign, seal, stored_signatures, story_id
from transforms.dedup.threads import story_choices

STAGE = "dedup"


def _keyed(message: type) -> Any:
    """The element type of a shard-keyed PCollection: Beam infers it badly from DoFns yielding TaggedOutput."""
    return tuple[int, message]


@beam.typehints.with_output_types(tuple[int, tuple])
class _PrepareFn(beam.DoFn):
    """Per article: normalised text, node id and canonical-order key, keyed by the article's shard (exact copies
    share one); empty texts are rejected. Signing waits for the shard's group: a DoFn must not buffer across
    elements, as Beam 2.77's DaskRunner drops what finish_bundle emits."""

    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg

    def process(self, article: Article):
        cfg = self._cfg
        norm = normalize_text(article.text or "")
        if not norm:
            yield reject(article.input_ref, STAGE, "empty_text", "no text left to compare", article.text)
            return
        chash = content_hash_of(norm)
        aid = article.article_id
        uid = make_uid(aid, article.input_ref, chash, cfg.shards)
        key = node_key(uid, aid, chash, article.published_at, len(article.text), False)
        lead, paragraph = lead_span(article.text, cfg.lead_line_words, cfg.max_lead_start, cfg.lead_max_words)
        shard = uid_shard(uid)
        yield shard, m.wire(m.Doc(uid, key, norm, lead, paragraph))
        # The article itself waits for its decision in the last shuffle: each text crosses one shuffle only.
        yield beam.pvalue.TaggedOutput("articles", (shard, m.wire(m.Pending(key, seal(article)))))


def _ticks(_, shards: int) -> list[tuple[int, None]]:
    return [(shard, None) for shard in range(shards)]


def _batches(multimap, shard: int) -> list:
    """A side input's values for one shard: a lazy multimap on the FnApi runners, a dict elsewhere."""
    try:
        return list(multimap[shard])
    except KeyError:
        return []


class _CollapseFn(beam.DoFn):
    """Per shard: signs this run's articles, then exact copies join their best-ranked twin and the rest become the
    shard's node table and LSH keys."""

    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg

    def process(self, keyed, history):
        shard, grouped = keyed
        batches = _batches(history, shard)
        if batches:
            # Stored articles per story, for the stories dataset (how much a story had before this run).
            stored = collections.Counter(
                key_story(k) for k in {key_uid(k): k for b in batches for k in b.keys}.values()
            )
            for story, n in sorted(stored.items()):
                yield beam.pvalue.TaggedOutput("stored", (story_id(story), n))
        docs = [m.Doc.of(d) for d in grouped["docs"]]
        if docs:
            count("dedup.articles_in", len(docs))
            uids = np.array([d.uid for d in docs], dtype=np.uint64)
            sigs, prof = sketches_in_batches([d.text for d in docs], self._cfg, [(d.lead, d.paragraph) for d in docs])
            batches.append(m.Nodes(uids, [d.key for d in docs], sigs, prof))
        nodes = m.Nodes.concat(batches, self._cfg.num_perm)
        reps, exact = collapse_exact(nodes.keys)
        if exact:
            count("dedup.exact_pairs", len(exact))
            dup, rep = (np.array([key_uid(k) for k in col], dtype=np.uint64) for col in zip(*exact, strict=True))
            yield beam.pvalue.TaggedOutput("edges", m.Edges(dup, rep, np.full(dup.size, COPY, np.uint8)))
        yield beam.pvalue.TaggedOutput("keys", (shard, m.NodeKeys(nodes.uids, nodes.keys, nodes.sigs)))
        table = nodes.take(reps)
        fresh = [i for i, key in enumerate(table.keys) if key_is_new(key)]
        if fresh:
            yield beam.pvalue.TaggedOutput("fresh", (shard, m.Fresh(*table.take(fresh))))
        yield shard, m.Table(table.uids, table.sigs, table.prof.without_anchors())
        if not reps:
            return
        keys = band_keys(table.sigs, self._cfg.bands).ravel() & ~ANCHOR_BIT
        uids = np.repeat(table.uids, self._cfg.bands)
        # Anchors (shared long n-grams) make follow-ups candidates too: their overall similarity is often too low
        # for the bands.
        keys = np.concatenate([keys, table.prof.anchors])
        uids = np.concatenate([uids, np.repeat(table.uids, np.diff(table.prof.a_off))])
        for band_shard, sel in by_shard((keys % np.uint64(self._cfg.shards)).astype(np.int64)):
            yield beam.pvalue.TaggedOutput("bands", (band_shard, m.BandMembers(keys[sel], uids[sel])))


class _CandidatesFn(beam.DoFn):
    """Per band shard: members sharing a band key -> candidate pairs, routed to the shards of both members."""

    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg

    def process(self, keyed: tuple[int, Iterable[m.BandMembers]]):
        bands = list(keyed[1])
        keys = np.concatenate([b.keys for b in bands])
        uids = np.concatenate([b.uids for b in bands])
        anchor = (keys & ANCHOR_BIT) != 0
        bk, bu, _ = shared_keys(keys[~anchor], uids[~anchor])
        a, b, capped, skipped = bucket_pairs(bk, bu, self._cfg.max_bucket_size)
        if capped:
            count("dedup.buckets_capped", capped)
            count("dedup.pairs_skipped", skipped)
        if anchor.any():
            # An n-gram in very many articles is boilerplate, not a story's background: its bucket is dropped.
            ak, au, hot = shared_keys(keys[anchor], uids[anchor], self._cfg.anchor_bucket_cap)
            if hot:
                count("dedup.anchor_buckets_dropped", hot)
            fa, fb, _, _ = bucket_pairs(ak, au, self._cfg.anchor_bucket_cap)
            if fa.size:
                a, b = unique_pairs(np.concatenate([a, fa]), np.concatenate([b, fb]))
        hist = np.uint64(HIST_BIT)
        keep = ((a & hist) == 0) | ((b & hist) == 0)  # two stored articles need not be compared again
        a, b = a[keep], b[keep]
        ends = shards_of(a), shards_of(b)
        for shard, sel in by_shard(ends[0]):
            yield shard, m.Pairs(a[sel], b[sel])
        apart = ends[0] != ends[1]  # a pair inside one shard is sent there once
        a, b = a[apart], b[apart]
        for shard, sel in by_shard(ends[1][apart]):
            yield shard, m.Pairs(a[sel], b[sel])


def _table(tables: list[m.Table]) -> tuple[m.Table, dict[int, int]]:
    """One shard's table and the row of each uid in it."""
    table = m.Table.concat(tables, tables[0].sigs.shape[1] if tables else 0)
    return table, {u: i for i, u in enumerate(table.uids.tolist())}


def _attach_ends(keyed, meet_shards: int) -> Iterator[tuple[int, m.Ends]]:
    """Per shard: its candidate pairs go to where they meet (b's shard, modulo `meet_shards`: fewer and larger
    batches, as pairs are few), each pair from a's shard only, with the signature and profile of every article of
    this shard they need there, once per article and meeting place. The table crosses this one join; a row
    travels at most once to each place, however many pairs it is in (template briefs put hundreds of pairs on
    one article)."""
    shard, grouped = keyed
    if not grouped["pairs"]:
        return
    table, index = _table(grouped["table"])
    a = np.concatenate([p.a for p in grouped["pairs"]])
    b = np.concatenate([p.b for p in grouped["pairs"]])
    a, b = unique_pairs(a, b)  # a pair found in several band shards is checked once
    shard_b = shards_of(b)
    here_a, here_b = shards_of(a) == shard, shard_b == shard
    for meet, sel in by_shard(shard_b % meet_shards):
        sel = np.asarray(sel, dtype=np.int64)
        sent = sel[here_a[sel]]
        ends = np.unique(np.concatenate([a[sent], b[sel[here_b[sel]]]]))
        rows = np.array([index[u] for u in ends.tolist()], dtype=np.int64)
        yield meet, m.Ends(a[sent], b[sent], ends, table.sigs[rows], table.prof.take(rows))


def _verify(keyed, cfg: DedupConfig) -> Iterator[m.Edges]:
    """Per shard: both ends of each candidate pair meet, and the pair is a copy, a follow-up or unrelated
    (profiles.classify); the first two become edges of their kind."""
    batches = keyed[1]
    a = np.concatenate([e.a for e in batches])
    b = np.concatenate([e.b for e in batches])
    order = np.lexsort((b, a))  # the same order whatever order the batches came in
    a, b = a[order], b[order]
    uids = np.concatenate([e.uids for e in batches])
    sigs = np.concatenate([e.sigs for e in batches])
    prof = m.Profiles.concat([e.prof for e in batches])
    row_of = {u: i for i, u in enumerate(uids.tolist())}
    try:
        ra = np.array([row_of[u] for u in a.tolist()], dtype=np.int64)
        rb = np.array([row_of[u] for u in b.tolist()], dtype=np.int64)
    except KeyError as missing:
        raise RuntimeError(f"dedup: a candidate pair did not find its end {missing}") from None
    sims = estimate_similarity(sigs[ra], sigs[rb])
    kinds = verify_rows(prof, ra, rb, sims, cfg)
    ok = kinds != 0
    count("dedup.pairs_compared", int(sims.size))
    count("dedup.pairs_verified", int((kinds == COPY).sum()))
    count("dedup.pairs_followup", int((kinds == FOLLOW).sum()))
    if ok.any():
        yield m.Edges(a[ok], b[ok], kinds[ok])


def _route(edges: m.Edges, shards: int) -> Iterator[tuple[int, m.Adjacent]]:
    """Each undirected edge to both endpoints' graph shards, so that every node sees all of its neighbours."""
    return _route_pairs(edges.a, edges.b, shards)


def _route_pairs(a: np.ndarray, b: np.ndarray, shards: int) -> Iterator[tuple[int, m.Adjacent]]:
    u, v = np.concatenate([a, b]), np.concatenate([b, a])
    for shard, sel in by_shard(shards_of(u) % shards):
        yield shard, m.Adjacent(u[sel], v[sel])


def _edges_by_first(edges: m.Edges) -> Iterator[tuple[int, m.Edges]]:
    """Each edge to its first node's shard, where that node's component is known."""
    for shard, sel in by_shard(shards_of(edges.a)):
        yield shard, m.Edges(edges.a[sel], edges.b[sel], edges.kind[sel])


def _adjacent(batches: Iterable[m.Adjacent]) -> tuple[np.ndarray, np.ndarray]:
    batches = list(batches)
    return np.concatenate([e.u for e in batches]), np.concatenate([e.v for e in batches])


def _star_and_route(keyed, large: bool, shards: int) -> Iterator[tuple[int, m.Adjacent]]:
    return _route_pairs(*star_step(*_adjacent(keyed[1]), large), shards)


def _components(keyed) -> Iterator[tuple[int, m.Members]]:
    """Per graph shard of the star forest: each node's component (its root) goes to the node's own shard."""
    nodes, roots, unconverged = star_roots(*_adjacent(keyed[1]))
    if unconverged:
        count("dedup.cc_unconverged", unconverged)
    for shard, sel in by_shard(shards_of(nodes)):
        yield shard, m.Members(nodes[sel], roots[sel])


def _member_keys(keyed, num_perm: int) -> Iterator[tuple[int, m.ComponentKeys]]:
    """Per shard: each clustered node brings its canonical-order key and signature, and each edge whose first node
    is here its kind, to their component's shard."""
    grouped = keyed[1]
    members, edges = grouped["members"], grouped["edges"]
    nodes = np.concatenate([np.zeros(0, np.uint64), *[b.nodes for b in members]])
    comps = np.concatenate([np.zeros(0, np.uint64), *[b.roots for b in members]])
    if not nodes.size:
        return
    comp_of = dict(zip(nodes.tolist(), comps.tolist(), strict=True))
    table = m.NodeKeys.concat(grouped["keys"], num_perm)
    row_of = {u: i for i, u in enumerate(table.uids.tolist())}
    ea = np.concatenate([np.zeros(0, np.uint64), *[e.a for e in edges]])
    eb = np.concatenate([np.zeros(0, np.uint64), *[e.b for e in edges]])
    ek = np.concatenate([np.zeros(0, np.uint8), *[e.kind for e in edges]])
    ec = np.array([comp_of[u] for u in ea.tolist()], dtype=np.uint64)
    edge_shards = shards_of(ec)
    for shard, sel in by_shard(shards_of(comps)):
        at = edge_shards == shard
        rows = [row_of[u] for u in nodes[sel].tolist()]
        yield (
            shard,
            m.ComponentKeys(
                comps[sel],
                [table.keys[i] for i in rows],
                table.sigs[rows],
                ec[at],
                m.Edges(ea[at], eb[at], ek[at]),
            ),
        )


class _ChooseFn(beam.DoFn):
    """Per shard of components: copy clusters, their canonical member (smallest key) and story (threads.py). Each
    duplicate's decision, with its similarity to its canonical, goes to the duplicate's shard; each canonical's
    duplicate count and story to its own (for its article and its stored signature)."""

    def process(self, keyed):
        members: dict[int, list] = collections.defaultdict(list)
        edges: dict[int, list] = collections.defaultdict(list)
        sig_of = {}
        for batch in keyed[1]:
            for comp, key, sig in zip(batch.comps.tolist(), batch.keys, batch.sigs, strict=True):
                members[comp].append(key)
                sig_of[key_uid(key)] = sig
            e = batch.edges
            for comp, a, b, kind in zip(
                batch.edge_comps.tolist(), e.a.tolist(), e.b.tolist(), e.kind.tolist(), strict=True
            ):
                edges[comp].append((a, b, kind))
        dups, roots = story_choices((members[c], edges.get(c, [])) for c in sorted(members))
        decisions: dict[int, list] = collections.defaultdict(list)
        for items in dups.values():
            if not items:
                continue
            sims = estimate_similarity(
                np.array([sig_of[uid] for uid, _, _ in items]), np.array([sig_of[key_uid(c)] for _, c, _ in items])
            )
            for (uid, canonical, story), sim in zip(items, sims.tolist(), strict=True):
                decisions[uid_shard(uid)].append((uid, canonical, sim, story))
        for shard in sorted(decisions):
            yield shard, m.Decisions(decisions[shard])
        for shard in sorted(roots):
            yield beam.pvalue.TaggedOutput("roots", (shard, m.RootCounts(roots[shard])))


class _AssignFn(beam.DoFn):
    """Per shard: every article becomes a canonical Article or a Duplicate of its cluster root, and each canonical
    representative article of this run its stored Signature. The decisions and this run's representative
    articles come as side inputs (small: one item per clustered article, one signature and profile per text), so
    the articles cross one plain GroupByKey and the profiles cross no shuffle."""

    def __init__(self, num_perm: int):
        self._num_perm = num_perm

    def process(self, keyed, dups, roots, fresh):
        shard, articles = keyed
        dups = {uid: (root, sig, story) for batch in _batches(dups, shard) for uid, root, sig, story in batch.items}
        roots = {uid: (n, story) for batch in _batches(roots, shard) for uid, n, story in batch.items}
        counts = collections.Counter()
        pending = [m.Pending.of(p) for p in articles]
        for tag, record in assign(pending, dups, roots, counts):
            yield record if tag == "articles" else beam.pvalue.TaggedOutput(tag, record)
        for name, n in counts.items():
            count(f"dedup.{name}", n)
        stories = {uid: story for uid, (_, story) in roots.items()}
        for signature in stored_signatures(m.Fresh.concat(_batches(fresh, shard), self._num_perm), dups, stories):
            yield beam.pvalue.TaggedOutput("signatures", signature)


class Dedup(beam.PTransform):
    """Article -> {'articles': canonical Articles, 'duplicates': Duplicate, 'signatures': Signature,
    'rejects': Reject, 'stored_stories': (story_id, stored articles of earlier runs)}. Every input article ends in
    exactly one of articles, duplicates or rejects; articles and duplicates carry their story_id."""

    def __init__(self, cfg: DedupConfig = DedupConfig()):
        super().__init__()
        self._cfg = cfg

    def expand(self, articles):
        docs, rejects, pending = run_guarded(
            articles, "Prepare", STAGE, _PrepareFn(self._cfg), tags=(REJECTS, "articles")
        )
        collapsed = self._collapse(docs, self._history(articles.pipeline))
        near = self._near_edges(collapsed["bands"], collapsed["tables"])
        edges = (collapsed["edges"], near) | "AllEdges" >> beam.Flatten()
        members = self._connected_components(edges)
        by_first = edges | "EdgesByFirst" >> beam.FlatMap(_edges_by_first).with_output_types(_keyed(m.Edges))
        decided = self._decide(members, collapsed["keys"], by_first)
        # The decisions (one item per clustered article) and this run's signatures and profiles (what the stored
        # signatures need) are small next to the texts. They join as side inputs, read per shard: the articles then
        # cross a plain GroupByKey, without the copy of every text a CoGroupByKey's Flatten makes, and the profiles
        # cross no shuffle (carried through the components' steps, they cost the stage ~10% at 10k articles).
        sides = {"dups": decided["dups"], "roots": decided["roots"], "fresh": collapsed["fresh"]}
        assigned = (
            pending
            | "GroupDocs" >> beam.GroupByKey()
            | "Assign"
            >> TaggedParDo(
                _AssignFn(self._cfg.num_perm),
                "duplicates",
                "signatures",
                main="articles",
                kwargs={name: beam.pvalue.AsMultiMap(side) for name, side in sides.items()},
                output_types={"articles": Article, "duplicates": Duplicate, "signatures": Signature},
            )
        )
        return {
            "articles": assigned["articles"],
            "duplicates": assigned["duplicates"],
            "signatures": assigned["signatures"],
            "rejects": rejects,
            "stored_stories": collapsed["stored"],
        }

    def _history(self, pipeline):
        """Stored signatures per shard. They join as a side input, built from a file read (never from a shuffle):
        visible from every window when the articles are windowed (streaming), and read per shard."""
        return (
            pipeline
            | "HistoryDates" >> beam.Create(history_dates(self._cfg))
            | "ReadHistory" >> beam.FlatMap(read_history, self._cfg, count).with_output_types(_keyed(m.Nodes))
        )

    def _collapse(self, docs, history) -> dict:
        """Per shard: exact-copy edges, the node table, LSH band members, every node's key and signature, and this
        run's representative articles with what their stored signatures need."""
        # One tick per shard and window, so that every shard's stored signatures take part even where this run
        # has no article of that shard. Made from the data, the ticks are in the data's windows.
        ticks = (
            docs
            | "AnyArticle" >> beam.combiners.Count.Globally().without_defaults()
            | "TickEveryShard" >> beam.FlatMap(_ticks, self._cfg.shards).with_output_types(_keyed(type(None)))
        )
        return (
            {"docs": docs, "ticks": ticks}
            | "GroupNodes" >> beam.CoGroupByKey()
            | "Collapse"
            >> TaggedParDo(
                _CollapseFn(self._cfg),
                *("fresh", "edges", "bands", "keys", "stored"),
                main="tables",
                kwargs={"history": beam.pvalue.AsMultiMap(history)},
                output_types={
                    "tables": _keyed(m.Table),
                    "fresh": _keyed(m.Fresh),
                    "edges": m.Edges,
                    "bands": _keyed(m.BandMembers),
                    "keys": _keyed(m.NodeKeys),
                    "stored": tuple[str, int],
                },
            )
        )

    def _near_edges(self, bands, tables):
        """Candidate pairs from shared band keys, verified with both signatures (each fetched from its shard)."""
        pairs = (
            bands
            | "GroupBands" >> beam.GroupByKey()
            | "Candidates" >> beam.ParDo(_CandidatesFn(self._cfg)).with_output_types(_keyed(m.Pairs))
        )
        return (
            {"table": tables, "pairs": pairs}
            | "GroupEnds" >> beam.CoGroupByKey()
            | "AttachEnds" >> beam.FlatMap(_attach_ends, self._cfg.graph_shards).with_output_types(_keyed(m.Ends))
            | "GroupPairs" >> beam.GroupByKey()
            | "Verify" >> beam.FlatMap(_verify, self._cfg).with_output_types(m.Edges)
        )

    def _connected_components(self, edges):
        """Connected components by alternating large-star and small-star rounds: each node with its root."""
        shards = self._cfg.graph_shards
        adjacent = edges | "RouteEdges" >> beam.FlatMap(_route, shards).with_output_types(_keyed(m.Adjacent))
        for i in range(2 * self._cfg.cc_rounds):
            step = f"{'Large' if i % 2 == 0 else 'Small'}Star{i // 2}"
            adjacent = (
                adjacent
                | f"Group{step}" >> beam.GroupByKey()
                | step >> beam.FlatMap(_star_and_route, i % 2 == 0, shards).with_output_types(_keyed(m.Adjacent))
            )
        return (
            adjacent
            | "GroupForest" >> beam.GroupByKey()
            | "Components" >> beam.FlatMap(_components).with_output_types(_keyed(m.Members))
        )

    def _decide(self, members, keys, edges) -> dict:
        """Each copy cluster's canonical member and story: each duplicate's decision, each canonical's duplicate
        count and story."""
        return (
            {"members": members, "keys": keys, "edges": edges}
            | "GroupMembers" >> beam.CoGroupByKey()
            | "MemberKeys" >> beam.FlatMap(_member_keys, self._cfg.num_perm).with_output_types(_keyed(m.ComponentKeys))
            | "GroupComponents" >> beam.GroupByKey()
            | "Canonical"
            >> TaggedParDo(
                _ChooseFn(),
                "roots",
                main="dups",
                output_types={"dups": _keyed(m.Decisions), "roots": _keyed(m.RootCounts)},
            )
        )
