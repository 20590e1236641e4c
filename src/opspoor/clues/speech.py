"""The spoken-language slot: where an operator plugs in a model that names the language spoken in
a video's sound. **opspoor ships no such model** and never downloads one.

A plugin is a Python entry point in the group :data:`ENTRY_POINT_GROUP` whose object is a callable
``detect(samples, rate) -> list[tuple[str, float]]``: mono float32 samples in [-1, 1] at ``rate`` Hz
(16 kHz, the rate speech models expect), answered with (ISO 639-1 language, probability) pairs, most
likely first. Register it in the plugin package's ``pyproject.toml``::

    [project.entry-points."opspoor.speech_language"]
    mymodel = "my_package.lid:detect"

The scan calls the first plugin found (or the one ``OPSPOOR_SPEECH_PLUGIN`` names) on up to
:data:`MAX_SECONDS` of each new video's sound; a language at :data:`MIN_PROBABILITY` or more becomes
a ``language`` clue with source ``speech``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from importlib.metadata import entry_points

import numpy as np

from opspoor.clues.language import COUNTRIES
from opspoor.clues.model import Clue

ENTRY_POINT_GROUP = "opspoor.speech_language"
PLUGIN_ENV = "OPSPOOR_SPEECH_PLUGIN"
RATE = 16_000
MAX_SECONDS = 60.0
MIN_PROBABILITY = 0.6

Detect = Callable[[np.ndarray, int], list[tuple[str, float]]]


@functools.cache
def speech_plugin() -> tuple[str, Detect] | None:
    """(name, detect) of the installed plugin, or None (the default: none is shipped)."""
    wanted = os.environ.get(PLUGIN_ENV)
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if wanted and ep.name != wanted:
            continue
        return ep.name, ep.load()
    return None


def speech_clues(samples: np.ndarray, rate: int, detect: Detect, name: str) -> list[Clue]:
    """The plugin's answer on these samples as clues."""
    if samples.size == 0:
        return []
    answers = detect(samples.astype(np.float32, copy=False), rate)
    out = []
    for lang, prob in answers[:1]:
        if prob >= MIN_PROBABILITY:
            out.append(
                Clue(
                    "language",
                    lang,
                    "speech",
                    COUNTRIES.get(lang, ()),
                    f"spoken, by plugin {name} (p={prob:.2f})",
                    {"confidence": round(float(prob), 3), "plugin": name},
                )
            )
    return out
