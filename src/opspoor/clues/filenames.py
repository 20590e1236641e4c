"""Clues in file names and paths: which app or camera named the file, and words in the names.

A WhatsApp picture ("IMG-20240112-WA0003.jpg") was sent through WhatsApp; "IMG_1234.JPG" is an
iPhone's (or another camera's) own name; "photo_12@05-03-2024_10-11-12.jpg" is Telegram Desktop's.
The app is a lead for the investigator (which account, which phone), not a country; the words of
folder and file names are, when there are enough of them to call a language.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from opspoor.clues.language import language_clues
from opspoor.clues.model import Clue

#: (what named it, pattern on the file name), first match wins
NAMING: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("WhatsApp", re.compile(r"^(?:IMG|VID|AUD|PTT|STK)-\d{8}-WA\d{4}", re.I)),
    ("WhatsApp", re.compile(r"^WhatsApp (?:Image|Video) \d{4}-\d{2}-\d{2} at ", re.I)),
    ("Telegram", re.compile(r"^(?:photo|video|file)_\d+@\d{2}-\d{2}-\d{4}_\d{2}-\d{2}-\d{2}", re.I)),
    ("Telegram", re.compile(r"^(?:[0-9]{3,}_)?\d{6,}_\d{6,}\.(?:jpe?g|mp4)$", re.I)),
    ("Signal", re.compile(r"^signal-\d{4}-\d{2}-\d{2}-\d{6}", re.I)),
    ("Snapchat", re.compile(r"^Snapchat-\d{6,}", re.I)),
    ("Screenshot", re.compile(r"^(?:Screenshot|Schermafbeelding|Bildschirmfoto)[ _-]", re.I)),
    ("iPhone/iPad camera", re.compile(r"^IMG_\d{4}(?:\.|\s|$)", re.I)),
    ("Android camera", re.compile(r"^(?:IMG|VID|PXL)_\d{8}_\d{6}", re.I)),
    ("digital camera (DCF)", re.compile(r"^(?:DSC|DSCN|DSCF|P\d{3}|_DSC)[_]?\d{4}", re.I)),
)

#: folder names that say where a file was kept, for the evidence line
_APP_FOLDERS = {"whatsapp": "WhatsApp", "telegram": "Telegram", "dcim": "camera roll (DCIM)"}


def filename_clues(path: str) -> list[Clue]:
    """Clues in one evidence path (``folder/sub/name.jpg`` or ``archive.zip!member``)."""
    inner = path.replace("!", "/")
    parts = PurePosixPath(inner).parts
    name = parts[-1] if parts else inner
    out: list[Clue] = []
    for app, pattern in NAMING:
        if pattern.search(name):
            out.append(Clue("filename", app, "name", (), f"file name {name!r} follows {app}'s naming"))
            break
    for folder in parts[:-1]:
        app_folder = _APP_FOLDERS.get(folder.lower())
        if app_folder and not any(c.value == app_folder for c in out):
            out.append(Clue("filename", app_folder, "path", (), f"kept in folder {folder!r}"))
    words = " ".join(re.split(r"[\W_\d]+", " ".join(p for p in parts if p not in ("/", ""))))
    out.extend(language_clues(words, "name"))
    return out
