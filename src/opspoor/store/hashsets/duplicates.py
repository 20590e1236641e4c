"""Duplicates and conflicts of an import, found set-wise in SQL (the rule: :mod:`opspoor.store.hashsets`)."""

from __future__ import annotations

from functools import partial

from sqlalchemy import Connection, text

from opspoor.store.hashsets.schema import (
    _IDENTITY_SQL,
    CHANGES,
    HASH_COLUMNS,
    IDENTITY_SIGNALS,
    ImportResult,
    _now,
    row_keys_sql,
)

# --- duplicates and conflicts, set-wise ------------------------------------------------------
_TEMP_TABLES = ("_imp_keys", "_imp_hits", "_imp_held", "_imp_rows", "_imp_flags", "_imp_dup", "_imp_merge")
_HASHES = ", ".join(HASH_COLUMNS)


def _hex_sql(pg: bool, column: str) -> str:
    """SQL of a bytes column as lower-case hex text (SQLite has no ``unhex`` before 3.41, so the
    conversions go this way)."""
    return f"encode({column}, 'hex')" if pg else f"lower(hex({column}))"


def _holds_any(alias: str, table: str) -> str:
    """SQL condition: one of the hashes of entry row ``alias`` is among ``table``'s ``raw`` values of
    its signal (one pass over the rows, each column probing a hashed list)."""
    return (
        "("
        + " OR ".join(f"{alias}.{c} IN (SELECT raw FROM {table} WHERE signal = '{c}')" for c in HASH_COLUMNS)
        + ")"
    )


def _resolve(conn: Connection, h: int, lo: int, result: ImportResult, *, candidates: bool = False) -> None:
    """Find this import's duplicates and conflicts (entries of set ``h`` with id >= ``lo`` are new),
    record the conflicts, fold the duplicates into the entries they repeat. With ``candidates``
    only the values in ``_imp_cand`` can repeat (see ``_DuplicateFilter``)."""
    pg = conn.dialect.name == "postgresql"
    for t in _TEMP_TABLES:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {t}")
    try:
        if _repeated_keys(conn, h, lo, pg, candidates=candidates):
            _fold_and_record(conn, h, lo, result, pg)
    finally:
        if not pg:
            for t in _TEMP_TABLES:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {t}")


def _temp(pg: bool, name: str) -> str:
    return f"CREATE TEMP TABLE {name} " + ("ON COMMIT DROP " if pg else "")


def _repeated_keys(conn: Connection, h: int, lo: int, pg: bool, *, candidates: bool) -> int:
    """Fill ``_imp_keys`` with the key values that occur more than once in the set, at least once in
    a new entry: (signal, value as text, raw bytes of a hash column). Returns how many."""
    row_keys = row_keys_sql()
    p = {"h": h, "lo": lo}
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE _imp_keys (signal VARCHAR(16), value TEXT, raw {'BYTEA' if pg else 'BLOB'},"
        " PRIMARY KEY (signal, value))" + (" ON COMMIT DROP" if pg else "")
    )
    if candidates:
        if pg:
            conn.exec_driver_sql("ANALYZE _imp_cand")
        # the set's rows holding a candidate hash, in one pass
        conn.execute(
            text(
                _temp(pg, "_imp_hits")
                + f"AS SELECT id, {_HASHES} FROM entries e"
                + f" WHERE hashset_id = :h AND {_holds_any('e', '_imp_cand')}"
            ),
            p,
        )
        rows, where = "_imp_hits", "1 = 1"
    else:
        rows, where = "entries", "hashset_id = :h"
        if pg:  # one-core hash aggregation: sorting or parallel workers are slower here
            conn.exec_driver_sql("SET LOCAL enable_sort = off")
            conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
    found = 0
    for c in HASH_COLUMNS:
        among = f" AND {c} IN (SELECT raw FROM _imp_cand WHERE signal = '{c}')" if candidates else ""
        found += conn.execute(
            text(
                f"""INSERT INTO _imp_keys (signal, value, raw) SELECT '{c}', {_hex_sql(pg, c)}, {c}
                FROM {rows} WHERE {where} AND {c} IS NOT NULL{among}
                GROUP BY {c} HAVING count(*) > 1 AND max(id) >= :lo"""
            ),
            p,
        ).rowcount
    if candidates:
        # PhotoDNA (row key) candidates drive, each probing the index on values (SQLite, without statistics,
        # would rather scan the set by its (hashset_id, signal) index)
        signals = "entry_signals s" if pg else "entry_signals s INDEXED BY ix_entry_signals_value"
        found += conn.execute(
            text(
                f"""INSERT INTO _imp_keys (signal, value) SELECT s.signal, s.value
                FROM (SELECT DISTINCT signal, value FROM _imp_cand WHERE signal IN ({row_keys})) c
                CROSS JOIN {signals}
                WHERE s.value = c.value AND s.signal = c.signal AND s.hashset_id = :h AND NOT s.derived
                GROUP BY s.signal, s.value HAVING count(*) > 1 AND max(s.entry_id) >= :lo"""
            ),
            p,
        ).rowcount
    else:
        found += conn.execute(
            text(
                f"""INSERT INTO _imp_keys (signal, value) SELECT signal, value FROM entry_signals
                WHERE hashset_id = :h AND NOT derived AND signal IN ({row_keys})
                GROUP BY signal, value HAVING count(*) > 1 AND max(entry_id) >= :lo"""
            ),
            p,
        ).rowcount
        if pg:
            conn.exec_driver_sql("SET LOCAL enable_sort = on")
    return found


