"""Tests for the promotion gates' maths (``lib/release/model_gates.py``).

Why: a gate that is off by one comparison either blocks every good retrain or lets a bad model
serve, so the AUC gate is checked exactly at its boundary, with and without a champion, against
the floor and on NaN. The latency gate must judge the tail (p95), not the typical call: a model
that is usually fast but stalls on one call in eight must fail, and a p95 from too few calls must
be refused. The gate's figures end up as MLflow model-version tags, whose format other tooling
reads. Finally latency is measured through the real MLflow pyfunc wrapper, as a serving endpoint
calls the model, on a skops-saved sklearn pipeline (no tracking server needed). No assertion
depends on how fast this machine is: the timing tests run on a fake clock.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain_assets.lib.release.model_gates import (
    GateResult,
    auc_gate,
    latency_gate,
    measure_latency_ms,
    pyfunc_latency_ms,
)

# --------------------------------------------------------------------------------------------
# AUC gate


def test_auc_gate_boundary_with_champion() -> None:
    champion = 0.81
    boundary = 0.99 * champion  # computed the same way as in the gate: equality passes
    at = auc_gate(boundary, champion)
    assert at.passed
    assert at.threshold == boundary
    below = auc_gate(math.nextafter(boundary, 0.0), champion)
    assert not below.passed
    assert "0.8019" in below.detail and "0.8100" in below.detail and "<" in below.detail


def test_auc_gate_without_champion_uses_floor() -> None:
    assert auc_gate(0.6, None).passed
    failed = auc_gate(0.5999, None)
    assert not failed.passed
    assert failed.threshold == 0.6
    assert "no champion" in failed.detail and "0.5999" in failed.detail


def test_auc_gate_floor_binds_when_champion_is_weak() -> None:
    # 0.99 x 0.55 = 0.5445 < floor 0.6: the floor is the threshold.
    result = auc_gate(0.58, 0.55)
    assert not result.passed
    assert result.threshold == 0.6
    assert auc_gate(0.6, 0.55, floor=0.6).passed
    # A lower floor lets the ratio decide.
    assert auc_gate(0.55, 0.55, floor=0.5).passed
    assert auc_gate(0.5, 0.55, floor=0.4, ratio=0.95).threshold == pytest.approx(0.5225)


def test_auc_gate_nan_fails() -> None:
    assert not auc_gate(math.nan, 0.8).passed
    assert not auc_gate(math.nan, None).passed
    assert "NaN" in auc_gate(math.nan, None).detail
    nan_champion = auc_gate(0.9, math.nan)
    assert not nan_champion.passed
    assert "champion AUC is NaN" in nan_champion.detail


def test_auc_gate_registry_tags_and_metadata() -> None:
    result = auc_gate(0.8123, 0.8121)
    assert result.registry_tags() == {
        "gate.auc": "passed",
        "gate.auc.value": "0.8123",
        "gate.auc.threshold": "0.8040",
    }
    failed = GateResult("auc", False, 0.5, 0.6, "x")
    assert failed.registry_tags()["gate.auc"] == "failed"
    assert failed.to_metadata() == {
        "auc_passed": False,
        "auc_value": 0.5,
        "auc_threshold": 0.6,
        "auc_detail": "x",
    }


# --------------------------------------------------------------------------------------------
# Latency gate

ROWS = pd.DataFrame({"a": np.arange(7, dtype=float), "b": list("abcdefg")})


class FakeClock:
    """time.perf_counter for these tests: time moves only when the fake model says it took
    some, so the timings (and every assertion on them) are exact whatever the machine's load."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def spend(self, ms: float) -> None:
        self.now += ms / 1000.0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(time, "perf_counter", fake)
    return fake


def test_fast_predict_passes(clock: FakeClock) -> None:
    seen: list[pd.DataFrame] = []

    def predict(frame: pd.DataFrame) -> float:
        seen.append(frame)
        clock.spend(2.0)
        return 0.0

    lat = measure_latency_ms(predict, ROWS, n=200, warmup=10)
    assert lat.shape == (200,)
    np.testing.assert_allclose(lat, 2.0, rtol=1e-6)  # each call's own time, warm-up not counted
    assert len(seen) == 210 and all(len(f) == 1 for f in seen)
    # Cycles through the rows in order, warm-up first.
    assert [float(f["a"].iloc[0]) for f in seen[:9]] == [0, 1, 2, 3, 4, 5, 6, 0, 1]
    result = latency_gate(lat)
    assert result.passed and result.gate == "latency"
    assert result.value == pytest.approx(2.0) and result.threshold == 100.0
    assert result.registry_tags()["gate.latency"] == "passed"


def test_predict_with_slow_tail_fails_on_p95(clock: FakeClock) -> None:
    calls = 0

    def predict(frame: pd.DataFrame) -> None:
        nonlocal calls
        calls += 1
        # One call in eight (12.5 % > 5 %) stalls for 110 ms; the others take 1 ms.
        clock.spend(110.0 if calls % 8 == 0 else 1.0)

    lat = measure_latency_ms(predict, ROWS, n=200, warmup=10)
    assert np.median(lat) == pytest.approx(1.0)  # the typical call is fast ...
    assert int(np.isclose(lat, 110.0).sum()) == 25  # calls 16, 24, ..., 208 (11-210 are timed)
    result = latency_gate(lat, max_p95_ms=100.0)
    assert not result.passed  # ... but the tail is not
    assert result.value == pytest.approx(110.0)
    assert "p95 110.00 ms > max 100.00 ms" in result.detail
    assert result.registry_tags()["gate.latency.value"] == "110.0000"
    assert latency_gate(lat, max_p95_ms=110.5).passed  # the same figures under a looser bound


def test_latency_gate_needs_200_samples() -> None:
    with pytest.raises(ValueError, match=">= 200 samples"):
        latency_gate(np.ones(199))
    with pytest.raises(ValueError, match="finite"):
        latency_gate(np.r_[np.ones(199), np.nan])
    assert latency_gate(np.ones(200)).value == 1.0
    with pytest.raises(ValueError, match="empty"):
        measure_latency_ms(lambda f: None, ROWS.iloc[:0])


def test_pyfunc_latency_through_mlflow(tmp_path: Path) -> None:
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.standard_normal((200, 3)), columns=["f1", "f2", "f3"])
    y = (x["f1"] + rng.standard_normal(200) > 0).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    path = tmp_path / "m"
    # Explicit requirements skip MLflow's slow dependency-inference subprocess.
    mlflow.sklearn.save_model(
        model, str(path), serialization_format="skops", pip_requirements=["scikit-learn", "skops"]
    )

    lat = pyfunc_latency_ms(str(path), x.iloc[:20], n=200)
    assert lat.shape == (200,)
    assert np.isfinite(lat).all() and (lat > 0).all()
    # How fast this machine is is not under test: the gate judges the measured p95 against the
    # bound it is given, passing at the bound and failing just under it.
    p95 = float(np.percentile(lat, 95))
    at = latency_gate(lat, max_p95_ms=p95)
    assert at.passed and at.value == p95
    assert not latency_gate(lat, max_p95_ms=math.nextafter(p95, 0.0)).passed
