"""A compiled reader for runs of VICS Media records of the usual shape, straight into NumPy columns.

Why compiled: a hash list of ten million records spends most of an import building Python dicts
(orjson) and turning them into columns; no JSON library decodes into arrays of a fixed schema.
This scanner reads the bytes of a run of records once and fills an :class:`ArrayBatch`, about
ten times faster. It takes only what it can read exactly as :func:`~opspoor.hashsets.formats.vics.
media_entry` would, and gives up on the whole run otherwise (returns None): the caller then reads
the run the careful way, which also names the record at fault. Given up on, among others: a
backslash escape in any string, PhotoDNA, vPDQ or unknown AlternativeHashes, tags, MediaFiles,
OpspoorCategory, OpspoorExternalID, a float, a nested value of an unknown property, a repeated
property, a record without a hash, a hash of the wrong length or alphabet.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from opspoor.hashsets.formats.arrays import ARRAY_HASHES, TEXT_FIELDS, ArrayBatch

#: Media properties, as spelled by Project VIC (the record's key must match exactly here)
MEDIA_KEYS = (
    "MediaID",
    "Category",
    "MD5",
    "SHA1",
    "SHA256",
    "PhotoDNA",
    "AlternativeHashes",
    "MediaSize",
    "VictimIdentified",
    "OffenderIdentified",
    "IsDistributed",
    "Series",
    "Tags",
    "DateUpdated",
    "MediaFiles",
    "OpspoorCategory",
    "OpspoorExternalID",
)
(
    K_ID,
    K_CATEGORY,
    K_MD5,
    K_SHA1,
    K_SHA256,
    K_PHOTODNA,
    K_ALT,
    K_SIZE,
    K_VICTIM,
    K_OFFENDER,
    K_DISTRIBUTED,
    K_SERIES,
    K_TAGS,
    K_DATE,
    K_FILES,
    K_OPSPOOR,
    K_EXTERNAL,
) = range(len(MEDIA_KEYS))
#: AlternativeHashes names taken here, in ARRAY_HASHES order
_ALT_NAMES = ("MD5", "SHA1", "SHA256", "PDQ")
_WIDTHS = np.array(list(ARRAY_HASHES.values()), np.int64)
_F_ID, _F_SERIES, _F_DATE, _F_EXTRA = (TEXT_FIELDS.index(f) for f in TEXT_FIELDS)
#: most unknown properties one record may carry on this path
_MAX_UNKNOWN = 16

GIVE_UP = -1
#: ``extra`` did not fit the text buffer: call again with a larger one
NEED_ROOM = -2
_QUOTE, _BACKSLASH, _COMMA, _COLON = 34, 92, 44, 58
_LBRACE, _RBRACE, _LBRACKET, _RBRACKET = 123, 125, 91, 93


def _table(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    width = max(map(len, names))
    table = np.zeros((len(names), width), np.uint8)
    for i, name in enumerate(names):
        table[i, : len(name)] = np.frombuffer(name.encode(), np.uint8)
    return table, np.array([len(n) for n in names], np.int64)


_KEY_TABLE, _KEY_LENGTHS = _table(MEDIA_KEYS)
_ALT_TABLE, _ALT_LENGTHS = _table(_ALT_NAMES)
_HASHNAME, _ = _table(("HashName",))
_HASHVALUE, _ = _table(("HashValue",))
_VICS_OPEN = np.frombuffer(b'{"vics":{', np.uint8).copy()
#: value of each hex digit (either case); 16 for any other byte
_HEX = np.full(256, 16, np.int64)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF", 10):
    _HEX[_c] = _i
#: bytes that end a plain string: the quote, a backslash, a control character
_STOP = np.zeros(256, np.bool_)
_STOP[:32] = True
_STOP[[_QUOTE, _BACKSLASH]] = True
#: the characters beyond ASCII that str.isspace (and so str.strip) takes
_UNICODE_SPACES = np.array([c for c in range(0x80, 0x3001) if chr(c).isspace()], np.int64)
#: flag words read as text (what parse_bool's fast table takes)
_FLAG_WORDS = ("true", "True", "TRUE", "false", "False", "FALSE")
_FLAG_TABLE, _FLAG_LENGTHS = _table(_FLAG_WORDS)
_FLAG_VALUES = np.array([1, 1, 1, 0, 0, 0], np.int64)


@njit(cache=True)
def _ws(buf: np.ndarray, i: int) -> int:
    n = len(buf)
    while i < n and (buf[i] == 32 or buf[i] == 10 or buf[i] == 13 or buf[i] == 9):
        i += 1
    return i


@njit(cache=True)
def _string_end(buf: np.ndarray, i: int) -> int:
    """Index of the closing quote of the string opening at ``i``; -1 when no string opens there,
    for an escape or a control character (both read the careful way), or no end."""
    n = len(buf)
    if i >= n or buf[i] != _QUOTE:
        return -1
    j = i + 1
    while j < n and not _STOP[buf[j]]:
        j += 1
    if j < n and buf[j] == _QUOTE:
        return j
    return -1


@njit(cache=True)
def _text_or_null(buf: np.ndarray, i: int) -> tuple[int, int, int, int]:
    """(kind, start, end, next) of the value at ``i``: kind 1 for a plain string (its characters
    ``buf[start:end]``), 0 for null, -1 for anything else (read the careful way)."""
    if buf[i] == _QUOTE:
        e = _string_end(buf, i)
        if e < 0:
            return -1, 0, 0, 0
        return 1, i + 1, e, e + 1
    if _literal(buf, i) == -1:
        return 0, 0, 0, i + 4
    return -1, 0, 0, 0


@njit(cache=True)
def _number_or_text(buf: np.ndarray, i: int, last_digit: int) -> tuple[int, int, int, int]:
    """(kind, start, end, next) of a value at ``i`` that is a number starting with a digit up to
    ``last_digit`` (kind 2; end -1 when malformed) or else as ``_text_or_null``."""
    if 48 <= buf[i] <= last_digit:
        e = _integer_end(buf, i)
        return 2, i, e, e
    return _text_or_null(buf, i)


@njit(cache=True)
def _integer_end(buf: np.ndarray, i: int) -> int:
    """End of a non-negative JSON integer at ``i`` (no fraction, no exponent); -1 otherwise."""
    n = len(buf)
    j = i
    while j < n and 48 <= buf[j] <= 57:
        j += 1
    if j == i or (buf[i] == 48 and j - i > 1) or j - i > 18:
        return -1
    if j < n and (buf[j] == 46 or buf[j] == 101 or buf[j] == 69):
        return -1
    return j


@njit(cache=True)
def _literal(buf: np.ndarray, i: int) -> int:
    """-1 null, 0 false, 1 true at ``i`` (the length follows from it); -2 for anything else."""
    n = len(buf)
    if i + 4 <= n and buf[i] == 110 and buf[i + 1] == 117 and buf[i + 2] == 108 and buf[i + 3] == 108:
        return -1
    if i + 4 <= n and buf[i] == 116 and buf[i + 1] == 114 and buf[i + 2] == 117 and buf[i + 3] == 101:
        return 1
    if (
        i + 5 <= n
        and buf[i] == 102
        and buf[i + 1] == 97
        and buf[i + 2] == 108
        and buf[i + 3] == 115
        and buf[i + 4] == 101
    ):
        return 0
    return -2


@njit(cache=True)
def _literal_length(value: int) -> int:
    return 5 if value == 0 else 4


@njit(cache=True)
def _same(buf: np.ndarray, s: int, e: int, name: np.ndarray, length: int) -> bool:
    if e - s != length:
        return False
    k = 0
    while k < length and buf[s + k] == name[k]:
        k += 1
    return k == length


@njit(cache=True)
def _char_start(buf: np.ndarray, k: int) -> int:
    """Start of the UTF-8 character whose last byte is at ``k``."""
    while k > 0 and buf[k] & 0xC0 == 0x80:
        k -= 1
    return k


@njit(cache=True)
def _unicode_space(buf: np.ndarray, k: int) -> bool:
    """Whether the UTF-8 character starting at ``k`` is a space beyond ASCII (all are 2 or 3 bytes)."""
    b = buf[k]
    if 0xC2 <= b < 0xE0 and k + 1 < len(buf):
        cp = ((b & 0x1F) << 6) | (buf[k + 1] & 0x3F)
    elif 0xE0 <= b < 0xF0 and k + 2 < len(buf):
        cp = ((b & 0x0F) << 12) | ((buf[k + 1] & 0x3F) << 6) | (buf[k + 2] & 0x3F)
    else:
        return False
    return bool((cp == _UNICODE_SPACES).any())


@njit(cache=True)
def _lower(c: int) -> int:
    return c + 32 if 65 <= c <= 90 else c


@njit(cache=True)
def _key_id(buf: np.ndarray, s: int, e: int, table: np.ndarray, lengths: np.ndarray) -> int:
    """Index of the key ``buf[s:e]`` in ``table``; -1 unknown; -2 known but spelled otherwise (or
    not ASCII), which the careful path maps."""
    length = e - s
    first = buf[s] if length else 0
    for t in range(len(lengths)):  # length and first letter rule out all but one name, mostly
        if lengths[t] == length and table[t, 0] == first:
            k = 1
            while k < length and buf[s + k] == table[t, k]:
                k += 1
            if k == length:
                return t
    for k in range(s, e):
        if buf[k] >= 128:
            return -2
    for t in range(len(lengths)):
        if lengths[t] == length:
            k = 0
            while k < length and _lower(buf[s + k]) == _lower(table[t, k]):
                k += 1
            if k == length:
                return -2
    return -1


@njit(cache=True)
def _hex_into(buf: np.ndarray, s: int, e: int, out: np.ndarray, width: int) -> bool:
    """Decode the hex text ``buf[s:e]`` (either case) into ``out[:width]``."""
    if e - s != 2 * width:
        return False
    bad = 0
    for k in range(width):
        hi = _HEX[buf[s + 2 * k]]
        lo = _HEX[buf[s + 2 * k + 1]]
        bad |= hi | lo
        out[k] = ((hi << 4) | lo) & 255
    return bad < 16


@njit(cache=True)
def _flag(buf: np.ndarray, i: int) -> tuple[int, int]:
    """(flag -1/0/1, end) of a VICS flag value at ``i``; (-2, 0) for one read the careful way."""
    c = buf[i]
    if c == _QUOTE:
        e = _string_end(buf, i)
        if e < 0:
            return -2, 0
        if e == i + 1:
            return -1, e + 1
        for t in range(len(_FLAG_LENGTHS)):
            if _same(buf, i + 1, e, _FLAG_TABLE[t], _FLAG_LENGTHS[t]):
                return _FLAG_VALUES[t], e + 1
        return -2, 0
    if c == 48 or c == 49:  # 0 and 1 read as false and true
        if _integer_end(buf, i) != i + 1:
            return -2, 0
        return c - 48, i + 1
    lit = _literal(buf, i)
    if lit == -2:
        return -2, 0
    return lit, i + _literal_length(lit)


@njit(cache=True)
def _parse(
    buf: np.ndarray,
    out_text: np.ndarray,
    hashes: np.ndarray,
    has: np.ndarray,
    category: np.ndarray,
    flags: np.ndarray,
    size: np.ndarray,
    spans: np.ndarray,
) -> int:
    """Records of ``buf`` into the arrays; returns how many, or GIVE_UP.

    ``hashes`` is uint8[n, 4, 32] (each hash left-aligned); ``out_text`` begins with a copy of
    ``buf`` and takes the ``extra`` JSON after it. The name tables are module constants, which
    numba freezes into the compiled code."""
    vics_open = _VICS_OPEN
    widths = _WIDTHS
    n = len(buf)
    out_text[:n] = buf
    xp = n  # where the next extra JSON goes
    unknown = np.empty((_MAX_UNKNOWN, 2), np.int64)
    r = 0
    i = _ws(buf, 0)
    while i < n:
        if buf[i] != _LBRACE or r >= len(category):
            return GIVE_UP
        i = _ws(buf, i + 1)
        seen = 0
        n_unknown = 0
        x0 = xp
        category[r] = -1
        flags[r, 0] = -1
        flags[r, 1] = -1
        flags[r, 2] = -1
        size[r] = -1
        for f in range(4):
            spans[r, f, 0] = -1
            spans[r, f, 1] = -1
        for h in range(4):
            has[r, h] = False
        if i < n and buf[i] == _RBRACE:
            return GIVE_UP  # an empty record has no hash
        while True:
            # a property: "key": value
            ke = _string_end(buf, i)
            if ke < 0:
                return GIVE_UP
            ks = i + 1
            key = _key_id(buf, ks, ke, _KEY_TABLE, _KEY_LENGTHS)
            if key == -2:
                return GIVE_UP
            i = _ws(buf, ke + 1)
            if i >= n or buf[i] != _COLON:
                return GIVE_UP
            i = _ws(buf, i + 1)
            if i >= n:
                return GIVE_UP
            c = buf[i]
            if key >= 0:
                if seen & (1 << key):
                    return GIVE_UP  # a repeated property: json keeps the last, read it that way
                seen |= 1 << key
            if key in (K_MD5, K_SHA1, K_SHA256):
                h = key - K_MD5
                kind, s, e, i = _text_or_null(buf, i)
                if kind < 0:
                    return GIVE_UP
                if kind == 1 and e > s:
                    if has[r, h] or not _hex_into(buf, s, e, hashes[r, h], widths[h]):
                        return GIVE_UP
                    has[r, h] = True
            elif key == K_ID:
                kind, s, e, i = _number_or_text(buf, i, 57)
                if kind < 0 or e < 0:
                    return GIVE_UP
                if e > s:
                    spans[r, _F_ID, 0] = s
                    spans[r, _F_ID, 1] = e
            elif key == K_CATEGORY:
                kind, s, e, i = _number_or_text(buf, i, 53)  # a number, or the same digit as text
                if kind < 0:
                    return GIVE_UP
                if e == s + 1 and 48 <= buf[s] <= 53:
                    category[r] = buf[s] - 48
                elif e != s:
                    return GIVE_UP
            elif key == K_SIZE:
                if 48 <= c <= 57:
                    e = _integer_end(buf, i)
                    if e < 0:
                        return GIVE_UP
                    v = 0
                    for k in range(i, e):
                        v = v * 10 + (buf[k] - 48)
                    size[r] = v
                    i = e
                elif _literal(buf, i) == -1:
                    i += 4
                else:
                    return GIVE_UP
            elif key in (K_VICTIM, K_OFFENDER, K_DISTRIBUTED):
                v, e = _flag(buf, i)
                if v == -2:
                    return GIVE_UP
                flags[r, key - K_VICTIM] = v
                i = e
            elif key in (K_SERIES, K_DATE):
                kind, s, t, i = _text_or_null(buf, i)
                if kind < 0:
                    return GIVE_UP
                f = _F_DATE
                if key == K_SERIES:  # stripped as str.strip does
                    f = _F_SERIES
                    while s < t and buf[s] == 32:
                        s += 1
                    while t > s and buf[t - 1] == 32:
                        t -= 1
                    if s < t and (_unicode_space(buf, s) or _unicode_space(buf, _char_start(buf, t - 1))):
                        return GIVE_UP  # str.strip would take off a space that is not ASCII
                if t > s:
                    spans[r, f, 0] = s
                    spans[r, f, 1] = t
            elif key in (K_TAGS, K_PHOTODNA, K_OPSPOOR, K_EXTERNAL):
                kind, s, e, i = _text_or_null(buf, i)
                if kind < 0 or e > s:  # only absent values on this path
                    return GIVE_UP
            elif key == K_FILES:
                if _literal(buf, i) == -1:
                    i += 4
                else:
                    return GIVE_UP
            elif key == K_ALT:
                if _literal(buf, i) == -1:
                    i += 4
                elif c == _LBRACKET:
                    i = _ws(buf, i + 1)
                    if i < n and buf[i] == _RBRACKET:
                        i += 1
                    else:
                        while True:
                            i = _alternative(buf, i, hashes[r], has[r])
                            if i < 0:
                                return GIVE_UP
                            i = _ws(buf, i)
                            if i < n and buf[i] == _COMMA:
                                i = _ws(buf, i + 1)
                            elif i < n and buf[i] == _RBRACKET:
                                i += 1
                                break
                            else:
                                return GIVE_UP
                else:
                    return GIVE_UP
            else:  # a property opspoor does not map: kept, as written, in extra["vics"]
                if c == _QUOTE:
                    e = _string_end(buf, i)
                    if e < 0:
                        return GIVE_UP
                    e += 1
                elif 48 <= c <= 57:
                    e = _integer_end(buf, i)
                    if e < 0:
                        return GIVE_UP
                else:
                    lit = _literal(buf, i)
                    if lit == -2:
                        return GIVE_UP
                    e = i + _literal_length(lit)
                for u in range(n_unknown):
                    us, ue = unknown[u, 0], unknown[u, 1]
                    if ue - us == ke - ks:
                        same = True
                        for k in range(ke - ks):
                            if buf[us + k] != buf[ks + k]:
                                same = False
                                break
                        if same:
                            return GIVE_UP
                if n_unknown == _MAX_UNKNOWN:
                    return GIVE_UP
                unknown[n_unknown, 0] = ks
                unknown[n_unknown, 1] = ke
                n_unknown += 1
                if xp + len(vics_open) + ke - ks + 5 + e - i > len(out_text):
                    return NEED_ROOM
                if xp == x0:
                    out_text[xp : xp + len(vics_open)] = vics_open
                    xp += len(vics_open)
                else:
                    out_text[xp] = _COMMA
                    xp += 1
                out_text[xp : xp + ke - ks + 3] = buf[ks - 1 : ke + 2]  # "key":
                out_text[xp + ke - ks + 2] = _COLON
                xp += ke - ks + 3
                out_text[xp : xp + e - i] = buf[i:e]
                xp += e - i
                i = e
            i = _ws(buf, i)
            if i < n and buf[i] == _COMMA:
                i = _ws(buf, i + 1)
                continue
            if i < n and buf[i] == _RBRACE:
                i += 1
                break
            return GIVE_UP
        if not (has[r, 0] or has[r, 1] or has[r, 2] or has[r, 3]):
            return GIVE_UP  # the careful path says which record has no hash
        if xp > x0:
            out_text[xp] = _RBRACE
            out_text[xp + 1] = _RBRACE
            xp += 2
            spans[r, _F_EXTRA, 0] = x0
            spans[r, _F_EXTRA, 1] = xp
        r += 1
        i = _ws(buf, i)
        if i < n:
            if buf[i] != _COMMA:
                return GIVE_UP
            i = _ws(buf, i + 1)
            if i >= n:
                return GIVE_UP  # a trailing comma
    return r


@njit(cache=True)
def _alternative(buf: np.ndarray, i: int, hashes: np.ndarray, has: np.ndarray) -> int:
    """One AlternativeHashes item {"HashName": ..., "HashValue": ...} (either order) at ``i``; the
    index after it, or -1."""
    n = len(buf)
    if i >= n or buf[i] != _LBRACE:
        return -1
    i = _ws(buf, i + 1)
    name = -1
    vs = -1
    ve = -1
    for p in range(2):
        if p == 1:  # exactly one comma between the two properties
            if i >= n or buf[i] != _COMMA:
                return -1
            i = _ws(buf, i + 1)
        ke = _string_end(buf, i)
        if ke < 0:
            return -1
        is_name = _same(buf, i + 1, ke, _HASHNAME[0], 8)
        is_value = _same(buf, i + 1, ke, _HASHVALUE[0], 9)
        i = _ws(buf, ke + 1)
        if i >= n or buf[i] != _COLON:
            return -1
        i = _ws(buf, i + 1)
        e = _string_end(buf, i)
        if e < 0:
            return -1
        if is_name and name == -1:
            for t in range(len(_ALT_LENGTHS)):
                if _same(buf, i + 1, e, _ALT_TABLE[t], _ALT_LENGTHS[t]):
                    name = t
            if name < 0:
                return -1
        elif is_value and vs < 0:
            vs = i + 1
            ve = e
        else:
            return -1
        i = _ws(buf, e + 1)
    if i >= n or buf[i] != _RBRACE:
        return -1
    if has[name] or not _hex_into(buf, vs, ve, hashes[name], _WIDTHS[name]):
        return -1
    has[name] = True
    return i + 1


def media_arrays(run: bytes, source: str | None) -> ArrayBatch | None:
    """The Media records of ``run`` (UTF-8 JSON: objects separated by commas) as an
    :class:`ArrayBatch`, or None when one of them needs the careful path."""
    buf = np.frombuffer(run, np.uint8)
    most = int(np.count_nonzero(buf == _LBRACE))
    hashes = np.zeros((most, 4, 32), np.uint8)
    has = np.zeros((most, 4), np.bool_)
    category = np.empty(most, np.int8)
    flags = np.empty((most, 3), np.int8)
    size = np.empty(most, np.int64)
    spans = np.empty((most, len(TEXT_FIELDS), 2), np.int64)
    room = len(buf) // 4  # for extra; most lists have few properties opspoor does not map
    n = NEED_ROOM
    while n == NEED_ROOM:
        text = np.empty(len(buf) + room, np.uint8)
        n = _parse(buf, text, hashes, has, category, flags, size, spans)
        room *= 4
    if n <= 0:
        return None
    text = text[: max(len(buf), int(spans[:n, _F_EXTRA, 1].max()))]  # the rest was never written
    columns = {
        name: np.ascontiguousarray(hashes[:n, k, :width])
        for k, (name, width) in enumerate(ARRAY_HASHES.items())
    }
    return ArrayBatch(text, columns, has[:n], category[:n], flags[:n], size[:n], spans[:n], source)
