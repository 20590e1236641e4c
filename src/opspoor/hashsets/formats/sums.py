"""Checksum tool output: ``md5sum``/``sha1sum``/``sha256sum`` (GNU coreutils), their ``--tag`` /
BSD form, and ``md5deep``/``sha256deep`` (plain, and ``-z`` with the file size in front).

One line per file, each an entry with the file's name in ``extra["plain"]["name"]`` (as for plain
lists, so a list ``--format plain`` wrote with names reads back the same):

- ``HASH  name`` (text mode), ``HASH *name`` (binary mode) or ``HASH name`` (BSD ``md5 -r``); a
  line that starts with ``\\`` has ``\\\\``, ``\\n`` and ``\\r`` escapes in its name, as coreutils
  writes names with those characters;
- ``SHA256 (name) = HASH`` (``--tag``, and BSD ``md5``/``sha256``);
- ``      SIZE  HASH  name`` (``md5deep -z``): the size goes to ``size``.

The hash's type follows from the tag or from its length: 32 hex MD5, 40 SHA-1, 64 SHA-256 (a
64-hex value with a file name after it is a file checksum, unless ``--type`` or a ``# hash type:
pdq`` comment before the first line, as opspoor's plain lists write, says PDQ). When the list's own
file name names a tool (``MD5SUMS``, ``list.sha256``, ``hashes.sha1``), a hash of another
length is an error rather than a guess. A line with a bare hash and no name is read as in a plain
list (64 hex then needs ``--type``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import BinaryIO

from opspoor.errors import FormatError
from opspoor.hashsets.formats.base import (
    AmbiguousHash,
    ReadOptions,
    RecordError,
    canonical_signal,
    first_lines,
    hex_type,
    report,
    text_lines,
)
from opspoor.hashsets.formats.plain import declared_type
from opspoor.hashsets.model import Entry

_HEX = r"[0-9A-Fa-f]{32}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64}"
#: GNU: HASH, then " " and " " (text) or "*" (binary), then the name; md5deep's lines are the same;
#: BSD ``md5 -r``: HASH, one space, the name
_GNU = re.compile(rf"(\\)?({_HEX})(?: [ *]| )(.+)")
#: md5deep -z: the size right-aligned in ten columns, two spaces, the hash, two spaces, the name
_SIZED = re.compile(rf"\s*(\d+)  ({_HEX})  (.+)")
#: --tag / BSD: ALGORITHM (name) = HASH
_TAG = re.compile(r"(\\)?([A-Za-z0-9-]+) \((.*)\) ?= ([0-9A-Fa-f]+)")
_TAG_TYPES = {"md5": "md5", "sha1": "sha1", "sha256": "sha256"}
_BARE = re.compile(_HEX)
_LENGTH_TYPES = {32: "md5", 40: "sha1", 64: "sha256"}
#: a tool named in the list's file name
_TOOL_IN_NAME = re.compile(r"(md5|sha-?1|sha-?256)(?![0-9])", re.IGNORECASE)


def _line_shape(s: str) -> re.Match[str] | None:
    return _GNU.fullmatch(s) or _SIZED.fullmatch(s) or _TAG.fullmatch(s)


def sniff_sums(head: bytes) -> bool:
    lines = first_lines(head, 8)
    return bool(lines) and all(_line_shape(s) for s in lines)


def _unescape(name: str) -> str:
    """coreutils' escapes in a name of a line that starts with a backslash."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), name)


def tool_type(where: str | None) -> str | None:
    """The hash a checksum list's own name says it holds (``SHA256SUMS``, ``x.md5``), if any."""
    if not where:
        return None
    m = _TOOL_IN_NAME.search(os.path.basename(where))
    return None if m is None else m.group(1).lower().replace("-", "")


def parse_sums_line(s: str, expect: str | None, hash_type: str | None = None) -> Entry:
    """One line of checksum output as an entry; ``expect`` is the type the list's name gives,
    ``hash_type`` what a 64-hex value is (given: with a name too; not given: SHA-256 with a name,
    an error without)."""
    size = None
    name = None
    if _BARE.fullmatch(s.strip()):
        value = s.strip()
        kind = expect or hex_type(value, hash_type)
    elif m := _SIZED.fullmatch(s):
        size, value, name = int(m.group(1)), m.group(2), m.group(3)
        kind = _length_type(value, hash_type)
    elif m := _GNU.fullmatch(s):
        value, name = m.group(2), m.group(3)
        if m.group(1):
            name = _unescape(name)
        kind = _length_type(value, hash_type)
    elif m := _TAG.fullmatch(s):
        tag, name, value = m.group(2), m.group(3), m.group(4)
        if m.group(1):
            name = _unescape(name)
        found = _TAG_TYPES.get(tag.lower().replace("-", ""))
        if found is None:
            raise RecordError(f"{tag} is not a hash opspoor stores (MD5, SHA1, SHA256)")
        kind = found
    else:
        raise RecordError(f"not a checksum line ('HASH  name', 'SHA256 (name) = HASH'): {s[:80]!r}")
    if expect is not None and kind != expect:
        raise RecordError(f"a {kind} value in a list whose name says {expect}")
    extra = {} if name is None else {"plain": {"name": name}}
    return Entry({kind: canonical_signal(kind, value)}, size=size, extra=extra)


def _length_type(value: str, hash_type: str | None) -> str:
    return hash_type if hash_type is not None and len(value) == 64 else _LENGTH_TYPES[len(value)]


def read_sums(stream: BinaryIO, opts: ReadOptions) -> Iterator[Entry]:
    expect = tool_type(opts.where)
    hash_type = opts.hash_type
    record = 0
    content = False
    for line_no, line in enumerate(text_lines(stream, opts.where), 1):
        s = line.rstrip("\r\n")
        if not s.strip():
            continue
        content = True
        if s.lstrip().startswith("#"):
            if record == 0 and opts.hash_type is None:
                hash_type = declared_type(s) or hash_type
            continue
        record += 1
        try:
            e = parse_sums_line(s, expect, hash_type)
        except AmbiguousHash as exc:
            raise AmbiguousHash(exc.detail, opts.where, record=record, line=line_no) from None
        except RecordError as exc:
            report(FormatError(str(exc), opts.where, record=record, line=line_no), opts)
            continue
        if opts.source:
            e.source = opts.source
        yield e
    if not content:
        raise FormatError("the file is empty", opts.where)
