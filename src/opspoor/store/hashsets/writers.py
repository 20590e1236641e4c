"""Writers of one import: a pipeline to a writer thread and the PostgreSQL (COPY) and SQLite
(executemany) loaders, with their deferred index builds and id reservation."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from functools import partial
from itertools import chain
from typing import Any

import psycopg
from sqlalchemy import Connection, Index, text

from opspoor.hashsets.formats.arrays import ArrayBatch
from opspoor.hashsets.formats.base import EntryBatch
from opspoor.store.db import Store
from opspoor.store.hashsets.rows import _array_tuple_rows, _binary_rows, _copy_rows, _Rows, _tuple_rows
from opspoor.store.hashsets.schema import (
    ENTRY_COLUMNS,
    HASH_COLUMNS,
    SIGNAL_COLUMNS,
    _index,
)


class _Pipeline:
    """A writer thread fed through a short queue; its first error is re-raised in the caller.

    Unthreaded, ``put`` writes at once: SQLite releases the GIL around every row it steps, and a
    thread that takes the GIL back for each row waits on the reader's switch interval each time.
    """

    def __init__(self, write: Callable[[_Rows], None], *, threaded: bool, depth: int = 2) -> None:
        self._write = write
        self._q: queue.Queue[_Rows | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="opspoor-import-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while (rows := self._q.get()) is not None:
            if self._error is None:
                try:
                    self._write(rows)
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc

    def put(self, rows: _Rows) -> None:
        if self._thread is None:
            self._write(rows)
            return
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._q.put(rows, timeout=0.2)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self.abort()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join()
            self._thread = None


Formatter = Callable[[EntryBatch, int], _Rows]
ArrayFormatter = Callable[[ArrayBatch, int], _Rows]

#: signal rows a load brings before the ``entry_signals`` indexes are built after it rather than
#: kept up to date row by row
REBUILD_MIN_ROWS = 100_000


class _Loader:
    """Writes batches into the import transaction.

    A load that brings more signal rows than the table already holds (and at least
    ``REBUILD_MIN_ROWS``) drops the indexes in ``deferred`` when it gets there and builds them
    again before the duplicate search: an index on values takes each row at a random page, which
    costs two to five times its build from the finished table (measured in docs/store.md).
    """

    #: write from a separate thread (worth it when the database works in another process)
    threaded = False
    #: ``entry_signals`` indexes a large load builds afterwards
    deferred: tuple[Index, ...] = ()

    def __init__(self, conn: Connection, held_rows: int) -> None:
        self._conn = conn
        self._raw: Any = conn.connection.driver_connection
        self._rebuild_after = max(REBUILD_MIN_ROWS, held_rows)
        self._signal_rows = 0
        self._dropped = False

    def formatter(self, hashset_id: int) -> Formatter:
        raise NotImplementedError

    def array_formatter(self, hashset_id: int) -> ArrayFormatter:
        """Rows of an ArrayBatch; by default those of the same entries as an EntryBatch."""
        fmt = self.formatter(hashset_id)

        def rows(batch: ArrayBatch, lo: int) -> _Rows:
            return fmt(batch.to_entry_batch(), lo)

        return rows

    def reserve_ids(self, n: int) -> int:
        raise NotImplementedError

    def write(self, rows: _Rows) -> None:
        raise NotImplementedError

    def _count(self, rows: _Rows, cur: Any) -> None:
        """Before a batch's signal rows are written: drop the deferred indexes once the load is large."""
        self._signal_rows += rows.signal_rows
        if self._signal_rows > self._rebuild_after:
            self._rebuild_after = 2**62  # decided once: dropped, or (PostgreSQL, table busy) kept
            self._dropped = self.drop_indexes(cur)

    def drop_indexes(self, cur: Any) -> bool:
        for ix in self.deferred:
            cur.execute(f"DROP INDEX {ix.name}")
        return True

    def rebuild_indexes(self) -> None:
        if self._dropped:
            for ix in self.deferred:
                ix.create(self._conn)

    def finish(self, last_id: int) -> None:
        """Called after the last write (in the caller's thread)."""

    def close(self) -> None:
        """Release what the loader holds; called on success and on failure."""


