"""Checks of the installed environment, run before Dagster parses anything. Import-light: only
the standard library, so a broken install is named before it fails somewhere deep.

The antlr trap (dagster-io/dagster#27487): dvc -> hydra-core pins antlr4-python3-runtime 4.9,
Dagster's asset-selection parser is generated for 4.13 but only declares `<4.14`, so a plain
`pip install .` picks 4.9 and every string selection then fails with
`TypeError: ord() expected string of length 1, but int found`.
"""

from __future__ import annotations

import re
from importlib import metadata

ANTLR = "antlr4-python3-runtime"
ANTLR_MIN = (4, 13)
ANTLR_FIX = "4.13.2"


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _major_minor(version: str) -> tuple[int, int] | None:
    """(4, 9) for "4.9.3"; None for a version string that does not start with two numbers."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def check_antlr() -> None:
    """Raise ImportError when the installed antlr runtime is older than the one Dagster's selection
    parser was generated for. Nothing installed is not this check's business: Dagster itself
    requires the runtime, and its own import error says so."""
    version = installed_version(ANTLR)
    release = _major_minor(version) if version is not None else None
    if release is None or release >= ANTLR_MIN:
        return
    raise ImportError(
        f"{ANTLR} {version} is installed, but Dagster's asset-selection parser needs"
        f" >= {'.'.join(map(str, ANTLR_MIN))}: every string selection would fail with"
        ' "TypeError: ord() expected string of length 1, but int found"'
        " (dvc -> hydra-core pins 4.9; dagster-io/dagster#27487). Fix:"
        f" `pip install --no-deps {ANTLR}=={ANTLR_FIX}`, or install with `make install`"
        " (uv with overrides.txt)."
    )
