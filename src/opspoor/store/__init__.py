"""The store: hash sets and their entries on SQLite (embedded default) or PostgreSQL, with Alembic
migrations kept in the package. Queries live in :mod:`opspoor.store.hashsets`."""

from opspoor.store import models_service  # noqa: F401  (the service's tables join Base.metadata)
from opspoor.store.db import Store, default_url, open_store, resolve_url, upgrade
from opspoor.store.hashsets import (
    Change,
    ConflictRecord,
    EntryRef,
    HashSetCounts,
    HashSetRecord,
    ImportResult,
    changes_since,
    create_hashset,
    entry_counts,
    entry_details,
    get_hashset,
    hashset_counts,
    import_entries,
    iter_entries,
    list_conflicts,
    list_hashsets,
    load_signal_arrays,
    remove_entries,
    remove_hashset,
)

__all__ = [
    "Change",
    "ConflictRecord",
    "EntryRef",
    "HashSetCounts",
    "HashSetRecord",
    "ImportResult",
    "Store",
    "changes_since",
    "create_hashset",
    "default_url",
    "entry_counts",
    "entry_details",
    "get_hashset",
    "hashset_counts",
    "import_entries",
    "iter_entries",
    "list_conflicts",
    "list_hashsets",
    "load_signal_arrays",
    "open_store",
    "remove_entries",
    "remove_hashset",
    "resolve_url",
    "upgrade",
]
