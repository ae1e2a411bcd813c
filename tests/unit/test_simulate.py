"""Tests for the synthetic car-loan feed.

Why: every drift-detection and retraining demo/test trusts this feed's ground truth. So these
tests measure, with the statistics a detector would use (KS, PSI, AUC), that each drift kind
really looks like what ``ground_truth.json`` claims, and that the on-disk layout, contract and
determinism the pipeline depends on hold.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import chi2_contingency, ks_2samp
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from retrain_assets.lib.data.simulate import (
    CATEGORICAL,
    DRIFT_KINDS,
    NUMERICAL,
    TARGET,
    SimulationSpec,
    generate_day,
    simulate,
)

START = dt.date(2024, 1, 1)  # a Monday
DRIFT_DAY = 30
FEATURES = NUMERICAL + CATEGORICAL
ALLOWED = {
    "salary_range": {"<20k", "20-40k", "40-60k", "60-100k", ">100k"},
    "repaid_loan_on_prev_car": {"yes", "no", "no_prev_car"},
    "size_of_downpayment": {"0%", "<10%", "10-25%", ">25%"},
    "region": {"north", "south", "east", "west", "central"},
}


def _load(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and all production rows joined to their labels, with a 0-based ``day`` column."""
    landing = out / "landing"
    ref = pd.read_parquet(landing / "reference.parquet")
    feats = pd.concat(
        pd.read_parquet(p).assign(day=(dt.date.fromisoformat(p.stem) - START).days)
        for p in sorted((landing / "features").glob("*.parquet"))
    )
    labels = pd.concat(pd.read_parquet(p) for p in sorted((landing / "labels").glob("*.parquet")))
    return ref, feats.merge(labels, on="id", how="left", validate="one_to_one")


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """One default-size (60 days x 1000 rows) feed per drift kind, read back from disk."""
    result = {}
    for kind in DRIFT_KINDS:
        out = tmp_path_factory.mktemp(kind)
        simulate(out, SimulationSpec(drift=kind, drift_day=DRIFT_DAY, start_date=START))
        result[kind] = _load(out)
    return result


def _split(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return rows[rows.day < DRIFT_DAY], rows[rows.day >= DRIFT_DAY]


def _ks_p(a: pd.Series, b: pd.Series) -> float:
    return float(ks_2samp(a.dropna(), b.dropna()).pvalue)


def _psi(ref: pd.Series, cur: pd.Series, bins: int = 10) -> float:
    """Population stability index on reference-quantile bins."""
    r, c = ref.dropna().to_numpy(), cur.dropna().to_numpy()
    edges = np.unique(np.quantile(r, np.linspace(0, 1, bins + 1))[1:-1])
    shares = [
        np.clip(np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
                / len(v), 1e-4, None)
        for v in (r, c)
    ]  # fmt: skip
    return float(np.sum((shares[1] - shares[0]) * np.log(shares[1] / shares[0])))


def _auc_of_reference_model(ref: pd.DataFrame, *batches: pd.DataFrame) -> list[float]:
    encode = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), NUMERICAL),
        (OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    )
    model = make_pipeline(encode, LogisticRegression(max_iter=1000))
    model.fit(ref[FEATURES], ref[TARGET])
    return [roc_auc_score(b[TARGET], model.predict_proba(b[FEATURES])[:, 1]) for b in batches]