class _PgLoader(_Loader):
    """COPY into the tables, from a writer thread: the server parses and indexes one batch while
    Python formats the next. Ids come from ``id_blocks`` on a separate autocommit connection, so
    the reservation is not held by (or rolled back with) the long import transaction.

    Only the hash index on values is deferred (BRIN indexes cost little row by row). Dropping it
    takes the table's exclusive lock until the import commits, so readers of ``entry_signals``
    wait; the load goes on with the index if another session holds the table for two seconds.
    """

    threaded = True

    def __init__(self, store: Store, conn: Connection) -> None:
        held = conn.execute(text("SELECT pg_relation_size('entry_signals')")).scalar_one()
        super().__init__(conn, held // SIGNAL_ROW_BYTES)
        self._ids = store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")  # set-wise duplicate search
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")  # index builds

    deferred = (_index("ix_entry_signals_value"),)

    def formatter(self, hashset_id: int) -> Formatter:
        return partial(_copy_rows, hashset_id)

    def array_formatter(self, hashset_id: int) -> ArrayFormatter:
        if self._raw.info.encoding != "utf-8":  # binary text fields are taken in the client encoding
            return super().array_formatter(hashset_id)
        return partial(_binary_rows, hashset_id)

    def reserve_ids(self, n: int) -> int:
        return _reserve_ids(self._ids, n)

    def write(self, rows: _Rows) -> None:
        with self._raw.cursor() as cur:
            binary = " (FORMAT BINARY)" if rows.binary else ""
            with cur.copy(f"COPY entries ({', '.join(rows.entry_columns)}) FROM STDIN{binary}") as cp:
                cp.write(rows.entries)
            self._count(rows, cur)
            with cur.copy(f"COPY entry_signals ({', '.join(SIGNAL_COLUMNS)}) FROM STDIN") as cp:
                for chunk in rows.signals:
                    cp.write(chunk)
            if rows.candidates:
                with cur.copy("COPY _imp_cand (signal, value, raw) FROM STDIN") as cp:
                    cp.write(
                        "".join(
                            [
                                f"{s}\t\\N\t\\\\x{v}\n" if s in HASH_COLUMNS else f"{s}\t{v}\t\\N\n"
                                for s, v in rows.candidates
                            ]
                        )
                    )

    def drop_indexes(self, cur: Any) -> bool:
        cur.execute("SAVEPOINT opspoor_drop_index")
        cur.execute("SET LOCAL lock_timeout = '2s'")
        try:
            super().drop_indexes(cur)
            dropped = True
        except psycopg.errors.LockNotAvailable:
            cur.execute("ROLLBACK TO SAVEPOINT opspoor_drop_index")
            dropped = False
        cur.execute("SET LOCAL lock_timeout = DEFAULT")
        cur.execute("RELEASE SAVEPOINT opspoor_drop_index")
        return dropped

    def close(self) -> None:
        self._ids.close()


#: bytes an ``entry_signals`` row takes on disk, roughly (to estimate the rows the table holds)
SIGNAL_ROW_BYTES = 110


class _SqliteLoader(_Loader):
    """executemany in the import transaction, which holds SQLite's write lock throughout; so ids
    are counted locally from ``id_blocks`` and the counter is written back at the end. All three
    ``entry_signals`` b-trees are deferred for a large load (readers keep seeing the last commit)."""

    deferred = (
        _index("ix_entry_signals_value"),
        _index("ix_entry_signals_hashset_id_signal"),
        _index("ix_entry_signals_entry_id"),
    )

    def __init__(self, conn: Connection) -> None:
        held = conn.execute(text("SELECT coalesce(max(rowid), 0) FROM entry_signals")).scalar_one()
        super().__init__(conn, held)
        self._next = conn.execute(text("SELECT next_id FROM id_blocks WHERE name = 'entries'")).scalar_one()
        # 128 MiB of page cache for the b-trees; SQLite sorts an index build in as much again
        conn.exec_driver_sql("PRAGMA cache_size = -131072")

    def formatter(self, hashset_id: int) -> Formatter:
        return partial(_tuple_rows, hashset_id)

    def array_formatter(self, hashset_id: int) -> ArrayFormatter:
        return partial(_array_tuple_rows, hashset_id)

    def reserve_ids(self, n: int) -> int:
        lo = self._next
        self._next += n
        return int(lo)

    def write(self, rows: _Rows) -> None:
        cur = self._raw.cursor()
        try:
            cur.executemany(
                f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) VALUES ({', '.join('?' * len(ENTRY_COLUMNS))})",  # noqa: E501
                rows.entries,
            )
            self._count(rows, cur)
            cur.executemany(
                f"INSERT INTO entry_signals ({', '.join(SIGNAL_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
                chain.from_iterable(rows.signals),
            )
            if rows.candidates:
                cur.executemany(
                    "INSERT INTO _imp_cand (signal, value, raw) VALUES (?, ?, ?)",
                    [
                        (s, None, bytes.fromhex(v)) if s in HASH_COLUMNS else (s, v, None)
                        for s, v in rows.candidates
                    ],
                )
        finally:
            cur.close()

    def finish(self, last_id: int) -> None:
        self._conn.execute(
            text("UPDATE id_blocks SET next_id = :n WHERE name = 'entries'"), {"n": self._next}
        )

    def close(self) -> None:
        self._conn.exec_driver_sql("PRAGMA cache_size = -2000")


def _reserve_ids(conn: Connection, n: int) -> int:
    """First id of a block of ``n`` fresh entry ids (the UPDATE is atomic among sessions)."""
    hi = conn.execute(
        text("UPDATE id_blocks SET next_id = next_id + :n WHERE name = 'entries' RETURNING next_id"), {"n": n}
    ).scalar_one()
    return int(hi) - n
