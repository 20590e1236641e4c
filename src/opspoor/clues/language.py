"""The language of a text (py3langid: its model ships inside the package, 97 languages, offline),
with the words that decided it.

"Decided" is measured, not guessed: each word is scored alone, and the words whose own best guess is
the text's language by the widest margin over the next language are the ones shown. Short texts
(fewer than :data:`MIN_WORDS` words) give no clue: three words are too easily another language's.
"""

from __future__ import annotations

import functools
import lzma
import re
import shutil
from pathlib import Path
from typing import IO, Any

import numpy as np

from opspoor.cachedir import cache_home, write_cache_file
from opspoor.clues.model import Clue

#: words (letters only, 2+) needed before a language is called
MIN_WORDS = 4
#: normalised probability the language must reach (over 97 languages, close relatives such as
#: Dutch, Afrikaans and Frisian share it: a Dutch sentence of 6-10 words scores 0.7-0.99)
MIN_CONFIDENCE = 0.5
#: how many deciding words are kept as evidence
DECIDING = 5
#: words whose own language is remembered per process (about 200 bytes each)
WORD_CACHE = 20_000

#: languages as countries: where a text in it most likely comes from (first) or also could
COUNTRIES: dict[str, tuple[str, ...]] = {
    "nl": ("NL", "BE", "SR"),
    "af": ("ZA", "NA"),
    "fy": ("NL",),
    "de": ("DE", "AT", "CH", "BE", "LU"),
    "fr": ("FR", "BE", "CH", "LU", "CA"),
    "en": ("GB", "US", "IE", "AU", "CA", "NZ"),
    "es": ("ES", "MX", "AR", "CO"),
    "it": ("IT", "CH"),
    "pt": ("PT", "BR"),
    "pl": ("PL",),
    "cs": ("CZ",),
    "da": ("DK",),
    "sv": ("SE", "FI"),
    "no": ("NO",),
    "nb": ("NO",),
    "fi": ("FI",),
    "tr": ("TR",),
    "ro": ("RO", "MD"),
    "hu": ("HU",),
    "el": ("GR", "CY"),
    "ru": ("RU", "BY", "KZ"),
    "uk": ("UA",),
    "ar": ("MA", "EG", "SA"),
}

#: the languages called: widely written ones. py3langid's 97 include regional languages and
#: dialects (Extremaduran, Aragonese, Walloon, ...) that take probability from their big
#: neighbours on short texts without being what an investigator needs to tell apart
LANGUAGES = [
    "af",
    "ar",
    "bg",
    "bs",
    "ca",
    "cs",
    "cy",
    "da",
    "de",
    "el",
    "en",
    "eo",
    "es",
    "et",
    "eu",
    "fa",
    "fi",
    "fr",
    "fy",
    "ga",
    "gl",
    "he",
    "hi",
    "hr",
    "hu",
    "hy",
    "id",
    "is",
    "it",
    "ja",
    "ka",
    "kk",
    "ko",
    "lb",
    "lt",
    "lv",
    "mk",
    "ms",
    "mt",
    "nb",
    "nl",
    "nn",
    "no",
    "pl",
    "pt",
    "ro",
    "ru",
    "sk",
    "sl",
    "sq",
    "sr",
    "sv",
    "sw",
    "th",
    "tl",
    "tr",
    "uk",
    "ur",
    "vi",
    "zh",
]

_WORD = re.compile(r"[^\W\d_]{2,}")


def load_model() -> None:
    """Load the model now (``clues.extract.share_models``): about 0.15 s of CPU from the unpacked
    copy in the cache folder; the first time, 0.6 s (its xz-compressed file unpacked to 68 MB)."""
    _identifier()


@functools.cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    packed = MODEL_DIR / MODEL_FILE
    try:
        ptc, pc, classes, nextmove, row, output = _unpacked_model(packed)
        ident = LanguageIdentifier(
            np.asarray(ptc), np.asarray(pc), classes, nextmove, output, norm_probs=True, tk_row=row
        )
    except Exception:  # any other layout or an unwritable cache: py3langid's own way, as before
        ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages([lang for lang in LANGUAGES if lang in ident.labels])
    return ident


def _unpacked_model(packed: Path) -> tuple[Any, ...]:
    """py3langid's model read from an unpacked copy in the cache folder (made on first use): the
    xz unpacking is 0.45 s of the 0.6 s a load costs, in every scan. Keyed by the packed file's
    size and time, so a new py3langid makes a new copy."""
    from py3langid.modelio import _to_array

    st = packed.stat()
    copy = cache_home() / "models" / f"langid-{st.st_size}-{int(st.st_mtime)}.npz"
    if not copy.exists():
        _unpack(packed, copy)
    with np.load(copy, allow_pickle=False) as data:
        return (
            data["ptc"],
            data["pc"],
            data["classes"].tolist(),
            _to_array(data["nextmove"]),
            _to_array(data["nextmove_row"]),
            data["out_feat"].tolist(),
        )


def _unpack(packed: Path, copy: Path) -> None:
    """Unpack the model owner-only, all at once (``cachedir.write_cache_file``)."""

    def fill(out: IO[bytes]) -> None:
        with lzma.open(packed) as src:
            shutil.copyfileobj(src, out, length=1 << 20)

    write_cache_file(copy, fill)


def words_of(text: str) -> list[str]:
    return _WORD.findall(text)


def identify(text: str) -> tuple[str, float, list[str]] | None:
    """(language, confidence, deciding words) of ``text``, or None when it says too little."""
    words = words_of(text)
    if len(words) < MIN_WORDS:
        return None
    ident = _identifier()
    lang, prob = ident.classify(" ".join(text.split()))
    if prob < MIN_CONFIDENCE:
        return None
    margins: dict[str, float] = {}
    for w in {w.lower() for w in words if len(w) >= 3}:
        own, margin = _word_lead(w)
        if own == lang:
            margins[w] = margin
    deciding = sorted(margins, key=lambda w: (-margins[w], w))[:DECIDING]
    return str(lang), float(prob), deciding


@functools.lru_cache(maxsize=WORD_CACHE)
def _word_lead(word: str) -> tuple[str, float]:
    """A word's own best language and its margin over the next. Kept per process: the words of a
    case repeat (every file of a folder has the folder's words), and each costs a model run."""
    ranked = _identifier().rank(word)
    if not ranked:
        return "", 0.0
    return str(ranked[0][0]), ranked[0][1] - (ranked[1][1] if len(ranked) > 1 else 0.0)


def language_clues(text: str, source: str) -> list[Clue]:
    found = identify(text)
    if found is None:
        return []
    lang, prob, deciding = found
    evidence = "words: " + ", ".join(deciding) if deciding else ""
    return [
        Clue(
            "language",
            lang,
            source,
            COUNTRIES.get(lang, ()),
            evidence,
            {"confidence": round(prob, 3), "deciding_words": deciding, "words": len(words_of(text))},
        )
    ]
