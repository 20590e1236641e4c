"""The package's imports flow one way (docs/architecture.md): every import in ``src/opspoor`` (module
level, function level, and under ``TYPE_CHECKING``: a circle over types is a circle in the design)
is read with ``ast``, and the test fails on any circle between modules and on any import of a
package that the importing package may not import. All violations are reported at once; the ones
that exist today and are being fixed by another step are listed in ``KNOWN`` with their reason, so
a new one fails and a fixed one must leave the list.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import opspoor

SRC = Path(opspoor.__file__).resolve().parent

#: importable from anywhere: the package root (its version), typed errors, the cache folder, the
#: one way to open evidence
BASE = frozenset({"opspoor", "errors", "cachedir", "readonly"})
#: what each package may import besides itself, bottom layer first (docs/architecture.md):
#: base; media; sources, signals, clues; index, hashsets; store; matching; triage; demo, evaluate;
#: report; the case outputs (casefile), service, the review workspace (review); cli
MAY_IMPORT: dict[str, frozenset[str]] = {
    "opspoor": frozenset(),
    "errors": frozenset(),
    "cachedir": frozenset(),
    "readonly": frozenset({"errors"}),
    "media": BASE,
    "sources": BASE | {"media"},
    "signals": BASE | {"media"},
    "clues": BASE | {"media"},
    "index": BASE,
    "hashsets": BASE | {"signals"},
    "store": BASE | {"signals", "index", "hashsets"},
    "matching": BASE | {"media", "signals", "index", "hashsets", "store"},
    "triage": BASE | {"sources", "media", "signals", "clues", "index", "hashsets", "store", "matching"},
    "stream": BASE | {"media", "signals", "index", "hashsets", "store", "matching"},
    "demo": BASE | {"media", "signals", "hashsets"},
    "evaluate": BASE | {"media", "signals", "index", "hashsets", "matching", "demo"},
    "report": BASE | {"media", "signals", "clues", "hashsets", "store", "triage"},
    "casefile": BASE | {"media", "signals", "clues", "hashsets", "store", "triage", "report"},
    "intake": BASE | {"media", "signals", "clues", "hashsets", "store", "matching"},
    "service": BASE | {"media", "signals", "index", "hashsets", "store", "matching", "intake", "stream"},
    # team mode puts the review app behind the service's tokens and audit (review.team)
    # and the intake's new files into its queue (review.intake)
    "review": BASE | {"sources", "media", "signals", "hashsets", "store", "triage", "service", "intake"},
    "cli": BASE
    | {"sources", "media", "signals", "clues", "index", "hashsets", "store", "matching", "triage", "stream"}
    | {"demo", "evaluate", "report", "casefile", "service", "intake", "review"},
    "__main__": BASE | {"cli"},
}

#: violations that exist today and are being fixed by another step: (importer, imported) module
#: pairs against the layers, and circles (their modules, sorted), each with the step that fixes it
KNOWN: dict[tuple[str, ...], str] = {}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(mods: dict[str, Path]) -> Iterator[Import]:
    """Each import of one of the package's modules by another, wherever it is written."""

    def known(name: str) -> str:
        while name not in mods:  # an imported name, not a module: its module
            name = name.rpartition(".")[0]
        return name

    for name, path in mods.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the importer's package
                    package = name if is_package else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            for target in targets:
                if target == "opspoor" or target.startswith("opspoor."):
                    found = known(target)
                    if found != name:
                        yield Import(name, found, node.lineno)


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "opspoor"


