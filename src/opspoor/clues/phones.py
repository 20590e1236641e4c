"""Phone numbers in text (Google's libphonenumber data, offline) and the country each belongs to.

A number written with its country prefix (+31, 0032) says its country. One written in national
form ("06-12345678") is valid in several countries; it is read in the first of ``regions`` where
it is valid: the countries of the text's own language first (a Dutch sign's number is Dutch), then
the country of interest. Only valid numbers count, so a run of digits in a serial or a date does
not become a clue.
"""

from __future__ import annotations

from collections.abc import Sequence

import phonenumbers

from opspoor.clues.model import Clue, snippet


def _national_region(raw: str, regions: Sequence[str]) -> tuple[str, phonenumbers.PhoneNumber] | None:
    for region in regions:
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return region, number
    return None


def phone_clues(
    text: str, source: str, country: str = "NL", language_regions: Sequence[str] = ()
) -> list[Clue]:
    regions = list(dict.fromkeys([*language_regions, country]))
    out: list[Clue] = []
    seen: set[str] = set()
    for region in regions:
        for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            raw = m.raw_string.strip()
            detail = {"written": raw}
            number = m.number
            if not raw.startswith(("+", "00")):
                found = _national_region(raw, regions)
                if found is None:
                    continue
                read_as, number = found
                detail["read_as"] = f"written without country prefix; read as {read_as}"
            formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            if formatted in seen:
                continue
            seen.add(formatted)
            where = phonenumbers.region_code_for_number(number)
            out.append(
                Clue(
                    "phone",
                    formatted,
                    source,
                    (where,) if where and where != "ZZ" else (),
                    snippet(text, m.start, m.end),
                    detail,
                )
            )
    return out
