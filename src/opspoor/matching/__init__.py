"""matching box of opspoor: query hashes matched against the indexes of hash sets (DESIGN.md §1).

``query`` (what is looked up and what a match is), ``groups`` (the indexes over sets' values and
the lookups in them), ``cache`` (each set's indexes cached as flat files), ``matcher`` (the one
matcher behind ``opspoor match``, the scan and the service). Knows no cases and no HTTP.
"""

from opspoor.matching.cache import build_index_cache, drop_index_cache, index_cache_dir, set_cache_dir
from opspoor.matching.groups import LOCAL, PDQ_LOW_QUALITY, IndexGroup
from opspoor.matching.matcher import Matcher
from opspoor.matching.query import Match, PdqLookup, Query, pdq_lookups, value_query, value_widths

__all__ = [
    "LOCAL",
    "PDQ_LOW_QUALITY",
    "IndexGroup",
    "Match",
    "Matcher",
    "PdqLookup",
    "Query",
    "build_index_cache",
    "drop_index_cache",
    "index_cache_dir",
    "pdq_lookups",
    "set_cache_dir",
    "value_query",
    "value_widths",
]
