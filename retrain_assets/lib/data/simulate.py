"""Synthetic car-loan default feed with known, injectable drift.

Drift detection and retraining can only be shown and tested on data whose ground truth is known:
this writes a daily landing zone (features now, labels ``label_delay`` days later), a labelled
reference, the data contract (``retrain.yaml``) and the answer key (``ground_truth.json``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from retrain_assets.lib.files import write_parquet, write_text

DRIFT_KINDS = ("none", "abrupt", "gradual", "concept", "seasonal")
NUMERICAL = [
    "car_value", "debt_to_income_ratio", "loan_length", "driver_tenure", "annual_income",
    "credit_score",
]  # fmt: skip
CATEGORICAL = ["salary_range", "repaid_loan_on_prev_car", "size_of_downpayment", "region"]
TARGET = "defaulted"
# What each kind acts on: a marginal shift for abrupt/gradual, a changed effect on the target
# for concept; the seasonal wobble is not drift, so it is reported separately.
SHIFTED_FEATURES = [
    "annual_income", "car_value", "debt_to_income_ratio", "salary_range", "size_of_downpayment",
]  # fmt: skip
CONCEPT_FEATURES = ["credit_score", "debt_to_income_ratio", "loan_length", "region"]
SEASONAL_FEATURES = ["annual_income", "car_value", "debt_to_income_ratio"]
SEASONAL_AMPLITUDE = 0.1  # in standard deviations: small enough to stay below PSI 0.1
REFERENCE_DAYS = 28  # four whole weeks, so the reference carries every weekday of the season

_US_PER_DAY = 86_400 * 10**6
_SALARY = np.array(["<20k", "20-40k", "40-60k", "60-100k", ">100k"], dtype=object)
_DOWN = np.array(["0%", "<10%", "10-25%", ">25%"], dtype=object)
_DOWN_CUTS = [-1.036, -0.126, 0.842]  # standard-normal cuts for 15/30/35/20 % downpayments
_REGION = np.array(["north", "south", "east", "west", "central"], dtype=object)
_REGION_CUM = np.cumsum([0.22, 0.24, 0.18, 0.20])
_REF_STREAM, _DAY_STREAM, _CAL_SEED = 1, 2, 20_240_101

# Log-odds effects on default. Numerical features enter as fixed z-scores, so a shifted
# population really does default more (labels stay consistent with the features).
_Coefs = dict[str, Any]
_Arrays = dict[str, np.ndarray]
_SCALES = {  # coefficient -> (column, centre, scale)
    "credit": ("credit_score", 670, 80), "dti": ("debt_to_income_ratio", 0.32, 0.12),
    "loan": ("loan_length", 48, 16), "tenure": ("driver_tenure", 12.5, 8), "ltv": ("_ltv_z", 0, 1),
}  # fmt: skip
_LEVELS = {"repaid": "repaid_loan_on_prev_car", "down": "size_of_downpayment", "region": "region"}
_BASE: _Coefs = {
    "credit": -1.1, "dti": 0.7, "loan": 0.35, "tenure": -0.25, "ltv": 0.3,
    "repaid": {"yes": -0.2, "no": 0.9, "no_prev_car": 0.3},
    "down": {"0%": 0.6, "<10%": 0.2, "10-25%": 0.0, ">25%": -0.4},
    "region": {"north": 0.0, "south": 0.1, "east": -0.05, "west": 0.0, "central": 0.15},
}  # fmt: skip
# After the concept change (a regional shock): credit score and DTI barely matter, long loans
# and the south/east regions do. P(x) is untouched; the intercept is re-calibrated to ~20 %.
_CONCEPT: _Coefs = {
    **_BASE, "credit": -0.25, "dti": -0.2, "loan": 0.9,
    "region": {"north": -0.6, "south": 1.2, "east": 0.8, "west": -0.6, "central": -0.8},
}  # fmt: skip


@dataclass(frozen=True)
class SimulationSpec:
    """Everything that determines the feed; equal specs give identical data."""

    days: int = 60
    rows_per_day: int = 1000
    drift: str = "none"
    drift_day: int = 30  # 0-based index of the first drifted day
    label_delay: int = 3  # labels of day d land in labels/ on day d + label_delay
    seed: int = 0
    start_date: dt.date | None = None  # default: every file date (incl. labels) is in the past
    reference_rows: int = 5000
    gradual_days: int = 21  # gradual drift ramps from 0 to full strength over this many days

    def __post_init__(self) -> None:
        if self.drift not in DRIFT_KINDS:
            raise ValueError(f"unknown drift kind {self.drift!r}; expected one of {DRIFT_KINDS}")
        if min(self.days, self.rows_per_day, self.reference_rows, self.gradual_days) < 1:
            raise ValueError("days, rows_per_day, reference_rows and gradual_days must be >= 1")
        if self.label_delay < 0 or self.seed < 0:
            raise ValueError("label_delay and seed must be >= 0")
        if self.drift in ("abrupt", "gradual", "concept") and not 0 <= self.drift_day < self.days:
            raise ValueError(f"drift_day {self.drift_day} outside [0, {self.days})")


def resolve_start_date(spec: SimulationSpec) -> dt.date:
    """The first production day; by default the last label file is dated yesterday (all past)."""
    default = dt.date.today() - dt.timedelta(days=spec.days + spec.label_delay)
    return spec.start_date if spec.start_date is not None else default


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _features(rng: np.random.Generator, n: int, shift: np.ndarray, wobble: np.ndarray) -> _Arrays:
    """Draw n applicants. ``shift`` (0..1 per row) is drift strength, ``wobble`` the season.

    All random numbers are drawn up front in a fixed order, so drift never changes which
    numbers a row gets: pre-drift rows are identical to the undrifted feed.
    """
    e, r, gam = rng.standard_normal((7, n)), rng.random((6, n)), rng.gamma(2.5, 5.0, n)
    u = e[0]  # latent financial health: links income, DTI, credit score, history, downpayment
    move = shift + SEASONAL_AMPLITUDE * wobble  # in standard deviations of the latent
    log_income = np.log(52_000) + 0.45 * (0.6 * u + 0.8 * e[1] + move)
    income = np.round(np.clip(np.exp(log_income), 8_000, 600_000), -2)
    car = np.round(np.clip(income * 0.5 * np.exp(0.35 * e[2]), 2_000, 250_000), -1)
    dti = np.round(np.clip(0.32 + 0.12 * (-0.5 * u + 0.866 * e[3] + move), 0.01, 1.5), 3)
    ltv_z = (np.log(car / income) - np.log(0.5)) / 0.35  # pricey car for the income: risk
    loan = np.clip(48.0 + 12.0 * np.round(1.3 * (0.6 * ltv_z + 0.8 * e[4])), 12.0, 84.0)
    tenure = np.round(np.clip(gam, 0.0, 55.0), 1)
    credit_z = 0.6 * u + 0.15 * (tenure - 12.5) / 8 + 0.78 * e[5]
    credit = np.round(np.clip(670 + 80 * credit_z, 300, 850))
    no_prev = r[0] < 0.05 + 0.6 * _sigmoid(-0.5 * (tenure - 3.0))  # new drivers: no history
    repaid = np.where(
        no_prev, "no_prev_car", np.where(r[1] < _sigmoid(-2.0 - 0.9 * u), "no", "yes")
    )
    salary = np.searchsorted([20_000, 40_000, 60_000, 100_000], income, side="right")
    return {
        "car_value": car, "debt_to_income_ratio": dti, "loan_length": loan,
        "driver_tenure": tenure, "annual_income": income, "credit_score": credit,
        "salary_range": _SALARY[salary], "repaid_loan_on_prev_car": repaid.astype(object),
        "size_of_downpayment": _DOWN[np.searchsorted(_DOWN_CUTS, 0.6 * u + 0.8 * e[6] - shift)],
        "region": _REGION[np.searchsorted(_REGION_CUM, r[2])],
        "_ltv_z": ltv_z, "_u_label": r[3], "_u_na_tenure": r[4], "_u_na_dti": r[5],
    }  # fmt: skip


def _logit(x: _Arrays, c: _Coefs) -> np.ndarray:
    """Default log-odds without intercept, from fixed (reference) standardisation."""
    eta = sum(c[key] * (x[col] - mu) / sd for key, (col, mu, sd) in _SCALES.items())
    for key, col in _LEVELS.items():
        eta = eta + pd.Series(x[col]).map(c[key]).to_numpy(dtype=float)
    return np.asarray(eta)


@cache
def _intercept(concept: bool) -> float:
    """Intercept giving a 20 % default rate on the undrifted population (Newton, big sample)."""
    n = 200_000
    x = _features(np.random.default_rng(_CAL_SEED), n, np.zeros(n), np.zeros(n))
    eta = _logit(x, _CONCEPT if concept else _BASE)
    b = float(np.log(0.2 / 0.8) - eta.mean())
    for _ in range(30):
        p = _sigmoid(eta + b)
        b -= float((p.mean() - 0.2) / (p * (1 - p)).mean())
    return b


def _rows(
    spec: SimulationSpec, rng: np.random.Generator, first_id: int, day0: int, n: int, span: int
) -> pd.DataFrame:
    """n labelled rows with timestamps in days [day0, day0 + span) relative to the start date."""
    offs = np.sort(rng.integers(0, span * _US_PER_DAY, n))
    t = day0 + offs / _US_PER_DAY  # fractional day index, negative for the reference
    start = np.datetime64(resolve_start_date(spec), "us") + np.timedelta64(day0, "D")
    ts = start + offs.astype("timedelta64[us]")
    shift = np.zeros(n)
    if spec.drift == "abrupt":
        shift = (t >= spec.drift_day).astype(float)
    elif spec.drift == "gradual":
        shift = np.clip((t - spec.drift_day) / spec.gradual_days, 0.0, 1.0)
    wobble = np.zeros(n)
    if spec.drift == "seasonal":  # weekend applicants skew wealthier: peak Saturday noon
        weekday = (ts.astype(np.int64) / _US_PER_DAY + 3.0) % 7.0  # Monday = 0
        wobble = np.cos(2 * np.pi * (weekday - 5.5) / 7.0)
    x = _features(rng, n, shift, wobble)
    eta = _logit(x, _BASE) + _intercept(False)
    if spec.drift == "concept":
        eta = np.where(t >= spec.drift_day, _logit(x, _CONCEPT) + _intercept(True), eta)
    frame = pd.DataFrame({"id": np.arange(first_id, first_id + n, dtype=np.int64)})
    frame["timestamp"] = ts.astype("datetime64[ns]")
    for col in NUMERICAL:
        frame[col] = x[col].astype(np.float64)
    # A little realistic missingness (drawn independently of drift), after the labels' inputs.
    frame.loc[x["_u_na_tenure"] < 0.006, "driver_tenure"] = np.nan
    frame.loc[x["_u_na_dti"] < 0.004, "debt_to_income_ratio"] = np.nan
    for col in CATEGORICAL:
        frame[col] = pd.Series(x[col], dtype=object)
    frame[TARGET] = (x["_u_label"] < _sigmoid(eta)).astype(np.int64)
    return frame


def generate_reference(spec: SimulationSpec) -> pd.DataFrame:
    """Labelled history (id, timestamp, features, target) from the 28 days before the start."""
    rng = np.random.default_rng([spec.seed, _REF_STREAM])
    return _rows(spec, rng, 0, -REFERENCE_DAYS, spec.reference_rows, REFERENCE_DAYS)


def generate_day(spec: SimulationSpec, day_index: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features frame (id, timestamp, features) and that day's labels (id, defaulted).

    Deterministic per (seed, day_index): each day has its own random stream, so any single day
    can be regenerated without the others.
    """
    if day_index < 0:
        raise ValueError(f"day_index must be >= 0, got {day_index}")
    rng = np.random.default_rng([spec.seed, _DAY_STREAM, day_index])
    first_id = spec.reference_rows + day_index * spec.rows_per_day
    rows = _rows(spec, rng, first_id, day_index, spec.rows_per_day, 1)
    return rows.drop(columns=TARGET), rows[["id", TARGET]].reset_index(drop=True)


