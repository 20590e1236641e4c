"""Hash sets in the store: create, list, count, remove, bulk import, export, and what the index loads.

One module per job: ``schema`` (tables, entry columns, records), ``catalogue`` (sets and the change
log), ``importer`` with ``rows``, ``writers``, ``copybinary`` and ``candidates`` (the bulk import),
``duplicates`` (the set-wise duplicate and conflict search) and ``reads`` (export, details, and what
the index loads). What an entry may hold is checked by :mod:`opspoor.hashsets.checks`.

Bulk import (``import_entries``) runs in one transaction. Rows are formatted in the calling thread
and written by a writer thread (COPY on PostgreSQL, executemany on SQLite), so the database stores
one batch while Python reads the next. Entries come as ``EntryBatch`` lists or, from the compiled
VICS reader, as ``ArrayBatch`` arrays, which PostgreSQL takes as COPY BINARY (``copybinary``).
An entry's MD5, SHA-1, SHA-256 and PDQ are columns of its ``entries`` row (``HASH_COLUMNS``);
only PhotoDNA and derived values are ``entry_signals`` rows.
Entry ids are reserved in blocks (``id_blocks``) so entries and their signals are written together
without a round trip per row. After loading, duplicates and conflicts are found set-wise in SQL:

- an entry is one record of the source. An entry sharing an MD5, SHA-1 or SHA-256 (its
  cryptographic identity; ``IDENTITY_SIGNALS``) with an earlier entry of the set that has the same
  category — or any earlier entry, when it has no category itself — and contradicting none of that
  entry's cryptographic hashes is a **duplicate**: it is folded into the earliest such entry
  (signal types that entry lacks are added to it; its flags are kept) and not stored. A shared
  PDQ or PhotoDNA never makes a duplicate: two files may look alike and still be two items;
- an entry sharing any of those values, or a PDQ or PhotoDNA, with an earlier entry whose category
  differs (both categorised) is stored, and a **conflict** row names the earlier entry, the new
  one, and the shared value. An uncategorised entry never conflicts.

On the way in, categories are translated by a ``CategoryMap``; codes their scheme does not define
are kept and counted; uncategorised entries (``us-cat:0``) are not imported into a known set.
"""

from opspoor.store.hashsets.candidates import _DuplicateFilter
from opspoor.store.hashsets.catalogue import (
    changes_since,
    create_hashset,
    entry_counts,
    get_hashset,
    hashset_counts,
    last_change_times,
    last_changes,
    list_hashsets,
    remove_entries,
    remove_hashset,
)
from opspoor.store.hashsets.copybinary import BINARY_COLUMNS, copy_binary
from opspoor.store.hashsets.importer import BATCH, import_batches, import_entries
from opspoor.store.hashsets.reads import (
    entry_details,
    has_signal,
    iter_entries,
    list_conflicts,
    load_signal_arrays,
    load_signal_texts,
)
from opspoor.store.hashsets.schema import (
    DEFAULT_TENANT,
    ENTRY_COLUMNS,
    HASH_COLUMNS,
    IDENTITY_SIGNALS,
    Change,
    ConflictRecord,
    EntryRef,
    HashSetCounts,
    HashSetRecord,
    ImportResult,
    RejectHandler,
    hex_rows,
    key_signals,
)
from opspoor.store.hashsets.writers import REBUILD_MIN_ROWS

__all__ = [
    "BATCH",
    "BINARY_COLUMNS",
    "DEFAULT_TENANT",
    "ENTRY_COLUMNS",
    "HASH_COLUMNS",
    "IDENTITY_SIGNALS",
    "key_signals",
    "REBUILD_MIN_ROWS",
    "Change",
    "ConflictRecord",
    "EntryRef",
    "HashSetCounts",
    "HashSetRecord",
    "ImportResult",
    "RejectHandler",
    "_DuplicateFilter",
    "changes_since",
    "copy_binary",
    "create_hashset",
    "entry_counts",
    "entry_details",
    "get_hashset",
    "has_signal",
    "hashset_counts",
    "hex_rows",
    "import_batches",
    "import_entries",
    "iter_entries",
    "last_change_times",
    "last_changes",
    "list_conflicts",
    "list_hashsets",
    "load_signal_arrays",
    "load_signal_texts",
    "remove_entries",
    "remove_hashset",
]
