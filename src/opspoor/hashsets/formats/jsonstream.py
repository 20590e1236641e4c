"""A pull parser for huge JSON documents: containers walked by hand, each leaf decoded by json's C decoder.

A VICS file is one object whose ``value`` array may hold millions of records. Walking the outer
object and arrays here and handing each record to ``json.JSONDecoder.raw_decode`` keeps memory to
one buffer (about a megabyte, more only for a record larger than that) and decodes records at C
speed, about twice as fast as building them from ijson events. Syntax errors carry the exact line
and column. For speed, :meth:`JsonReader.run_end` finds where a run of many array elements ends,
so a caller can decode the whole run in one call (the VICS reader uses orjson) and fall back to
element-by-element reading when that fails.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from opspoor.errors import FormatError

_WS = re.compile(r"[ \t\n\r]*")
#: how an object element begins: the brace and its first key, as written
_LEAD = re.compile(r'\{[ \t\n\r]*"(?:[^"\\]|\\.)*"[ \t\n\r]*:')
_LEAD_BYTES = re.compile(_LEAD.pattern.encode())
_NUMBER_TAIL = re.compile(r"[0-9.eE+-]*")
CHUNK = 1 << 20
#: what is read after a raw run: enough to see the next element begin
RAW_REFILL = 4 << 10
_BOM = b"\xef\xbb\xbf"
#: a single value larger than this is refused rather than buffered
MAX_VALUE = 256 << 20


class JsonReader:
    """Walk a JSON text from a binary stream (UTF-8, BOM tolerated).

    ``record`` is set by the caller to the record being read, so errors can name it.
    """

    def __init__(self, stream: BinaryIO, where: str | None = None, chunk: int = CHUNK) -> None:
        self._stream = stream
        self._where = where
        self._chunk = chunk
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._raw_decode = json.JSONDecoder().raw_decode
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.record: int | None = None
        self._base = 0  # absolute offset (characters) of buf[0]
        self._line0 = 1  # line number of buf[0]
        self._col0 = 0  # 0-based column of buf[0]
        self._cache = (0, 1)  # (absolute offset, its line) of the last line lookup
        # raw runs (read_raw): where the text starts in a seekable stream, while every byte read is
        # ASCII (a character is then a byte, so a character offset is a byte offset)
        self._origin = _tell(stream)
        self._bom = 0
        self._next_fill: int | None = None

    # --- buffer ------------------------------------------------------------------

    def _fill(self, size: int | None = None) -> bool:
        """Drop what has been consumed and append the next chunk. False at end of file."""
        if self.eof:
            return False
        self._drop_consumed()
        data = self._stream.read(size or self._next_fill or self._chunk)
        self._next_fill = None
        if self._origin is not None:
            if self._base == 0 and not self.buf and data.startswith(_BOM):
                self._bom = len(_BOM)
            if not data[self._bom if self._base == 0 and not self.buf else 0 :].isascii():
                self._origin = None
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise self.error(
                f"not UTF-8 text ({exc.reason}); re-encode the file as UTF-8", len(self.buf)
            ) from None
        if not data:
            self.eof = True
        self.buf += text
        return bool(data) or bool(text)

    def _drop_consumed(self) -> None:
        """Drop ``buf[:pos]``, keeping count of the lines and columns it held."""
        if self.pos:
            newlines = self.buf.count("\n", 0, self.pos)
            if newlines:
                self._line0 += newlines
                self._col0 = self.pos - self.buf.rfind("\n", 0, self.pos) - 1
            else:
                self._col0 += self.pos
            self._base += self.pos
            self.buf = self.buf[self.pos :]
            self.pos = 0

    def tell(self) -> int:
        """Absolute character offset of the read position (for :meth:`line_of`)."""
        return self._base + self.pos

    def line_col(self, offset: int) -> tuple[int, int]:
        """Line and column (1-based) of an absolute offset still in the buffer."""
        rel = offset - self._base
        if rel < 0:  # no longer buffered; the buffer start is the best we know
            return self._line0, self._col0 + 1
        start, line = self._cache
        if start < self._base or start > offset:
            start, line = self._base, self._line0
        line += self.buf.count("\n", start - self._base, rel)
        self._cache = (offset, line)
        last = self.buf.rfind("\n", 0, rel)
        col = rel - last if last >= 0 else self._col0 + rel + 1
        return line, col

    def error(self, message: str, rel: int | None = None) -> FormatError:
        line, col = self.line_col(self._base + (self.pos if rel is None else rel))
        return FormatError(f"{message} (column {col})", self._where, record=self.record, line=line)

    # --- tokens --------------------------------------------------------------------

    def peek(self) -> str:
        """The next non-blank character, or "" at end of file."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def expect(self, char: str) -> None:
        c = self.peek()
        if c != char:
            if not c:
                raise self.error(f"truncated JSON: the file ends where {char!r} was expected")
            raise self.error(f"invalid JSON: expected {char!r}, found {c!r}")
        self.pos += 1

    def expect_end(self) -> None:
        c = self.peek()
        if c:
            raise self.error(f"invalid JSON: unexpected {c!r} after the end of the document")

    def value(self) -> Any:
        """Decode the next complete value (object, array, string, number, literal)."""
        if not self.peek():
            raise self.error("truncated JSON: the file ends where a value was expected")
        while True:
            try:
                obj, end = self._raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                at_end = exc.pos >= len(self.buf) - 8 or exc.msg.startswith(("Unterminated", "Invalid \\u"))
                if at_end and not self.eof:
                    self._grow()
                    continue
                if at_end:
                    raise self.error("truncated JSON: the file ends inside a value", exc.pos) from None
                raise self.error(f"invalid JSON: {exc.msg}", exc.pos) from None
            if not self.eof and (
                end == len(self.buf)
                or (type(obj) in (int, float) and _NUMBER_TAIL.fullmatch(self.buf, end) is not None)
            ):
                # the value may go on in the next chunk (a number cut after "1." or "1e")
                self._grow()
                continue
            self.pos = end
            return obj

    def _grow(self) -> None:
        pending = len(self.buf) - self.pos
        if pending > MAX_VALUE:
            raise self.error(f"a single JSON value is larger than {MAX_VALUE >> 20} MiB")
        # read at least as much again as is pending, so a huge value is re-scanned only log(n) times
        self._fill(max(self._chunk, pending))

    def run_end(self, size: int) -> int | None:
        """Where a run of several whole elements of the array being walked ends, the read position
        being at the first one (an object): the buffer index of the ``,`` before the last buffered
        element that begins like this one (same first key), searching about ``size`` characters.

        A guess (see :func:`run_end`), so the caller decodes ``buf[pos:end]`` and, only if that
        works, moves ``pos`` to the end. None when no such element is buffered.
        """
        while len(self.buf) - self.pos < size and self._fill():
            pass
        return run_end(self.buf, self.pos, min(len(self.buf), self.pos + size))

    # --- raw runs ------------------------------------------------------------------

    def read_raw(self, size: int) -> bytes | None:
        """Up to ``size`` bytes of the stream from the read position on, undecoded, or None when
        the stream is not seekable or not ASCII so far. The read position does not move: the
        caller decodes what it can and hands it to :meth:`skip_raw`. Decoding to text and back
        costs more than the compiled reader spends on the bytes themselves."""
        if self._origin is None or self.eof and self.pos >= len(self.buf):
            return None
        here = self._stream.tell()
        self._stream.seek(self._origin + self._bom + self._base + self.pos)
        data = self._stream.read(size)
        self._stream.seek(here)
        return data

    def skip_raw(self, consumed: bytes) -> None:
        """Move the read position past ``consumed``, ASCII bytes from :meth:`read_raw`."""
        self._drop_consumed()
        newlines = consumed.count(b"\n")
        if newlines:
            self._line0 += newlines
            self._col0 = len(consumed) - consumed.rfind(b"\n") - 1
        else:
            self._col0 += len(consumed)
        self._base += len(consumed)
        self._cache = (self._base, self._line0)
        self.buf = ""
        self.eof = False
        self._decoder.reset()
        self._stream.seek(self._origin + self._bom + self._base)  # type: ignore[operator]
        self._next_fill = RAW_REFILL

    # --- containers ----------------------------------------------------------------

    def members(self) -> Iterator[str]:
        """Walk an object: yield each key with the reader at its value, which the caller must consume."""
        self.expect("{")
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            if self.peek() != '"':
                if not self.peek():
                    raise self.error("truncated JSON: the file ends inside an object")
                raise self.error("invalid JSON: expected a property name in double quotes")
            key = self.value()
            self.expect(":")
            yield key
            c = self.peek()
            if c == ",":
                self.pos += 1
            elif c == "}":
                self.pos += 1
                return
            elif not c:
                raise self.error("truncated JSON: the file ends inside an object")
            else:
                raise self.error(f"invalid JSON: expected ',' or '}}', found {c!r}")

    def elements(self) -> Iterator[None]:
        """Walk an array: yield once per element with the reader at it; the caller must consume it."""
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield None
            c = self.peek()
            if c == ",":
                self.pos += 1
            elif c == "]":
                self.pos += 1
                return
            elif not c:
                raise self.error("truncated JSON: the file ends inside an array")
            else:
                raise self.error(f"invalid JSON: expected ',' or ']', found {c!r}")


def _tell(stream: BinaryIO) -> int | None:
    try:
        return stream.tell() if stream.seekable() else None
    except (OSError, ValueError):
        return None


def run_end(text: str | bytes, start: int, hi: int) -> int | None:
    """In ``text`` (JSON, as characters or as ASCII bytes) where ``start`` begins an object element
    of an array: the index of the ``,`` before the last element in ``text[start + 1 : hi]`` that
    begins like this one (the same first key), or None.

    A guess: the match may lie inside an element (a string that holds the marker needs an escaped
    quote, a nested object the same key); the caller decodes up to it and checks."""
    m = _LEAD.match(text, start) if isinstance(text, str) else _LEAD_BYTES.match(text, start)  # type: ignore[arg-type]
    if m is None:
        return None
    marker = m.group()
    for _ in range(4):  # a marker inside an element: try the one before it
        k = text.rfind(marker, start + 1, hi)  # type: ignore[arg-type]
        if k < 0:
            return None
        j = k - 1
        while text[j : j + 1] in (" ", "\t", "\n", "\r", b" ", b"\t", b"\n", b"\r"):
            j -= 1
        if text[j : j + 1] in (",", b","):
            return j
        hi = k
    return None
