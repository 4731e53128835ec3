"""Datelines: a line that is only a date, time and zone (or "Updated 3 hours ago"), read as a UTC datetime."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_TZ_MINUTES = {
    "gmt": 0, "utc": 0, "z": 0, "wet": 0, "bst": 60, "cet": 60, "wat": 60, "west": 60, "cest": 120, "eet": 120,
    "cat": 120, "sast": 120, "eest": 180, "msk": 180, "eat": 180, "trt": 180, "ast": 180, "gst": 240,
    "pkt": 300, "ist": 330, "ict": 420, "wib": 420, "hkt": 480, "sgt": 480, "awst": 480, "jst": 540,
    "kst": 540, "aest": 600, "aedt": 660, "nzst": 720, "nzdt": 780, "est": -300, "edt": -240, "cst": -360,
    "cdt": -300, "mst": -420, "mdt": -360, "pst": -480, "pdt": -420,
}  # fmt: skip
# Bare US zone names follow daylight saving, so they need the real zone rules.
_TZ_NAMES = {"et": "America/New_York", "ct": "America/Chicago", "mt": "America/Denver", "pt": "America/Los_Angeles"}
_MONTH_RE = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])"
)
_WEEKDAY_RE = (
    r"(?:mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?|sat(?:urday)?"
    r"|sun(?:day)?)(?![a-z])"
)
_TZ_RE = "|".join(sorted((*_TZ_MINUTES, *_TZ_NAMES), key=lambda z: -len(z)))
_DATE_TOKEN = re.compile(
    rf"""
    (?P<iso>(?P<iy>\d{{4}})-(?P<im>\d{{1,2}})-(?P<id>\d{{1,2}})
        (?:[T\s](?P<iH>\d{{1,2}}):(?P<iM>\d{{2}})(?::(?P<iS>\d{{2}})(?:\.\d+)?)?)?(?P<itz>Z|[+-]\d{{2}}:?\d{{2}})?)
    |(?P<ymd>(?P<yy>\d{{4}})[./](?P<ym>\d{{1,2}})[./](?P<yd>\d{{1,2}}))
    |(?P<num>(?P<na>\d{{1,2}})[./-](?P<nb>\d{{1,2}})[./-](?P<ny>\d{{4}}))
    |(?P<dmy>(?P<dd>\d{{1,2}})(?:st|nd|rd|th)?\.?\s+(?:of\s+)?(?P<dmon>{_MONTH_RE})\.?,?\s+(?P<dy>\d{{4}}))
    |(?P<mdy>(?P<mmon>{_MONTH_RE})\.?\s+(?P<md>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<my>\d{{4}}))
    |(?P<time>(?P<H>\d{{1,2}})(?::(?P<M>\d{{2}})(?::(?P<S>\d{{2}}))?|[.h](?P<M2>\d{{2}})(?!\d))
        (?:\s*(?P<ampm>[ap])\.?m\.?(?![a-z]))?)
    |(?P<hour>(?P<H2>\d{{1,2}})\s*(?P<ampm2>[ap])\.?m\.?(?![a-z]))
    |(?P<off>(?:gmt|utc)\s*(?P<sign>[+-])\s*(?P<oh>\d{{1,2}})(?::?(?P<om>\d{{2}}))?(?!\d)
        |(?P<sign2>[+-])(?P<oh2>\d{{2}}):?(?P<om2>\d{{2}})(?!\d))
    |(?P<tz>(?:{_TZ_RE})(?![a-z]))
    |(?P<wd>{_WEEKDAY_RE})\.?
    |(?P<sep>[\s,|·•/–—-]+|at(?![a-z])|on(?![a-z]))
    """,
    re.VERBOSE | re.IGNORECASE,
)
DATE_PREFIX = re.compile(
    r"^(?:(?P<kind>(?:first |last )?(?:published|updated|posted|modified|created|released|issued)"
    r"|date|dated|pub\.|upd\.)(?:\s+(?:on|at))?\s*[:|-]?\s*)",
    re.IGNORECASE,
)
_RELATIVE = re.compile(
    r"^(?P<n>\d{1,3}|an?|one)\s*(?P<unit>s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)\s+ago\.?$",
    re.IGNORECASE,
)
DATE_HINT = re.compile(r"\d|\bago\b", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MIN_YEAR, _MAX_YEAR = 1900, 2100


@dataclasses.dataclass(frozen=True)
class Dateline:
    """A dateline read off a line, and whether it was labelled as an update."""

    when: dt.datetime | None  # None for a relative dateline without a run time
    updated: bool


def _offset(g: dict, local: dt.datetime) -> dt.timedelta | None:
    if g.get("itz"):
        z = g["itz"]
        if z.upper() == "Z":
            return dt.timedelta(0)
        sign = -1 if z[0] == "-" else 1
        digits = z[1:].replace(":", "")
        return sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4]))
    if g.get("off"):
        sign = -1 if (g.get("sign") or g.get("sign2")) == "-" else 1
        return sign * dt.timedelta(hours=int(g.get("oh") or g["oh2"]), minutes=int(g.get("om") or g.get("om2") or 0))
    if g.get("tz"):
        name = g["tz"].lower()
        if name in _TZ_NAMES:
            try:
                from zoneinfo import ZoneInfo

                return local.replace(tzinfo=ZoneInfo(_TZ_NAMES[name])).utcoffset()
            except Exception:  # noqa: BLE001 - no tz database: standard time is the better guess than nothing
                return dt.timedelta(minutes={"et": -300, "ct": -360, "mt": -420, "pt": -480}[name])
        return dt.timedelta(minutes=_TZ_MINUTES[name])
    return None


def _date_candidates(g: dict) -> list[tuple[int, int, int]]:
    if g.get("iso"):
        return [(int(g["iy"]), int(g["im"]), int(g["id"]))]
    if g.get("ymd"):
        return [(int(g["yy"]), int(g["ym"]), int(g["yd"]))]
    if g.get("dmy"):
        return [(int(g["dy"]), _MONTHS[g["dmon"][:3].lower()], int(g["dd"]))]
    if g.get("mdy"):
        return [(int(g["my"]), _MONTHS[g["mmon"][:3].lower()], int(g["md"]))]
    a, b, y = int(g["na"]), int(g["nb"]), int(g["ny"])
    # Day first is the international default; month first only when the numbers or the weekday say so.
    return [(y, b, a), (y, a, b)] if a != b else [(y, b, a)]


def _valid_date(y: int, m: int, d: int) -> dt.date | None:
    try:
        return dt.date(y, m, d) if _MIN_YEAR <= y <= _MAX_YEAR else None
    except ValueError:
        return None


def _relative(rel: re.Match, now: dt.datetime | None, updated: bool) -> Dateline:
    if now is None:
        return Dateline(None, updated)
    n = rel.group("n").lower()
    amount = 1 if n in ("a", "an", "one") else int(n)
    unit = rel.group("unit").lower()[0]
    return Dateline((now - dt.timedelta(seconds=amount * _UNIT_SECONDS[unit])).astimezone(dt.timezone.utc), updated)


def _fields(s: str) -> dict[str, str] | None:
    """The named groups of a line made only of date tokens, at most one date, time and zone; None otherwise."""
    found: dict[str, str] = {}
    pos = 0
    while pos < len(s):
        m = _DATE_TOKEN.match(s, pos)
        if not m or m.end() == pos:
            return None
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        kind = next(
            k for k in ("iso", "ymd", "num", "dmy", "mdy", "time", "hour", "off", "tz", "wd", "sep") if k in groups
        )
        if kind != "sep":
            slot = (
                "date" if kind in ("iso", "ymd", "num", "dmy", "mdy") else "time" if kind in ("time", "hour") else kind
            )
            if slot in ("off", "tz"):
                slot = "zone"
            if slot in found:
                return None
            found[slot] = kind
            for k, v in groups.items():
                found.setdefault("g." + k, v)
        pos = m.end()
    if "date" not in found:
        return None
    return {k[2:]: v for k, v in found.items() if k.startswith("g.")}


def _day(g: dict, now: dt.datetime | None) -> dt.date | None:
    dates = [d for d in (_valid_date(*c) for c in _date_candidates(g)) if d]
    if now is not None:
        # A dateline from the future is a misreading of a day/month order, never news.
        dates = [d for d in dates if d <= (now + dt.timedelta(days=1)).date()] or []
    if "wd" in g:
        weekday = _WEEKDAYS[g["wd"][:3].lower()]
        dates = [d for d in dates if d.weekday() == weekday] or dates
    return dates[0] if dates else None


def _clock(g: dict) -> tuple[int, int, int] | None:
    hour = int(g.get("iH") or g.get("H") or g.get("H2") or 0)
    minute = int(g.get("iM") or g.get("M") or g.get("M2") or 0)
    second = int(g.get("iS") or g.get("S") or 0)
    ampm = (g.get("ampm") or g.get("ampm2") or "").lower()
    if ampm == "p" and hour < 12:
        hour += 12
    elif ampm == "a" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second


def read_dateline(line: str, now: dt.datetime | None) -> Dateline | None:
    """A whole line that is only a date (with weekday, time, zone, 'Published/Updated' label) or None."""
    s = line.strip().rstrip(".")
    updated = False
    p = DATE_PREFIX.match(s)
    if p:
        updated = bool(re.search(r"upd|modified", p.group(0), re.IGNORECASE))
        s = s[p.end() :]
    rel = _RELATIVE.match(s)
    if rel:
        return _relative(rel, now, updated)
    g = _fields(s)
    if g is None:
        return None
    day = _day(g, now)
    if day is None:
        return None
    clock = _clock(g)
    if clock is None:
        return None
    local = dt.datetime(day.year, day.month, day.day, *clock)
    offset = _offset(g, local) or dt.timedelta(0)
    when = (local - offset).replace(tzinfo=dt.timezone.utc)
    return Dateline(when, updated)


def parse_dateline(line: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """The UTC datetime of a line that is only a dateline ('Saturday 22 March 2025 01:33 GMT',
    '14:054/09/2025, Thursday', 'Updated 3 hours ago' given `now`), else None."""
    found = read_dateline(line, now)
    return found.when if found else None
