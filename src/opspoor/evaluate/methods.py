"""The matching methods compared by the harness, as sets of query-side and known-side hash kinds.

Every query is hashed once with all query-side methods on and every original once with its
augmented hashes; each hash carries a *tag* saying how it was made. A method is a choice of query
tags and known tags, so all methods are scored on exactly the same hashes in one run, and the
baseline (plain PDQ) is the method that uses only the first tag on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from opspoor.signals.augment import Augmented
from opspoor.signals.robust import QueryHash

#: how a query hash was made: region x (plain or turned; the pad ladder counts as border); any
#: region hash of low quality (made with a tighter ``max_distance``) is ``low-quality``
QUERY_TAGS = (
    "pdq", "dihedral", "border", "border+dihedral", "embedded", "embedded+dihedral", "band", "low-quality",
)  # fmt: skip
#: how a known hash was made
KNOWN_TAGS = ("pdq", "crop-centre", "crop-offset", "rotate", "band", "border", "low-quality")
LOW_Q, LOW_K = QUERY_TAGS.index("low-quality"), KNOWN_TAGS.index("low-quality")


def query_tag(q: QueryHash) -> int:
    if q.max_distance is not None:
        return LOW_Q
    turned = q.variant != "original"
    return {"full": 0, "border": 2, "pad": 2, "embedded": 4, "band": 6}[q.region] + int(turned)


def known_tag(a: Augmented) -> int:
    return LOW_K if a.max_distance is not None else KNOWN_TAGS.index(a.kind)


@dataclass(frozen=True)
class Method:
    name: str
    query: frozenset[int]  # indices into QUERY_TAGS
    known: frozenset[int]  # indices into KNOWN_TAGS
    note: str
    #: also the low-quality hashes (query side, and known side when augmented), counted only
    #: within their tighter distance
    low_quality: bool = False
    #: also local features (ORB matched and checked by RANSAC, ``signals.local``) of each original
    local: bool = False

    @property
    def augmented(self) -> bool:
        return self.known != frozenset({0})


def _m(
    name: str, query: set[int], known: set[int], note: str, low_quality: bool = False, local: bool = False
) -> Method:
    return Method(name, frozenset(query), frozenset(known), note, low_quality, local)


BAND_Q, BAND_K = QUERY_TAGS.index("band"), KNOWN_TAGS.index("band")
#: the query-side methods that help against any list (the band only meets augmented sets)
PLAIN_QUERY = set(range(len(QUERY_TAGS))) - {BAND_Q, LOW_Q}
ALL_QUERY = set(range(len(QUERY_TAGS))) - {LOW_Q}
ALL_KNOWN = set(range(len(KNOWN_TAGS))) - {LOW_K}

#: in table order; the first is the baseline
METHODS = (
    _m("pdq", {0}, {0}, "plain PDQ: one hash per original, one per query (baseline)"),
    _m("dihedral", {0, 1}, {0}, "query: + the 7 rotations/flips of the query's pixels"),
    _m("border", {0, 2}, {0}, "query: + the picture without uniform borders"),
    _m("embedded", {0, 4}, {0}, "query: + pictures found inside a larger canvas"),
    _m("query-side", PLAIN_QUERY, {0}, "query: all of the above, and their rotations/flips"),
    _m("augment crops", {0}, {0, 1, 2}, "known: + centre crops of each original (off-centre too, if asked)"),
    _m("augment rotations", {0}, {0, 3}, "known: + small rotations of each original"),
    _m("augment band", {0, BAND_Q}, {0, BAND_K}, "known and query: + the middle band (captions, logos)"),
    _m("augment", {0, BAND_Q}, ALL_KNOWN, "known: crops, rotations, band, own border removed; query: + band"),
    _m("both", ALL_QUERY, ALL_KNOWN, "all query-side methods against the augmented known side"),
    _m(
        "query-side +lq",
        PLAIN_QUERY,
        {0},
        "query-side, plus region hashes of quality < 50, matched only within the low-quality distance",
        True,
    ),
    _m(
        "both +lq",
        ALL_QUERY,
        ALL_KNOWN,
        "both, plus hashes of quality < 50 on either side, matched only within the low-quality distance",
        True,
    ),
    _m(
        "local",
        {0},
        {0},
        "plain PDQ, plus local features of each original (ORB, checked by RANSAC)",
        local=True,
    ),
    _m("both +lq +local", ALL_QUERY, ALL_KNOWN, "both +lq, plus local features of each original", True, True),
)


def method_by_name(name: str) -> Method:
    for m in METHODS:
        if m.name == name:
            return m
    raise KeyError(name)
