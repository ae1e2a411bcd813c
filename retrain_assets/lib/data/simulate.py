"""Synthetic car-loan default feed with known, injectable drift.

Drift detection and retraining can only be shown and tested on data whose ground truth is known:
this writes a daily landing zone (features now, labels ``label_delay`` days later), a labelled
reference, the data contract (``retrain.yaml``) and the answer key (``ground_truth.json``).

One applicant, three tasks, all driven by the same latent default log-odds ``eta``:

- ``binary``: ``defaulted`` (0/1), ``u < sigmoid(eta)`` with the row's uniform ``u``.
- ``multiclass``: ``repayment`` ("on_time", "late", "default"), an ordered logit on the same
  draw: ``z = eta - logit(u)`` (so ``z > 0`` is exactly a binary default); "default" past an upper
  cut (a subset of the binary defaults), "late" past a lower cut once payment stress is added
  (the car payment's share of the income left after other debts, beyond 25 %). The cuts give
  60/25/15 % on the undrifted population. Payment stress is what makes the abrupt/gradual shift
  hurt a model trained before it: the shift pushes many applicants into a stress range the old
  population rarely reached (a uniform shift alone barely changes any ranking, hence any AUC).
- ``regression``: ``loss_amount``, the expected loss in currency: the financed amount (car value
  less the downpayment) x loss given default (rising with the loan length) x ``sigmoid(eta)``, times
  log-normal noise from the same ``u`` (``-ndtri(u)``: binary defaulters lose more).

Concept drift swaps ``eta``'s coefficients for every task; abrupt/gradual shifts move the
features, hence the class shares and the losses with them.
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
from scipy.special import ndtri

from retrain_assets.lib.files import write_parquet, write_text

DRIFT_KINDS = ("none", "abrupt", "gradual", "concept", "seasonal")
NUMERICAL = [
    "car_value", "debt_to_income_ratio", "loan_length", "driver_tenure", "annual_income",
    "credit_score",
]  # fmt: skip
CATEGORICAL = ["salary_range", "repaid_loan_on_prev_car", "size_of_downpayment", "region"]
TARGET = "defaulted"  # the binary task's target (the default task)
TASKS = ("binary", "multiclass", "regression")
TARGETS = {"binary": TARGET, "multiclass": "repayment", "regression": "loss_amount"}
REGISTERED_NAMES = {
    "binary": "car_loan", "multiclass": "car_loan_repayment", "regression": "car_loan_loss",
}  # fmt: skip
REPAYMENT_CLASSES = ("on_time", "late", "default")  # ordered: worse outcome, higher latent z
REPAYMENT_SHARES = (0.60, 0.25, 0.15)  # on the undrifted population
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
    task: str = "binary"  # which target the feed carries: one of TASKS

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {TASKS}")
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
def _calibration_sample() -> _Arrays:
    """A big undrifted population, fixed once: what intercept and class cuts are tuned on."""
    n = 200_000
    return _features(np.random.default_rng(_CAL_SEED), n, np.zeros(n), np.zeros(n))


@cache
def _intercept(concept: bool) -> float:
    """Intercept giving a 20 % default rate on the undrifted population (Newton, big sample)."""
    eta = _logit(_calibration_sample(), _CONCEPT if concept else _BASE)
    b = float(np.log(0.2 / 0.8) - eta.mean())
    for _ in range(30):
        p = _sigmoid(eta + b)
        b -= float((p.mean() - 0.2) / (p * (1 - p)).mean())
    return b


def _unit(u: np.ndarray) -> np.ndarray:
    return np.clip(u, 1e-12, 1.0 - 1e-12)  # rng.random() may return exactly 0


_DOWN_FRACTION = {"0%": 0.0, "<10%": 0.05, "10-25%": 0.175, ">25%": 0.35}
_APR = 0.07  # the loans' interest rate, for the monthly payment
_PTI_SAFE, _PTI_SLOPE = 0.25, 3.0  # late log-odds rise 3 per 10 points of payment above 25 %
_LOSS_NOISE = 0.3  # sd of the log-normal noise on the expected loss


def _financed(x: _Arrays) -> np.ndarray:
    down = pd.Series(x["size_of_downpayment"]).map(_DOWN_FRACTION).to_numpy(dtype=float)
    return np.asarray(x["car_value"] * (1.0 - down), dtype=np.float64)


def _payment_stress(x: _Arrays) -> np.ndarray:
    """Extra late-payment log-odds from the car payment's share of the income left after the
    other debts: none up to 25 %, then steeply more (liquidity, not solvency)."""
    r, months = _APR / 12, x["loan_length"]
    payment = _financed(x) * r / (1.0 - (1.0 + r) ** -months)
    net = x["annual_income"] / 12 * np.maximum(1.0 - x["debt_to_income_ratio"], 0.05)
    return np.asarray(_PTI_SLOPE * np.maximum(payment / net - _PTI_SAFE, 0.0) / 0.1)


def _repayment_z(eta: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Ordered-logit latent: ``eta`` plus logistic noise; ``z > 0`` iff the binary default."""
    v = _unit(u)
    return np.asarray(eta - np.log(v / (1.0 - v)), dtype=np.float64)


def _repayment_level(z: np.ndarray, stress: np.ndarray, cuts: tuple[Any, Any]) -> np.ndarray:
    """0 on time, 1 late, 2 default: default past the upper cut (solvency, as binary), late past
    the lower cut once payment stress is added (a partial proportional-odds model)."""
    return np.where(z >= cuts[1], 2, np.where(z + stress >= cuts[0], 1, 0))


