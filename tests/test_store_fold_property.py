"""The set-wise duplicate and conflict search (SQL, ``store.hashsets.duplicates``) against a plain
Python reference of the rule, on SQLite and PostgreSQL, as the indexes are tested against brute force.

The rule (docs/formats.md, "an entry is one record"), as the reference applies it record by record:

- per key value (MD5, SHA-1, SHA-256, PDQ, PhotoDNA) shared by several entries of the set, a new
  record looks at the earliest entry holding it: for a cryptographic value (identity) the earliest
  of its own category (any, when it has none) is the entry it may repeat; it repeats it when no
  hash both give differs (a different PDQ or PhotoDNA keeps it a separate entry). A record
  repeating several takes the earliest. A shared PDQ or PhotoDNA never makes a duplicate;
- a categorised record whose value's earliest categorised entry has another category conflicts
  with that entry (with the entry it was folded into, when that one is a duplicate);
- a later repeat of the same entry that brings another value of a type than an earlier repeat of it
  stays an entry (no value is lost in the fold);
- a duplicate is not stored; the entry it repeats (through chains) gains the hash types it lacks,
  the least value when several bring one.

Each example imports one or two batches of small records with few distinct values into a fresh set
of one database per test (the first import into an empty set takes the candidate filter, the second
the whole-set search).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from opspoor.hashsets.model import Category, Entry
from opspoor.store import Store, import_entries, iter_entries, list_conflicts, open_store

IDENTITY = ("md5", "sha1", "sha256")
KEYS = (*IDENTITY, "pdq", "photodna")
#: hex length per signal (a PhotoDNA is kept as the hex of its 144 bytes)
WIDTH = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64, "photodna": 288}
CATEGORIES = (None, "1", "2")

_sets = itertools.count()


def _value(signal: str, k: int) -> str:
    return format(k + 1, "x").rjust(WIDTH[signal], "0")


@st.composite
def records(draw: st.DrawFn) -> list[tuple[dict[str, str], str | None]]:
    """Records with values from pools of two or three per signal, so that values are often shared."""
    out = []
    for _ in range(draw(st.integers(1, 9))):
        sigs: dict[str, str] = {}
        for s in KEYS:
            k = draw(st.integers(-2, 2))  # -2, -1: none
            if k >= 0:
                sigs[s] = _value(s, k)
        if not sigs:
            sigs["md5"] = _value("md5", draw(st.integers(0, 2)))
        out.append((sigs, draw(st.sampled_from(CATEGORIES))))
    return out


# --- the reference --------------------------------------------------------------------------------
@dataclass
class Stored:
    id: int
    category: str | None
    signals: dict[str, str]


@dataclass
class Outcome:
    duplicates: int = 0
    duplicates_by: dict[str, int] = field(default_factory=dict)
    #: (signal, value, entry id, other entry id)
    conflicts: set[tuple[str, str, int, int]] = field(default_factory=set)


def _contradicts(a: dict[str, str], b: dict[str, str]) -> bool:
    """Any hash both give differs: not the same item (a PDQ or PhotoDNA of another tool included)."""
    return any(s in a and s in b and a[s] != b[s] for s in KEYS)


def reference_import(held: list[Stored], new: list[Stored]) -> tuple[list[Stored], Outcome]:
    """What an import of ``new`` (ids above every held one) into a set holding ``held`` leaves."""
    everyone = sorted(held + new, key=lambda e: e.id)
    out = Outcome()
    dup_of: dict[int, int] = {}
    decided_by: dict[int, str] = {}
    conflicts: list[tuple[str, str, int, int]] = []
    for r in new:
        repeats: dict[str, int] = {}
        for s, v in r.signals.items():
            group = [e for e in everyone if e.signals.get(s) == v]
            if len(group) < 2:
                continue
            if s in IDENTITY:
                same = group if r.category is None else [e for e in group if e.category == r.category]
                if same[0].id < r.id:
                    repeats[s] = same[0].id
            if r.category is not None:
                first_cat = next((e for e in group if e.category is not None), None)
                if first_cat and first_cat.id < r.id and first_cat.category != r.category:
                    conflicts.append((s, v, first_cat.id, r.id))
        by_id = {e.id: e for e in everyone}
        kept = [j for j in repeats.values() if not _contradicts(r.signals, by_id[j].signals)]
        if kept:
            dup_of[r.id] = min(kept)
            decided_by[r.id] = next(s for s in reversed(IDENTITY) if repeats.get(s) == dup_of[r.id])
    # a later repeat of the same entry that brings another value of a type than an earlier repeat
    # stays an entry (judged against the repeats as first found, in one pass)
    by_id = {e.id: e for e in everyone}
    first = dict(dup_of)
    for d, keep in first.items():
        if any(
            e < d and k == keep and _contradicts(by_id[d].signals, by_id[e].signals) for e, k in first.items()
        ):
            del dup_of[d]
            del decided_by[d]
    out.duplicates = len(dup_of)
    for s in decided_by.values():
        out.duplicates_by[s] = out.duplicates_by.get(s, 0) + 1

    def root(i: int) -> int:
        while i in dup_of:
            i = dup_of[i]
        return i

    out.conflicts = {(s, v, root(a), b) for s, v, a, b in conflicts if b not in dup_of}
    stored = {e.id: Stored(e.id, e.category, dict(e.signals)) for e in everyone if e.id not in dup_of}
    gains: dict[int, dict[str, str]] = {}
    for d in sorted(dup_of):
        got = gains.setdefault(root(d), {})
        for s, v in next(e for e in new if e.id == d).signals.items():
            if s in KEYS and (s not in got or v < got[s]):
                got[s] = v
    for k, got in gains.items():
        for s, v in got.items():
            stored[k].signals.setdefault(s, v)
    return sorted(stored.values(), key=lambda e: e.id), out


# --- the store --------------------------------------------------------------------------------------
@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


def _entries(batch: list[tuple[dict[str, str], str | None]], first: int) -> list[Entry]:
    return [
        Entry(dict(sigs), category=None if c is None else Category("us-cat", c), external_id=str(first + i))
        for i, (sigs, c) in enumerate(batch)
    ]


def _stored(store: Store, name: str) -> list[Stored]:
    return [
        Stored(
            int(e.external_id or -1),
            None if e.category is None else e.category.code,
            {s: v for s, v in e.signals.items() if s in KEYS},
        )
        for e in iter_entries(store, name)
    ]


#: two duplicates of one entry bring different values of a hash type it lacks: the least is kept
_TWO_GAINS = [
    ({"md5": _value("md5", 0)}, "1"),
    ({"md5": _value("md5", 0), "sha1": _value("sha1", 1)}, "1"),
    ({"md5": _value("md5", 0), "sha1": _value("sha1", 0)}, "1"),
]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(first=_TWO_GAINS, second=[], two_imports=False)
@given(first=records(), second=records(), two_imports=st.booleans())
def test_duplicates_and_conflicts_follow_the_reference(
    store: Store,
    first: list[tuple[dict[str, str], str | None]],
    second: list[tuple[dict[str, str], str | None]],
    two_imports: bool,
) -> None:
    name = f"fold-{next(_sets)}"
    batches = [first, second] if two_imports else [first + second]
    held: list[Stored] = []
    expected_conflicts: set[tuple[str, str, int, int]] = set()
    n = 0
    for batch in batches:
        new = [Stored(n + i, c, dict(sigs)) for i, (sigs, c) in enumerate(batch)]
        expected, outcome = reference_import(held, new)
        result = import_entries(store, name, _entries(batch, n))
        n += len(batch)
        assert result.duplicates == outcome.duplicates
        assert result.added == len(batch) - outcome.duplicates
        assert result.duplicates_by == outcome.duplicates_by
        assert result.conflicts == len(outcome.conflicts)
        assert _stored(store, name) == expected
        expected_conflicts |= outcome.conflicts
        held = expected
    assert _conflicts(store, name) == expected_conflicts


def _conflicts(store: Store, name: str) -> set[tuple[str, str, int, int]]:
    """The set's conflict rows as (signal, value, record, other record)."""
    return {
        (c.signal, c.value, int(c.entry.external_id or -1), int(c.other.external_id or -1))
        for c in list_conflicts(store, name)
    }
