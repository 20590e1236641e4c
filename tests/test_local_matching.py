"""Local features in the product: stored by ``hashset build --augment``, matched by the scan and
``opspoor match``, cached with the other indexes; the encoded value and the signal type."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from opspoor.casefile.scan import scan_case
from opspoor.cli import app
from opspoor.errors import SignalError
from opspoor.matching import IndexGroup
from opspoor.signals import get_signal
from opspoor.signals.local import MIN_INLIERS, LocalFeatures, local_distance, local_features
from opspoor.store import has_signal, load_signal_texts, open_store
from opspoor.triage.config import ScanConfig
from pictures import busy_picture

runner = CliRunner()


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _off_centre_crop(img: Image.Image) -> Image.Image:
    """20 % cut off the right and the bottom: no PDQ of the original or of its centre crops is near."""
    w, h = img.size
    return img.crop((0, 0, w * 4 // 5, h * 4 // 5))


def test_features_survive_their_text_form() -> None:
    f = local_features(np.asarray(busy_picture(1)))
    back = LocalFeatures.decode(f.encode())
    assert np.array_equal(back.descriptors, f.descriptors)
    assert np.abs(back.points - f.points).max() <= 1 / 64
    assert LocalFeatures.decode(LocalFeatures.empty().encode()).descriptors.shape == (0, 32)
    assert back.mirror is None


def test_a_querys_mirror_survives_the_text_form() -> None:
    f = local_features(np.asarray(busy_picture(1)), mirror=True)
    assert f.mirror is not None and len(f.mirror) > 100
    back = LocalFeatures.decode(f.encode())
    assert back.mirror is not None and np.array_equal(back.mirror.descriptors, f.mirror.descriptors)
    assert np.array_equal(back.descriptors, f.descriptors)
    text = base64.b64decode(f.encode())
    for damaged in (text[:-5], text + b"\x00", text[: len(text) - len(f.mirror) * 36 - 1]):
        with pytest.raises(SignalError):
            LocalFeatures.decode(base64.b64encode(damaged).decode())


@pytest.mark.parametrize("bad", ["not base64 at all!", "", "AQA=", "AQAAAA" + "A" * 40])
def test_a_damaged_value_is_a_signal_error(bad: str) -> None:
    with pytest.raises(SignalError):
        LocalFeatures.decode(bad)
    with pytest.raises(SignalError):
        get_signal("local").validate(bad)


def test_the_signal_type_compares_a_copy_and_an_unrelated_picture() -> None:
    local = get_signal("local")
    original = local_features(np.asarray(busy_picture(2))).encode()
    copy = local_features(np.asarray(_off_centre_crop(busy_picture(2)))).encode()
    other = local_features(np.asarray(busy_picture(3))).encode()
    assert local.validate(original) == original
    assert local.distance(copy, original) <= local.default_threshold
    assert local.distance(other, original) == 255
    assert local_distance(MIN_INLIERS) == 31 and local_distance(MIN_INLIERS + 100) == 0


@pytest.fixture()
def holdings(tmp_path: Path) -> dict[str, Path]:
    """A hotline's own originals (benign busy pictures) and evidence holding copies of them."""
    originals = tmp_path / "originals"
    originals.mkdir()
    for k in range(3):
        (originals / f"item{k}.png").write_bytes(_png(busy_picture(10 + k)))
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "crop.jpg").write_bytes(_jpeg(_off_centre_crop(busy_picture(11))))
    mirrored = _off_centre_crop(busy_picture(12)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    (evidence / "mirrored.jpg").write_bytes(_jpeg(mirrored))
    (evidence / "other.jpg").write_bytes(_jpeg(busy_picture(99)))
    return {"originals": originals, "evidence": evidence, "root": tmp_path}


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _build(db: str, folder: Path, *extra: str) -> None:
    args = ["hashset", "build", str(folder), "--name", "own", "--augment", "--workers", "1", *extra]
    res = runner.invoke(app, [*args, "--db", db])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("local", [True, False])
def test_build_stores_each_images_local_features_unless_told_not_to(
    holdings: dict[str, Path], sqlite_url: str, local: bool
) -> None:
    _build(sqlite_url, holdings["originals"], "--local" if local else "--no-local")
    with open_store(sqlite_url) as store:
        ids, texts = load_signal_texts(store, ["own"], "local")
        assert has_signal(store, ["own"], "local") == local
    assert len(ids) == (3 if local else 0) and len(set(ids.tolist())) == len(ids)
    assert all(len(LocalFeatures.decode(t)) > 100 for t in texts)


def _scan(db: str, evidence: Path, case: Path, **kw: object) -> dict[str, dict]:
    cfg = ScanConfig(sources=[evidence], hashsets=["own"], case_dir=case, db_url=db, workers=1, **kw)  # type: ignore[arg-type]
    assert scan_case(cfg).reconciled
    return {r["path"]: r for r in map(json.loads, (case / "files.jsonl").read_text().splitlines())}


def test_the_scan_finds_an_off_centre_crop_by_local_features(
    holdings: dict[str, Path], sqlite_url: str
) -> None:
    _build(sqlite_url, holdings["originals"])
    before = {p: p.read_bytes() for p in holdings["evidence"].iterdir()}
    found = _scan(sqlite_url, holdings["evidence"], holdings["root"] / "case")
    crop, other = found["evidence/crop.jpg"], found["evidence/other.jpg"]
    assert crop["status"] == "known"
    assert [(m["external_id"], m["signal"]) for m in crop["matches"]] == [("item1.png", "local")]
    assert "distance" not in crop["matches"][0] and crop["matches"][0]["inliers"] >= 16  # what decided it
    assert other["status"] == "new" and other["matches"] == []
    # a flipped crop is found by the mirror image of its features
    mirrored = found["evidence/mirrored.jpg"]
    assert [(m["external_id"], m["method"]) for m in mirrored["matches"]] == [("item2.png", "local/mirror")]
    assert "local" not in crop  # the features are matched, not written into the case
    assert before == {p: p.read_bytes() for p in holdings["evidence"].iterdir()}
    # without local features the crop is new: no PDQ method reaches it
    off = _scan(sqlite_url, holdings["evidence"], holdings["root"] / "case-off", local=False)
    assert off["evidence/crop.jpg"]["status"] == "new"


def test_a_set_without_local_features_costs_the_scan_nothing(
    holdings: dict[str, Path], sqlite_url: str
) -> None:
    _build(sqlite_url, holdings["originals"], "--no-local")
    found = _scan(sqlite_url, holdings["evidence"], holdings["root"] / "case")
    assert found["evidence/crop.jpg"]["status"] == "new"


def test_the_cached_index_keeps_the_local_features(
    holdings: dict[str, Path], sqlite_url: str, tmp_path: Path
) -> None:
    _build(sqlite_url, holdings["originals"])
    with open_store(sqlite_url) as store:
        group = IndexGroup.build(store, ["own"], "default")
    assert group.local is not None and group.sizes()["local"] == 3
    group.save(tmp_path / "cached")
    loaded = IndexGroup.load(tmp_path / "cached")
    assert loaded.local is not None
    for name in ("points", "descriptors", "owner", "extent"):
        assert np.array_equal(getattr(loaded.local, name), getattr(group.local, name))
    query = local_features(np.asarray(_off_centre_crop(busy_picture(12))))
    assert [m.owner for m in loaded.local.match(query)] == [m.owner for m in group.local.match(query)]
    assert len(loaded.local.match(query)) == 1


def test_match_command_finds_the_crop(holdings: dict[str, Path], sqlite_url: str) -> None:
    _build(sqlite_url, holdings["originals"])
    files = [str(holdings["evidence"] / n) for n in ("crop.jpg", "other.jpg")]
    res = runner.invoke(
        app, ["match", *files, "--hashset", "own", "--json", "--workers", "1", "--db", sqlite_url]
    )
    assert res.exit_code == 0, res.output
    rows = {Path(r["input"]).name: r["matches"] for r in map(json.loads, res.stdout.splitlines())}
    assert [(m["external_id"], m["signal"]) for m in rows["crop.jpg"]] == [("item1.png", "local")]
    assert rows["other.jpg"] == []
    res = runner.invoke(
        app,
        ["match", files[0], "--hashset", "own", "--json", "--no-local", "--workers", "1", "--db", sqlite_url],
    )
    assert json.loads(res.stdout.splitlines()[0])["matches"] == []
