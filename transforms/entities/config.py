"""Entity-stage settings (EntityConfig) and their command-line flags: the stage's only argparse code."""

from __future__ import annotations

import dataclasses

from transforms.entities.canonical import DEFAULT_LABELS
from transforms.entities.gazetteer import DEFAULT_GAZETTEER, GAZETTEER_MODES
from transforms.entities.model import DEFAULT_MODEL, model_languages


@dataclasses.dataclass(frozen=True)
class EntityConfig:
    """Entity-stage settings.

    `gazetteer` is a JSONL file of EntityRuler patterns, or None to disable it. `gazetteer_mode` "before" runs
    them as an EntityRuler before the statistical NER, which then never overrides them; "reconcile" (default)
    runs them right after it: a match relabels or adds an entity, unless the model found a longer name that
    contains it ("Bank of Russia" stays one ORG instead of "Bank of" + "Russia"); bench/entity_quality.py
    measures both.
    `languages` are the language codes the model serves; () means every language (multilingual models).
    Articles whose `language` is None are assumed to be in the model's language: detection would cost a
    dependency and time for little gain, since only HTML pages carry a language today.
    """

    model: str = DEFAULT_MODEL
    gazetteer: str | None = DEFAULT_GAZETTEER
    gazetteer_mode: str = "reconcile"
    batch_size: int = 64
    chunk_chars: int = 100_000
    # NER reads at most this many leading characters of an article. Cost grows linearly (the small model runs
    # ~8k words/s, ~6 chars a word: 100k chars measured 2.4 s, one chunk_chars Doc), whereas a hostile 4 MB record
    # ran past 600 s and 5 GB. Long reads stay well under it (10k words is ~60k chars), so only oversized
    # records (dumps, concatenated pages) lose entities, and they are flagged "ner_truncated".
    max_chars: int = 100_000
    # Characters per nlp.pipe batch. NER memory grows with the characters of a batch, not with its Docs (a 1 MB
    # text as ten 100k chunks in one batch peaked 2.8 GB over the loaded model), so 64 articles at max_chars
    # would need ~18 GB. 400k keeps usual batches (64 x ~3.5k chars) whole; 4 x 100k chunks peaked 0.6 GB.
    batch_chars: int = 400_000
    languages: tuple[str, ...] = ("en",)
    labels: tuple[str, ...] = DEFAULT_LABELS


def add_arguments(parser) -> None:
    """Flags of the entity stage."""
    g = parser.add_argument_group("named entities")
    g.add_argument(
        "--spacy-model",
        dest="spacy_model",
        default=EntityConfig.model,
        help=f"Installed spaCy pipeline package name or model folder used for NER (default {EntityConfig.model}). "
        "Only the components NER needs are loaded.",
    )
    g.add_argument(
        "--gazetteer",
        dest="gazetteer",
        # None, not the path: config_from_options then takes EntityConfig's default without checking the file.
        default=None,
        help="JSONL file of spaCy EntityRuler patterns applied before the statistical NER (default: the shipped "
        "list of common geopolitical names); 'none' disables it.",
    )
    g.add_argument(
        "--gazetteer-mode",
        dest="gazetteer_mode",
        choices=GAZETTEER_MODES,
        default=EntityConfig.gazetteer_mode,
        help="'reconcile' (default): gazetteer matches correct the NER's entities after it runs, but never split "
        "a longer name the model found; 'before': an EntityRuler before the NER, whose matches always win.",
    )
    g.add_argument(
        "--ner-batch-size",
        dest="ner_batch_size",
        type=int,
        default=EntityConfig.batch_size,
        help=f"Articles per nlp.pipe batch (default {EntityConfig.batch_size}).",
    )
    g.add_argument(
        "--ner-max-chars",
        dest="ner_max_chars",
        type=int,
        default=EntityConfig.max_chars,
        help=f"NER reads at most this many leading characters of an article, cut back to a paragraph or sentence "
        f"end (default {EntityConfig.max_chars:_}); longer articles keep their text but are flagged "
        "'ner_truncated'.",
    )


def _gazetteer_option(gazetteer: str | None) -> str | None:
    """--gazetteer as a path: the shipped list when absent, None for 'none'; ValueError when the file is missing."""
    if gazetteer is None:
        return EntityConfig.gazetteer
    if gazetteer.strip().lower() in ("none", ""):
        return None
    from apache_beam.io.filesystems import FileSystems

    if not FileSystems.exists(gazetteer):
        raise ValueError(f"--gazetteer {gazetteer!r}: no such file")
    return gazetteer


def _positive_option(opts, dest: str, flag: str, default: int) -> int:
    value = getattr(opts, dest, None)
    value = default if value is None else value
    if value < 1:
        raise ValueError(f"{flag} must be at least 1, got {value}")
    return value


def config_from_options(opts, *, run_date, output, now) -> EntityConfig:
    """EntityConfig from parsed options; ValueError with one line on a bad value."""
    del run_date, output, now  # the stage does not depend on them
    model = (getattr(opts, "spacy_model", None) or EntityConfig.model).strip()
    gazetteer = _gazetteer_option(getattr(opts, "gazetteer", None))
    batch_size = _positive_option(opts, "ner_batch_size", "--ner-batch-size", EntityConfig.batch_size)
    max_chars = _positive_option(opts, "ner_max_chars", "--ner-max-chars", EntityConfig.max_chars)
    mode = getattr(opts, "gazetteer_mode", None) or EntityConfig.gazetteer_mode
    if mode not in GAZETTEER_MODES:
        raise ValueError(f"--gazetteer-mode must be one of {', '.join(GAZETTEER_MODES)}, got {mode!r}")
    return EntityConfig(
        model=model,
        gazetteer=gazetteer,
        gazetteer_mode=mode,
        batch_size=batch_size,
        max_chars=max_chars,
        languages=model_languages(model),
    )
