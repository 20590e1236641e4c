"""The hash-set model: sets, entries, categories and flags (DESIGN.md §2).

Categories are always a (scheme, code) pair, never a bare number: ``0`` means
"uncategorised" in Project VIC and "known ignorable" in some other tools.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from opspoor.errors import SignalError
from opspoor.signals import SIGNALS

Kind = Literal["known", "ignorable"]
KINDS: tuple[str, ...] = ("known", "ignorable")
DEFAULT_PDQ_DISTANCE = 31

#: valid codes per category scheme
SCHEMES: dict[str, tuple[str, ...]] = {
    "us-cat": ("0", "1", "2", "3", "4", "5"),
    "uk": ("A", "B", "C"),
    "inhope": ("baseline", "national", "not-illegal"),
    "ncmec": ("A1", "A2", "B1", "B2"),
}


class RecordError(ValueError):
    """A field of one record is wrong; the reader adds file, record and line."""


def check_text(value: str, field: str) -> str:
    """``value``, or ``RecordError`` naming ``field`` when it holds a NUL character: no store keeps
    one alike (PostgreSQL refuses it, SQLite cuts some functions short at it), so it is bad input."""
    if "\x00" in value:
        raise RecordError(f"{field}: contains a NUL character (\\x00) at position {value.index(chr(0)) + 1}")
    return value


def _check_nested(value: Any, field: str) -> None:
    if isinstance(value, str):
        check_text(value, field)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_nested(k, field)
            _check_nested(v, f"{field}.{k}")
    elif isinstance(value, list | tuple):
        for v in value:
            _check_nested(v, field)


#: what each category says, per scheme (DESIGN.md §1), for people reading a report
CATEGORY_NAMES: dict[str, dict[str, str]] = {
    "us-cat": {
        "0": "CAT-0 uncategorised",
        "1": "CAT-1 child abuse material",
        "2": "CAT-2 child exploitive / age difficult",
        "3": "CAT-3 CGI / animation",
        "4": "CAT-4 comparison / exemplar",
        "5": "CAT-5 non-pertinent",
    },
    "uk": {
        "A": "UK A penetrative, animal, sadism",
        "B": "UK B non-penetrative",
        "C": "UK C other indecent",
    },
    "inhope": {
        "baseline": "INHOPE baseline (illegal everywhere)",
        "national": "INHOPE nationally illegal",
        "not-illegal": "INHOPE not illegal",
    },
    "ncmec": {
        "A1": "NCMEC A1 prepubescent, sex act",
        "A2": "NCMEC A2 prepubescent, lascivious exhibition",
        "B1": "NCMEC B1 pubescent, sex act",
        "B2": "NCMEC B2 pubescent, lascivious exhibition",
    },
}


def category_name(scheme: str | None, code: str | None) -> str:
    """``us-cat``, ``1`` -> "CAT-1 child abuse material"; a code outside the scheme stays as given."""
    if not scheme:
        return "uncategorised"
    return CATEGORY_NAMES.get(scheme, {}).get(str(code), f"{scheme}:{code}")


#: signal names an entry may carry, from the signal registry (photodna: stored and matched, never computed)
ENTRY_SIGNALS: tuple[str, ...] = tuple(n for n, s in SIGNALS.items() if s.entry_value)


def entry_signals() -> frozenset[str]:
    """The signals an entry may carry as the registry has them now (a plugin's registered after
    this module was imported included)."""
    return frozenset(n for n, s in SIGNALS.items() if s.entry_value)


#: what a category code may look like (a code its scheme does not define is kept, see ``Category.known``)
_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,31}")


@dataclass(frozen=True, slots=True)
class Category:
    """A code of a category scheme. A code the scheme does not define (publishers number their own:
    ``us-cat:8``) is kept as given, and ``known`` is false: lists are imported whole, and
    ``hashset import --category-map`` translates such codes."""

    scheme: str
    code: str

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise SignalError(f"unknown category scheme {self.scheme!r}; known: {', '.join(SCHEMES)}")
        if not isinstance(self.code, str) or not _CODE.fullmatch(self.code):
            raise SignalError(f"category code {self.code!r} of {self.scheme} is not a short code")

    @property
    def known(self) -> bool:
        """Whether the scheme defines this code."""
        return self.code in SCHEMES[self.scheme]

    @property
    def uncategorised(self) -> bool:
        """Project VIC's 0: nobody has categorised the item yet. Never treated as known material."""
        return self.scheme == "us-cat" and self.code == "0"

    @classmethod
    def parse(cls, text: str, *, strict: bool = False) -> Category:
        """Parse ``SCHEME:CODE`` (as on the command line); ``strict``: only codes the scheme defines."""
        scheme, sep, code = text.partition(":")
        if not sep:
            raise SignalError(f"category must be SCHEME:CODE, got {text!r}")
        cat = cls(scheme.strip().lower(), code.strip())
        if strict and not cat.known:
            raise SignalError(f"category {cat} is not one of {', '.join(SCHEMES[cat.scheme])}")
        return cat

    def __str__(self) -> str:
        return f"{self.scheme}:{self.code}"


