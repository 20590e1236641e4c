"""``opspoor hashset build``: hash a folder of categorised media into a hash set.

For organisations that hold the material themselves (hotlines, police databases): each media file
becomes one entry (external id = its path relative to the folder) with MD5, SHA-1, SHA-256, PDQ
(images) and vPDQ (videos). With ``--augment`` each image also gets the extra PDQs of
:func:`opspoor.signals.augment.augment_variants` (crops, small rotations, the middle band), stored
as *derived* values of the same entry: used for matching, never exported. Weak ones (PDQ quality
10-49, or a regular pattern: ``robust.periodicity``) are stored as ``pdq_lq`` values, which match
only within ``LOW_QUALITY_DISTANCE`` (``--no-low-quality`` leaves them out). The image's local
features (:mod:`opspoor.signals.local`: what finds crops that are not centred) are stored as one
derived ``local`` value (``--no-local`` leaves them out).

Files are hashed by the engine in a process pool; the set is written in one transaction by the
store's ``import_entries`` (all or nothing). A file whose picture cannot be decoded keeps its
cryptographic hashes; files that are not media are skipped and counted.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import typer

from opspoor.cli.app import DbOption, err, out
from opspoor.cli.hash_cmd import expand_paths
from opspoor.cli.hashset_cmd import NoIndexCacheOption, cache_match_index, hashset_app, import_summary
from opspoor.cli.options import ExecutorKind, ExecutorOption, SchedulerOption, WorkersOption, store_label
from opspoor.errors import SourceError, StoreError
from opspoor.hashsets.model import KINDS, Category, Entry
from opspoor.signals.augment import AugmentedFile
from opspoor.signals.pdq import ZERO_HASH
from opspoor.signals.vpdq import format_vpdq


@dataclass(frozen=True)
class Hashed:
    """One file of the folder, hashed (what a worker sends back)."""

    relpath: str
    kind: str  # image | video | archive | other
    signals: dict[str, str]
    size: int | None
    augmented: tuple[str, ...]
    error: str | None  # media decoding failed (crypto hashes kept), or the file could not be read
    augmented_lq: tuple[str, ...] = ()  # low-quality augmentation hashes (tighter distance)
    local: str | None = None  # the image's local features, encoded (with --augment)


def store_takes_derived() -> bool:
    """Whether ``Entry`` can carry derived (matching-only) signal values to the store."""
    return "derived" in {f.name for f in fields(Entry)}


def hash_for_set(args: tuple[str, str, bool, bool, bool]) -> Hashed:
    """Hash one file (runs in a worker process): (path, relative path, augment, low quality, local)."""
    from opspoor.signals.augment import augment_image_bytes
    from opspoor.signals.engine import hash_bytes

    path, relpath, augment, low_quality, local = args
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return Hashed(relpath, "other", {}, None, (), f"cannot read: {exc.strerror or exc}")
    sig = hash_bytes(data, where=relpath)
    signals = {"md5": sig.md5, "sha1": sig.sha1, "sha256": sig.sha256}
    if sig.pdq is not None and sig.pdq != ZERO_HASH:  # the zero hash: too small to hash
        signals["pdq"] = sig.pdq
    if sig.vpdq_frames:
        signals["vpdq"] = format_vpdq(sig.vpdq_frames)
    extra: tuple[str, ...] = ()
    extra_lq: tuple[str, ...] = ()
    features = None
    if augment and sig.kind == "image" and sig.error is None:
        aug = augment_image_bytes(data, relpath, low_quality=low_quality, local=local)
        extra, extra_lq, features = aug.hashes, aug.low_quality, aug.local
    error = str(sig.error) if sig.error is not None else None
    return Hashed(relpath, sig.kind, signals, sig.size, extra, error, extra_lq, features)


def _entry(h: Hashed, category: Category | None) -> Entry:
    fields_: dict[str, Any] = {
        "signals": h.signals,
        "category": category,
        "external_id": h.relpath,
        "size": h.size,
    }
    derived = AugmentedFile(h.augmented, h.augmented_lq, h.local).derived()
    if derived:
        fields_["derived"] = derived  # matching-only values (store_takes_derived)
    return Entry(**fields_)


@hashset_app.command("build")
def build_cmd(
    folder: Annotated[
        Path,
        typer.Argument(help="Folder of media files (read recursively, never modified).", metavar="FOLDER"),
    ],
    name: Annotated[
        str, typer.Option("--name", "-n", metavar="NAME", help="Hash set to add to (created if missing).")
    ],
    kind: Annotated[
        str, typer.Option("--kind", metavar="[known|ignorable]", help="What the set holds.")
    ] = "known",
    category: Annotated[
        str | None,
        typer.Option("--category", metavar="SCHEME:CODE", help="SCHEME:CODE for every entry, e.g. us-cat:1."),
    ] = None,
    augment: Annotated[
        bool, typer.Option("--augment", help="Also store PDQs of crops and small rotations of each image.")
    ] = False,
    low_quality: Annotated[
        bool,
        typer.Option(
            "--low-quality/--no-low-quality",
            help="With --augment: also store weak augmentation hashes (PDQ quality 10-49, or a "
            "regular pattern), matched only within 12 bits.",
        ),
    ] = True,
    local: Annotated[
        bool,
        typer.Option(
            "--local/--no-local",
            help="With --augment: also store each image's local features (finds crops that are not "
            "centred; docs/robustness.md).",
        ),
    ] = True,
    source: Annotated[str | None, typer.Option("--source", help="Who categorised these files.")] = None,
    workers: WorkersOption = 0,
    executor: ExecutorOption = ExecutorKind.local,
    scheduler: SchedulerOption = None,
    no_index_cache: NoIndexCacheOption = False,
    db: DbOption = None,
) -> None:
    """Hash every media file of FOLDER into a hash set; entries keep the relative path as external id."""
    from opspoor.store import import_entries, open_store

    if kind not in KINDS:
        raise StoreError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not folder.is_dir():
        raise SourceError("no such folder", str(folder))
    cat = Category.parse(category, strict=True) if category else None
    if cat is not None and cat.uncategorised and kind == "known":
        raise StoreError(f"--category {cat} means not yet categorised: such files are not known material")
    if augment and not store_takes_derived():
        raise StoreError(
            "this store cannot hold augmentation hashes yet (hash sets need Entry.derived); "
            "build without --augment"
        )
    files = list(expand_paths([folder]))
    # (absolute paths: dask workers read the files at the client's paths, from a shared mount)
    jobs = [
        (os.path.abspath(p), p.relative_to(folder).as_posix(), augment, low_quality, local) for p in files
    ]
    if executor is ExecutorKind.dask:
        from opspoor.triage.dask_pool import dask_map

        hashed = list(dask_map(scheduler, hash_for_set, jobs, sources=[folder]))
    else:
        hashed = _hash_all(jobs, workers or os.cpu_count() or 1)
    media = [h for h in hashed if h.kind in ("image", "video") or (h.error is not None and not h.signals)]
    unreadable = [h for h in media if not h.signals]
    entries = [_entry(h, cat) for h in media if h.signals]
    if not entries:
        raise SourceError(f"no media file among {len(files):,} files", str(folder))
    store = open_store(db)
    try:
        result = import_entries(store, name, entries, kind=kind, source=source)
        where = store_label(store)
    finally:
        store.close()
    undecoded = sum(1 for h in media if h.signals and h.error is not None)
    images = sum(1 for h in media if h.kind == "image")
    extra = sum(len(h.augmented) + len(h.augmented_lq) for h in media)
    added = f"entries added ({images:,} images, {len(entries) - images:,} videos)"
    summary = import_summary(name, result, rejected=0, added=added)
    out.print(f"{summary} (in {where})", markup=False, highlight=False)
    if augment:
        out.print(f"{extra:,} augmentation hashes stored with the images")
        if local:
            with_local = sum(1 for h in media if h.local)
            out.print(f"{with_local:,} images stored with their local features")
    out.print(f"{len(files) - len(media):,} files skipped (not media)")
    if undecoded:
        out.print(f"{undecoded:,} media files could not be decoded; their cryptographic hashes were kept")
    if not no_index_cache:
        with open_store(db) as store:
            cache_match_index(store, name)
    for h in unreadable:
        err.print(f"{h.relpath}: {h.error}", markup=False, highlight=False)
    if unreadable:
        raise typer.Exit(1)


def _hash_all(jobs: list[tuple[str, str, bool, bool, bool]], workers: int) -> list[Hashed]:
    if workers <= 1 or len(jobs) < 4:
        return [hash_for_set(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(hash_for_set, jobs, chunksize=8))