@cache
def _repayment_cuts(concept: bool) -> tuple[float, float]:
    """The two cut points giving REPAYMENT_SHARES on the undrifted population."""
    x = _calibration_sample()
    eta = _logit(x, _CONCEPT if concept else _BASE) + _intercept(concept)
    z = _repayment_z(eta, x["_u_label"])
    default_share, late_share = REPAYMENT_SHARES[2], REPAYMENT_SHARES[1]
    upper = float(np.quantile(z, 1.0 - default_share))
    w = (z + _payment_stress(x))[z < upper]
    return float(np.quantile(w, 1.0 - late_share / (1.0 - default_share))), upper


def _loss_amount(x: _Arrays, eta: np.ndarray) -> np.ndarray:
    """Expected loss: financed amount x loss given default x P(default), log-normal noise."""
    lgd = 0.25 + 0.5 * _sigmoid((x["loan_length"] - 48.0) / 12.0)  # long loans: more owed
    noise = np.exp(_LOSS_NOISE * -ndtri(_unit(x["_u_label"])) - _LOSS_NOISE**2 / 2)
    return np.round(_financed(x) * lgd * _sigmoid(eta) * noise, 2).astype(np.float64)


def _target(task: str, x: _Arrays, eta: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """The task's target from the row's default log-odds ``eta`` (``changed``: post-concept)."""
    if task == "multiclass":
        old, new = _repayment_cuts(False), _repayment_cuts(True)
        cuts = (np.where(changed, new[0], old[0]), np.where(changed, new[1], old[1]))
        z = _repayment_z(eta, x["_u_label"])
        level = _repayment_level(z, _payment_stress(x), cuts)
        return np.asarray(REPAYMENT_CLASSES, dtype=object)[level]
    if task == "regression":
        return _loss_amount(x, eta)
    return (x["_u_label"] < _sigmoid(eta)).astype(np.int64)


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
    changed = (t >= spec.drift_day) & (spec.drift == "concept")
    if spec.drift == "concept":
        eta = np.where(changed, _logit(x, _CONCEPT) + _intercept(True), eta)
    frame = pd.DataFrame({"id": np.arange(first_id, first_id + n, dtype=np.int64)})
    frame["timestamp"] = ts.astype("datetime64[ns]")
    for col in NUMERICAL:
        frame[col] = x[col].astype(np.float64)
    # A little realistic missingness (drawn independently of drift), after the labels' inputs.
    frame.loc[x["_u_na_tenure"] < 0.006, "driver_tenure"] = np.nan
    frame.loc[x["_u_na_dti"] < 0.004, "debt_to_income_ratio"] = np.nan
    for col in CATEGORICAL:
        frame[col] = pd.Series(x[col], dtype=object)
    frame[TARGETS[spec.task]] = _target(spec.task, x, eta, changed)
    return frame


def generate_reference(spec: SimulationSpec) -> pd.DataFrame:
    """Labelled history (id, timestamp, features, the task's target) from the 28 days before
    the start."""
    rng = np.random.default_rng([spec.seed, _REF_STREAM])
    return _rows(spec, rng, 0, -REFERENCE_DAYS, spec.reference_rows, REFERENCE_DAYS)


def generate_day(spec: SimulationSpec, day_index: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features frame (id, timestamp, features) and that day's labels (id, the task's target).

    Deterministic per (seed, day_index): each day has its own random stream, so any single day
    can be regenerated without the others.
    """
    if day_index < 0:
        raise ValueError(f"day_index must be >= 0, got {day_index}")
    rng = np.random.default_rng([spec.seed, _DAY_STREAM, day_index])
    first_id = spec.reference_rows + day_index * spec.rows_per_day
    rows = _rows(spec, rng, first_id, day_index, spec.rows_per_day, 1)
    target = TARGETS[spec.task]
    return rows.drop(columns=target), rows[["id", target]].reset_index(drop=True)


def _ground_truth(spec: SimulationSpec, start: dt.date) -> dict[str, Any]:
    """The answer key: what drifted, when, and which features and target it acts on."""
    drifting = spec.drift in ("abrupt", "gradual", "concept")
    return {
        "drift": spec.drift,
        "drift_day": spec.drift_day if drifting else None,
        "drift_date": str(start + dt.timedelta(days=spec.drift_day)) if drifting else None,
        "start_date": str(start), "days": spec.days, "rows_per_day": spec.rows_per_day,
        "label_delay": spec.label_delay, "seed": spec.seed,
        "reference_rows": spec.reference_rows, "gradual_days": spec.gradual_days,
        "affected_features": {"abrupt": SHIFTED_FEATURES, "gradual": SHIFTED_FEATURES,
                              "concept": CONCEPT_FEATURES}.get(spec.drift, []),
        "seasonal_features": SEASONAL_FEATURES if spec.drift == "seasonal" else [],
        "task": spec.task, "target_column": TARGETS[spec.task],
    }  # fmt: skip


def _contract(spec: SimulationSpec, start: dt.date) -> dict[str, Any]:
    """``retrain.yaml`` for the feed; the binary one names no task (binary is the default)."""
    data: dict[str, Any] = {
        "landing_dir": "landing", "id_column": "id", "timestamp_column": "timestamp",
        "target_column": TARGETS[spec.task], "positive_label": 1,
        "numerical_features": list(NUMERICAL), "categorical_features": list(CATEGORICAL),
        "start_date": str(start),
    }  # fmt: skip
    model: dict[str, Any] = {"registered_name": REGISTERED_NAMES[spec.task]}
    if spec.task != "binary":
        del data["positive_label"]  # a binary setting: the config rejects it for other tasks
        model["task"] = spec.task
    return {"data": data, "workdir": ".retrain", "model": model}


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
    truth = _ground_truth(spec, start)
    write_text(json.dumps(truth, indent=2) + "\n", out / "ground_truth.json")
    write_text(yaml.safe_dump(_contract(spec, start), sort_keys=False), out / "retrain.yaml")
    return truth
