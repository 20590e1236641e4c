"""An index on disk: a directory of ``.npy`` files and a small JSON manifest.

Files are never overwritten: every array file name carries the token of the segment (or save)
it belongs to, the manifest is replaced atomically last, and files no longer named by it are
deleted afterwards. So a crash leaves the previous index intact, and a process that memory-maps
the old files keeps reading them (an unlinked file lives until it is unmapped).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from opspoor.errors import IndexFileError

MANIFEST = "manifest.json"
FORMAT = "opspoor-index"
_ARRAY_FILE = re.compile(r"^[0-9a-f]{12}\.[a-z_0-9]+\.npy$")


def new_token() -> str:
    return uuid.uuid4().hex[:12]


def array_path(directory: Path, token: str, name: str) -> Path:
    return directory / f"{token}.{name}.npy"


def write_arrays(directory: Path, token: str, arrays: dict[str, np.ndarray]) -> None:
    """Write ``token.name.npy`` files (skipping those already there: same token, same content)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        path = array_path(directory, token, name)
        if path.exists():
            continue
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


def read_array(directory: Path, token: str, name: str, mmap: bool) -> np.ndarray:
    path = array_path(directory, token, name)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise IndexFileError("index file missing", where=str(path)) from None
    except (ValueError, OSError) as exc:
        raise IndexFileError(f"index file unreadable: {exc}", where=str(path)) from None


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest atomically, then delete array files it no longer names."""
    path = directory / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"format": FORMAT, **manifest}, indent=1, sort_keys=True))
    os.replace(tmp, path)
    keep = set(manifest_tokens(manifest))
    for f in directory.iterdir():
        if _ARRAY_FILE.match(f.name) and f.name.split(".", 1)[0] not in keep:
            f.unlink(missing_ok=True)


def manifest_tokens(manifest: dict[str, Any]) -> list[str]:
    return [t for t in (manifest.get("base_token"), manifest.get("delta_token")) if t]


def read_manifest(directory: Path, kind: str, version: int) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise IndexFileError("no index here (manifest.json missing)", where=str(path)) from None
    except (ValueError, OSError) as exc:
        raise IndexFileError(f"manifest unreadable: {exc}", where=str(path)) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("kind") != kind:
        raise IndexFileError(f"not an opspoor {kind} index", where=str(path))
    if manifest.get("version") != version:
        raise IndexFileError(
            f"index version {manifest.get('version')} is not the supported {version}; rebuild the index",
            where=str(path),
        )
    return manifest


def check_shape(arr: np.ndarray, shape: tuple[int, ...], dtype: Any, where: Path) -> np.ndarray:
    if arr.shape != shape or arr.dtype != np.dtype(dtype):
        raise IndexFileError(
            f"expected {shape} {np.dtype(dtype)}, found {arr.shape} {arr.dtype}", where=str(where)
        )
    return arr
