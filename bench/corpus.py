"""Benchmark photo corpus: benign JPEG photos >= 1024x768 from Debian wallpaper and astronomy packages.

The packages are fetched with ``apt-get download`` into ``.cache/debs/`` (ignored by git), unpacked
with ``dpkg-deb -x`` into ``.cache/pkgs/``, and the images deduplicated: by SHA-256, then by PDQ
(wallpaper packages ship each picture at several resolutions; one per family of near-duplicates
within ``NEAR_DUPLICATE_BITS`` is kept, the largest). When the JPEGs alone are fewer than asked for,
large PNG/WebP pictures are re-encoded once as JPEG quality 90 into ``.cache/photos/``; if still short
(Debian ships few large photographs), regions of the largest photographs are cut out as further photos
(``CROP`` pixels, PDQ quality >= 50, and again no near-duplicates).
``.cache/photos/manifest.json`` records each photo's package and source path (relative to its ``root``,
the checkout); a later call reuses it. The package finds the corpus where ``OPSPOOR_CORPUS`` points
(``opspoor eval robustness --benchmark-corpus``); the benchmarks here pass :data:`PHOTOS` to it.

Usage: ``python bench/corpus.py [--min-count N]`` (prints what it did); ``photo_corpus()`` from code.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from PIL import Image  # noqa: E402

from opspoor.media.image import decode_image, to_rgb  # noqa: E402
from opspoor.media.sniff import sniff  # noqa: E402
from opspoor.signals.pdq import PDQ, pdq_hash_image  # noqa: E402

CACHE = ROOT / ".cache"
DEBS = CACHE / "debs"
PKGS = CACHE / "pkgs"
PHOTOS = CACHE / "photos"
MANIFEST = PHOTOS / "manifest.json"
#: what photo paths in the manifest are relative to, from the manifest's folder: the checkout
MANIFEST_ROOT = "../.."

#: Debian packages with photos, in order of preference (photographic wallpapers first).
#: All are benign: landscapes, nature, space imagery, abstract art.
PACKAGES = (
    "plasma-workspace-wallpapers",
    "mate-backgrounds",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "ukui-wallpapers",
    "desktop-base",
    "gnome-backgrounds",
    "sway-backgrounds",
    "stellarium-data",
    "kstars-data",
    "libjxl-testdata",
    "marble-data",
    "extremetuxracer-data",
)
#: not photos: documentation screenshots, constellation drawings, boot-splash and GRUB art
EXCLUDE = re.compile(r"/doc/|/skycultures/|/plymouth/|/grub/|/icons?/|/sddm/|/wallpapers?/.*/screenshot")
NEAR_DUPLICATE_BITS = 10
#: size of regions cut from large photographs when the packages hold too few photos
CROP = (1280, 960)
MAX_CROPS_PER_PHOTO = 6
#: files smaller than this cannot be a photo of the sizes asked for; skips icons quickly
MIN_FILE_BYTES = 40_000


@dataclass
class Photo:
    path: str  # relative to the repository root
    package: str
    source: str  # path inside the package
    sha256: str
    width: int
    height: int
    pdq: str
    reencoded: bool
    crop: tuple[int, int, int, int] | None = None  # (left, top, width, height) of a region cut out


def _log(msg: str) -> None:
    print(f"[corpus] {msg}", flush=True)


_apt_updated = False


def _apt_update() -> None:
    global _apt_updated
    _apt_updated = True
    _log("apt-get update (package lists are missing or stale)")
    subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)


def _fetch(package: str) -> Path | None:
    """Download and unpack one package (cached); None when apt cannot get it."""
    target = PKGS / package
    if target.is_dir():
        return target
    DEBS.mkdir(parents=True, exist_ok=True)
    PKGS.mkdir(parents=True, exist_ok=True)  # dpkg-deb -x does not create parent folders
    debs = sorted(DEBS.glob(f"{package}_*.deb"))
    if not debs:
        if shutil.which("apt-get") is None:
            raise RuntimeError("apt-get not found: the benchmark corpus is built from Debian packages")
        _log(f"apt-get download {package}")
        res = subprocess.run(["apt-get", "download", package], cwd=DEBS, capture_output=True, text=True)
        if res.returncode != 0 and not _apt_updated:
            _apt_update()  # a fresh machine has no package lists yet
            res = subprocess.run(["apt-get", "download", package], cwd=DEBS, capture_output=True, text=True)
        if res.returncode != 0:
            _log(f"  could not download {package}: {res.stderr.strip().splitlines()[-1:]}")
            return None
        debs = sorted(DEBS.glob(f"{package}_*.deb"))
    tmp = target.with_suffix(".part")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)], check=True)
    tmp.rename(target)
    return target


def _candidates(package: str, root: Path, min_size: tuple[int, int]) -> list[tuple[Path, str, int, int]]:
    """(path, type, width, height) of images in a package at least ``min_size`` (either orientation)."""
    out = []
    lo, hi = sorted(min_size)
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file() or path.stat().st_size < MIN_FILE_BYTES:
            continue
        if EXCLUDE.search("/" + str(path.relative_to(root))):
            continue
        with path.open("rb") as fh:
            kind = sniff(fh.read(64)).type
        if kind not in ("jpeg", "png", "webp"):
            continue
        try:
            with warnings.catch_warnings(), Image.open(path) as im:
                warnings.simplefilter("ignore")
                w, h = im.size
        except Exception:
            continue
        if min(w, h) >= lo and max(w, h) >= hi:
            out.append((path, kind, w, h))
    return out


def _reencode(path: Path, dest: Path) -> None:
    with warnings.catch_warnings(), Image.open(path) as im:
        warnings.simplefilter("ignore")
        to_rgb(im).save(dest, "JPEG", quality=90)


def _crops(kept: list[Photo], wanted: int) -> list[Photo]:
    """Regions of the largest photographs, each a further distinct photo (JPEG quality 90)."""
    out: list[Photo] = []
    sources = sorted(kept, key=lambda p: (p.reencoded, -p.width * p.height))
    for src in sources:
        cw, ch = CROP if src.width >= src.height else CROP[::-1]
        nx, ny = src.width // cw, src.height // ch
        if nx * ny < 2:
            continue
        with warnings.catch_warnings(), Image.open(ROOT / src.path) as im:
            warnings.simplefilter("ignore")
            rgb = to_rgb(im)
            rgb.load()
        done = 0
        for iy in range(ny):
            for ix in range(nx):
                if done >= MAX_CROPS_PER_PHOTO or len(out) >= wanted:
                    break
                box = (ix * cw, iy * ch, cw, ch)
                region = rgb.crop((box[0], box[1], box[0] + cw, box[1] + ch))
                buf = io.BytesIO()
                region.save(buf, "JPEG", quality=90)
                data = buf.getvalue()
                h = pdq_hash_image(decode_image(data))
                if h.quality < 50 or any(
                    PDQ.distance(h.hash, k.pdq) <= NEAR_DUPLICATE_BITS for k in kept + out
                ):
                    continue
                stem = src.source.replace("/", "__").rsplit(".", 1)[0]
                dest = PHOTOS / f"{src.package}__{stem}__crop{box[0]}x{box[1]}.jpg"
                dest.write_bytes(data)
                sha = hashlib.sha256(data).hexdigest()
                out.append(
                    Photo(
                        str(dest.relative_to(ROOT)), src.package, src.source, sha, cw, ch, h.hash, True, box
                    )
                )
                done += 1
        if len(out) >= wanted:
            break
    return out


def _load_manifest(min_count: int, min_size: tuple[int, int]) -> list[Path] | None:
    if not MANIFEST.is_file():
        return None
    meta = json.loads(MANIFEST.read_text())
    if meta.get("min_size") != list(min_size) or meta.get("min_count", 0) < min_count:
        return None
    paths = [ROOT / p["path"] for p in meta["photos"]]
    if len(paths) < min_count or not all(p.is_file() for p in paths):
        return None
    if meta.get("root") != MANIFEST_ROOT:  # written before the manifest named its root
        meta["root"] = MANIFEST_ROOT
        MANIFEST.write_text(json.dumps(meta, indent=1))
    return paths


def photo_corpus(min_count: int = 300, min_size: tuple[int, int] = (1024, 768)) -> list[Path]:
    """Paths of at least ``min_count`` distinct benign JPEG photos of at least ``min_size``."""
    cached = _load_manifest(min_count, min_size)
    if cached is not None:
        _log(f"reusing {len(cached)} photos from {MANIFEST.relative_to(ROOT)}")
        return cached
    found: list[tuple[str, Path, str, int, int]] = []
    for package in PACKAGES:
        root = _fetch(package)
        if root is None:
            continue
        cands = _candidates(package, root, min_size)
        jpegs = sum(c[1] == "jpeg" for c in cands)
        _log(f"{package}: {jpegs} JPEG, {len(cands) - jpegs} other")
        found += [(package, *c) for c in cands]
    # largest first, so that each family of resolutions keeps its largest member
    found.sort(key=lambda c: (c[2] != "jpeg", -c[3] * c[4], str(c[1])))
    kept: list[Photo] = []
    seen_sha: set[str] = set()
    dropped = {"same bytes": 0, "near duplicate": 0, "undecodable": 0}
    PHOTOS.mkdir(parents=True, exist_ok=True)
    for package, path, kind, w, h in found:
        if kind != "jpeg" and len(kept) >= min_count:
            break
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if sha in seen_sha:
            dropped["same bytes"] += 1
            continue
        seen_sha.add(sha)
        try:
            pdq = pdq_hash_image(decode_image(data, where=str(path))).hash
        except Exception as exc:
            dropped["undecodable"] += 1
            _log(f"  skipped {path.name}: {exc}")
            continue
        if any(PDQ.distance(pdq, k.pdq) <= NEAR_DUPLICATE_BITS for k in kept):
            dropped["near duplicate"] += 1
            continue
        rel_source = str(path.relative_to(PKGS / package))
        if kind == "jpeg":
            photo_path, reencoded = path, False
        else:
            photo_path = PHOTOS / f"{package}__{rel_source.replace('/', '__').rsplit('.', 1)[0]}.jpg"
            if not photo_path.is_file():
                _reencode(path, photo_path)
            reencoded = True
        kept.append(Photo(str(photo_path.relative_to(ROOT)), package, rel_source, sha, w, h, pdq, reencoded))
    _log(f"kept {len(kept)} ({sum(p.reencoded for p in kept)} re-encoded from PNG/WebP); dropped {dropped}")
    if len(kept) < min_count:
        crops = _crops(kept, min_count - len(kept))
        _log(f"cut {len(crops)} regions out of the largest photographs")
        kept += crops
    if len(kept) < min_count:
        raise RuntimeError(f"only {len(kept)} distinct photos >= {min_size} found; wanted {min_count}")
    referenced = {ROOT / p.path for p in kept}
    for stale in PHOTOS.glob("*.jpg"):  # left by an earlier build with other choices
        if stale not in referenced:
            stale.unlink()
    meta = {
        "root": MANIFEST_ROOT,
        "min_count": min_count,
        "min_size": list(min_size),
        "photos": [asdict(p) for p in kept],
    }
    MANIFEST.write_text(json.dumps(meta, indent=1))
    _log(f"manifest written to {MANIFEST.relative_to(ROOT)}")
    return [ROOT / p.path for p in kept]


def describe(paths: list[Path]) -> str:
    """One line on the corpus: count, mean size, share of progressive JPEGs."""
    sizes, progressive = [], 0
    for p in paths:
        with Image.open(io.BytesIO(p.read_bytes())) as im:
            sizes.append(im.size[0] * im.size[1])
            progressive += bool(im.info.get("progressive") or im.info.get("progression"))
    mean_mp = sum(sizes) / max(len(sizes), 1) / 1e6
    return f"{len(paths)} JPEG photos, mean {mean_mp:.1f} MP, {progressive} progressive"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-count", type=int, default=300)
    args = ap.parse_args()
    paths = photo_corpus(args.min_count)
    _log(describe(paths))


if __name__ == "__main__":
    main()
