"""``opspoor eval robustness``: how well each matching method finds edited copies, against plain PDQ."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from opspoor.cli.app import app, err, out
from opspoor.cli.tables import Column, print_table

eval_app = typer.Typer(help="Measure opspoor on benign corpora.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(eval_app, name="eval")


class OffsetCrops(StrEnum):
    """Known-side off-centre crops to measure (``--augment`` stores none: docs/robustness.md)."""

    none = "none"
    small = "small"  # 4-13 % on a 2.5 % grid
    all = "all"  # 4-22 % on a 2.5 % grid


@eval_app.command("robustness")
def robustness(
    corpus: Annotated[
        Path | None,
        typer.Option(
            metavar="FOLDER",
            show_default=False,
            help="Folder of benign photos (default: the benchmark corpus if built, else generated).",
        ),
    ] = None,
    benchmark_corpus: Annotated[
        Path | None,
        typer.Option(
            metavar="FOLDER",
            envvar="OPSPOOR_CORPUS",
            show_default=False,
            help="Where the benchmark corpus is (bench/corpus.py builds it in the checkout's "
            ".cache/photos; default: photos in the cache folder, $OPSPOOR_CACHE or the user's).",
        ),
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Originals in the known set.")] = 200,
    distractors: Annotated[int, typer.Option(help="Distractor pictures, never in the known set.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the split and of every transform.")] = 0,
    out_dir: Annotated[
        Path,
        typer.Option("--out", metavar="FOLDER", help="Folder for report.md, results.json, histograms.png."),
    ] = Path("robustness"),
    generated: Annotated[
        bool, typer.Option(help="Use generated images even if the benchmark corpus is built.")
    ] = False,
    transforms: Annotated[
        list[str] | None,
        typer.Option("--transform", metavar="NAME", help="Only these transforms or families (repeatable)."),
    ] = None,
    workers: Annotated[
        int, typer.Option(metavar="N", show_default=False, help="Hashing processes (default: all cores).")
    ] = 0,
    work_size: Annotated[
        int, typer.Option(help="Pictures are brought to fit this many pixels first.")
    ] = 1024,
    min_quality: Annotated[int, typer.Option(help="Extra hashes only at or above this PDQ quality.")] = 50,
    offset_crops: Annotated[
        OffsetCrops,
        typer.Option(
            help="Known-side off-centre crops on a 2.5 % grid (not in --augment): none, "
            "small (4-13 %, about 96 hashes per original), all (4-22 %, about 330)."
        ),
    ] = OffsetCrops.none,
    local: Annotated[
        bool,
        typer.Option(help="Also measure local features of the originals (ORB checked by RANSAC; +local)."),
    ] = True,
) -> None:
    """Originals into a known set; edited copies and distractors as queries; tables and histograms."""
    from opspoor.evaluate.harness import EvalConfig, default_workers, run_evaluation
    from opspoor.evaluate.report import goals, write_report
    from opspoor.signals.augment import CENTRE_CROPS, DEFAULT_AUGMENT, OFFSET_CROPS

    plans = {
        OffsetCrops.none: DEFAULT_AUGMENT,
        OffsetCrops.small: replace(DEFAULT_AUGMENT, offset_crops=OFFSET_CROPS),
        OffsetCrops.all: replace(DEFAULT_AUGMENT, offset_crops=CENTRE_CROPS),
    }
    cfg = EvalConfig(
        corpus=corpus,
        benchmark=benchmark_corpus,
        generated=generated,
        n=n,
        distractors=distractors,
        seed=seed,
        work_size=work_size,
        min_quality=min_quality,
        transforms=tuple(transforms or ()),
        workers=workers or default_workers(),
        augment=plans[offset_crops],
        local=local,
    )

    def progress(stage: str, done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            err.print(f"{stage}: {done}/{total}", highlight=False)

    result = run_evaluation(cfg, progress)
    paths = write_report(result, out_dir)
    source = str(result.corpus["source"])
    out.print(f"corpus: {source}", markup=False)
    if source.startswith("generated"):
        err.print(
            "note: measured on generated images, not the benchmark photo corpus of docs/robustness.md "
            "(python bench/corpus.py builds it from Debian packages; or give --corpus FOLDER): "
            "the figures are not comparable",
            markup=False,
        )
    out.print(
        f"{result.corpus['originals']} originals, {result.corpus['distractors']} distractors", markup=False
    )
    print_table(summary_columns(cfg.threshold), summary_rows(result))
    missed = [g for g in goals(result) if not g.met and not g.informational]
    out.print(f"goals not met: {len(missed)}")
    for name, path in paths.items():
        out.print(f"{name}: {path}", markup=False)


def summary_columns(threshold: int) -> tuple[Column, ...]:
    """The first columns of the summary table of report.md and docs/robustness.md."""
    return (
        Column("method"),
        Column("hashes/query", right=True, optional=True),
        Column("hashes/original", right=True, optional=True),
        Column(f"recall@{threshold} %", right=True),
        Column("false (wrong/distr.)", right=True),
        Column(f"precision@{threshold} %", right=True, optional=True),
        Column("held-out recall %", right=True),
    )


def summary_rows(result: Any) -> list[list[str]]:
    return [
        [
            s.method,
            f"{s.hashes_per_query:.1f}",
            f"{s.hashes_per_original:.1f}",
            f"{100 * s.recall:.1f}",
            f"{s.false_wrong_original} / {s.false_distractor}",
            f"{100 * s.precision:.3f}",
            f"{100 * s.heldout_recall:.1f}",
        ]
        for s in result.methods
    ]
