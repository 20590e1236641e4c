"""16-bit grey images as python-threatexchange and HMA hash them (issue 16): their PDQ pipeline gives
Pillow's clipped ``convert("RGB")`` to ``pdqhash``; opspoor keeps the high byte and adds their
picture as one more query hash (``clip16``). Generated benign pictures only."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from opspoor.cli import app
from opspoor.demo.images import generate_image
from opspoor.hashsets.model import Entry
from opspoor.media.image import clipped_16bit_rgb
from opspoor.signals.engine import ROBUST_PRESETS, HashOptions, hash_bytes
from opspoor.signals.pdq import PDQ, pdq_from_rgb
from opspoor.store import import_entries, open_store


def png16(seed: int, scale: int) -> bytes:
    """A generated grey picture stored as a 16-bit PNG, each 8-bit value times ``scale``."""
    grey = np.asarray(generate_image(seed, 640, 480, style="shapes").convert("L")).astype(np.uint32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(grey * scale, 0, 65535).astype(np.uint16)).save(buf, "PNG")
    data = buf.getvalue()
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    return data


def their_pdq(data: bytes) -> tuple[str, int]:
    """python-threatexchange's PDQ of a file (the oracle)."""
    hasher = pytest.importorskip("threatexchange.signal_type.pdq.pdq_hasher")
    return hasher.pdq_from_bytes(data)  # type: ignore[no-any-return]


def clip16(data: bytes) -> list[tuple[str, ...]]:
    sig = hash_bytes(data, options=HashOptions(robust=ROBUST_PRESETS["fast"]))
    return [v for v in sig.pdq_variants or [] if v[1] == "clip16"]


def test_clipped_pixels_are_what_pillow_convert_gives() -> None:
    data = png16(3, 257)
    clipped = clipped_16bit_rgb(data)
    assert clipped is not None and clipped.shape == (480, 640, 3)
    assert clipped.max() == 255 and (clipped == 255).mean() > 0.9  # most values are above 255
    assert clipped_16bit_rgb(png16(3, 1)) is not None
    buf = io.BytesIO()
    generate_image(3, 64, 48).save(buf, "PNG")
    assert clipped_16bit_rgb(buf.getvalue()) is None  # 8-bit: nothing to add


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_an_8_bit_picture_in_a_16_bit_file_gets_their_hash(seed: int) -> None:
    """Values 0-255 in a 16-bit file: their hash is the picture's, ours of the high bytes is black."""
    data = png16(seed, 1)
    theirs, quality = their_pdq(data)
    assert quality >= 50
    sig = hash_bytes(data)
    assert PDQ.distance(sig.pdq, theirs) > 31  # the plain hash alone would never match their list
    (found,) = clip16(data)
    assert found[0] == theirs and pdq_from_rgb(clipped_16bit_rgb(data)).hash == theirs  # type: ignore[arg-type]


def test_no_clip16_hash_for_a_picture_that_clips_to_white() -> None:
    """Full-range 16-bit: clipped, the picture is flat white (their quality 0, which HMA drops):
    such a hash would match any other flat picture, so none is made."""
    data = png16(4, 257)
    assert their_pdq(data)[1] < 10
    assert clip16(data) == []


def test_a_list_made_by_threatexchange_matches_the_16_bit_file(tmp_path: pytest.TempPathFactory) -> None:
    data = png16(7, 1)
    theirs, _ = their_pdq(data)
    db = f"sqlite:///{tmp_path}/s.sqlite"  # type: ignore[operator]
    with open_store(db) as store:
        import_entries(store, "hma", [Entry({"pdq": theirs}, external_id="from-hma")])
    path = tmp_path / "grey16.png"  # type: ignore[operator]
    path.write_bytes(data)
    res = CliRunner().invoke(app, ["match", "--hashset", "hma", "--db", db, str(path), "--json"])
    assert res.exit_code == 0, res.output
    (doc,) = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert [(m["external_id"], m["distance"], m.get("method")) for m in doc["matches"]] == [
        ("from-hma", 0, "clip16")
    ]
