"""The order of a referral queue: new material first, then the report's and files' urgency flags.

Each reason is a bit, so a higher bit outweighs every lower one together: new material (a file no
known set matched) > ``escalateToHighPriority`` > ``infant`` > ``liveStreaming`` >
``possibleSelfProduction``. A bundle is queued once, at the priority of its most urgent report.
"""

from __future__ import annotations

from typing import Any

#: (bit, name), most urgent first
REASONS = (
    (16, "newMaterial"),
    (8, "escalateToHighPriority"),
    (4, "infant"),
    (2, "liveStreaming"),
    (1, "possibleSelfProduction"),
)


def priority(report: dict[str, Any], files: list[dict[str, Any]], new_material: bool) -> int:
    """``files`` are the files' details (``fileDetails`` documents)."""
    flags: set[str] = set()
    if new_material:
        flags.add("newMaterial")
    if report.get("incidentSummary", {}).get("escalateToHighPriority"):
        flags.add("escalateToHighPriority")
    for details in files:
        flags |= {k for k, v in details.get("fileAnnotations", {}).items() if v}
    return sum(bit for bit, name in REASONS if name in flags)


def priority_reasons(value: int) -> list[str]:
    return [name for bit, name in REASONS if value & bit]
