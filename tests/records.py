"""Helpers for comparing hash-set entries that several test modules share."""

from __future__ import annotations

from opspoor.hashsets.model import Entry


def comparable(e: Entry) -> tuple[object, ...]:
    """An entry's fields that a store keeps, as one comparable tuple."""
    return (
        e.signals,
        e.category,
        e.victim_identified,
        e.offender_identified,
        e.distributed,
        e.series,
        e.tags,
        e.source,
        e.date_updated,
        e.external_id,
        e.size,
        e.extra,
    )
