"""``opspoor scan --rematch``: a finished case matched again against the hash sets as they are now
(``triage.rematch``: no file is read), then its outputs written again from the case database, and
``rematch.json``, every re-match's change report, beside them.

The case database changes in one transaction; the outputs are each written to a new file and
renamed. Interrupted between the two, the same command writes the outputs again (it matches again
first, which then changes nothing; ``rematch.json`` keeps the report of the run that did).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

from opspoor.casefile.outputs import SUMMARY_JSON, atomic_write, write_outputs
from opspoor.triage.case import CaseDB
from opspoor.triage.rematch import REMATCHES, RematchResult, rematch_case_db

REMATCH_JSON = "rematch.json"


def rematch_case(
    case_dir: Path,
    hashsets: list[str] | None = None,
    *,
    db_url: str | None = None,
    distance: int | None = None,
    country: str | None = None,
    log: Callable[[str], None] | None = None,
) -> RematchResult:
    """Match the case again and write its outputs; ``country`` and the linked cases default to the
    scan's own (its ``summary.json``)."""
    before: dict[str, object] = {}
    with contextlib.suppress(OSError, ValueError):  # outputs never written: the defaults
        before = json.loads((case_dir / SUMMARY_JSON).read_text(encoding="utf-8"))
    links = [Path(str(p)) for p in before.get("linked_cases") or []]  # type: ignore[attr-defined]
    result = rematch_case_db(
        case_dir,
        hashsets,
        db_url=db_url,
        distance=distance,
        country=country or str(before.get("country_of_interest") or "NL"),
        link_cases=[p for p in links if p.is_dir()],
        log=log,
    )
    case = CaseDB(case_dir)
    try:
        result.outputs = write_outputs(case, result.cfg, result.summary, result.groups)
        result.outputs["rematch"] = case_dir / REMATCH_JSON
        with atomic_write(result.outputs["rematch"]) as fh:
            json.dump(case.get_meta(REMATCHES) or [], fh, indent=2)
            fh.write("\n")
    finally:
        case.close()
    return result
