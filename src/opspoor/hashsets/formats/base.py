"""What every hash-set format shares: the registry record, options, and the value parsers.

Readers take a binary stream and yield :class:`~opspoor.hashsets.model.Entry` objects one at a
time (a fast reader may instead yield :class:`EntryBatch` columns, see ``Format.batch_reader``);
writers take any iterable of entries and write as they go. A record that cannot be read is a
:class:`~opspoor.errors.FormatError` naming the record (1-based) and, for text, the line; with
``ReadOptions.on_error`` set it is reported and skipped instead of raised.
"""

from __future__ import annotations

import csv
import gc
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from itertools import compress
from typing import Any, BinaryIO

from opspoor.errors import FormatError, SignalError
from opspoor.hashsets.model import Category, Entry, RecordError
from opspoor.signals import SIGNALS, get_signal, hex_lengths
from opspoor.signals.photodna import PhotoDNA

ErrorHandler = Callable[[FormatError], None]


@dataclass(frozen=True)
class ReadOptions:
    #: what a 64-hex value without a named column is: ``sha256`` or ``pdq`` (plain lists, csv ``hash``)
    hash_type: str | None = None
    #: file name used in errors
    where: str | None = None
    #: when set, invalid records are reported here and skipped; otherwise the first one is raised
    on_error: ErrorHandler | None = None
    #: ``Entry.source`` for entries whose format does not name one
    source: str | None = None


@dataclass(frozen=True)
class CaseInfo:
    """The case a VICS ``#Cases`` export is written under.

    ``properties`` holds further Case properties by their VICS names (e.g. ``SourceApplicationName``).
    Reading a ``#Cases`` file puts the case's properties in ``entry.extra["case"]``;
    :meth:`from_vics` turns them back into a ``CaseInfo``.
    """

    case_id: int | str = 1
    case_number: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)

    def to_vics(self) -> dict[str, Any]:
        return {"CaseID": self.case_id, "CaseNumber": self.case_number, **self.properties}

    @classmethod
    def from_vics(cls, case: Mapping[str, Any]) -> CaseInfo:
        rest = {k: v for k, v in case.items() if k not in ("CaseID", "CaseNumber")}
        return cls(case.get("CaseID", 1), case.get("CaseNumber", ""), rest)


@dataclass(frozen=True)
class WriteOptions:
    #: hash-set name; HMA writes it as the bank of entries that have no source
    name: str | None = None
    #: VICS: write a ``#Cases`` export of this one case (MediaFiles from ``entry.extra["files"]``)
    cases: CaseInfo | None = None
    #: plain: the signal to list (default: the first of md5, sha1, sha256, pdq the first entry has)
    signal: str | None = None
    #: csv: the signal columns to write (default: md5, sha1, sha256, pdq, photodna)
    columns: tuple[str, ...] | None = None
    #: csv: field delimiter (``","`` or ``"\t"``)
    delimiter: str = ","


