"""Readers stream: a large generated VICS file is read in small, constant memory.

tracemalloc slows every allocation down several times, so the file is made large by padding each
record (an unknown ``Notes`` property, kept in ``extra``) rather than by millions of records.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from opspoor.hashsets.formats import read_entries
from opspoor.hashsets.formats.vics_arrays import media_arrays

PAD = "n" * 1500


def _write_vics(path: Path, n: int, cases: bool) -> None:
    """A synthetic VICS 2.0 file (benign made-up hex), written without the writer under test."""
    context = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata"
    with path.open("w", encoding="utf-8") as f:
        if cases:
            case = '{"CaseID": 1, "CaseNumber": "T-1", "Media": [\n'
            f.write(f'{{"@odata.context": "{context}#Cases", "value": [{case}')
        else:
            f.write(f'{{"@odata.context": "{context}#Media", "value": [\n')
        step = 10_000
        for start in range(0, n, step):
            rows = [
                f'{{"MediaID": {i}, "Category": {i % 6}, "MD5": "{i * 2654435761 % (1 << 128):032X}", '
                f'"SHA1": "{i * 40503 % (1 << 160):040X}", "MediaSize": {i * 7}, '
                f'"VictimIdentified": "false", "IsDistributed": true, "Series": "", "Tags": "", '
                f'"IsPrecategorized": "true", "Notes": "{PAD}"}}'
                for i in range(start + 1, min(start + step, n) + 1)
            ]
            f.write(("" if start == 0 else ",\n") + ",\n".join(rows))
        f.write("\n]}]}\n" if cases else "\n]}\n")


@pytest.mark.slow
@pytest.mark.parametrize(("n", "cases"), [(32_000, False), (32_000, True)])
def test_vics_reads_in_constant_memory(tmp_path: Path, n: int, cases: bool) -> None:
    path = tmp_path / "big.json"
    _write_vics(path, n, cases)
    size = path.stat().st_size
    assert size > 48 << 20
    # the compiled reader's one-off start-up (loading its machine code) is not measured
    assert media_arrays(b'{"MD5": "' + b"0" * 32 + b'"}', None) is not None
    tracemalloc.start()
    try:
        count = 0
        last = None
        for e in read_entries(path):
            count += 1
            last = e
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n and last is not None and last.external_id == str(n)
    assert last.extra["vics"]["Notes"] == PAD
    assert last.extra.get("case", {}).get("CaseID") == (1 if cases else None)
    # about one read buffer, whatever the file size (a leak of 100 bytes a record would show)
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB file"