def test_layout_contract_and_data_quality(tmp_path: Path) -> None:
    spec = SimulationSpec(days=10, rows_per_day=500, drift="abrupt", drift_day=5, start_date=START)
    truth = simulate(tmp_path, spec)
    landing = tmp_path / "landing"
    dates = [str(START + dt.timedelta(days=d)) for d in range(13)]
    assert sorted(p.stem for p in (landing / "features").iterdir()) == dates[:10]
    assert sorted(p.stem for p in (landing / "labels").iterdir()) == dates[3:13]
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]

    assert json.loads((tmp_path / "ground_truth.json").read_text()) == truth
    assert truth["drift"] == "abrupt" and truth["drift_day"] == 5
    assert truth["drift_date"] == "2024-01-06" and truth["start_date"] == "2024-01-01"
    assert (truth["days"], truth["rows_per_day"], truth["label_delay"]) == (10, 500, 3)
    assert truth["target_column"] == TARGET and len(truth["affected_features"]) >= 3
    assert set(truth["affected_features"]) <= set(FEATURES)

    contract = yaml.safe_load((tmp_path / "retrain.yaml").read_text())
    assert contract == {
        "data": {
            "landing_dir": "landing", "id_column": "id", "timestamp_column": "timestamp",
            "target_column": "defaulted", "positive_label": 1, "numerical_features": NUMERICAL,
            "categorical_features": CATEGORICAL, "start_date": "2024-01-01",
        },
        "workdir": ".retrain",
        "model": {"registered_name": "car_loan"},
    }  # fmt: skip

    ref = pd.read_parquet(landing / "reference.parquet")
    assert list(ref.columns) == ["id", "timestamp", *FEATURES, TARGET] and len(ref) == 5000
    assert ref.timestamp.min() >= pd.Timestamp(START) - pd.Timedelta(days=28)
    assert ref.timestamp.max() < pd.Timestamp(START)
    all_ids = [ref.id]
    for d in range(10):
        feats = pd.read_parquet(landing / "features" / f"{dates[d]}.parquet")
        labels = pd.read_parquet(landing / "labels" / f"{dates[d + 3]}.parquet")
        assert list(feats.columns) == ["id", "timestamp", *FEATURES] and len(feats) == 500
        assert list(labels.columns) == ["id", TARGET] and labels.id.tolist() == feats.id.tolist()
        assert feats.timestamp.dt.normalize().eq(pd.Timestamp(dates[d])).all()
        all_ids.append(feats.id)
    ids = pd.concat(all_ids)
    assert ids.dtype == np.int64 and ids.is_unique and len(ids) == 5000 + 10 * 500

    assert ref.timestamp.dtype == "datetime64[ns]" and ref[TARGET].dtype == np.int64
    assert all(ref[c].dtype == np.float64 for c in NUMERICAL)
    for col, allowed in ALLOWED.items():
        assert ref[col].map(type).eq(str).all() and set(ref[col]) == allowed
    assert ref[NUMERICAL].isna().mean().max() < 0.02
    assert ref.loan_length.between(12, 84).all() and ref.credit_score.between(300, 850).all()
    assert ref.debt_to_income_ratio.dropna().between(0, 1.5).all()
    assert ref.annual_income.corr(ref.car_value) > 0.5  # correlated, like real applicants
    assert 0.15 <= ref[TARGET].mean() <= 0.25


def test_default_start_date_keeps_every_file_in_the_past(tmp_path: Path) -> None:
    truth = simulate(tmp_path, SimulationSpec(days=3, rows_per_day=20, reference_rows=50))
    latest_label = max(p.stem for p in (tmp_path / "landing" / "labels").iterdir())
    assert dt.date.fromisoformat(latest_label) <= dt.date.today()
    assert truth["start_date"] == str(dt.date.today() - dt.timedelta(days=6))


def test_label_delay_zero_lands_labels_the_same_day(tmp_path: Path) -> None:
    simulate(tmp_path, SimulationSpec(days=4, rows_per_day=50, label_delay=0, start_date=START))
    landing = tmp_path / "landing"
    feature_files = sorted(p.name for p in (landing / "features").iterdir())
    assert sorted(p.name for p in (landing / "labels").iterdir()) == feature_files
    for name in feature_files:
        feats, labels = (pd.read_parquet(landing / sub / name) for sub in ("features", "labels"))
        assert labels.id.tolist() == feats.id.tolist()


def test_same_seed_is_byte_identical_and_seeds_differ(tmp_path: Path) -> None:
    spec = SimulationSpec(days=3, rows_per_day=200, drift="gradual", drift_day=1, start_date=START)
    simulate(tmp_path / "a", spec)
    simulate(tmp_path / "b", spec)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 1 + 3 + 3 + 2
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    first, again = generate_day(spec, 2), generate_day(spec, 2)
    pd.testing.assert_frame_equal(first[0], again[0])
    pd.testing.assert_frame_equal(first[1], again[1])
    other = generate_day(SimulationSpec(drift="gradual", drift_day=1, seed=1, start_date=START), 2)
    assert not first[0][NUMERICAL].equals(other[0][NUMERICAL])


def test_none_has_no_drift(feeds: dict) -> None:
    before, after = _split(feeds["none"][1])
    pvalues = {c: _ks_p(before[c], after[c]) for c in NUMERICAL}
    assert min(pvalues.values()) > 0.001, pvalues
    for feed in (before, after):
        assert 0.15 <= feed[TARGET].mean() <= 0.25


