"""Security properties the platform promises, each checked against the real code path:

- the dev webserver (and the MLflow UI it starts) binds to 127.0.0.1 unless told otherwise;
- no secret is tracked in the repository; resources take no literal credential, URIs may come
  from the environment (``dg.EnvVar``) and error messages never echo a password;
- models load only from registered versions (``models:/<name>/<version>``), in skops format with
  the code's own trusted-types list, and only after their artifacts match the sha256 recorded at
  registration (a tampered file is refused for scoring and for promotion);
- landing files are data (CSV/Parquet), never unpickled; YAML is read with a safe loader.
"""

from __future__ import annotations

import pickle
import re
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from retrain_assets import cli, dev
from retrain_assets.config import ConfigError, RetrainConfig, load_config
from retrain_assets.lib.data import contract
from retrain_assets.lib.release import model_store as model_io
from retrain_assets.resources.mlflow import MlflowTracking, mlflow_errors, redact
from retrain_assets.resources.model_registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[2]
NAME = "car_loan"


# --- the webserver binds to localhost ------------------------------------------------------------


class _Child:
    """Stands in for a started process."""

    pid = 0

    def wait(self, timeout: float | None = None) -> int:
        return 0

    def poll(self) -> int:
        return 0


def _started_commands(monkeypatch, tmp_path: Path, argv: list[str]) -> list[list[str]]:
    """The commands `retrain-assets dev <argv>` would start (nothing is started)."""
    config = tmp_path / "retrain.yaml"
    (tmp_path / "landing").mkdir(parents=True)
    config.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "landing_dir": "landing",
                    "target_column": "y",
                    "numerical_features": ["x"],
                    "start_date": "2024-01-01",
                },
                "model": {"registered_name": NAME},
            }
        )
    )
    monkeypatch.setenv("RETRAIN_CONFIG", str(config))
    monkeypatch.setattr(
        "retrain_assets.resources.mlflow.ensure_experiment", lambda *args, **kwargs: "0"
    )
    started: list[list[str]] = []
    monkeypatch.setattr(dev, "_spawn", lambda cmd, env, cwd=None: started.append(cmd) or _Child())
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert cli.main(["dev", *argv]) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    return started


def _option(cmd: list[str], *names: str) -> str:
    [value] = [cmd[i + 1] for i, part in enumerate(cmd) if part in names]
    return value


def test_dev_binds_to_localhost_unless_told_otherwise(monkeypatch, tmp_path: Path) -> None:
    assert cli.build_parser().parse_args(["dev"]).host == "127.0.0.1"
    mlflow_cmd, dagster_cmd = _started_commands(monkeypatch, tmp_path / "a", [])
    assert dagster_cmd[1:2] == ["dev"] and _option(dagster_cmd, "-h", "--host") == "127.0.0.1"
    assert mlflow_cmd[1:2] == ["server"] and _option(mlflow_cmd, "--host") == "127.0.0.1"

    # Told otherwise: the address is passed through as given.
    mlflow_cmd, dagster_cmd = _started_commands(monkeypatch, tmp_path / "b", ["--host", "0.0.0.0"])
    assert _option(dagster_cmd, "-h", "--host") == "0.0.0.0"
    assert _option(mlflow_cmd, "--host") == "0.0.0.0"

    # `make dev` runs the command without choosing an address, so the default holds.
    recipe = subprocess.run(
        ["make", "-n", "-s", "-C", str(ROOT), "-o", "install", "dev"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    [line] = [line for line in recipe.splitlines() if "retrain-assets" in line]
    assert line.split()[-1] == "dev", line  # no --host
    assert "0.0.0.0" not in (ROOT / "Makefile").read_text()


# --- no secrets ----------------------------------------------------------------------------------

SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(
        r"aws_secret_access_key\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40}", re.IGNORECASE
    ),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"$<{]+@"),
    "assigned secret": re.compile(
        r"(password|passwd|secret|token|api_key|apikey|access_key)[\"']?\s*[:=]\s*"
        r"[\"']([^\"'\s$<{]{8,})[\"']",
        re.IGNORECASE,
    ),
}


# Public, documented defaults are not secrets: RabbitMQ's guest:guest only logs in from localhost.
PUBLIC_DEFAULTS = ("://guest:guest@",)


