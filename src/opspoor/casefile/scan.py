"""``opspoor scan``: the scan (``triage.scan.run_scan``), then the case outputs written from its case."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from opspoor.casefile.outputs import write_outputs
from opspoor.triage.case import CaseDB
from opspoor.triage.config import Progress, ScanConfig, ScanResult
from opspoor.triage.scan import run_scan


def scan_case(
    cfg: ScanConfig, progress: Progress | None = None, log: Callable[[str], None] | None = None
) -> ScanResult:
    """``opspoor scan``: run the scan (``triage.scan.run_scan``), then write the case outputs from
    the case database; the result names them."""
    result = run_scan(cfg, progress, log)
    case = CaseDB(cfg.case_dir)
    try:
        outputs = write_outputs(case, cfg, result.summary, result.groups)
    finally:
        case.close()
    return dataclasses.replace(result, outputs=outputs)
