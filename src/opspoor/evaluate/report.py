"""Tables, goal checks and distance histograms of an evaluation run (Markdown, JSON, PNG).

The histogram is drawn with Pillow (no plotting library in the core): one panel per method, the
distance of each edited copy to its own original ("same") against the distance of every query to
every other original ("different"), on a log scale, with the operating threshold marked.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from opspoor.evaluate.harness import EvalResult
from opspoor.evaluate.scoring import MAX_SWEEP, Scores
from opspoor.signals.robust import FLAT_QUALITY

BASELINE = "pdq"
AUGMENTED = "both"  # augmented known side, all query-side methods
PLAIN_LISTS = "query-side"  # single-hash lists, all query-side methods
LOW_QUALITY = " +lq"  # the same with low-quality hashes at their tighter distance
LOCAL = " +local"  # and with local features of each original (an augmented set's holder has them)


@dataclass(frozen=True)
class Goal:
    text: str
    method: str
    measured: float
    target: float
    met: bool
    kind: str  # "recall" (at the operating threshold), "heldout" (at P >= target) or "precision"
    informational: bool = False  # shown beside a goal, not one of issue 6's goals itself


def _transforms(result: EvalResult, s: Scores, *names: str) -> list[str]:
    """The single transforms (not combinations) named, or whose name starts with one of ``names``."""
    single = {t["name"] for t in result.transforms if t["family"] != "combo"}
    return [t for t in s.per_transform if t in single and any(t == n or t.startswith(n + " ") for n in names)]


#: issue 6's pooled recall goal, and its per-transform goals
POOLED_RECALL = 0.97
TRANSFORM_RECALL = 0.95


def goals(result: EvalResult) -> list[Goal]:
    """The goals of issue 6, as measured in this run (only those whose transforms were run)."""
    out: list[Goal] = []
    thr = result.config["threshold"]
    names = {m.method for m in result.methods}

    def per_transform(
        method: str, prefixes: tuple[str, ...], target: float, what: str, key: str = "recall"
    ) -> None:
        if method not in names:
            return
        s = result.method(method)
        info = key != "recall"
        for t in _transforms(result, s, *prefixes):
            value = s.per_transform[t].get(key)
            if value is None:  # no such copies (every original flat)
                continue
            r = float(value)
            out.append(
                Goal(f"{what}: {t} >= {target:.0%} at {thr}", method, r, target, r >= target, "recall", info)
            )

    for method in (AUGMENTED, AUGMENTED + LOW_QUALITY, AUGMENTED + LOW_QUALITY + LOCAL):
        if method not in names:
            continue
        s = result.method(method)
        p = result.config["target_precision"]
        # met only if the held-out threshold also kept the precision on the other half
        out.append(
            Goal(
                f"augmented sets: pooled recall >= {POOLED_RECALL:.0%} at precision >= {p:.2%} "
                f"(held-out threshold within 0-{thr}, chosen {s.thresholds[0]} / {s.thresholds[1]}; "
                f"precision reached on the other half: {s.heldout_precision:.3%})",
                method,
                s.heldout_recall,
                POOLED_RECALL,
                s.heldout_recall >= POOLED_RECALL and s.heldout_precision >= p,
                "heldout",
            )
        )
        out.append(
            Goal(
                f"augmented sets, for information: the same with the threshold chosen within "
                f"0-{MAX_SWEEP} (chosen {s.thresholds_any[0]} / {s.thresholds_any[1]}; precision "
                f"reached on the other half: {s.heldout_precision_any:.3%})",
                method,
                s.heldout_recall_any,
                POOLED_RECALL,
                s.heldout_recall_any >= POOLED_RECALL and s.heldout_precision_any >= p,
                "heldout",
                True,
            )
        )
        # off-centre crops are beyond any PDQ-based method (see docs/robustness.md); say how much
        # of the pooled figure they account for
        rows = [v for t, v in s.per_transform.items() if "off-centre" not in t]
        n = sum(int(v["queries"]) for v in rows)
        r = sum(float(v["heldout_recall"]) * int(v["queries"]) for v in rows) / max(n, 1)
        out.append(
            Goal(
                "augmented sets, for information: the same without the off-centre crops",
                method,
                r,
                POOLED_RECALL,
                r >= POOLED_RECALL,
                "heldout",
                True,
            )
        )
    for suffix in ("", LOW_QUALITY, LOW_QUALITY + LOCAL):
        per_transform(AUGMENTED + suffix, ("crop 10%", "pad 20%"), TRANSFORM_RECALL, "augmented sets")
        per_transform(
            AUGMENTED + suffix, ("flip", "rotate 90", "rotate 180", "rotate 270"), 1.0, "augmented sets"
        )
    for suffix in ("", LOW_QUALITY):
        per_transform(
            PLAIN_LISTS + suffix, ("pad", "letterbox", "screenshot"), TRANSFORM_RECALL, "single-hash lists"
        )
        per_transform(
            PLAIN_LISTS + suffix, ("flip", "rotate 90", "rotate 180", "rotate 270"), 1.0, "single-hash lists"
        )
    flat = int(result.corpus.get("flat_originals", 0))
    if flat:
        # a flat picture's turns are not made (they match other flat pictures): say what is left
        per_transform(
            PLAIN_LISTS + LOW_QUALITY,
            ("flip", "rotate 90", "rotate 180", "rotate 270"),
            1.0,
            f"single-hash lists, for information, without the {flat} flat original(s) "
            f"(PDQ quality < {FLAT_QUALITY})",
            "recall_not_flat",
        )
    if BASELINE in names:
        base = result.method(BASELINE).precision
        for s in result.methods:
            if s.method != BASELINE:
                out.append(
                    Goal(
                        f"precision at {thr} at least plain PDQ's ({base:.4%})",
                        s.method,
                        s.precision,
                        base,
                        s.precision >= base,
                        "precision",
                    )
                )
    return out


# --------------------------------------------------------------------------------------------
# Markdown


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def markdown(result: EvalResult, histogram: str | None = "histograms.png") -> str:
    cfg, corpus = result.config, result.corpus
    thr = cfg["threshold"]
    p = cfg["target_precision"]
    lines = [
        "# Robustness of matching: opspoor methods against plain PDQ",
        "",
        f"Corpus: {corpus['source']}; {corpus['originals']} originals (known set), "
        f"{corpus['distractors']} distractors (never in the known set); "
        f"{corpus['edited_queries']} edited copies and {corpus['distractor_queries']} distractor queries "
        f"(each distractor as it is and after {cfg['distractor_transforms']} random transforms). "
        f"Dropped before the split: {', '.join(f'{v} {k}' for k, v in corpus['dropped'].items())}. "
        f"Originals with PDQ quality < {cfg['min_quality']}: {corpus['low_quality_originals']} "
        f"(flat, < {FLAT_QUALITY}: {corpus.get('flat_originals', 0)}). "
        f"Seed {cfg['seed']}, pictures brought to fit {cfg['work_size']} px first.",
        "",
        f"Operating threshold: Hamming distance <= {thr}. A false match is a query matched to a wrong "
        "original, or any match of a distractor (counted per pair). *Held-out* columns: the largest "
        f"threshold from 0 to {thr} (the product's range) with precision >= {p:.2%} is chosen on one "
        "half of the originals and distractors and applied to the other half (both ways; no "
        f"per-transform thresholds); *any threshold*: the same, chosen among all up to {MAX_SWEEP}. "
        f"Methods marked +lq also make the extra hashes of quality < {cfg['min_quality']} and count "
        f"them only within {cfg['low_quality_distance']} bits.",
        "",
        "## Summary",
        "",
        "| method | hashes / query | hashes / original | recall @"
        f"{thr} % | false matches @{thr} (wrong original / distractor) | precision @{thr} % "
        "| threshold A→B / B→A | held-out recall % | held-out precision % "
        "| any threshold: A→B / B→A | recall % | precision % |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in result.methods:
        lines.append(
            f"| {s.method} | {s.hashes_per_query:.1f} | {s.hashes_per_original:.1f} | {_pct(s.recall)} "
            f"| {s.false_wrong_original} / {s.false_distractor} | {100 * s.precision:.3f} "
            f"| {s.thresholds[0]} / {s.thresholds[1]} | {_pct(s.heldout_recall)} "
            f"| {100 * s.heldout_precision:.3f} "
            f"| {s.thresholds_any[0]} / {s.thresholds_any[1]} | {_pct(s.heldout_recall_any)} "
            f"| {100 * s.heldout_precision_any:.3f} |"
        )
    lines += ["", "Methods:", ""]
    lines += [f"- **{s.method}**: {s.note}" for s in result.methods]
    for key, title in (
        ("recall", f"Recall per transform at distance <= {thr} (%)"),
        ("heldout_recall", f"Recall per transform at precision >= {p:.2%}, held-out threshold <= {thr} (%)"),
    ):
        lines += ["", f"## {title}", ""]
        lines.append("| transform | " + " | ".join(s.method for s in result.methods) + " |")
        lines.append("| --- |" + " ---: |" * len(result.methods))
        for t in result.transforms:
            name = t["name"]
            cells = [
                _pct(float(s.per_transform[name][key])) if name in s.per_transform else "–"
                for s in result.methods
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        pooled = [_pct(s.recall if key == "recall" else s.heldout_recall) for s in result.methods]
        lines.append("| **pooled** | " + " | ".join(f"**{c}**" for c in pooled) + " |")
    lines += ["", "## Goals", ""]
    for g in goals(result):
        mark = "met" if g.met else "NOT met"
        lines.append(f"- [{mark}] {g.text} — {g.method}: {100 * g.measured:.2f} %")
    last = result.methods[-1]  # every method on: what decides the held-out thresholds
    lines += ["", f"## Closest different pairs ({last.method})", ""]
    lines += ["| distance | query | original |", "| ---: | --- | --- |"]
    lines += [f"| {c['distance']} | {c['query']} | {c['original']} |" for c in last.closest_different]
    if histogram:
        lines += [
            "",
            "## Distance histograms",
            "",
            f"![distance histograms, same vs different, per method]({histogram})",
            "",
            "Green: each edited copy to its own original (smallest distance over the method's hashes). "
            "Red: each query to every other original. Log scale; the dashed line is the threshold.",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# PNG

_PANEL = (440, 230)
_MARGIN = (44, 26, 12, 30)  # left, top, right, bottom
_MAX_D = 191  # odd: bins of two
_LOG_MIN = -6.0


def histogram_png(result: EvalResult, path: Path, columns: int = 3) -> None:
    """Distance histograms (same vs different) per method, one panel each, as a PNG."""
    n = len(result.methods)
    rows = math.ceil(n / columns)
    img = Image.new("RGB", (columns * _PANEL[0], rows * _PANEL[1]), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=12)
    for i, s in enumerate(result.methods):
        ox, oy = (i % columns) * _PANEL[0], (i // columns) * _PANEL[1]
        _panel(draw, font, ox, oy, s, int(result.config["threshold"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "PNG", optimize=True)


def _panel(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    ox: int,
    oy: int,
    s: Scores,
    thr: int,
) -> None:
    left, top, right, bottom = _MARGIN
    x0, y0 = ox + left, oy + top
    x1, y1 = ox + _PANEL[0] - right, oy + _PANEL[1] - bottom
    draw.rectangle((x0, y0, x1, y1), outline=(160, 160, 160))

    def fx(d: float) -> float:
        return x0 + (x1 - x0) * d / (_MAX_D + 1)

    def fy(v: float) -> float:
        return y1 - (y1 - y0) * (v - _LOG_MIN) / (0 - _LOG_MIN)

    for e in range(int(_LOG_MIN), 1):
        y = fy(e)
        draw.line((x0, y, x1, y), fill=(232, 232, 232))
        draw.text((ox + 4, y - 7), f"1e{e}", fill=(90, 90, 90), font=font)
    for d in range(0, _MAX_D + 1, 32):
        draw.text((fx(d) - 6, y1 + 4), str(d), fill=(90, 90, 90), font=font)
    for hist, colour in ((s.different_histogram, (200, 40, 40)), (s.same_histogram, (30, 140, 60))):
        # bins of two: PDQ distances are nearly always even (both hashes have 128 bits set)
        h = np.asarray(hist[: _MAX_D + 1], dtype=np.float64).reshape(-1, 2).sum(axis=1)
        total = max(float(np.sum(hist)), 1.0)
        with np.errstate(divide="ignore"):
            logf = np.log10(h / total)
        # a step line per distribution, so neither hides the other; empty bins sit on the floor
        points: list[tuple[float, float]] = []
        for i, v in enumerate(logf):
            y = fy(max(float(v), _LOG_MIN) if np.isfinite(v) else _LOG_MIN)
            points += [(fx(2 * i), y), (fx(2 * i + 2), y)]
        draw.line(points, fill=colour, width=2)
    for y in range(int(y0), int(y1), 6):
        draw.line((fx(thr + 0.5), y, fx(thr + 0.5), y + 3), fill=(0, 0, 0))
    same_n, diff_n = int(np.sum(s.same_histogram)), int(np.sum(s.different_histogram))
    draw.text(
        (x0 + 4, oy + 6),
        f"{s.method}: same n={same_n:,} (green), different n={diff_n:,} (red)",
        fill=(0, 0, 0),
        font=font,
    )


# --------------------------------------------------------------------------------------------


def write_report(result: EvalResult, out: Path) -> dict[str, Path]:
    """``report.md``, ``results.json`` and ``histograms.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "report.md", "json": out / "results.json", "png": out / "histograms.png"}
    histogram_png(result, paths["png"])
    paths["markdown"].write_text(markdown(result, paths["png"].name))
    data = asdict(result)
    data["goals"] = [asdict(g) for g in goals(result)]
    paths["json"].write_text(json.dumps(data, indent=1))
    return paths