@dataclass(slots=True)
class EntryBatch:
    """Entries as columns: one list per field, one item per entry, in file order.

    What a fast reader yields and the store loads, so a bulk import builds no ``Entry`` per row.
    ``signals`` maps a signal name to the canonical values of that signal (``None`` where an entry
    lacks it); the other lists are the :class:`~opspoor.hashsets.model.Entry` fields of the same name.
    """

    signals: dict[str, list[str | None]]
    category: list[Category | None]
    victim_identified: list[bool | None]
    offender_identified: list[bool | None]
    distributed: list[bool | None]
    series: list[str | None]
    tags: list[tuple[str, ...]]
    source: list[str | None]
    date_updated: list[str | None]
    external_id: list[str | None]
    size: list[int | None]
    extra: list[dict[str, Any]]
    derived: list[dict[str, list[str]]]  # Entry.derived of each entry ({} for none)

    def __len__(self) -> int:
        return len(self.category)

    @classmethod
    def empty(cls) -> EntryBatch:
        return cls({}, [], [], [], [], [], [], [], [], [], [], [], [])

    @classmethod
    def from_entries(cls, entries: Sequence[Entry]) -> EntryBatch:
        names = dict.fromkeys(n for e in entries for n in e.signals)
        return cls(
            {n: [e.signals.get(n) for e in entries] for n in names},
            [e.category for e in entries],
            [e.victim_identified for e in entries],
            [e.offender_identified for e in entries],
            [e.distributed for e in entries],
            [e.series for e in entries],
            [e.tags for e in entries],
            [e.source for e in entries],
            [e.date_updated for e in entries],
            [e.external_id for e in entries],
            [e.size for e in entries],
            [e.extra for e in entries],
            [e.derived for e in entries],
        )

    def entries(self) -> Iterator[Entry]:
        names = list(self.signals)
        for values, *fields in zip(
            zip(*self.signals.values(), strict=True) if names else ((),) * len(self),
            self.category,
            self.victim_identified,
            self.offender_identified,
            self.distributed,
            self.series,
            self.tags,
            self.source,
            self.date_updated,
            self.external_id,
            self.size,
            self.extra,
            self.derived,
            strict=True,
        ):
            yield Entry({n: v for n, v in zip(names, values, strict=True) if v is not None}, *fields)

    def extend(self, other: EntryBatch) -> None:
        """Append ``other``'s entries (a signal one side lacks is ``None`` there)."""
        n, k = len(self), len(other)
        for name, values in other.signals.items():
            mine = self.signals.get(name)
            if mine is None:
                pad: list[str | None] = [None] * n
                self.signals[name] = pad + values
            else:
                mine.extend(values)
        for name, mine in self.signals.items():
            if name not in other.signals:
                mine.extend([None] * k)
        for f in _BATCH_FIELDS:
            getattr(self, f).extend(getattr(other, f))

    def select(self, keep: Sequence[bool]) -> EntryBatch:
        """The entries whose ``keep`` is true."""
        return EntryBatch(
            {n: list(compress(v, keep)) for n, v in self.signals.items()},
            *(list(compress(getattr(self, f), keep)) for f in _BATCH_FIELDS),
        )


#: the per-entry lists of an EntryBatch besides ``signals`` (its own field list, in order)
_BATCH_FIELDS = tuple(f.name for f in dataclass_fields(EntryBatch) if f.name != "signals")

Reader = Callable[[BinaryIO, ReadOptions], Iterator[Entry]]
#: yields EntryBatch columns, or for the usual shape of a large list ArrayBatch arrays (formats.arrays)
BatchReader = Callable[[BinaryIO, ReadOptions], Iterator[Any]]
Writer = Callable[[Iterable[Entry], BinaryIO, WriteOptions], int]


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    reader: Reader
    #: None: a format opspoor reads but does not write
    writer: Writer | None
    sniff: Callable[[bytes], bool]
    #: the same reader yielding columns (formats read by the million); None: built from ``reader``
    batch_reader: BatchReader | None = None
    #: a binary format: sniffed even when the head is not text
    binary: bool = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Hold the cyclic garbage collector while a batch is built: decoding makes a few containers
    per record, and the collector would otherwise rescan the live batch dozens of times (half the
    decoding time). Nothing built here forms cycles; refcounting frees it as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- error routing -----------------------------------------------------------


def report(err: FormatError, opts: ReadOptions) -> None:
    """Raise ``err``, or hand it to ``opts.on_error`` so the reader can skip the record."""
    if opts.on_error is None:
        raise err
    opts.on_error(err)


# --- values -------------------------------------------------------------------


def validate_photodna(value: str) -> str:
    """PhotoDNA's canonical text (see :class:`opspoor.signals.photodna.PhotoDNA`)."""
    return PhotoDNA.validate(value)


def canonical_signal(name: str, value: object) -> str:
    """The canonical text of a signal value, or ``RecordError`` saying what is wrong."""
    s = SIGNALS.get(name)
    if type(value) is str and s is not None and len(value) == s.hex_length:
        # the common case, checked here without the registry's overhead; same rule as SignalType.validate
        v = value.lower()
        if v.isascii() and v.isalnum() and _HEX.fullmatch(v):
            return v
    if not isinstance(value, str):
        raise RecordError(f"{name} value must be text, got {type(value).__name__}")
    try:
        return get_signal(name).validate(value)
    except SignalError as exc:
        raise RecordError(exc.message) from None


