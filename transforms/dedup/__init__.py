"""Dedup stage: exact and MinHash-LSH candidates verified by structure (copy / follow-up), canonical choice, story
threads, cross-day signatures."""

from transforms.dedup.components import bucket_pairs, connected_components, star_roots, star_step
from transforms.dedup.config import MAX_LOOKBACK_DAYS, DedupConfig, add_arguments, config_from_options
from transforms.dedup.history import check_history, history_dates, history_schema_problem, read_history
from transforms.dedup.keys import (
    key_article_id,
    key_content_hash,
    key_is_new,
    key_uid,
    make_uid,
    node_key,
)
from transforms.dedup.minhash import (
    band_keys,
    content_hash_of,
    estimate_similarity,
    exact_jaccard,
    minhash_from_shingles,
    normalize_text,
    shingle_hashes,
    shingle_set,
    signatures,
    sketches,
    word_hashes,
)
from transforms.dedup.profiles import (
    COPY,
    FOLLOW,
    UNRELATED,
    Features,
    Profiles,
    classify,
    features,
    lead_start,
    verify,
)
from transforms.dedup.threads import story_choices, threads
from transforms.dedup.transform import STAGE, Dedup

__all__ = [
    "COPY",
    "FOLLOW",
    "MAX_LOOKBACK_DAYS",
    "UNRELATED",
    "Features",
    "Profiles",
    "classify",
    "features",
    "sketches",
    "story_choices",
    "threads",
    "verify",
    "STAGE",
    "Dedup",
    "DedupConfig",
    "add_arguments",
    "band_keys",
    "bucket_pairs",
    "check_history",
    "config_from_options",
    "connected_components",
    "content_hash_of",
    "estimate_similarity",
    "exact_jaccard",
    "history_dates",
    "history_schema_problem",
    "key_article_id",
    "key_content_hash",
    "key_is_new",
    "key_uid",
    "lead_start",
    "make_uid",
    "minhash_from_shingles",
    "node_key",
    "normalize_text",
    "read_history",
    "shingle_hashes",
    "shingle_set",
    "signatures",
    "star_roots",
    "star_step",
    "word_hashes",
]
