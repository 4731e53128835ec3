"""Clean stage: named boilerplate rules, learned per-source repeated lines, and metadata lifted from the text."""

from transforms.clean.cleaner import CleanResult, clean_article, clean_text
from transforms.clean.config import CleanConfig, add_arguments, config_from_options
from transforms.clean.datelines import parse_dateline
from transforms.clean.rules import DATELINE_RULE, LEARNED_RULE, RULES_PATH, Rules, load_rules
from transforms.clean.text import learn_key, learnable_keys, split_lines
from transforms.clean.transform import Clean

__all__ = [
    "DATELINE_RULE",
    "LEARNED_RULE",
    "RULES_PATH",
    "Clean",
    "CleanConfig",
    "CleanResult",
    "Rules",
    "add_arguments",
    "clean_article",
    "clean_text",
    "config_from_options",
    "learn_key",
    "learnable_keys",
    "load_rules",
    "parse_dateline",
    "split_lines",
]