_HEX = re.compile(r"[0-9A-Fa-f]+")


def hex_types() -> dict[int, tuple[str, ...]]:
    """Hex length -> the signals of that width, from the registry (64: sha256 and pdq)."""
    by_length: dict[int, tuple[str, ...]] = {}
    for name, length in hex_lengths().items():
        by_length[length] = (*by_length.get(length, ()), name)
    return by_length


class AmbiguousHash(FormatError):
    """A hex value whose width several signals share (64: SHA-256 or PDQ); the caller must say
    which (``--type``)."""


def hex_type(value: str, hash_type: str | None) -> str:
    """The signal a bare hex value is, from its length; a width several signals share needs
    ``hash_type``."""
    v = value.strip()
    if not _HEX.fullmatch(v):
        raise RecordError(f"not a hexadecimal hash: {value[:80]!r}")
    kinds = hex_types().get(len(v))
    if kinds is None:
        widths = ", ".join(f"{'/'.join(k)} ({n})" for n, k in sorted(hex_types().items()))
        raise RecordError(f"a hash of {len(v)} hex characters is none of {widths}")
    if len(kinds) == 1:
        return kinds[0]
    if hash_type is None:
        raise AmbiguousHash(
            f"{len(v)} hex characters may be {' or '.join(kinds)}; pass "
            + " or ".join(f"--type {k}" for k in kinds)
        )
    return hash_type


def check_hash_type(hash_type: str | None) -> None:
    shared = [k for kinds in hex_types().values() if len(kinds) > 1 for k in kinds]
    if hash_type is not None and hash_type not in shared:
        raise FormatError(
            f"hash type for hex values of a shared width must be {' or '.join(shared)}, not {hash_type!r}"
        )


_TRUE = frozenset({"true", "yes", "y", "1", "t"})
_FALSE = frozenset({"false", "no", "n", "0", "f"})


_FAST_BOOL: dict[object, bool | None] = {None: None, True: True, False: False, "true": True, "false": False}


def parse_bool(value: object, name: str) -> bool | None:
    """JSON booleans, and true/false, yes/no, 1/0 in any case; empty or null is unknown (None)."""
    if type(value) is bool or type(value) is str or value is None:
        try:
            return _FAST_BOOL[value]
        except KeyError:
            pass
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if not v:
            return None
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
    raise RecordError(f"{name}: {value!r} is not a boolean (true/false, yes/no, 1/0)")