def simulate(
    out_dir: str | Path, spec: SimulationSpec, *, overwrite: bool = False
) -> dict[str, Any]:
    """Write the whole feed, contract and answer key under out_dir; return the ground truth.

    Refuses to touch a landing dir that already holds files unless ``overwrite=True``, in which
    case stale day files are removed first so the folder holds exactly this spec's feed.
    """
    out, start = Path(out_dir), resolve_start_date(spec)
    landing = out / "landing"
    existing = sorted(p for p in landing.rglob("*") if p.is_file()) if landing.exists() else []
    if existing and not overwrite:
        hint = f"e.g. {existing[0]}; pass overwrite=True to replace them"
        raise FileExistsError(f"{landing} already contains files ({hint})")
    for p in existing:
        if p.suffix == ".parquet" and p.parent.name in ("features", "labels"):
            p.unlink()
    write_parquet(generate_reference(spec), landing / "reference.parquet")
    for d in range(spec.days):
        features, labels = generate_day(spec, d)
        write_parquet(features, landing / "features" / f"{start + dt.timedelta(days=d)}.parquet")
        label_date = start + dt.timedelta(days=d + spec.label_delay)
        write_parquet(labels, landing / "labels" / f"{label_date}.parquet")
    drifting = spec.drift in ("abrupt", "gradual", "concept")
    truth: dict[str, Any] = {
        "drift": spec.drift,
        "drift_day": spec.drift_day if drifting else None,
        "drift_date": str(start + dt.timedelta(days=spec.drift_day)) if drifting else None,
        "start_date": str(start), "days": spec.days, "rows_per_day": spec.rows_per_day,
        "label_delay": spec.label_delay, "seed": spec.seed,
        "reference_rows": spec.reference_rows, "gradual_days": spec.gradual_days,
        "affected_features": {"abrupt": SHIFTED_FEATURES, "gradual": SHIFTED_FEATURES,
                              "concept": CONCEPT_FEATURES}.get(spec.drift, []),
        "seasonal_features": SEASONAL_FEATURES if spec.drift == "seasonal" else [],
        "target_column": TARGET,
    }  # fmt: skip
    write_text(json.dumps(truth, indent=2) + "\n", out / "ground_truth.json")
    contract = {
        "data": {
            "landing_dir": "landing", "id_column": "id", "timestamp_column": "timestamp",
            "target_column": TARGET, "positive_label": 1, "numerical_features": list(NUMERICAL),
            "categorical_features": list(CATEGORICAL), "start_date": str(start),
        },
        "workdir": ".retrain",
        "model": {"registered_name": "car_loan"},
    }  # fmt: skip
    write_text(yaml.safe_dump(contract, sort_keys=False), out / "retrain.yaml")
    return truth