def _fold_and_record(conn: Connection, h: int, lo: int, result: ImportResult, pg: bool) -> None:
    """Given ``_imp_keys``: record the conflicts, fold the duplicates into the entries they repeat."""
    row_keys = row_keys_sql()
    temp = partial(_temp, pg)
    p = {"h": h, "lo": lo}
    if pg:
        conn.exec_driver_sql("ANALYZE _imp_keys")
    # every entry of the set holding a repeated value, one row per (value, entry)
    conn.execute(
        text(
            temp("_imp_held")
            + f"""AS SELECT id, category_scheme AS scheme, category_code AS code, {_HASHES}
            FROM entries e WHERE hashset_id = :h AND {_holds_any("e", "_imp_keys")}"""
        ),
        p,
    )
    conn.execute(
        text(
            temp("_imp_rows")
            + f"""AS SELECT s.signal, s.value, s.entry_id,
                e.category_scheme AS scheme, e.category_code AS code
            FROM entry_signals s
            JOIN _imp_keys k ON k.signal = s.signal AND k.value = s.value
            JOIN entries e ON e.id = s.entry_id
            WHERE s.hashset_id = :h AND NOT s.derived AND s.signal IN ({row_keys})"""
        ),
        p,
    )
    for c in HASH_COLUMNS:
        conn.exec_driver_sql(
            f"""INSERT INTO _imp_rows (signal, value, entry_id, scheme, code)
            SELECT '{c}', k.value, e.id, e.scheme, e.code
            FROM _imp_held e JOIN _imp_keys k ON k.signal = '{c}' AND k.raw = e.{c}"""
        )
    # per value of a new entry: the earlier entry it repeats (a cryptographic hash only), and the
    # earlier one it contradicts (any key value)
    conn.execute(
        text(
            temp("_imp_flags")
            + f"""AS SELECT entry_id, signal, value,
              CASE WHEN signal NOT IN ({_IDENTITY_SQL}) THEN NULL
                   WHEN scheme IS NULL THEN CASE WHEN first_any < entry_id THEN first_any END
                   WHEN first_same < entry_id THEN first_same END AS dup_of,
              CASE WHEN scheme IS NOT NULL AND first_cat < entry_id
                    AND NOT (first_cat_scheme = scheme AND first_cat_code = code)
                   THEN first_cat END AS conflicts_with
            FROM (SELECT r.*,
                min(entry_id) OVER (PARTITION BY signal, value) AS first_any,
                min(entry_id) OVER (PARTITION BY signal, value, scheme, code) AS first_same,
                min(CASE WHEN scheme IS NOT NULL THEN entry_id END) OVER (PARTITION BY signal, value)
                    AS first_cat,
                first_value(scheme) OVER (PARTITION BY signal, value
                    ORDER BY CASE WHEN scheme IS NULL THEN 1 ELSE 0 END, entry_id) AS first_cat_scheme,
                first_value(code) OVER (PARTITION BY signal, value
                    ORDER BY CASE WHEN scheme IS NULL THEN 1 ELSE 0 END, entry_id) AS first_cat_code
              FROM _imp_rows r) w
            WHERE entry_id >= :lo"""
        ),
        p,
    )
    conn.exec_driver_sql(
        ("CREATE TEMP TABLE _imp_dup (new_id BIGINT PRIMARY KEY, keep_id BIGINT NOT NULL)")
        + (" ON COMMIT DROP" if pg else "")
    )
    # the same item: no hash that both give differs. An MD5 shared by two records whose SHA-256
    # differ is two files, however unlikely; one whose PDQ or PhotoDNA differ was hashed by another
    # tool (Meta's own PDQ ports differ by bits), and folding it would lose the hash that finds copies
    same = " AND ".join(f"(n.{c} IS NULL OR k.{c} IS NULL OR n.{c} = k.{c})" for c in HASH_COLUMNS)
    conn.execute(
        text(
            f"""INSERT INTO _imp_dup (new_id, keep_id)
            SELECT f.entry_id, min(f.dup_of) FROM _imp_flags f
            JOIN entries n ON n.id = f.entry_id JOIN entries k ON k.id = f.dup_of
            WHERE f.dup_of IS NOT NULL AND {same} AND NOT EXISTS (
                SELECT 1 FROM entry_signals a JOIN entry_signals b
                  ON b.hashset_id = :h AND b.entry_id = k.id AND b.signal = a.signal AND b.value <> a.value
                  AND NOT b.derived
                WHERE a.hashset_id = :h AND a.entry_id = n.id AND NOT a.derived)
            GROUP BY f.entry_id"""
        ),
        p,
    )
    # two repeats of one entry that bring different values of a type (two PhotoDNAs for an entry
    # without one): the first folds, the later ones stay entries, so no value is lost in the fold
    differs = " OR ".join(f"n.{c} <> o.{c}" for c in HASH_COLUMNS)
    conn.execute(
        text(
            f"""DELETE FROM _imp_dup WHERE new_id IN (
            SELECT d.new_id FROM _imp_dup d JOIN _imp_dup e ON e.keep_id = d.keep_id AND e.new_id < d.new_id
            JOIN entries n ON n.id = d.new_id JOIN entries o ON o.id = e.new_id WHERE {differs}
            UNION SELECT d.new_id FROM _imp_dup d
            JOIN _imp_dup e ON e.keep_id = d.keep_id AND e.new_id < d.new_id
            JOIN entry_signals a ON a.hashset_id = :h AND a.entry_id = d.new_id AND NOT a.derived
            JOIN entry_signals b ON b.hashset_id = :h AND b.entry_id = e.new_id AND NOT b.derived
              AND b.signal = a.signal AND b.value <> a.value)"""
        ),
        p,
    )
    # what decided each duplicate: the strongest hash it shares with the entry it repeats
    rank = " ".join(f"WHEN '{c}' THEN {k}" for k, c in enumerate(reversed(IDENTITY_SIGNALS)))
    for best, n in conn.execute(
        text(
            f"""SELECT best, count(*) FROM (SELECT f.entry_id, min(CASE f.signal {rank} END) AS best
            FROM _imp_flags f JOIN _imp_dup d ON d.new_id = f.entry_id AND d.keep_id = f.dup_of
            GROUP BY f.entry_id) b GROUP BY best"""
        )
    ):
        signal = IDENTITY_SIGNALS[len(IDENTITY_SIGNALS) - 1 - int(best)]
        result.duplicates_by[signal] = result.duplicates_by.get(signal, 0) + int(n)
    # an entry may repeat one that is itself a repeat: point every duplicate at the entry kept
    while (
        conn.execute(
            text(
                """UPDATE _imp_dup
                SET keep_id = (SELECT d.keep_id FROM _imp_dup d WHERE d.new_id = _imp_dup.keep_id)
                WHERE keep_id IN (SELECT new_id FROM _imp_dup)"""
            )
        ).rowcount
        > 0
    ):
        pass
    now = _now()
    result.conflicts = conn.execute(
        text(
            """INSERT INTO conflicts (hashset_id, signal, value, entry_id, other_entry_id, recorded_at)
            SELECT :h, f.signal, f.value, COALESCE(d.keep_id, f.conflicts_with), f.entry_id, :now
            FROM _imp_flags f LEFT JOIN _imp_dup d ON d.new_id = f.conflicts_with
            WHERE f.conflicts_with IS NOT NULL AND f.entry_id NOT IN (SELECT new_id FROM _imp_dup)"""
        ),
        {**p, "now": now},
    ).rowcount
    result.duplicates = conn.execute(text("SELECT count(*) FROM _imp_dup")).scalar_one()
    if not result.duplicates:
        return
    # signal types a kept entry lacks come from its duplicates (one value per type)
    gained = _fold_hashes(conn)
    conn.execute(
        text(
            temp("_imp_merge")
            + """AS SELECT d.keep_id AS entry_id, s.signal, min(s.value) AS value
            FROM entry_signals s JOIN _imp_dup d ON d.new_id = s.entry_id
            WHERE s.hashset_id = :h AND NOT s.derived AND NOT EXISTS (
                SELECT 1 FROM entry_signals k
                WHERE k.hashset_id = :h AND k.entry_id = d.keep_id AND k.signal = s.signal)
            GROUP BY d.keep_id, s.signal"""
        ),
        p,
    )
    conn.execute(
        text(
            """INSERT INTO entry_signals (entry_id, hashset_id, signal, value, derived)
            SELECT entry_id, :h, signal, value, false FROM _imp_merge"""
        ),
        p,
    )
    gained.update(conn.execute(text("SELECT entry_id FROM _imp_merge")).scalars())
    # older entries that gained values are announced to index followers one by one
    older = sorted(i for i in gained if i < lo)
    if older:
        conn.execute(
            CHANGES.insert(),
            [{"hashset_id": h, "op": "add", "entry_id": i, "entry_id_end": i, "at": now} for i in older],
        )
    conn.execute(
        text("DELETE FROM entry_signals WHERE hashset_id = :h AND entry_id IN (SELECT new_id FROM _imp_dup)"),
        p,
    )
    conn.execute(text("DELETE FROM entries WHERE id IN (SELECT new_id FROM _imp_dup)"))


