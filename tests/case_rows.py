"""How far a scan running in another process has got: the rows committed to its case database.
Shared by the kill-and-resume tests (folders, disk images)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def case_rows(case: Path) -> int:
    """Files committed to ``case``'s database, read only; -1 while it does not exist or is locked."""
    try:
        con = sqlite3.connect(f"file:{case / 'case.sqlite'}?mode=ro", uri=True, timeout=0.2)
        try:
            return int(con.execute("select count(*) from files").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return -1
