"""Tests for the Evidently HTML report and its agreement with our drift engine.

Why: the HTML report is what a human opens to judge a drift alert, so it must render and name the
columns, and it must not contradict the engine that raised the alert: on clearly shifted and
clearly stable columns, Evidently's PSI verdicts (same 0.2 threshold) flag exactly the columns our
engine flags by PSI alone. Evidently is slow, so it runs once, on a few thousand rows.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain_assets.lib.drift.evidently_report import write_drift_html
from retrain_assets.lib.drift.profile import ReferenceProfile

NUMERICAL = ["income", "age", "debt", "tenure", "score"]
CATEGORICAL = ["region", "plan"]
SHIFTED = ["income", "debt", "plan"]  # 1 sd shifts and a changed mix: PSI far above 0.2


def _frames(n: int = 3000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)

    def frame(shift: float, plan_p: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "income": rng.lognormal(10.5 + 0.5 * shift, 0.5, n),
                "age": rng.normal(40, 12, n),
                "debt": rng.normal(0.3 + 0.1 * shift, 0.1, n),
                "tenure": rng.gamma(2.0, 4.0, n),
                "score": np.round(rng.normal(670, 80, n)),
                "region": rng.choice(["north", "south", "east", "west"], n),
                "plan": rng.choice(["basic", "plus", "pro"], n, p=plan_p),
            }
        )

    return frame(0.0, [0.6, 0.3, 0.1]), frame(1.0, [0.2, 0.3, 0.5])


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bool], pd.DataFrame]:
    reference, current = _frames()
    path = tmp_path_factory.mktemp("evidently") / "nested" / "drift.html"
    verdicts = write_drift_html(reference, current, NUMERICAL, CATEGORICAL, path, max_rows=2500)
    ours = ReferenceProfile.fit(reference, NUMERICAL, CATEGORICAL).compare(current).columns
    return path, verdicts, ours


def test_html_is_written_atomically_and_names_the_columns(report) -> None:
    path, verdicts, _ = report
    html = path.read_text("utf-8")
    assert "<html" in html and all(c in html for c in NUMERICAL + CATEGORICAL)
    assert [p.name for p in path.parent.iterdir()] == ["drift.html"]  # no temp file left
    assert list(verdicts) == NUMERICAL + CATEGORICAL


def test_evidently_flags_the_same_columns_as_our_psi(report) -> None:
    """Exact set equality; the tolerance is in the data: shifted columns have PSI > 0.5 and stable
    ones < 0.05 in both engines, because their binning differs (Evidently: Sturges bins over both
    samples; ours: reference deciles), so a column near 0.2 could legitimately differ."""
    _, verdicts, ours = report
    psi = ours.set_index("column")["psi"]
    assert (psi[SHIFTED] > 0.5).all() and (psi.drop(SHIFTED) < 0.05).all()
    assert {c for c, drifted in verdicts.items() if drifted} == set(psi[psi > 0.2].index)
    assert set(SHIFTED) == {c for c, drifted in verdicts.items() if drifted}


def test_module_imports_without_evidently() -> None:
    code = (
        "import sys, retrain_assets.lib.drift.evidently_report, retrain_assets.lib.drift.profile; "
        "assert 'evidently' not in sys.modules and 'dagster' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_column_is_refused_before_evidently_runs(tmp_path: Path) -> None:
    reference, current = _frames(10)
    with pytest.raises(ValueError, match="'plan'"):
        write_drift_html(reference, current.drop(columns="plan"), NUMERICAL, CATEGORICAL,
                         tmp_path / "x.html")  # fmt: skip
    assert not (tmp_path / "x.html").exists()