def test_abrupt_shifts_listed_features_from_drift_day(feeds: dict) -> None:
    ref, rows = feeds["abrupt"]
    before, after = _split(rows)
    for col in ("car_value", "debt_to_income_ratio", "annual_income"):
        assert _ks_p(before[col], after[col]) < 1e-6
        assert (after[col].mean() - before[col].mean()) / ref[col].std() > 0.5
    for col in ("loan_length", "driver_tenure", "credit_score"):  # not in affected_features
        assert _ks_p(before[col], after[col]) > 0.001
    table = pd.crosstab(rows.day >= DRIFT_DAY, rows.size_of_downpayment)
    assert chi2_contingency(table).pvalue < 1e-6
    share_zero = table["0%"] / table.sum(axis=1)
    assert share_zero[True] - share_zero[False] > 0.15
    # Before the drift day the feed is exactly the undrifted one.
    none_before = _split(feeds["none"][1])[0]
    pd.testing.assert_frame_equal(before.reset_index(drop=True), none_before.reset_index(drop=True))


def test_gradual_ramps_up_after_drift_day(feeds: dict) -> None:
    ref, rows = feeds["gradual"]
    sd = ref.annual_income.std()
    shift = (rows.groupby("day").annual_income.mean() - ref.annual_income.mean()) / sd
    assert shift[shift.index < DRIFT_DAY].abs().max() < 0.15
    assert abs(shift[shift.index < DRIFT_DAY].mean()) < 0.05
    ramp = shift.loc[DRIFT_DAY : DRIFT_DAY + 21]
    assert shift[DRIFT_DAY + 2] < 0.3 < 0.8 < shift[DRIFT_DAY + 21]
    assert np.polyfit(ramp.index, ramp.to_numpy(), 1)[0] > 0.03  # steadily growing
    full = _split(feeds["abrupt"][1])[1].annual_income.mean()
    assert abs(rows[rows.day >= DRIFT_DAY + 21].annual_income.mean() - full) / sd < 0.1


def test_concept_keeps_inputs_but_breaks_the_reference_model(feeds: dict) -> None:
    ref, rows = feeds["concept"]
    before, after = _split(rows)
    pvalues = {c: _ks_p(before[c], after[c]) for c in NUMERICAL}
    assert min(pvalues.values()) > 0.001, pvalues
    for col in CATEGORICAL:
        assert chi2_contingency(pd.crosstab(rows.day >= DRIFT_DAY, rows[col])).pvalue > 0.001
    assert abs(after[TARGET].mean() - before[TARGET].mean()) < 0.05
    auc_before, auc_after = _auc_of_reference_model(ref, before, after)
    assert 0.75 <= auc_before <= 0.9
    assert auc_before - auc_after >= 0.05


def test_seasonal_wobble_exists_but_is_not_drift(feeds: dict) -> None:
    ref, rows = feeds["seasonal"]
    calm = feeds["none"][1]

    def weekend_minus_midweek(frame: pd.DataFrame) -> tuple[float, float]:
        weekday = frame.timestamp.dt.dayofweek
        weekend = frame.annual_income[weekday.isin([4, 5, 6])].dropna()
        midweek = frame.annual_income[weekday.isin([1, 2])].dropna()
        se = ref.annual_income.std() * np.sqrt(1 / len(weekend) + 1 / len(midweek))
        return weekend.mean() - midweek.mean(), (weekend.mean() - midweek.mean()) / se

    # Documented season: weekend (Fri-Sun) applicants earn more than Tue-Wed ones, in production
    # and in the reference alike, while the undrifted feed has no such pattern.
    (wobble, z_prod), (_, z_ref) = map(weekend_minus_midweek, (rows, ref))
    assert z_prod > 5 and z_ref > 2  # reference: 5000 rows only
    assert abs(weekend_minus_midweek(calm)[0]) < 0.3 * wobble
    for _, day in rows.groupby("day"):
        for col in NUMERICAL:
            assert _psi(ref[col], day[col]) < 0.1
            # KS statistic of two 1000/5000-row samples is ~0.05 from noise alone; allow a bit more.
            assert ks_2samp(ref[col].dropna(), day[col].dropna()).statistic < 0.12


def test_refuses_non_empty_landing_unless_overwrite(tmp_path: Path) -> None:
    simulate(tmp_path, SimulationSpec(days=5, rows_per_day=20, reference_rows=50, start_date=START))
    small = SimulationSpec(days=3, rows_per_day=20, reference_rows=50, start_date=START)
    with pytest.raises(FileExistsError, match=re.escape(str(tmp_path / "landing"))):
        simulate(tmp_path, small)
    simulate(tmp_path, small, overwrite=True)
    assert len(list((tmp_path / "landing" / "features").iterdir())) == 3


def test_invalid_drift_kind_names_the_value() -> None:
    with pytest.raises(ValueError, match="'sudden'"):
        SimulationSpec(drift="sudden")
