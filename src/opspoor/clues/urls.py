"""Web addresses, e-mail domains and their country-code top-level domains."""

from __future__ import annotations

import re

from opspoor.clues.model import Clue, snippet

_HOST = re.compile(
    r"(?i)\b(?:https?://|www\.|[a-z0-9._%+-]+@)?((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,12}))\b"
)
#: generic top-level domains worth naming (an address, no country); other letters after a dot
#: are mostly OCR noise or file extensions ("photo.jpg")
_GENERIC = {"com", "org", "net", "info", "edu", "gov", "io", "app", "online", "shop", "tv", "eu"}
#: two-letter endings that are file extensions or common abbreviations, never read as a country
_NOT_CC = {"js", "py", "sh", "md", "gz", "db", "pl", "rs", "cs", "ts"}
#: ccTLDs that differ from the ISO code
_TLD_COUNTRY = {"uk": "GB"}


def url_clues(text: str, source: str) -> list[Clue]:
    out: list[Clue] = []
    seen: set[str] = set()
    for m in _HOST.finditer(text):
        host, tld = m.group(1).lower(), m.group(2).lower()
        explicit = m.group(0).lower().startswith(("http", "www.")) or "@" in m.group(0)
        if host in seen or host.count(".") < 1:
            continue
        if len(tld) == 2 and tld not in _NOT_CC:
            countries: tuple[str, ...] = (_TLD_COUNTRY.get(tld, tld.upper()),)
        elif tld in _GENERIC:
            countries = ()
        else:
            continue
        if not explicit and len(host.split(".")[-2]) < 2:
            continue  # "a.nl" is more likely OCR noise than an address
        seen.add(host)
        out.append(Clue("url", host, source, countries, snippet(text, m.start(), m.end())))
    return out