def find_secrets(text: str) -> list[str]:
    return [
        name
        for name, pattern in SECRET_PATTERNS.items()
        if any(not any(d in m.group(0) for d in PUBLIC_DEFAULTS) for m in pattern.finditer(text))
    ]


def test_the_secret_scanner_finds_what_it_looks_for() -> None:
    planted = {
        "private key": "-----BEGIN RSA " + "PRIVATE KEY-----",
        "AWS access key id": "key = AKIA" + "ABCDEFGHIJKLMNOP",
        "password in a URL": "postgresql://dagster:" + "hunter22@db:5432/dagster",
        "assigned secret": 'password = "' + 'correct-horse-battery"',
        "GitHub token": "ghp_" + "a" * 36,
    }
    for name, text in planted.items():
        assert name in find_secrets(text), name
    for harmless in (
        "password: {env: DAGSTER_PG_PASSWORD}",
        'url = "redis://127.0.0.1:6379/0"',
        "postgresql://${DAGSTER_PG_USER}:${DAGSTER_PG_PASSWORD}@db/dagster",
        'token = os.environ["RETRAIN_TOKEN"]',
        "RETRAIN_CELERY_BROKER=amqp://guest:guest@127.0.0.1:5672//",
    ):
        assert find_secrets(harmless) == [], harmless


def test_no_secret_in_tracked_files() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    found = []
    for name in filter(None, tracked):
        path = ROOT / name.decode()
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        blob = path.read_bytes()
        if b"\0" in blob[:8192]:
            continue  # binary
        found += [
            f"{name.decode()}: {kind}" for kind in find_secrets(blob.decode(errors="replace"))
        ]
    assert found == []


def test_resources_take_credentials_only_from_the_environment(monkeypatch, tmp_path) -> None:
    from retrain_assets.resources import build_resources

    cfg = RetrainConfig.model_validate(
        {
            "data": {
                "landing_dir": str(tmp_path),
                "target_column": "y",
                "numerical_features": ["x"],
                "start_date": "2024-01-01",
            },
            "workdir": str(tmp_path),
            "model": {"registered_name": NAME},
        }
    )
    secretish = re.compile(r"password|secret|token|credential|api_?key", re.IGNORECASE)
    for key, resource in build_resources(cfg).items():
        for field in type(resource).model_fields:
            assert not secretish.search(field), f"{key}.{field}: take it as a dg.EnvVar"
    # A tracking URI may be given as an environment variable: read when the run starts, never
    # stored in the definitions or the run config.
    monkeypatch.setenv("TEST_TRACKING_URI", "http://mlflow.internal:5000")
    tracking = MlflowTracking(
        experiment_name="x",
        mlflow_tracking_uri=dg.EnvVar("TEST_TRACKING_URI"),
        artifact_location="file:///tmp/unused",
    )
    with dg.build_resources({"mlflow": tracking}) as resources:
        assert resources.mlflow.mlflow_tracking_uri == "http://mlflow.internal:5000"


def test_errors_never_echo_a_password_from_the_tracking_uri() -> None:
    uri = "https://bob:" + "s3cret-pw@mlflow.example.com"
    assert redact(uri) == "https://***@mlflow.example.com"
    with pytest.raises(dg.Failure) as unreachable, mlflow_errors(uri):
        raise ConnectionRefusedError(f"cannot reach {uri}")
    with pytest.raises(dg.Failure) as other, mlflow_errors(uri):
        raise ValueError(f"bad answer from {uri}")
    for failure in (unreachable.value, other.value):
        assert "s3cret" not in str(failure.description)
    assert "https://***@mlflow.example.com is unreachable" in str(unreachable.value.description)


# --- models: registry URIs, skops, artifact hash ------------------------------------------------


@dataclass
class Store:
    uri: str
    experiment_id: str
    name: str = NAME


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """One sqlite MLflow store for the module (creating its schema takes seconds), set as the
    process-wide tracking and registry URI while the module runs (restored afterwards)."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tracking_utils, "_tracking_uri", tracking_utils._tracking_uri)
        patch.setattr(registry_utils, "_registry_uri", registry_utils._registry_uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        yield Store(uri, mlflow.create_experiment("security", (root / "mlruns").as_uri()))


@pytest.fixture
def store(shared_store: Store, request) -> Store:
    """The shared store, with a registered model name of this test's own."""
    import mlflow

    mlflow.set_tracking_uri(shared_store.uri)
    mlflow.set_registry_uri(shared_store.uri)
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[-60:]
    return Store(shared_store.uri, shared_store.experiment_id, name)


