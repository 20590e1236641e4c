"""Phone numbers in text (Google's libphonenumber data, offline) and the country each belongs to.

Numbers written without a country prefix are read as numbers of the country of interest (a Dutch
"06-12345678" is Dutch when the case is Dutch); only numbers that are valid for their country count,
so a run of digits in a serial or a date does not become a clue.
"""

from __future__ import annotations

import phonenumbers

from opspoor.clues.model import Clue, snippet


def phone_clues(text: str, source: str, country: str = "NL") -> list[Clue]:
    out: list[Clue] = []
    seen: set[str] = set()
    for m in phonenumbers.PhoneNumberMatcher(text, country, leniency=phonenumbers.Leniency.VALID):
        number = phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        if number in seen:
            continue
        seen.add(number)
        region = phonenumbers.region_code_for_number(m.number)
        out.append(
            Clue(
                kind="phone",
                value=number,
                source=source,
                countries=(region,) if region and region != "ZZ" else (),
                evidence=snippet(text, m.start, m.end),
                detail={"written": m.raw_string},
            )
        )
    return out
