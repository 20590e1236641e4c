"""Interpol ICSE CSV: ``;``-separated, one row per image, with a header line.

Columns are found by name (any order, any case); unknown columns are kept in ``extra["icse"]``.
A row with fewer fields than the header is read with the missing trailing fields empty.
``Baseline`` true -> ``inhope:baseline``; false or empty -> no category (the raw value is kept in
``extra["icse"]["Baseline"]`` so it is written back as read). ICSE has no other category field, so
entries of other schemes are written with ``Baseline`` empty, except ``inhope:national`` and
``inhope:not-illegal``, which are written ``false``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from opspoor.errors import FormatError
from opspoor.hashsets.formats.base import (
    ReadOptions,
    RecordError,
    WriteOptions,
    bool_text,
    canonical_signal,
    check_has_signal,
    csv_rows,
    first_lines,
    normalise_column,
    parse_bool,
    report,
    text_lines,
    text_or_none,
)
from opspoor.hashsets.model import Category, Entry

HEADER = (
    "MD5",
    "SHA1",
    "PhotoDNA",
    "Image ID",
    "Is distributed",
    "Victim identified",
    "Offender identified",
    "Series name",
    "Number of submissions",
    "File Available",
    "Media Type",
    "Baseline",
)
_BASELINE = Category("inhope", "baseline")
#: normalised column name -> what it fills
_FIELDS = {
    "md5": "md5",
    "sha1": "sha1",
    "photodna": "photodna",
    "imageid": "external_id",
    "isdistributed": "distributed",
    "victimidentified": "victim_identified",
    "offenderidentified": "offender_identified",
    "seriesname": "series",
    "baseline": "baseline",
}
#: the columns kept in extra, by their header spelling
_KEPT = {normalise_column(c): c for c in ("Number of submissions", "File Available", "Media Type")}


def sniff_icse(head: bytes) -> bool:
    lines = first_lines(head, 1)
    if not lines:
        return False
    cols = {normalise_column(c) for c in lines[0].split(";")}
    return {"md5", "sha1", "photodna"} <= cols and bool(cols & {"imageid", "baseline", "seriesname"})


def read_icse(stream: BinaryIO, opts: ReadOptions) -> Iterator[Entry]:
    lines = text_lines(stream, opts.where)
    header: list[str] | None = None
    fields: list[str | None] = []
    record = 0
    for line, row in csv_rows(lines, 0, ";"):
        if header is None:
            header = [c.strip() for c in row]
            fields = [_FIELDS.get(normalise_column(c)) for c in header]
            if not {"md5", "sha1", "photodna"} & set(f for f in fields if f):
                raise FormatError(
                    "not an ICSE header: expected MD5;SHA1;PhotoDNA;Image ID;…", opts.where, line=line
                )
            continue
        record += 1
        try:
            if len(row) > len(header):
                raise RecordError(f"expected {len(header)} fields as in the header, found {len(row)}")
            if len(row) < len(header):  # trailing fields left out, as some exports do: empty
                row = row + [""] * (len(header) - len(row))
            yield _row_entry(header, fields, row, opts.source)
        except RecordError as exc:
            report(FormatError(str(exc), opts.where, record=record, line=line), opts)
    if header is None:
        raise FormatError("the file is empty (no ICSE header)", opts.where)


def _row_entry(header: list[str], fields: list[str | None], row: list[str], source: str | None) -> Entry:
    signals: dict[str, str] = {}
    values: dict[str, str] = {}
    extra: dict[str, Any] = {}
    for name, field, raw in zip(header, fields, row, strict=True):
        cell = raw.strip()
        if field is None:
            if cell:
                extra[_KEPT.get(normalise_column(name), name)] = cell
        elif field in ("md5", "sha1", "photodna"):
            if cell:
                signals[field] = canonical_signal(field, cell)
        else:
            values[field] = cell
    check_has_signal(signals)
    category = None
    baseline = parse_bool(values.get("baseline"), "Baseline")
    if baseline:
        category = _BASELINE
    elif values.get("baseline"):
        extra["Baseline"] = values["baseline"]
    return Entry(
        signals=signals,
        category=category,
        victim_identified=parse_bool(values.get("victim_identified"), "Victim identified"),
        offender_identified=parse_bool(values.get("offender_identified"), "Offender identified"),
        distributed=parse_bool(values.get("distributed"), "Is distributed"),
        series=text_or_none(values.get("series"), "Series name"),
        source=source,
        external_id=values.get("external_id") or None,
        extra={"icse": extra} if extra else {},
    )


def _baseline_text(e: Entry, kept: dict[str, Any]) -> str:
    c = e.category
    if c is not None and c.scheme == "inhope" and c.known:  # an INHOPE code of its own says neither
        return "true" if c.code == "baseline" else "false"
    return str(kept.get("Baseline", ""))


def write_icse(entries: Iterable[Entry], stream: BinaryIO, opts: WriteOptions) -> int:
    out = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    n = 0
    try:
        w = csv.writer(out, delimiter=";", lineterminator="\r\n")
        w.writerow(HEADER)
        for e in entries:
            s = e.signals
            if not ("md5" in s or "sha1" in s or "photodna" in s):
                continue  # ICSE carries only these; the count returned tells the caller
            n += 1
            kept = e.extra.get("icse") or {}
            w.writerow(
                (
                    s.get("md5", "").upper(),
                    s.get("sha1", "").upper(),
                    s.get("photodna", ""),
                    e.external_id or "",
                    bool_text(e.distributed),
                    bool_text(e.victim_identified),
                    bool_text(e.offender_identified),
                    e.series or "",
                    kept.get("Number of submissions", ""),
                    kept.get("File Available", ""),
                    kept.get("Media Type", ""),
                    _baseline_text(e, kept),
                )
            )
        out.flush()
    finally:
        out.detach()
    return n
