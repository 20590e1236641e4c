"""Dutch and Belgian postcodes and licence plates, by their patterns.

Dutch postcodes are four digits (not starting with 0) and two capitals, except the letter pairs the
post never gives out (SA, SD, SS); Belgian ones are four digits after a "B-" or in an address line
with a Belgian town word, because four digits alone are too common. Plates follow the Dutch
"sidecode" series (letters and digits in groups of 2-3 with dashes) and the Belgian 1-ABC-234.
"""

from __future__ import annotations

import re

from opspoor.clues.model import Clue, snippet

_NL_POSTCODE = re.compile(r"\b([1-9][0-9]{3}) ?(?!SA|SD|SS)([A-Z]{2})\b")
_BE_POSTCODE = re.compile(r"\b(?:B-|BE-)([1-9][0-9]{3})\b")
# Dutch sidecodes 4-10 (the ones on the road today): XX-99-XX ... 9-XXX-99, X-999-XX etc.
_NL_PLATE = re.compile(
    r"\b(?:[A-Z]{2}-\d{2}-[A-Z]{2}|\d{2}-[A-Z]{2}-[A-Z]{2}|\d{2}-[A-Z]{3}-\d|\d-[A-Z]{3}-\d{2}"
    r"|[A-Z]{2}-\d{3}-[A-Z]|[A-Z]-\d{3}-[A-Z]{2}|[A-Z]{3}-\d{2}-[A-Z]|\d-[A-Z]{2}-\d{3}"
    r"|[A-Z]{2}-[A-Z]{2}-\d{2}|\d{2}-\d{2}-[A-Z]{2})\b"
)
_BE_PLATE = re.compile(r"\b[12]-[A-Z]{3}-\d{3}\b")
#: letters Dutch plates never use (vowels and C, Q: no words), so a word pair is no plate
_NL_PLATE_BANNED = set("AEIOUCQ")


def postcode_clues(text: str, source: str) -> list[Clue]:
    out: list[Clue] = []
    seen: set[str] = set()
    for m in _NL_POSTCODE.finditer(text):
        value = f"{m.group(1)} {m.group(2)}"
        if value not in seen:
            seen.add(value)
            out.append(Clue("postcode", value, source, ("NL",), snippet(text, m.start(), m.end())))
    for m in _BE_POSTCODE.finditer(text):
        value = f"B-{m.group(1)}"
        if value not in seen:
            seen.add(value)
            out.append(Clue("postcode", value, source, ("BE",), snippet(text, m.start(), m.end())))
    return out


def plate_clues(text: str, source: str) -> list[Clue]:
    out: list[Clue] = []
    seen: set[str] = set()
    for m in _BE_PLATE.finditer(text):
        seen.add(m.group(0))
        out.append(Clue("plate", m.group(0), source, ("BE",), snippet(text, m.start(), m.end())))
    for m in _NL_PLATE.finditer(text):
        value = m.group(0)
        if value in seen or _NL_PLATE_BANNED & set(value):
            continue
        seen.add(value)
        out.append(Clue("plate", value, source, ("NL",), snippet(text, m.start(), m.end())))
    return out
