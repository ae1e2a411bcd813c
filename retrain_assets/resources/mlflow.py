"""MLflow tracking for retraining runs: dagster-mlflow's ``MlFlow`` (one Dagster run = one MLflow
run across steps, found by its ``dagster_run_id`` tag) wrapped once as a typed resource.

What differs from dagster-mlflow's own resource and hook, and why: docs/architecture.md
("MLflow tracking"). Steps that talk to MLflow run inside ``mlflow_errors(uri)`` with
``retry_policy``: an unreachable server is retried with back-off, any other error fails at once.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_unreachable(exc: BaseException) -> bool:
    """True when an error (or one it was raised from) says the tracking server or its database did
    not answer (refused or reset connection, timeout, too many 5xx answers, a locked sqlite store),
    not that the request was wrong."""
    import requests

    transient = (
        ConnectionError,
        TimeoutError,
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.RetryError,
        requests.exceptions.ChunkedEncodingError,
    )
    for err in _chain(exc):
        if isinstance(err, transient):
            return True
        if type(err).__module__.startswith("sqlalchemy") and "database is locked" in str(err):
            return True
    return False


def redact(uri: str) -> str:
    """A URI fit for logs and messages: a user:password@ part is replaced by ***@."""
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", uri)


def _root_reason(exc: BaseException) -> str:
    *_, root = _chain(exc)
    text = redact(f"{type(root).__name__}: {root}")
    return text if len(text) <= 300 else text[:297] + "..."


class MlflowUnreachable(dg.Failure):
    """The tracking server did not answer; the message names its URI. Retried by the step's
    retry policy."""


@contextlib.contextmanager
def mlflow_errors(tracking_uri: str) -> Iterator[None]:
    """Around a step's body: an unreachable MLflow -> MlflowUnreachable (retried); any other error
    -> a Failure that bypasses the retry policy; Dagster's own control flow passes through."""
    try:
        yield
    except (dg.Failure, dg.RetryRequested, dg.DagsterError):
        raise
    except Exception as exc:
        if is_unreachable(exc):
            uri = redact(tracking_uri)
            raise MlflowUnreachable(
                description=f"MLflow tracking server {uri} is unreachable: {_root_reason(exc)}",
                metadata={"tracking_uri": uri},
                allow_retries=True,
            ) from exc
        raise dg.Failure(
            description=redact(f"{type(exc).__name__}: {exc}"), allow_retries=False
        ) from exc


def retry_policy(retries: int, delay_seconds: float) -> dg.RetryPolicy | None:
    """Exponential back-off for steps that talk to MLflow: waits delay, 3x, 7x, ... (Dagster's)."""
    if retries <= 0:
        return None
    return dg.RetryPolicy(max_retries=retries, delay=delay_seconds, backoff=dg.Backoff.EXPONENTIAL)


_ready_stores: set[str] = set()


def ready_store(tracking_uri: str) -> None:
    """Create a sqlite tracking store (its folder, its tables, MLflow's schema migrations) before
    this process uses it, one process at a time. The first client to open a new store migrates
    it, and two doing so at once collide (`duplicate column name`): the models of a fleet share
    one store, and their first runs start together. Once per process and store; other URIs (a
    tracking server) need nothing."""
    prefix = "sqlite:///"
    if tracking_uri in _ready_stores or not tracking_uri.startswith(prefix):
        return
    import fcntl

    from mlflow import MlflowClient

    database = Path(tracking_uri.removeprefix(prefix))
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        MlflowClient(tracking_uri, tracking_uri).search_experiments(max_results=1)
    _ready_stores.add(tracking_uri)


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str) -> str:
    """Create the experiment with an explicit artifact location unless it exists; its id."""
    import mlflow
    from mlflow.exceptions import MlflowException

    ready_store(tracking_uri)
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
    _init_context: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Nothing that needs the server here: the MLflow run starts on first use, in a step.
        self._init_context = context

    def _start(self) -> Any:
        from dagster_mlflow.resources import MlFlow

        if self._init_context is None:
            raise RuntimeError("MlflowTracking was not set up for this step")
        ensure_experiment(self.mlflow_tracking_uri, self.experiment_name, self.artifact_location)
        import mlflow

        tracker = MlFlow(self._init_context)
        active = mlflow.active_run()
        self._run_id = active.info.run_id if active else None
        return tracker

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # The step(s) of this process are over; a run still active here succeeded (a failed step
        # already ended it through end_mlflow_run_on_failure). Left active, the next Dagster run
        # in this process would silently log into it.
        if self._tracker is None:
            return  # no step of this process used MLflow
        import mlflow

        active = mlflow.active_run()
        if active is not None and active.info.run_id == self._run_id:
            mlflow.end_run()

    @property
    def tracker(self) -> Any:
        """dagster-mlflow's ``MlFlow``: every mlflow function, bound to this Dagster run's run
        (started, or found by its dagster_run_id tag, on first use)."""
        if self._tracker is None:
            self._tracker = self._start()
        return self._tracker

    @property
    def run_id(self) -> str:
        import mlflow

        self.tracker  # noqa: B018 - the run exists once the tracker does
        active = mlflow.active_run()
        if active is None:
            raise RuntimeError("no active MLflow run: MlflowTracking was not set up for this step")
        return active.info.run_id

    def end_run(self, status: str = "FINISHED") -> None:
        """End this Dagster run's MLflow run (found by its tag first if this process has not used
        it yet, so a step that failed before logging anything still marks the cycle)."""
        import mlflow

        self.tracker  # noqa: B018 - attaches this Dagster run's MLflow run
        mlflow.end_run(status=status)

    def run_url(self, run_id: str) -> str:
        import mlflow

        experiment = mlflow.get_experiment_by_name(self.experiment_name)
        exp_id = experiment.experiment_id if experiment else "0"
        return f"{self.ui_url.rstrip('/')}/#/experiments/{exp_id}/runs/{run_id}"

    def model_url(self, name: str, version: str | int) -> str:
        return f"{self.ui_url.rstrip('/')}/#/models/{name}/versions/{version}"


def end_mlflow_run_on_failure(resource_key: str = "mlflow") -> dg.HookDefinition:
    """A failure hook for the MLflow resource under `resource_key` (a fleet's model has its own):
    a failed step (a blocking check included) marks the cycle's MLflow run FAILED; when the step
    failed because MLflow is unreachable there is nothing to mark (and no point waiting)."""
    name = "end_mlflow_run_on_failure"
    if resource_key != "mlflow":
        name = f"{resource_key}_{name}"

    @dg.failure_hook(name=name, required_resource_keys={resource_key})
    def _end_run(context: dg.HookContext) -> None:
        error = context.op_exception
        if error is not None and is_unreachable(error):
            context.log.warning(
                "MLflow is unreachable: this cycle's MLflow run was not marked FAILED"
            )
            return
        getattr(context.resources, resource_key).end_run(status="FAILED")

    return _end_run