def parse_size(value: object, name: str) -> int | None:
    """A non-negative integer, as a JSON number or text; empty or null is unknown."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"{name}: {value!r} is not a size in bytes")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        n = int(value.strip())
    else:
        raise RecordError(f"{name}: {value!r} is not a size in bytes")
    if n < 0:
        raise RecordError(f"{name}: {value!r} is negative")
    return n


_US_CAT = re.compile(r"(?:cat[-_ ]?)?([0-9]{1,3})", re.IGNORECASE)


def parse_category(value: object, name: str = "category") -> Category | None:
    """``SCHEME:CODE``, or a bare Project VIC number (also ``CAT-1``) meaning ``us-cat``. A code
    the scheme does not define (``us-cat:8``, ``8``) is kept as it is (``Category.known``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RecordError(f"{name}: {value!r} is not a category")
    if isinstance(value, int | float):
        text = str(int(value)) if float(value).is_integer() else str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise RecordError(f"{name}: {value!r} is not a category")
    if not text:
        return None
    try:
        if ":" in text:
            return Category.parse(text)
        m = _US_CAT.fullmatch(text)
        if m:
            return Category("us-cat", str(int(m.group(1))))
    except SignalError as exc:
        raise RecordError(f"{name}: {exc.message}") from None
    raise RecordError(f"{name}: {text[:40]!r} is not a category (SCHEME:CODE or a Project VIC number)")


def text_or_none(value: object, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RecordError(f"{name}: {value!r} is not text")
    text = str(value).strip()
    return text or None


def split_tags(value: object, sep: str | None = ",") -> tuple[str, ...]:
    """Tags from a separated string or a list of strings; blanks dropped, order kept."""
    if value is None:
        return ()
    if isinstance(value, str):
        parts: Iterable[object] = value.split(sep)
    elif isinstance(value, list):
        parts = value
    else:
        raise RecordError(f"tags: {value!r} is neither text nor a list")
    tags = []
    for p in parts:
        if not isinstance(p, str):
            raise RecordError(f"tags: {p!r} is not text")
        if t := p.strip():
            tags.append(t)
    return tuple(tags)


def check_has_signal(signals: Mapping[str, str]) -> None:
    if not signals:
        raise RecordError("record has no hash")


def bool_text(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


# --- text input ----------------------------------------------------------------


def text_lines(stream: BinaryIO, where: str | None) -> Iterator[str]:
    """Decoded lines with their endings, UTF-8 with or without BOM; a bad byte names its line.

    Each line is decoded on its own so the line number of an encoding error is exact.
    """
    for n, raw in enumerate(stream, 1):
        if n == 1 and (what := binary_kind(raw[:4096])) is not None:
            raise FormatError(f"not a hash list: {what}", where, line=1)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(
                f"not UTF-8 text ({exc.reason} at byte {exc.start} of the line); re-encode the file as UTF-8",
                where,
                line=n,
            ) from None
        if n == 1 and line.startswith("\ufeff"):
            line = line[1:]
        yield line


def csv_rows(
    lines: Iterable[str], lines_before: int, delimiter: str = ","
) -> Iterator[tuple[int, list[str]]]:
    """The non-blank CSV rows of ``lines``, each with the line number it starts on.

    A quoted field may span lines, so a row's line is counted from where the one before ended;
    ``lines_before`` is how many lines of the file came before ``lines`` (a header, say).
    """
    rows = csv.reader(lines, delimiter=delimiter)
    line_end = lines_before
    for row in rows:
        line_no = line_end + 1
        line_end = lines_before + rows.line_num
        if row and not (len(row) == 1 and not row[0].strip()):
            yield line_no, row


#: magic numbers of files people mistake for hash lists, and what to say about them
_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive; unpack the list first (NSRL ships NSRLFile.txt zipped)"),
    (b"\x1f\x8b", "gzip-compressed; decompress it first"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive; unpack the list first"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG\r\n", "a PNG image"),  # no further: a line ends there
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file (export the sheet as CSV)"),
    (b"\xff\xfe", "UTF-16 text; save it as UTF-8 (PowerShell: -Encoding utf8)"),
    (b"\xfe\xff", "UTF-16 text; save it as UTF-8"),
)


_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


def binary_kind(head: bytes) -> str | None:
    """What a file head that is no text is (``None`` for text): a known kind of file, or binary
    data. Text in another 8-bit encoding (a Latin-1 file name in a list) is still text: more than
    1 % control bytes (one stray NUL is not enough) or a high share of bytes that are not UTF-8
    make it binary."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    start = head[:8].hex(" ")
    # one stray NUL in a text list is a bad record (the reader names it), not a binary file
    if len(_CONTROL.findall(head)) > max(1, len(head) // 100):
        return f"binary data (starts {start})"
    text = head.decode("utf-8", errors="replace")
    if text.count("\ufffd") > len(text) // 10:
        return f"binary data, not UTF-8 text (starts {start})"
    return None


def head_text(head: bytes) -> str:
    """The sniffable text of a file head: BOM dropped, a cut multi-byte character tolerated."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return head.decode("utf-8", errors="replace")


def first_lines(head: bytes, n: int = 3) -> list[str]:
    """Up to ``n`` complete non-blank, non-comment lines of a head (a cut last line is dropped
    unless it is all there is)."""
    text = head_text(head)
    lines = text.splitlines()
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]
    out = [s for line in lines if (s := line.strip()) and not s.startswith("#")]
    return out[:n]


def normalise_column(name: str) -> str:
    """Header names compared without case, spaces, dashes or underscores: ``Media ID`` = ``media_id``."""
    return re.sub(r"[^0-9a-z]", "", name.lower())
