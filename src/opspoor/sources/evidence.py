"""One piece of evidence (a file or an archive member): its evidence path and read-only access to it."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from opspoor.errors import SourceError, UnreadableSource
from opspoor.readonly import file_kind as file_kind  # the sources name what they skip with it
from opspoor.readonly import open_readonly

#: separator that enters a container in an evidence path: ``dump/Photos.zip!/2019/a.jpg``
CONTAINER_SEP = "!/"


@dataclass(slots=True)
class EvidenceItem:
    """A file or archive member, named by a stable evidence path.

    ``error`` says what is wrong with the item. Some errors leave the bytes readable (a traversal name,
    an archive at the depth limit, a corrupt archive whose own bytes are intact): ``has_content`` tells.
    Plain files are read from ``fs_path`` each time they are opened; archive members carry their bytes
    (read once from the archive, never written to disk), so an item can be handed to another process,
    except a large member of a zip on disk, which is read from the zip again (``zip_member``).
    """

    path: str
    size: int | None
    depth: int = 0
    container: str | None = None
    error: SourceError | None = None
    mtime: float | None = None
    fs_path: str | None = field(default=None, repr=False)
    _data: bytes | None = field(default=None, repr=False, compare=False)
    #: an archive member too large to hold: its digests (``media.digests.Digests``), taken as it
    #: streamed past, and its first bytes (for its type); ``error`` says it was not decoded
    digests: Any = field(default=None, repr=False, compare=False)
    head: bytes | None = field(default=None, repr=False, compare=False)
    #: a large member of a zip on disk (``sources.zipref.ZipMemberRef``): read from the zip when opened
    zip_member: Any = field(default=None, repr=False, compare=False)
    #: a file inside a disk image (``sources.diskref.DiskMemberRef``): read from the image when opened
    disk_member: Any = field(default=None, repr=False, compare=False)
    #: fields a source adds to the item's record: inside a disk image ``deleted``, ``carved``,
    #: ``unallocated`` and ``offset`` (the byte offset in the image); on an image, ``image``
    extra: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def has_content(self) -> bool:
        return (
            self._data is not None
            or self.fs_path is not None
            or self.zip_member is not None
            or self.disk_member is not None
        )

    def read(self) -> bytes:
        """The whole content. Raises the item's error (or a SourceError) when there is none."""
        if self._data is not None:
            return self._data
        with self.open() as f:
            try:
                return f.read()
            except OSError as exc:
                raise UnreadableSource(f"read failed: {exc.strerror or exc}", self.path) from exc

    def open(self) -> BinaryIO:
        """A readable stream of the content; plain files are opened read-only."""
        if self._data is not None:
            return io.BytesIO(self._data)
        if self.fs_path is not None:
            return open_readonly(self.fs_path, self.path)
        if self.zip_member is not None:
            from opspoor.sources.zipref import open_zip_member

            return open_zip_member(self.zip_member, self.path)
        if self.disk_member is not None:
            from opspoor.sources.diskref import open_disk_member

            return open_disk_member(self.disk_member, self.path)  # type: ignore[return-value]
        raise self.error or SourceError("no content", self.path)


# --- evidence paths ----------------------------------------------------------
# Names are made visible and unambiguous rather than exact: undecodable bytes, control characters and
# backslashes become %XX, a component ".." becomes %2E%2E, and a trailing "!" (which would read as
# entering a container) becomes %21.
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\\]|[\udc80-\udcff]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    code = ord(c) - 0xDC00 if "\udc80" <= c <= "\udcff" else ord(c)
    return f"%{code:02X}"


def encode_component(name: str) -> str:
    """One path component (a file name on disk or one part of a member name) for an evidence path."""
    if name == "..":
        return "%2E%2E"
    if name == ".":
        return "%2E"
    out = _UNSAFE_CHARS.sub(_escape_char, name)
    if out.endswith("!"):
        out = out[:-1] + "%21"
    return out


def member_parts(name: str) -> tuple[list[str], bool]:
    """Split an archive member name into evidence-path components; the flag is True for names that try
    to escape the archive (``..``, absolute, drive letters, backslashes, NUL)."""
    unsafe = (
        name.startswith("/")
        or bool(_DRIVE.match(name))
        or "\\" in name
        or "\x00" in name
        or ".." in re.split(r"[/\\]", name)
    )
    parts = [encode_component(p) for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") and parts:
        parts[0] = "%2F" + parts[0]
    if not parts:
        parts = ["%2F" if name.startswith("/") else "(unnamed)"]
    return parts, unsafe


def join_member(container_path: str, member: str) -> str:
    return f"{container_path}{CONTAINER_SEP}{member}"


class UniqueNames:
    """Evidence paths must be unique (they are the resume key): a repeated name gets ``#2``, ``#3``."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, path: str) -> str:
        candidate, n = path, 1
        while candidate in self._seen:
            n += 1
            candidate = f"{path}#{n}"
        self._seen.add(candidate)
        return candidate
