"""The folder opspoor keeps caches in: ``$OPSPOOR_CACHE``, else the user's cache folder.

Caches are rebuilt when missing (index caches, the benchmark photo corpus); an installed package
never reads into a source tree for them. Any layer may import this module.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

CACHE_ENV = "OPSPOOR_CACHE"


def cache_home() -> Path:
    """``$OPSPOOR_CACHE``, else the user's cache folder (``~/.cache/opspoor`` on Linux)."""
    return Path(os.environ.get(CACHE_ENV) or user_cache_dir("opspoor"))