def circles(edges: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(tuple(sorted(group)))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def violations() -> dict[tuple[str, ...], str]:
    """Every import against the layers and every circle, with what it is."""
    mods = modules()
    found: dict[tuple[str, ...], str] = {}
    edges: dict[str, set[str]] = {}
    for imp in imports(mods):
        edges.setdefault(imp.importer, set()).add(imp.imported)
        source, target = package_of(imp.importer), package_of(imp.imported)
        if source != target and target not in MAY_IMPORT.get(source, frozenset()):
            found[imp.importer, imp.imported] = (
                f"{imp.importer} (line {imp.line}) imports {imp.imported}: {source} may not import {target}"
            )
    for group in circles(edges):
        found[group] = "import circle: " + " <-> ".join(group)
    return found


def test_the_walk_sees_every_kind_of_import() -> None:
    """The walk itself: function-level, TYPE_CHECKING and ``from package import module`` imports."""
    mods = modules()
    seen = {(i.importer, i.imported) for i in imports(mods)}
    assert ("opspoor.service.app", "opspoor.service.routes_match") in seen  # from package import module
    assert ("opspoor.service.routing", "opspoor.service.state") in seen  # under TYPE_CHECKING
    assert ("opspoor.cli.serve_cmd", "opspoor.service.settings") in seen  # inside a function
    assert ("opspoor.service.auth", "opspoor.store.tokens") in seen  # from module import name
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b", "c")]


def test_every_package_is_placed_in_the_layers() -> None:
    unplaced = {package_of(m) for m in modules()} - set(MAY_IMPORT)
    assert not unplaced, f"add {sorted(unplaced)} to MAY_IMPORT (and to docs/architecture.md)"


def test_imports_flow_one_way_without_circles() -> None:
    new = {k: v for k, v in violations().items() if k not in KNOWN}
    assert not new, "imports against the layers or in a circle:\n" + "\n".join(sorted(new.values()))


def test_known_exceptions_still_exist() -> None:
    """A violation that is fixed leaves ``KNOWN``, so it cannot come back unnoticed."""
    gone = set(KNOWN) - set(violations())
    assert not gone, f"fixed, remove from KNOWN: {sorted(gone)}"


def test_the_service_has_no_circles_and_only_its_entry_points_import_the_app() -> None:
    found = violations()
    assert not [k for k in found if len(k) > 2 and any(m.startswith("opspoor.service.") for m in k)]
    importers = {i.importer for i in imports(modules()) if i.imported == "opspoor.service.app"}
    # review.team's service_app_from_env is the factory `opspoor serve` runs (the service with the
    # review app mounted): an entry point too
    assert importers <= {"opspoor.cli.serve_cmd", "opspoor.review.team"}, importers


def test_one_definition_each_of_roles_and_audit_fields() -> None:
    """What is derived from the one definition stays in step with it: the tokens table's CHECK and
    the routes' role names (store.models_service.ROLES), the audit table's columns, the JSON of a
    row and its OpenAPI schema (store.audit.EVENT_FIELDS)."""
    from datetime import UTC, datetime

    from opspoor.service import auth
    from opspoor.service.routes_tokens import AuditOut, TokenCreate
    from opspoor.store.audit import EVENT_FIELDS, AuditEvent, AuditRecord
    from opspoor.store.models_service import ROLES, AuditRow, TokenRow

    assert (
        auth.PLATFORM,
        auth.CURATOR,
        auth.ANALYST,
        auth.ADMIN,
        auth.REVIEWER,
        auth.REPORTER,
        auth.HOTLINE,
    ) == ROLES
    (check,) = [c for c in TokenRow.__table__.constraints if c.name == "ck_tokens_role"]
    assert str(check.sqltext) == "role IN (" + ", ".join(f"'{r}'" for r in ROLES) + ")"
    assert TokenCreate.model_json_schema()["properties"]["role"]["enum"] == list(ROLES)
    assert set(EVENT_FIELDS) <= set(AuditRow.__table__.columns.keys())
    row = AuditRecord(1, AuditEvent(datetime.now(UTC), 1, "t", "match", None, "ok", 200), "0" * 64, "1" * 64)
    assert list(row.to_json()) == ["id", *EVENT_FIELDS, "row_hash"] == list(AuditOut.model_fields)
