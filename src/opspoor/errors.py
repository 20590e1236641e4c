"""Typed errors. Each carries the file or record at fault, so the CLI can print one line."""

from __future__ import annotations


class OpspoorError(Exception):
    """Base of every error opspoor raises on purpose.

    ``where`` names the file, evidence path or record at fault (may be empty).
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    @property
    def reason(self) -> str:
        """Short machine-friendly reason, used to group errors in summaries."""
        return type(self).__name__


# --- media -----------------------------------------------------------------
class MediaError(OpspoorError):
    """A file could not be read as the media it claims to be."""


class UndecodableMedia(MediaError):
    """Truncated, corrupt or unsupported encoding."""


class MediaTooLarge(MediaError):
    """Declared pixel count (or duration) is above the configured limit; refused before allocation."""


class MediaTimeout(MediaError):
    """Decoding took longer than the per-file time limit."""


class UnsupportedMedia(MediaError):
    """Not an image or video type that opspoor decodes."""


# --- signals ---------------------------------------------------------------
class SignalError(OpspoorError):
    """A signal value is malformed (bad hex, wrong length) or of an unknown type. ``line``: the line
    at fault of a value of several lines (vPDQ), 1-based."""

    def __init__(self, message: str, where: str | None = None, *, line: int | None = None) -> None:
        super().__init__(message, where)
        self.line = line


# --- hash sets -------------------------------------------------------------
class FormatError(OpspoorError):
    """A hash-set file is malformed. ``record`` and ``line`` locate the fault (1-based)."""

    def __init__(
        self, message: str, where: str | None = None, record: int | None = None, line: int | None = None
    ) -> None:
        loc = []
        if record is not None:
            loc.append(f"record {record}")
        if line is not None:
            loc.append(f"line {line}")
        full = f"{', '.join(loc)}: {message}" if loc else message
        super().__init__(full, where)
        self.detail = message
        self.record = record
        self.line = line


class UnknownFormat(FormatError):
    """The format could not be detected, or the named format does not exist."""


# --- store -----------------------------------------------------------------
class StoreError(OpspoorError):
    """The store cannot be reached, or an operation on it failed."""


class NotFound(StoreError):
    """A named hash set, entry or token does not exist. ``store``: the URL of the store searched
    (the CLI names it, for a user who forgot ``--db``; the service does not)."""

    def __init__(self, message: str, where: str | None = None, store: str | None = None) -> None:
        super().__init__(message, where)
        self.store = store


class AlreadyExists(StoreError):
    """A named object already exists."""


# --- index -----------------------------------------------------------------
class IndexFileError(OpspoorError):
    """An index file is missing, corrupt or of another version."""


# --- live streams ----------------------------------------------------------
class StreamError(OpspoorError):
    """A live stream could not be opened or read, or a stream session does not exist."""


# --- sources and triage ----------------------------------------------------
class SourceError(OpspoorError):
    """An evidence source (file, folder, archive member) could not be read."""


class MissingSource(SourceError):
    """A source named on the command line does not exist."""


class ArchiveError(SourceError):
    """An archive is corrupt, encrypted, or exceeds the bomb limits."""


class UnreadableSource(SourceError):
    """A file cannot be opened or read: permission, or not a regular file (FIFO, socket, device)."""


class VanishedSource(SourceError):
    """A file was listed but is gone (or replaced) by the time it is read."""


class SymlinkNotFollowed(SourceError):
    """A symbolic or hard link that is not followed: broken, a loop, a directory, or outside the source."""


class CorruptArchive(ArchiveError):
    """An archive's structure is broken (truncated, bad header, bad CRC); later members may be missing."""


class EncryptedContent(ArchiveError):
    """An archive member (or the whole archive) is encrypted; opspoor holds no passwords."""


class ArchiveBomb(ArchiveError):
    """Decompression limits hit: ratio, total uncompressed size, member count, or sizes that lie."""


class MemberTooLarge(ArchiveError):
    """A member is larger than the per-member or in-memory limit, so it is not read."""


class UnsafeMemberName(ArchiveError):
    """A member name escapes the archive (``..``, absolute, backslashes); the evidence path is sanitised."""


class DepthLimit(ArchiveError):
    """An archive nested deeper than the configured limit is kept as one item, not opened."""


class DamagedImage(SourceError):
    """A region of a disk image cannot be read: a truncated segment, a corrupt partition table, a file
    system The Sleuth Kit cannot open, a bad sector range. The message names the region (byte offsets);
    the rest of the image is still scanned."""


class DeletedContentLost(SourceError):
    """A deleted directory entry whose content cannot be recovered (its metadata is gone or now belongs
    to another file); it is still a record, with ``deleted: true``."""


class CaseError(OpspoorError):
    """The case directory is unusable (exists for another command, not writable)."""


class ExecutorError(OpspoorError):
    """The scan's workers cannot be used (no dask scheduler answers, workers cannot see the sources)."""


class SettingsError(OpspoorError):
    """A service setting (``OPSPOOR_SERVICE_*``) holds a value of the wrong kind; ``where`` names it."""


# --- report ----------------------------------------------------------------
class ReportError(OpspoorError):
    """The case report cannot be made (no report in the case, no browser to print it with)."""


# --- intake ----------------------------------------------------------------
class IntakeError(OpspoorError):
    """A hotline report cannot take this step (finished, retracted, expired, no key to seal files)."""


class DocumentError(IntakeError):
    """A report document (JSON or XML in NCMEC's element names) breaks the schema. ``errors`` lists
    each fault as (pointer, element, message): the pointer is an RFC 6901 JSON pointer, or the
    element's path in an XML document."""

    def __init__(
        self, message: str, where: str | None = None, errors: list[tuple[str, str, str]] | None = None
    ) -> None:
        super().__init__(message, where)
        self.errors = errors or []
