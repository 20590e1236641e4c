"""Media limits (issue 17): an image whose header promises pixels its data does not hold is an
error, never a hash of the missing (black) rows; the command line and the service share one pixel
limit; the decode-memory estimate the service's budget uses follows the decode."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from opspoor.cli import app as cli_app
from opspoor.demo.pngs import png_bytes
from opspoor.errors import MediaTooLarge, UndecodableMedia
from opspoor.media.image import decode_image, decode_memory
from opspoor.media.limits import MAX_PIXELS
from opspoor.service.settings import Settings
from opspoor.signals.engine import HashOptions, hash_bytes
from test_service import Api, is_problem, running


@pytest.fixture
def served(sqlite_url: str) -> Iterator[Api]:
    """The service through FastAPI's TestClient (``test_service.running``)."""
    with running(sqlite_url) as a:
        yield a


@pytest.mark.parametrize("rows", [0, 1, 299])
def test_a_png_with_fewer_rows_than_its_header_promises_is_undecodable(rows: int) -> None:
    whole = png_bytes(400, 300)
    assert decode_image(whole).height == 300
    short = png_bytes(400, 300, rows=rows)
    if rows:
        with Image.open(io.BytesIO(short)) as im:  # Pillow alone fills the rest with black, silently
            im.load()
    with pytest.raises(UndecodableMedia, match="png is truncated: its image data holds"):
        decode_image(short, where="short.png")
    sig = hash_bytes(short, where="short.png")
    assert sig.pdq is None and isinstance(sig.error, UndecodableMedia) and sig.md5


def test_truncated_png_is_an_error_in_the_cli_and_the_service(served: Api, tmp_path: Path) -> None:
    api = served
    path = tmp_path / "short.png"
    path.write_bytes(png_bytes(400, 300, rows=10))
    result = CliRunner().invoke(cli_app, ["hash", "--json", str(path)])
    (row,) = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert row["pdq"] is None and "truncated" in row["error"]
    r = api.client.post(
        "/v1/hash", headers=api.auth("a", "platform"), files={"file": ("short.png", path.read_bytes())}
    )
    assert r.status_code == 200 and r.json()["pdq"] is None and "truncated" in r.json()["error"]["message"]


def test_one_pixel_limit_for_the_cli_and_the_service(served: Api, tmp_path: Path) -> None:
    api = served
    assert HashOptions().max_pixels == MAX_PIXELS
    # the service keeps its own, lower setting (OPSPOOR_SERVICE_MAX_PIXELS), never above the media's
    service_limit = min(Settings().max_pixels, MAX_PIXELS)
    assert service_limit == 100_000_000
    # grey, one row of data: about 250 MB decoded, inside the service's memory budget of 256 MiB
    wide = png_bytes(20_000, MAX_PIXELS // 20_000 + 1, rows=1, color=0)
    with pytest.raises(MediaTooLarge, match=f"above the limit of {MAX_PIXELS:,}"):
        decode_image(wide)
    path = tmp_path / "wide.png"
    path.write_bytes(wide)
    result = CliRunner().invoke(cli_app, ["hash", "--json", str(path)])
    (row,) = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    r = api.client.post("/v1/hash", headers=api.auth("a", "platform"), files={"file": ("wide.png", wide)})
    assert r.status_code == 200, r.text
    assert f"above the limit of {MAX_PIXELS:,}" in row["error"]
    assert f"above the limit of {service_limit:,}" in r.json()["error"]["message"]


def test_an_upload_whose_decode_exceeds_the_memory_budget_is_refused_with_413(served: Api) -> None:
    api = served
    big = png_bytes(10_000, 10_000, rows=1)  # the header is what counts: ~500 MB decoded
    assert decode_memory(big) > 256 << 20
    for route in ("/v1/hash", "/v1/match"):
        r = api.client.post(route, headers=api.auth("a", "platform"), files={"file": ("big.png", big)})
        assert is_problem(r, 413)["type"].endswith("decode-too-large")
    # a JPEG of the same size is decoded at 1/8 of it: well inside the budget
    out = io.BytesIO()
    Image.new("L", (10_000, 10_000), 128).save(out, "JPEG")
    assert decode_memory(out.getvalue()) < 16 << 20


def test_decode_memory_counts_the_second_decode_of_a_16_bit_image() -> None:
    """A 16-bit grey image is decoded twice (its picture, then clip16 at full size, while the first
    is held): the estimate covers both, the second being its 16-bit pixels and their RGB copy."""
    import numpy as np
    from PIL import Image

    side = 512
    out = io.BytesIO()
    grey16 = (np.arange(side * side, dtype=np.uint32) % 65536).astype(np.uint16).reshape(side, side)
    Image.fromarray(grey16).save(out, "PNG")  # mode I;16
    data = out.getvalue()
    px = side * side
    first = (px * 2 + px * 4) * 5 // 4  # its 16-bit pixels and the converted copy, as for any image
    assert decode_memory(data) >= first + px * (2 + 3)
