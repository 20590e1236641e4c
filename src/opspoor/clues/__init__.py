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

#: (name, finder(text, source, country of interest)) for every kind of clue found in text
TEXT_CLUES: tuple[tuple[str, Callable[[str, str, str], list[Clue]]], ...] = (
    ("language", lambda text, source, _country: language_clues(text, source)),
    ("phone", phone_clues),
    ("postcode", lambda text, source, _country: postcode_clues(text, source)),
    ("plate", lambda text, source, _country: plate_clues(text, source)),
    ("url", lambda text, source, _country: url_clues(text, source)),
)


def text_clues(text: str, source: str, country: str = "NL") -> list[Clue]:
    """Every clue the registry finds in ``text``."""
    out: list[Clue] = []
    for _name, find in TEXT_CLUES:
        out.extend(find(text, source, country))
    return out


__all__ = ["TEXT_CLUES", "Clue", "text_clues"]
