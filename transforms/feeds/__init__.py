"""Feed source: feed lists and OPML, RSS/Atom parsing, and linked pages fetched once each as RawArticle records."""

from transforms.feeds.config import (
    STAGE,
    FeedConfig,
    add_arguments,
    config_from_options,
    format_duration,
    parse_duration,
    parse_stop_after,
)
from transforms.feeds.lists import parse_feed_list, parse_opml, read_feed_list
from transforms.feeds.parse import (
    BAD_CHAR,
    FEED_ACCEPT,
    FeedEntry,
    FeedUnreadable,
    check_regular_file,
    load_feed,
    parse_feed,
    read_feed,
    repair_char_refs,
    repair_entry_fields,
    source_name,
)
from transforms.feeds.transform import FeedReaderFn, FetchEntries, ReadFeeds, to_raw

__all__ = [
    "BAD_CHAR",
    "FEED_ACCEPT",
    "STAGE",
    "FeedConfig",
    "FeedEntry",
    "FeedReaderFn",
    "FeedUnreadable",
    "FetchEntries",
    "ReadFeeds",
    "add_arguments",
    "check_regular_file",
    "config_from_options",
    "format_duration",
    "load_feed",
    "parse_duration",
    "parse_feed",
    "parse_feed_list",
    "parse_opml",
    "parse_stop_after",
    "read_feed",
    "read_feed_list",
    "repair_char_refs",
    "repair_entry_fields",
    "source_name",
    "to_raw",
]