def _pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = (x["a"] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y), x


GATED = {"gate.auc": "passed", "gate.latency": "passed"}


def _register(store: Store, tags: dict[str, str] | None = None) -> model_io.LoggedModel:
    import mlflow

    pipeline, x = _pipeline()
    with mlflow.start_run(experiment_id=store.experiment_id):
        return model_io.log_and_register(
            pipeline, registered_name=store.name, input_example=x.head(3), tags=tags or GATED
        )


def _artifact_dir(store: Store, version: str) -> Path:
    from mlflow import MlflowClient

    source = MlflowClient(store.uri, store.uri).get_model_version_download_uri(store.name, version)
    return Path(source.removeprefix("file://"))


def test_models_load_only_from_registry_uris() -> None:
    assert model_io.parse_registry_uri("models:/car_loan/12") == ("car_loan", "12")
    for uri in (
        "runs:/0123/model",
        "/tmp/model",
        "file:///tmp/model",
        "models:/car_loan@champion",  # an alias moves: resolved to a version first
        "models:/m-0123456789abcdef",  # a logged but unregistered model
        "s3://bucket/model.pkl",
    ):
        with pytest.raises(ValueError, match="not a registry URI"):
            model_io.load_verified(uri, "0" * 64)


def test_a_registered_version_records_its_artifact_hash(store: Store) -> None:
    logged = _register(store)
    registry = ModelRegistry(tracking_uri=store.uri, registered_name=store.name)
    tags = registry.version_tags(logged.version)
    recorded = tags[model_io.ARTIFACT_HASH_TAG]
    assert recorded == logged.artifact_sha256
    assert recorded == model_io.artifact_digest(_artifact_dir(store, logged.version))
    assert registry.verify(logged.version) == recorded
    model = registry.load(logged.version)
    assert model.predict_proba(_pipeline()[1].head(2)).shape == (2, 2)


def test_loading_uses_skops_with_the_codes_trusted_types(store: Store, monkeypatch) -> None:
    import skops.io

    logged = _register(store)
    seen = []
    real = skops.io.load
    monkeypatch.setattr(
        skops.io, "load", lambda path, trusted: seen.append(trusted) or real(path, trusted=trusted)
    )
    ModelRegistry(tracking_uri=store.uri, registered_name=store.name).load(logged.version)
    assert seen == [model_io.TRUSTED_TYPES]


