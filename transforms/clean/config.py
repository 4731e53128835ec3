"""Clean-stage settings: CleanConfig, its command-line flags, and the config built from parsed options."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt

from transforms.clean.rules import load_rules
from transforms.language.config import LanguageConfig


@dataclasses.dataclass(frozen=True)
class CleanConfig:
    """Clean-stage settings.

    Languages the rules cover: the packaged rules are English phrasings except where a rule says otherwise (its
    `languages:` key in transforms/data/boilerplate_rules.yaml: separators, links, handles, copyright signs and
    tracking ids are language-neutral; `engagement.read_also_intl` has de, fr, es, pt, it, ru, uk). The learned
    repeated-line rule works for every language and script (spaceless CJK and Thai included, see learn_key).
    """

    min_articles_for_learned: int = 3  # 0 turns the learned rule off
    extra_rules: str | None = None  # path given with --clean-rules, for messages
    extra_rules_yaml: str | None = None  # its content, read once so that workers need no access to the file
    now: dt.datetime | None = None  # anchor of relative datelines ("Updated 3 hours ago")
    # Every article leaving the stage gets its language, detected on the cleaned text (transforms/language).
    language: LanguageConfig = LanguageConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The clean stage's flags."""
    default_min = CleanConfig.min_articles_for_learned
    g = parser.add_argument_group("cleaning")
    g.add_argument(
        "--boilerplate-min-articles",
        dest="boilerplate_min_articles",
        type=int,
        metavar="N",
        default=default_min,
        help="A line repeated verbatim in at least this many articles of one source in a run is removed as "
        f"that source's boilerplate (default {default_min}; 0 turns this off).",
    )
    g.add_argument(
        "--clean-rules",
        dest="clean_rules",
        default=None,
        metavar="FILE",
        help="Extra boilerplate rules (YAML, same format as transforms/data/boilerplate_rules.yaml): "
        "rules are added, a rule with an existing id replaces it, `disable:` lists ids to drop.",
    )


def config_from_options(opts, *, run_date: dt.date, output: str, now: dt.datetime) -> CleanConfig:
    """CleanConfig from parsed options; the extra rules file is read and compiled here to fail fast."""
    del run_date, output
    n = getattr(opts, "boilerplate_min_articles", None)
    n = CleanConfig.min_articles_for_learned if n is None else n
    if n < 0 or n == 1:
        raise ValueError("--boilerplate-min-articles must be 0 (off) or at least 2")
    path = getattr(opts, "clean_rules", None)
    content = None
    if path:
        # Beam's file systems, so that the file may be on gs:// or s3:// like the inputs; imported only here so
        # that the rest of this module stays free of Beam.
        from apache_beam.io.filesystems import FileSystems

        try:
            with FileSystems.open(path) as f:
                content = f.read().decode("utf-8")
        except (OSError, ValueError) as e:
            raise ValueError(f"--clean-rules {path}: cannot read it ({e})") from None
        load_rules(extra_yaml=content, origin=path)
    return CleanConfig(min_articles_for_learned=n, extra_rules=path, extra_rules_yaml=content, now=now)
