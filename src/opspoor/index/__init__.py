"""index box of opspoor: exact lookup and Hamming-radius search, updated in place, saved as flat files.

Knows NumPy arrays of keys and int64 ids only, never hash-set formats or the store. See docs/index.md.
"""

from opspoor.index.brute import brute_force_hamming
from opspoor.index.exact import ExactIndex, ExactMatches
from opspoor.index.hamming import HammingIndex, Matches
from opspoor.index.mih import MihLayout, choose_layout

__all__ = [
    "ExactIndex",
    "ExactMatches",
    "HammingIndex",
    "Matches",
    "MihLayout",
    "brute_force_hamming",
    "choose_layout",
]
