"""MLflow tracking for retraining runs, through dagster-mlflow.

dagster-mlflow's ``mlflow_tracking`` is a legacy resource, which Dagster will not mix with typed
resource parameters. This wraps it once: the same config keys, the same ``MlFlow`` object (one
Dagster run = one MLflow run across steps, found by its ``dagster_run_id`` tag), so its
``end_mlflow_on_run_finished`` hook closes the run. Two things are added: the experiment is created
with its artifact location under the workdir (otherwise artifacts land in ``./mlruns`` of whatever
folder the process runs in), and mlflow is imported only when a step needs it (it takes a second).
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str) -> str:
    """Create the experiment with an explicit artifact location unless it exists; its id."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return mlflow.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:
        found = mlflow.get_experiment_by_name(name)  # created by a concurrent run meanwhile
        if found is None:
            raise
        return found.experiment_id


class MlflowTracking(dg.ConfigurableResource):
    """The MLflow run of the current Dagster run (dagster-mlflow semantics)."""

    experiment_name: str
    """Experiment every retraining cycle logs into."""
    mlflow_tracking_uri: str
    """Tracking URI, e.g. sqlite:///<workdir>/mlflow.db or http://mlflow:5000."""
    artifact_location: str
    """Artifact root for the experiment when it is created."""
    ui_url: str = "http://127.0.0.1:5000"
    """Base URL of the MLflow UI for links in metadata."""
    extra_tags: dict[str, str] = Field(default_factory=dict)
    """Tags set on every MLflow run."""

    _tracker: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from dagster_mlflow.resources import MlFlow

        ensure_experiment(self.mlflow_tracking_uri, self.experiment_name, self.artifact_location)
        self._tracker = MlFlow(context)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # In a job without dagster-mlflow's hook (e.g. dg.materialize in a test) nothing else
        # closes the run, and the next run in this process would silently reuse it.
        import mlflow

        active = mlflow.active_run()
        ours = self._tracker.mlflow_run_id if self._tracker is not None else None
        if active is not None and active.info.run_id == ours:
            mlflow.end_run()

    @property
    def tracker(self) -> Any:
        """dagster-mlflow's ``MlFlow``: every mlflow function, bound to this Dagster run's run."""
        if self._tracker is None:
            raise RuntimeError("MlflowTracking was not set up for this step")
        return self._tracker

    @property
    def run_id(self) -> str:
        import mlflow

        active = mlflow.active_run()
        if active is None:
            raise RuntimeError("no active MLflow run: MlflowTracking was not set up for this step")
        return active.info.run_id

    def end_run(self, status: str = "FINISHED") -> None:
        """Called by dagster-mlflow's end_mlflow_on_run_finished hook."""
        import mlflow

        mlflow.end_run(status=status)

    def run_url(self, run_id: str) -> str:
        import mlflow

        experiment = mlflow.get_experiment_by_name(self.experiment_name)
        exp_id = experiment.experiment_id if experiment else "0"
        return f"{self.ui_url.rstrip('/')}/#/experiments/{exp_id}/runs/{run_id}"

    def model_url(self, name: str, version: str | int) -> str:
        return f"{self.ui_url.rstrip('/')}/#/models/{name}/versions/{version}"
