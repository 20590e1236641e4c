"""What a scan is asked to do (``ScanConfig``), how it reports progress, and what it gives back.

Its own module, so that the scan and the layers that write its outputs (``opspoor.casefile``)
share it without importing each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from opspoor.signals.engine import ROBUST_PRESETS, HashOptions
from opspoor.sources import Limits
from opspoor.triage.priority import Group


class Progress(Protocol):
    def start(self, total: int | None) -> None: ...
    def advance(self, files: int, nbytes: int) -> None: ...
    def finish(self) -> None: ...


class NoProgress:
    def start(self, total: int | None) -> None:
        pass

    def advance(self, files: int, nbytes: int) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass(slots=True)
class ScanConfig:
    sources: list[Path]
    hashsets: list[str]
    case_dir: Path
    db_url: str | None = None
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    thumbnails: bool = True
    limits: Limits = field(default_factory=Limits)
    #: hashing options; the default adds the fast robust query hashes (rotations, flips, borders)
    options: HashOptions = field(default_factory=lambda: HashOptions(robust=ROBUST_PRESETS["fast"]))
    #: match images by their local features too when the sets hold their originals' (built with
    #: ``hashset build --augment``; ~4 ms per image, and 10-250 ms to look up each image that
    #: nothing else matched against 300-10,000 originals: docs/benchmarks.md)
    local: bool = True
    #: shown in the report; not part of the identity (a resume may add or correct them)
    case_number: str | None = None
    examiner: str | None = None

    #: location clues of each media file (opspoor.clues: file names, OCR where the picture looks
    #: like text, subtitles); ``ocr=False`` keeps the cheap ones only
    clues: bool = True
    ocr: bool = True
    #: the investigator's country (ISO 3166 alpha-2): groups with clues pointing there come first
    country: str = "NL"
    #: earlier case folders, read-only: a clue of this case seen there is said (triage.links)
    link_cases: list[Path] = field(default_factory=list)

    #: PDQ match distance for every set (``None``: each set's own)
    distance: int | None = None
    #: stream each disk image through the acquisition hash it stores (E01) and record the result
    verify_images: bool = False
    #: carve pictures, videos and zips from disk images' unallocated space
    carve: bool = True

    #: where the per-file work runs: ``local`` (a process pool of ``workers``) or ``dask`` (the
    #: cluster whose scheduler is at ``scheduler``, ``tcp://host:8786``; docs/scale.md). Not part of
    #: the identity: a scan started on one resumes on the other
    executor: str = "local"
    scheduler: str | None = None

    def identity(self) -> dict[str, Any]:
        """What must be equal for a re-run to resume this case rather than mix two scans."""
        ident: dict[str, Any] = {
            "sources": [str(p.resolve()) for p in self.sources],
            "hashsets": sorted(self.hashsets),
        }
        if self.distance is not None:  # (absent otherwise, so cases scanned before still resume)
            ident["distance"] = self.distance
        return ident


@dataclass(slots=True)
class ScanResult:
    case_dir: Path
    summary: dict[str, Any]
    reconciled: bool
    #: the case outputs by name (files, summary, export, report): written above triage
    #: (``opspoor.casefile.scan_case``), empty when only the scan ran
    outputs: dict[str, Path]
    #: the new media's groups in review order, for the report
    groups: list[Group] = field(default_factory=list, repr=False)
