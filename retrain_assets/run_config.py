"""Per-run configuration (what a user may change in the launchpad), typed, in one place."""

import dagster as dg

from retrain_assets import names
from retrain_assets.scope import SINGLE, Scope


class TrainingRunConfig(dg.Config):
    """Per-run overrides of the config's `training:` section (empty = the config's values)."""

    strategy: str | None = None
    """full, rolling_window, incremental or weighted."""
    window_days: int | None = None
    """rolling_window: days of labelled rows to learn from."""
    half_life_days: float | None = None
    """weighted: age in days at which a row weighs half."""


class PromotionConfig(dg.Config):
    """rollback=True moves `champion` back to the version it replaced (the rollback job)."""

    rollback: bool = False
    """Move the champion back instead of promoting the challenger."""
    reason: str = ""
    """Why; recorded on the version and in the run's metadata."""
    requested_by: str = ""
    """Who asked (default: the user the step runs as)."""


def rollback_run_config(reason: str, requested_by: str = "", scope: Scope = SINGLE) -> dg.RunConfig:
    """The run config of a rollback: promoted_model moves the champion back."""
    promotion = PromotionConfig(rollback=True, reason=reason[:500], requested_by=requested_by)
    return dg.RunConfig(ops={scope.op(names.PROMOTED_MODEL): promotion})
