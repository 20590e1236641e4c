"""Location clues: what in a new file says where it was made (docs/clues.md).

One module per kind of clue; :data:`TEXT_CLUES` is the registry of what is looked for in any text
(OCR of a picture or a video frame, subtitles, file names): a new kind is one module and one line.
"""

from __future__ import annotations

from collections.abc import Callable

from opspoor.clues.language import language_clues
from opspoor.clues.model import Clue
from opspoor.clues.phones import phone_clues
from opspoor.clues.postcodes import plate_clues, postcode_clues
from opspoor.clues.urls import url_clues

#: (name, finder(text, source, country of interest, clues found so far)) for every kind of clue
#: found in text; language comes first, so that the finders after it can use it
Finder = Callable[[str, str, str, list[Clue]], list[Clue]]
TEXT_CLUES: tuple[tuple[str, Finder], ...] = (
    ("language", lambda text, source, _country, _so_far: language_clues(text, source)),
    ("phone", lambda text, source, country, so_far: phone_clues(text, source, country, _spoken_in(so_far))),
    ("postcode", lambda text, source, _country, _so_far: postcode_clues(text, source)),
    ("plate", lambda text, source, _country, _so_far: plate_clues(text, source)),
    ("url", lambda text, source, _country, _so_far: url_clues(text, source)),
)


def _spoken_in(clues: list[Clue]) -> list[str]:
    """Where the text's language is mostly written (its first two countries)."""
    return [cc for c in clues if c.kind == "language" for cc in c.countries[:2]]


def text_clues(text: str, source: str, country: str = "NL") -> list[Clue]:
    """Every clue the registry finds in ``text``."""
    out: list[Clue] = []
    for _name, find in TEXT_CLUES:
        out.extend(find(text, source, country, out))
    return out


__all__ = ["TEXT_CLUES", "Clue", "text_clues"]
