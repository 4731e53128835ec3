"""Entities stage: spaCy NER over canonical articles, with per-article canonical names and majority labels."""

from transforms.entities.annotate import (
    TRUNCATED_FLAG,
    annotate,
    annotate_each,
    ner_part,
    ner_truncated,
    split_text,
    with_entities,
)
from transforms.entities.canonical import DEFAULT_LABELS, NAME_LABELS, canonicalize, clean_name
from transforms.entities.config import EntityConfig, add_arguments, config_from_options
from transforms.entities.gazetteer import (
    DEFAULT_GAZETTEER,
    GAZETTEER_MODES,
    gazetteer_patterns,
    read_patterns,
    reconcile_ents,
)
from transforms.entities.model import (
    DEFAULT_MODEL,
    DEFAULT_MODELS,
    FRENCH_MODEL,
    check_model,
    load_nlp,
    model_dir,
    model_for_language,
    model_language,
    model_languages,
    ner_excludes,
    parse_model_map,
    serves_language,
)
from transforms.entities.transform import STAGE, ExtractEntities

__all__ = [
    "DEFAULT_GAZETTEER",
    "DEFAULT_LABELS",
    "DEFAULT_MODEL",
    "DEFAULT_MODELS",
    "FRENCH_MODEL",
    "GAZETTEER_MODES",
    "NAME_LABELS",
    "STAGE",
    "TRUNCATED_FLAG",
    "EntityConfig",
    "ExtractEntities",
    "add_arguments",
    "annotate",
    "annotate_each",
    "canonicalize",
    "check_model",
    "clean_name",
    "config_from_options",
    "gazetteer_patterns",
    "load_nlp",
    "model_dir",
    "model_for_language",
    "model_language",
    "model_languages",
    "ner_excludes",
    "ner_part",
    "parse_model_map",
    "ner_truncated",
    "read_patterns",
    "reconcile_ents",
    "serves_language",
    "split_text",
    "with_entities",
]
