"""The split between Dagster code and plain maths is a rule, not a habit: lib/ is unit-tested
without Dagster and must stay importable without it, so it never imports Dagster, the resources,
the config or anything else of the package outside lib/. And `names.py` stays the one place of
the loop's names: no Dagster module spells an asset, job or alias name as a bare string."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from retrain_assets import names

PACKAGE = Path(__file__).resolve().parents[2] / "retrain_assets"
LIB = PACKAGE / "lib"
DAGSTER_LAYER = [
    "ingest",
    "monitoring",
    "training",
    "release",
    "records.py",
    "backtest/replay.py",
    "scope.py",
    "definitions.py",
    "overview.py",
    "alerts.py",
]


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def forbidden_in_lib(module: str) -> bool:
    top = module.split(".")[0]
    if top.startswith("dagster"):
        return True
    return top == "retrain_assets" and not module.startswith("retrain_assets.lib")


@pytest.mark.parametrize("path", sorted(LIB.rglob("*.py")), ids=lambda p: str(p.relative_to(LIB)))
def test_lib_imports_no_dagster_resources_or_config(path: Path) -> None:
    bad = sorted(m for m in imported_modules(path) if forbidden_in_lib(m))
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}: lib/ is plain Python"


def test_the_rule_catches_a_dagster_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import dagster as dg\nfrom retrain_assets.config import RetrainConfig\n")
    assert sorted(m for m in imported_modules(module) if forbidden_in_lib(m)) == [
        "dagster",
        "retrain_assets.config",
    ]


# Group names double as folder names and "challenger" as a metadata flag: not checked.
SHARED_NAMES = {
    value
    for key, value in vars(names).items()
    if key.isupper() and isinstance(value, str) and "/" not in value
} - {names.INGEST_GROUP, names.MONITORING_GROUP, names.TRAINING_GROUP, names.RELEASE_GROUP}
SHARED_NAMES.discard(names.CHALLENGER)


def bare_names(path: Path) -> list[str]:
    """String constants equal to a shared name, outside docstrings and f-strings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        f"{path.name}:{node.lineno} {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in SHARED_NAMES
        and id(node) not in docstrings
    ]


def dagster_layer_files() -> list[Path]:
    files: list[Path] = []
    for part in DAGSTER_LAYER:
        target = PACKAGE / part
        files += sorted(target.rglob("*.py")) if target.is_dir() else [target]
    return files


@pytest.mark.parametrize("path", dagster_layer_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_dagster_layer_uses_names_not_bare_strings(path: Path) -> None:
    assert not bare_names(path), "use retrain_assets.names instead of these strings"


def test_the_rule_catches_a_bare_asset_name(tmp_path: Path) -> None:
    module = tmp_path / "sensors.py"
    module.write_text('"""drift_report in a docstring is fine."""\nKEY = "drift_report"\n')
    assert bare_names(module) == ["sensors.py:2 'drift_report'"]


MAX_FUNCTION_LINES = 60


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_functions_stay_short(path: Path) -> None:
    # Builders attach specs and bodies are named functions: a long function hides a step.
    assert not long_functions(path), f"split these into named functions: {long_functions(path)}"
