"""Extract stage: RawArticle (text or HTML) -> Article with body text and metadata."""

from transforms.extract.config import ExtractConfig
from transforms.extract.html import (
    MIN_PAGE_WORDS,
    ExtractTimeout,
    extract_html,
    html_to_text,
    parse_datetime,
    to_article,
)
from transforms.extract.transform import STAGE, Extract
from transforms.extract.worker import TimedExtractor

__all__ = [
    "MIN_PAGE_WORDS",
    "STAGE",
    "Extract",
    "ExtractConfig",
    "ExtractTimeout",
    "TimedExtractor",
    "extract_html",
    "html_to_text",
    "parse_datetime",
    "to_article",
]
