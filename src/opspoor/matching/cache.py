"""Each hash set's indexes cached as flat files (``opspoor.index.cache``), so that the next scan or
match maps them instead of reading the set from the store.

A set's folder is named by the store, the set's tenant, id and creation time (a set removed and
created again under its name gets a new folder); its subfolder by the set's newest change in the
store's change log, so a changed set is indexed again and an unchanged one never is.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from opspoor.errors import IndexFileError
from opspoor.index.cache import key_folder, remove_older
from opspoor.matching.groups import IndexGroup
from opspoor.store import HashSetRecord, Store, get_hashset
from opspoor.store.hashsets import last_changes

#: bump when the cached index layout changes
CACHE_VERSION = 6  # 6: PhotoDNA has an exact index (5: undefined category codes match as unknown)

log = logging.getLogger(__name__)


def set_cache_dir(store: Store, rec: HashSetRecord) -> Path:
    """The folder of one hash set's cached indexes: the set is named by the store, its tenant, id
    and creation time (a set removed and created again under its name gets a new folder)."""
    return key_folder(CACHE_VERSION, store.url, rec.tenant, rec.id, str(rec.created_at))


def index_cache_dir(store: Store, rec: HashSetRecord, last_change: int | None = None) -> Path:
    """Where the indexes of the set are cached in the state after its change ``last_change``
    (by default its newest change in the store's change log)."""
    if last_change is None:
        last_change = last_changes(store, [rec.id])[rec.id]
    return set_cache_dir(store, rec) / str(last_change)


def load_set_index(store: Store, rec: HashSetRecord, last_change: int) -> IndexGroup:
    """The set's indexes: mapped from its cache folder, or built from the store and cached.

    ``last_change`` must be read before the values (a change made meanwhile then only makes this
    cache stale, never wrong). A damaged cache is deleted and rebuilt; a cache that cannot be
    written only costs the next command the build again.
    """
    folder = index_cache_dir(store, rec, last_change)
    try:
        return IndexGroup.load(folder)
    except IndexFileError as exc:
        if folder.exists():
            log.warning("rebuilding the cached index of %r: %s", rec.name, exc)
            shutil.rmtree(folder, ignore_errors=True)
    group = IndexGroup.build(store, [rec.name], rec.tenant)
    try:
        group.save(folder)
    except OSError as exc:
        if not folder.is_dir():  # (another process may have cached the same state first)
            log.warning("index cache of %r not written: %s", rec.name, exc)
        return group
    remove_older(folder)
    return group


def build_index_cache(store: Store, name: str, *, tenant: str = "default") -> IndexGroup:
    """Cache the indexes of a set as it is now (right after an import), so that the next scan or
    match maps them instead of reading the set from the store."""
    rec = get_hashset(store, name, tenant=tenant)
    return load_set_index(store, rec, last_changes(store, [rec.id])[rec.id])


def drop_index_cache(store: Store, rec: HashSetRecord) -> None:
    """Delete every cached index of a set (it was removed from the store)."""
    shutil.rmtree(set_cache_dir(store, rec), ignore_errors=True)