def _fold_hashes(conn: Connection) -> set[int]:
    """Give each kept entry the hash columns it lacks from its duplicates (the least value when
    several bring one); returns the ids of the entries that gained one. Few entries gain anything,
    so only theirs are read."""
    cols = list(HASH_COLUMNS)
    lacks = " OR ".join(f"(k.{c} IS NULL AND n.{c} IS NOT NULL)" for c in cols)
    rows = conn.execute(
        text(
            f"""SELECT d.keep_id, {", ".join(f"k.{c}" for c in cols)}, {", ".join(f"n.{c}" for c in cols)}
            FROM _imp_dup d JOIN entries n ON n.id = d.new_id JOIN entries k ON k.id = d.keep_id
            WHERE {lacks}"""
        )
    ).all()
    gains: dict[int, dict[str, bytes]] = {}
    for keep, *values in rows:
        got = gains.setdefault(keep, {})
        for c, have, new in zip(cols, values[: len(cols)], values[len(cols) :], strict=True):
            if have is None and new is not None and (c not in got or bytes(new) < got[c]):
                got[c] = bytes(new)
    if gains:
        conn.execute(
            text(
                "UPDATE entries SET "
                + ", ".join(f"{c} = COALESCE({c}, :{c})" for c in cols)
                + " WHERE id = :id"
            ),
            [{"id": keep, **dict.fromkeys(cols), **got} for keep, got in gains.items()],
        )
    return set(gains)