UNCATEGORISED = Category("us-cat", "0")


def match_kind(set_kind: str, category: Category | None) -> str:
    """The kind a match on an entry counts as: its set's, except in a known set an uncategorised
    entry (``us-cat:0``) is ``uncategorised`` and an entry whose code its scheme does not define
    (``us-cat:8``) is ``unknown-category``. Neither makes a file known: what the publisher meant by
    the code is not known here (one national list writes 8 for non-pertinent items), so the file
    stays in front of a person until the code is mapped (``hashset import --category-map``)."""
    if set_kind == "known" and category is not None:
        if category.uncategorised:
            return "uncategorised"
        if not category.known:
            return "unknown-category"
    return set_kind


@dataclass(slots=True)
class Entry:
    """One item of a hash set. ``signals`` maps a signal name to its canonical value.

    A vPDQ value is the video's vPDQ text (``frame,quality,hash,timestamp`` lines).
    ``extra`` keeps format-specific fields (e.g. VICS MediaFiles) so nothing is lost.
    """

    signals: dict[str, str]
    category: Category | None = None
    victim_identified: bool | None = None
    offender_identified: bool | None = None
    distributed: bool | None = None
    series: str | None = None
    tags: tuple[str, ...] = ()
    source: str | None = None
    date_updated: str | None = None  # ISO 8601, as given
    external_id: str | None = None
    size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: matching-only values tied to this entry (e.g. augmentation PDQs of crops and rotations):
    #: stored and indexed, never exported, counted or used for conflicts
    derived: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # one check for every reader and the service: NUL is bad input on both stores alike
        for name in ("series", "source", "date_updated", "external_id"):
            v = getattr(self, name)
            if v is not None and "\x00" in v:
                check_text(v, name)
        if self.tags and any("\x00" in t for t in self.tags):
            _check_nested(self.tags, "tags")
        if self.extra:
            _check_nested(self.extra, "extra")


@dataclass(frozen=True, slots=True)
class HashSetInfo:
    name: str
    kind: Kind = "known"
    source: str | None = None
    distance: int = DEFAULT_PDQ_DISTANCE


@dataclass(frozen=True, slots=True)
class CategoryMap:
    """Category codes translated at import (``--category-map 8=us-cat:5``, repeatable).

    A rule's left side is a code of any scheme (``8``) or a category (``us-cat:8``, which wins over
    a bare code); its right side a category its scheme defines."""

    rules: dict[tuple[str | None, str], Category] = field(default_factory=dict)

    @classmethod
    def parse(cls, items: Iterable[str]) -> CategoryMap:
        rules: dict[tuple[str | None, str], Category] = {}
        for item in items:
            left, sep, right = item.partition("=")
            if not sep or not left.strip() or not right.strip():
                raise SignalError(f"a category mapping is CODE=SCHEME:CODE (e.g. 8=us-cat:5), got {item!r}")
            target = Category.parse(right, strict=True)
            if ":" in left:
                source = Category.parse(left)
                rules[(source.scheme, source.code)] = target
            else:
                rules[(None, left.strip())] = target
        return cls(rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __call__(self, category: Category | None) -> Category | None:
        if category is None:
            return None
        rules = self.rules
        return rules.get((category.scheme, category.code)) or rules.get((None, category.code)) or category
