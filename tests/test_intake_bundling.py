"""Bundling of intake reports, on SQLite and PostgreSQL: reports that share a video by vPDQ join one
bundle, a report that links bundles merges them into one, and each worker's bundle index catches up
with the reports another worker finished (store.intake_bundles).

Every picture and video is generated (gradients, shapes).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from opspoor.demo.videos import generate_video
from opspoor.store import open_store
from opspoor.store.intake import (
    Lifetimes,
    NewFile,
    Outcome,
    add_file,
    finish_report,
    get_report,
    open_report,
)
from opspoor.store.intake_bundles import BundleIndex
from opspoor.store.tokens import create_token
from test_intake import picture, report_doc, show, step, submit, upload
from test_service import Api, running

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with running(db_url) as a:
        yield a


def video(tmp_path: Path, seed: int, size: tuple[int, int], container: str = "mp4") -> bytes:
    path = generate_video(tmp_path / f"v{seed}-{size[0]}.{container}", seed, seconds=6, fps=5, size=size)
    return path.read_bytes()


def finished(api: Api, *files: bytes) -> int:
    rid = submit(api, report_doc())
    for data in files:
        r = upload(api, rid, data)
        assert r.status_code == 200, r.text
    r = step(api, rid, "finish")
    assert r.status_code == 200, r.text
    return rid


def bundle_of(api: Api, rid: int) -> int | None:
    b = show(api, rid).json()["bundleId"]
    return None if b is None else int(b)


def test_reports_sharing_a_video_by_vpdq_join_one_bundle(api: Api, tmp_path: Path) -> None:
    original = video(tmp_path, 5, (320, 240))
    smaller = video(tmp_path, 5, (240, 180), "matroska")  # another encoding: another MD5
    other = video(tmp_path, 9, (320, 240))
    assert original != smaller
    a, b, c = finished(api, original), finished(api, smaller), finished(api, other)
    assert bundle_of(api, a) is not None and bundle_of(api, a) == bundle_of(api, b)
    assert bundle_of(api, c) is None
    files = [show(api, r).json()["files"][0] for r in (a, b)]
    assert files[0]["md5"] != files[1]["md5"] and files[0]["pdq"] is None  # by vPDQ alone


def test_a_report_that_links_two_bundles_merges_them(api: Api) -> None:
    one, two = picture(11), picture(12)
    a, b = finished(api, one), finished(api, one)  # bundle X
    c, d = finished(api, two), finished(api, two)  # bundle Y
    x, y = bundle_of(api, a), bundle_of(api, c)
    assert x is not None and y is not None and x != y and bundle_of(api, b) == x and bundle_of(api, d) == y
    e = finished(api, one, two)  # shares with both reports of each bundle
    assert {bundle_of(api, r) for r in (a, b, c, d, e)} == {min(x, y)}
    incidents = api.client.get(f"/v1/intake/bundles/{min(x, y)}", headers=api.auth("a", "hotline")).json()
    assert incidents["incidents"] == 5
    gone = api.client.get(f"/v1/intake/bundles/{max(x, y)}", headers=api.auth("a", "hotline"))
    assert gone.status_code == 404


def test_each_workers_bundle_index_sees_reports_another_finished(db_url: str) -> None:
    life = Lifetimes()
    workers = [BundleIndex(), BundleIndex()]  # two service workers, each with its own index
    with open_store(db_url) as store:
        token = create_token(store, "reporter", "t")[0].id

        def report(pdq: str, worker: int) -> int | None:
            rid = open_report(store, "t", token, report_doc()["report"], T0, life)
            f = NewFile("x.jpg", 3, pdq[:32], "0" * 40, "0" * 64, pdq, 100, "image/jpeg", None, b"sealed")
            add_file(store, "t", rid, token, f, T0, life)
            out = Outcome({}, 0, ["unresolved"], {"countries": ["unresolved"]})
            return finish_report(store, "t", rid, token, out, T0, life, 31, workers[worker])

        base = "f" * 64
        near = "0" + "f" * 63  # 4 bits away, another MD5 (the first 32 digits differ)
        far = "0" * 64
        assert report(base, 0) is None
        assert report(far, 0) is None
        bundle = report(near, 1)  # worker 1 never saw the first report finish
        assert bundle is not None
        assert report(near, 0) == bundle  # and worker 0 never saw worker 1's
        assert get_report(store, "t", 2, T0).bundle_id is None


def test_weak_pdqs_bundle_only_when_much_closer_and_noise_never(sqlite_url: str) -> None:
    """A PDQ of quality below 50 (a smooth picture) bundles only within 12 bits, as matching treats
    weak query hashes; below quality 10 it is noise and bundles nothing."""
    life, index = Lifetimes(), BundleIndex()
    with open_store(sqlite_url) as store:
        token = create_token(store, "reporter", "t")[0].id

        def report(pdq: str, quality: int) -> int | None:
            rid = open_report(store, "t", token, report_doc()["report"], T0, life)
            f = NewFile("x.png", 3, f"{rid:032x}", "0" * 40, "0" * 64, pdq, quality, "image/png", None, b"s")
            add_file(store, "t", rid, token, f, T0, life)
            out = Outcome({}, 0, ["unresolved"], {"countries": ["unresolved"]})
            return finish_report(store, "t", rid, token, out, T0, life, 31, index)

        def bits_off(n: int, base: str = "f" * 64) -> str:  # ``base`` with its first n bits cleared
            value = int(base, 16) & ~(((1 << n) - 1) << (256 - n))
            return f"{value:064x}"

        assert report("f" * 64, 30) is None
        assert report(bits_off(16), 90) is None  # 16 bits from a weak PDQ: too far for it
        assert report(bits_off(8), 5) is None  # noise: bundles nothing, however close
        weak = report(bits_off(8), 40)  # 8 bits from the weak one (and from the good one)
        assert weak is not None
        base = "0" * 32 + "f" * 32
        assert report(base, 90) is None
        assert report(bits_off(20, base[::-1]), 90) is None  # far from everything
        assert report(base[:-5] + "00000", 90) is not None  # 20 bits from a good one: bundled


def _frame_jpeg(data: bytes, at: int = 10) -> bytes:
    """Frame ``at`` of the video, re-encoded as a JPEG still (as a platform would store a screenshot)."""
    import io

    from PIL import Image

    from opspoor.media.video import iter_video_frames

    frames = [f.rgb for f in iter_video_frames(io.BytesIO(data), every_seconds=0.2, where="v")]
    out = io.BytesIO()
    Image.fromarray(frames[min(at, len(frames) - 1)][..., :3]).save(out, "JPEG", quality=80)
    return out.getvalue()


def test_a_still_that_is_a_frame_of_a_reported_video_joins_its_bundle(api: Api, tmp_path: Path) -> None:
    clip = video(tmp_path, 7, (320, 240))
    still = _frame_jpeg(clip)
    distractor = picture(21)
    v = finished(api, clip)
    s = finished(api, still)  # the still after the video
    d = finished(api, distractor)
    assert bundle_of(api, v) is not None and bundle_of(api, s) == bundle_of(api, v)
    assert bundle_of(api, d) is None
    assert show(api, s).json()["files"][0]["md5"] != show(api, v).json()["files"][0]["md5"]
    # the other way round: the still first, then a report of the video (another encoding)
    still2 = _frame_jpeg(video(tmp_path, 8, (320, 240)), at=20)
    s2 = finished(api, still2)
    v2 = finished(api, video(tmp_path, 8, (240, 180), "matroska"))
    assert bundle_of(api, s2) is not None and bundle_of(api, v2) == bundle_of(api, s2)
    assert bundle_of(api, d) is None and bundle_of(api, s2) != bundle_of(api, v)
