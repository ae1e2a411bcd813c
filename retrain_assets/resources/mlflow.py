"""MLflow tracking for retraining runs, through dagster-mlflow.

dagster-mlflow's ``mlflow_tracking`` is a legacy resource, which Dagster will not mix with typed
resource parameters. This wraps it once: the same config keys, the same ``MlFlow`` object (one
Dagster run = one MLflow run across steps, found by its ``dagster_run_id`` tag). Three things
differ:

- the experiment is created with its artifact location under the workdir (otherwise artifacts land
  in ``./mlruns`` of whatever folder the process runs in);
- mlflow is imported only when a step needs it: importing ``dagster_mlflow`` imports mlflow, which
  would add over a second to every process that loads the code location (each run, each sensor
  tick, each UI reload);
- for that reason its ``end_mlflow_on_run_finished`` hook is replaced by the two ends below: a
  failure hook marks the MLflow run FAILED when a step fails, and the resource's teardown marks it
  FINISHED when the Dagster run is over. (dagster-mlflow's hook ends the run when the job's last
  node succeeds, so a run whose last step is skipped stayed RUNNING.)
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
    _run_id: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from dagster_mlflow.resources import MlFlow

        ensure_experiment(self.mlflow_tracking_uri, self.experiment_name, self.artifact_location)
        import mlflow

        self._tracker = MlFlow(context)
        active = mlflow.active_run()
        self._run_id = active.info.run_id if active else None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # The step(s) of this process are over; a run still active here succeeded (a failed step
        # already ended it through end_mlflow_run_on_failure). Left active, the next Dagster run
        # in this process would silently log into it.
        import mlflow

        active = mlflow.active_run()
        if active is not None and active.info.run_id == self._run_id:
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
        import mlflow

        mlflow.end_run(status=status)

    def run_url(self, run_id: str) -> str:
        import mlflow

        experiment = mlflow.get_experiment_by_name(self.experiment_name)
        exp_id = experiment.experiment_id if experiment else "0"
        return f"{self.ui_url.rstrip('/')}/#/experiments/{exp_id}/runs/{run_id}"

    def model_url(self, name: str, version: str | int) -> str:
        return f"{self.ui_url.rstrip('/')}/#/models/{name}/versions/{version}"


@dg.failure_hook(required_resource_keys={"mlflow"})
def end_mlflow_run_on_failure(context: dg.HookContext) -> None:
    """A failed step (a blocking check included) marks the cycle's MLflow run FAILED."""
    context.resources.mlflow.end_run(status="FAILED")