def test_a_pickled_model_is_never_loaded(store: Store) -> None:
    import mlflow

    pipeline, _ = _pipeline()
    with mlflow.start_run(experiment_id=store.experiment_id):
        info = mlflow.sklearn.log_model(
            pipeline, name="model", serialization_format="cloudpickle", pip_requirements=[]
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("pickle.load", _forbidden)
        patch.setattr("cloudpickle.load", _forbidden)
        with tempfile.TemporaryDirectory() as tmp:
            sha = model_io.artifact_digest(model_io._fetch(info.model_uri, Path(tmp)))
        version = model_io.register(info.model_uri, store.name, {model_io.ARTIFACT_HASH_TAG: sha})
        registry = ModelRegistry(tracking_uri=store.uri, registered_name=store.name)
        with pytest.raises(model_io.ArtifactIntegrityError, match="not a skops model"):
            registry.load(version)


def _forbidden(*args, **kwargs):
    raise AssertionError("a model was unpickled")


@pytest.mark.parametrize("target", ["model.skops", "MLmodel"])
def test_a_tampered_artifact_is_refused_for_scoring_and_promotion(
    store: Store, tmp_path: Path, target: str
) -> None:
    from mlflow import MlflowClient

    from retrain_assets.release.assets import build_release_assets

    champion = _register(store)
    challenger = _register(store, {**GATED, "canary": "passed"})
    client = MlflowClient(store.uri, store.uri)
    client.set_registered_model_alias(store.name, "champion", champion.version)
    client.set_registered_model_alias(store.name, "challenger", challenger.version)

    path = _artifact_dir(store, challenger.version) / target
    if target == "MLmodel":  # widen the trusted types the artifact carries
        path.write_text(path.read_text().replace("numpy.dtype", "builtins.eval"))
    else:
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        path.write_bytes(bytes(blob))

    registry = ModelRegistry(tracking_uri=store.uri, registered_name=store.name)
    expected = f"{store.name} v{challenger.version}: artifacts changed since registration"
    with pytest.raises(model_io.ArtifactIntegrityError, match=expected):
        registry.load(challenger.version)  # what scoring (predictions) calls
    registry.load(champion.version)  # the untouched version still loads

    cfg = RetrainConfig.model_validate(
        {
            "data": {
                "landing_dir": str(tmp_path),
                "target_column": "y",
                "numerical_features": ["a", "b"],
                "start_date": "2024-01-01",
            },
            "workdir": str(tmp_path),
            "model": {"registered_name": store.name},
            "mlflow": {"tracking_uri": store.uri, "retries": 0},
            "canary": {"mode": "none"},
        }
    )
    [promoted_model] = [a for a in build_release_assets(cfg) if a.key.path == ["promoted_model"]]
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [promoted_model],
            resources={"registry": registry},
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.message
    assert f"not moving 'champion' to v{challenger.version}" in message and expected in message
    assert registry.alias_version("champion") == champion.version


def test_a_version_without_a_recorded_hash_is_refused(store: Store) -> None:
    from mlflow import MlflowClient

    logged = _register(store)
    client = MlflowClient(store.uri, store.uri)
    source = client.get_model_version(store.name, logged.version)
    rogue = client.create_model_version(store.name, source.source, run_id=source.run_id)  # by hand
    registry = ModelRegistry(tracking_uri=store.uri, registered_name=store.name)
    with pytest.raises(model_io.ArtifactIntegrityError, match=f"v{rogue.version} records no"):
        registry.load(str(rogue.version))


# --- landing files are data; YAML is safe -------------------------------------------------------


class _Payload:
    """Unpickling this creates the marker file: proof that something unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_landing_files_are_read_as_data_never_unpickled(tmp_path: Path, monkeypatch) -> None:
    from retrain_assets.ingest.sensors import landing_files as _landing_files

    assert set(contract.READERS.values()) == {"csv", "parquet"}
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Payload(marker))
    landing = tmp_path / "landing"
    (landing / "features").mkdir(parents=True)
    for name in ("reference.pkl", "features/2024-01-02.pkl", "features/2024-01-03.pickle"):
        (landing / name).write_bytes(payload)
    monkeypatch.setattr("pickle.load", _forbidden)
    monkeypatch.setattr("pickle.loads", _forbidden)

    for path in landing.rglob("*.pkl*"):
        with pytest.raises(contract.LandingFileError, match="unsupported extension"):
            contract.read_table(path)
        assert contract.landing_day(path) is None
    assert contract.find_file(landing, "reference") is None
    # landing_sensor lists every file but requests runs only for files with a data day
    assert [p for _, p in _landing_files(landing) if contract.landing_day(p)] == []

    # Pickle bytes behind a data extension are not data: refused, not unpickled.
    for name in ("reference.parquet", "features/2024-01-04.csv"):
        disguised = landing / name
        disguised.write_bytes(payload)
        try:
            frame = contract.read_table(disguised)
        except contract.LandingFileError:
            continue
        assert isinstance(frame, pd.DataFrame)  # at most some garbled text columns
    assert not marker.exists()


def test_yaml_with_a_python_tag_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    config = tmp_path / "retrain.yaml"
    config.write_text(
        f"data: !!python/object/apply:os.system ['touch {marker}']\nmodel: {{registered_name: x}}\n"
    )
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_config(config)
    assert "python/object/apply:os.system" in str(err.value) and str(config) in str(err.value)
    assert not marker.exists()


def test_source_has_no_unsafe_deserialisation() -> None:
    from retrain_assets import config as config_module

    assert issubclass(config_module._UniqueKeyLoader, yaml.SafeLoader)
    unsafe = re.compile(
        r"\bpickle\.loads?\(|read_pickle|cloudpickle|joblib\.load|yaml\.unsafe_load|"
        r"yaml\.(Full|Unsafe)?Loader\b|\beval\(|\bexec\(|allow_pickle=True|torch\.load"
    )
    found = []
    for path in sorted((ROOT / "retrain_assets").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            unsafe_yaml = "yaml.load(" in line and "Loader=_UniqueKeyLoader" not in line
            if unsafe.search(line) or unsafe_yaml:
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []
