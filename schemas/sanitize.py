"""Valid Unicode at the boundaries: lone surrogates (valid JSON, invalid text) repaired to U+FFFD."""

from __future__ import annotations

REPLACEMENT = "\ufffd"


def repair_unicode(value: str) -> tuple[str, bool]:
    """(value as valid Unicode, whether anything was repaired).

    A Python str can hold lone UTF-16 surrogates (JSON's "\\ud800", an HTML "&#xDC00;"), which no UTF-8 encoder,
    Parquet writer or Beam coder accepts. A surrogate pair split into two code points is joined again; a lone
    one becomes U+FFFD. Valid text is returned as it is, at the cost of one C-level encode.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace"), True
    return value, False


def valid_unicode(value: str) -> str:
    """`value` with lone surrogates repaired (see repair_unicode)."""
    return repair_unicode(value)[0]


def repair_fields(obj, names) -> tuple[str, ...]:
    """Repair the str fields `names` of a frozen dataclass instance in place (from its __post_init__); returns
    the names of the fields that needed it."""
    repaired = []
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, str):
            fixed, changed = repair_unicode(value)
            if changed:
                object.__setattr__(obj, name, fixed)
                repaired.append(name)
    return tuple(repaired)
