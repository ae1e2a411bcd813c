"""A plain `pip install .` gets antlr4-python3-runtime 4.9 (dvc -> hydra-core), and then every
Dagster string selection fails deep inside the parser. The preflight check names the installed
version and the fix before that happens; both outcomes are pinned here, whatever is installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from retrain_assets import preflight


def _installed(monkeypatch, version: str | None) -> None:
    monkeypatch.setattr(
        preflight, "installed_version", lambda name: version if name == preflight.ANTLR else None
    )


@pytest.mark.parametrize("version", ["4.9.3", "4.9", "4.12.0"])
def test_an_old_antlr_runtime_is_refused_with_the_fix(monkeypatch, version: str) -> None:
    _installed(monkeypatch, version)
    with pytest.raises(ImportError) as error:
        preflight.check_antlr()
    message = str(error.value)
    assert f"antlr4-python3-runtime {version} is installed" in message
    assert "pip install --no-deps antlr4-python3-runtime==4.13.2" in message
    assert "make install" in message


@pytest.mark.parametrize("version", ["4.13.2", "4.13", "4.14.0", "5.0"])
def test_a_recent_antlr_runtime_passes(monkeypatch, version: str) -> None:
    _installed(monkeypatch, version)
    preflight.check_antlr()


def test_the_installed_runtime_passes() -> None:
    """`make install` forces 4.13.2 (overrides.txt): the real lookup finds it."""
    assert preflight.installed_version(preflight.ANTLR) == "4.13.2"
    preflight.check_antlr()


def test_the_check_imports_nothing_heavy() -> None:
    code = (
        "import sys; import retrain_assets.preflight as p; p.check_antlr();"
        " print(sorted(m for m in ('dagster', 'pandas', 'numpy', 'antlr4') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
