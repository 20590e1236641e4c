"""What a case report must say about where its results came from: the sources (size, SHA-256 of a
source that is a file), the hash sets as they were matched (version, entry count), and the scan's
own running time, added up over resumes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opspoor.errors import SourceError
from opspoor.sources import open_readonly

if TYPE_CHECKING:
    from opspoor.store import HashSetRecord, Store

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open_readonly(str(path), str(path), follow_symlinks=True) as fh:  # the exhibit as the scan reads it
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _folder_size(path: Path) -> tuple[int, int]:
    """(bytes, files) of the regular files under ``path``, symlinks not followed."""
    total = files = 0
    for root, _dirs, names in os.walk(path):
        for n in names:
            try:
                st = os.lstat(os.path.join(root, n))
            except OSError:
                continue  # vanished or unreadable: the scan records it as an error
            if not os.path.islink(os.path.join(root, n)):
                total += st.st_size
                files += 1
    return total, files


def describe_source(path: Path, sha256: bool = True) -> dict[str, Any]:
    """One source as the report lists it. A file (an image, an archive, a disk dump) gets its
    SHA-256, so the report can be tied to the exhibit (``sha256=False``: left to the caller, the scan
    takes it from the file's own record rather than read a large exhibit twice); a folder its size
    and file count."""
    out: dict[str, Any] = {"path": str(path), "kind": "missing", "size": None, "files": None, "sha256": None}
    try:
        if path.is_file():
            out.update(kind="file", size=path.stat().st_size, files=1)
            if sha256:
                out["sha256"] = sha256_file(path)
        elif path.is_dir():
            size, files = _folder_size(path)
            out.update(kind="folder", size=size, files=files)
    except (OSError, SourceError) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def describe_hashsets(store: Store, records: list[HashSetRecord]) -> list[dict[str, Any]]:
    """Each set as it was matched: kind, source, PDQ distance, entries, and its version (the
    newest change-log id, with when that change was made)."""
    from opspoor.store import entry_counts
    from opspoor.store.hashsets import last_change_times

    counts = entry_counts(store)
    versions = last_change_times(store, [r.id for r in records])
    out = []
    for r in records:
        change, at = versions.get(r.id, (0, None))
        out.append(
            {
                "name": r.name,
                "kind": r.kind,
                "source": r.source,
                "distance": r.distance,
                "entries": counts.get(r.name, 0),
                "version": change,
                "changed_at": at.isoformat(timespec="seconds") if at else None,
                "created_at": r.created_at.isoformat(timespec="seconds"),
            }
        )
    return out
