"""The ``retrain-assets`` command line.

``RETRAIN_CONFIG`` (and ``backtest --config``) may name one model's YAML file or a fleet folder of
model files (``retrain_assets.fleet``); with a fleet, ``backtest`` and ``rollback`` take
``--model NAME``, ``models`` lists what loads and ``status`` shows how every model is doing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from retrain_assets import names
from retrain_assets.lib.data import simulate as sim

if TYPE_CHECKING:
    from retrain_assets.backtest.report import DayRecord
    from retrain_assets.config import RetrainConfig
    from retrain_assets.fleet import Fleet


def _simulate(args: argparse.Namespace) -> int:
    spec = sim.SimulationSpec(
        days=args.days,
        rows_per_day=args.rows_per_day,
        drift=args.drift,
        drift_day=args.drift_day,
        label_delay=args.label_delay,
        seed=args.seed,
        start_date=args.start_date,
        reference_rows=args.reference_rows,
        task=args.task,
    )
    if args.model is not None:
        return _simulate_fleet_model(args, spec)
    truth = sim.simulate(args.out, spec, overwrite=args.overwrite)
    print(json.dumps(truth, indent=2))
    print(f"wrote {args.out}/landing and {args.out}/retrain.yaml", file=sys.stderr)
    return 0


def _simulate_fleet_model(args: argparse.Namespace, spec: sim.SimulationSpec) -> int:
    """simulate --model NAME: the feed and its answer key in <out>/<NAME>/, the model's file in
    <out>/<NAME>.yaml (the fleet folder's layout)."""
    import yaml

    from retrain_assets.fleet import MODEL_NAME, fleet_model_contract
    from retrain_assets.lib.files import write_text

    name, out = args.model, Path(args.out)
    if not MODEL_NAME.fullmatch(name):
        raise SystemExit(
            f"error: --model {name!r} is not a model name: a letter, then letters, digits or _"
        )
    if (out / f"{name}.yml").exists():
        raise SystemExit(f"error: {out / f'{name}.yml'} already describes model {name}")
    truth = sim.simulate(out / name, spec, overwrite=args.overwrite)
    single = out / name / "retrain.yaml"  # the single-model contract: re-homed, then removed
    contract = yaml.safe_load(single.read_text(encoding="utf-8"))
    model_file = out / f"{name}.yaml"
    text = yaml.safe_dump(fleet_model_contract(contract, name), sort_keys=False)
    write_text(text, model_file)
    single.unlink()
    print(json.dumps(truth, indent=2))
    print(f"wrote {model_file} and {out / name}/landing (fleet folder {out})", file=sys.stderr)
    return 0


def _dev(args: argparse.Namespace) -> int:
    from retrain_assets import dev

    return dev.run(
        host=args.host,
        port=args.port,
        mlflow_port=args.mlflow_port,
        feed_interval=args.feed_interval,
    )


def _fleet(config: str | Path | None) -> Fleet:
    from retrain_assets.fleet import load_fleet

    return load_fleet(config)


def model_config(fleet: Fleet, model: str | None) -> RetrainConfig:
    """The config of --model in fleet; SystemExit with the names when it is missing or unknown."""
    from retrain_assets.config import ConfigError

    try:
        return fleet.model(model)
    except ConfigError as exc:
        hint = "; choose one with --model NAME" if model is None else ""
        if fleet.single and model is not None:
            hint = "; drop --model, or point the config at a fleet folder"
        raise SystemExit(f"error: {exc}{hint}") from None


def _promoted_metadata(result: Any) -> dict[str, Any]:
    """The metadata of the run's promoted_model materialization (key prefixed or not)."""
    events = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key is not None and e.asset_key.path[-1] == names.PROMOTED_MODEL
    ]
    meta = events[0].step_materialization_data.materialization.metadata
    return {k: v.value for k, v in meta.items()}


def _rollback(args: argparse.Namespace) -> int:
    """Run rollback_job against the instance in $DAGSTER_HOME, so the UI shows who and why."""
    import getpass

    import dagster as dg

    from retrain_assets.definitions import build_definitions
    from retrain_assets.run_config import rollback_run_config
    from retrain_assets.scope import Scope

    cfg = model_config(_fleet(None), args.model)
    scope = Scope.of(cfg)
    job = build_definitions(cfg).resolve_job_def(scope.name(names.ROLLBACK_JOB))
    who = args.by or getpass.getuser()
    run_config = rollback_run_config(args.reason, requested_by=who, scope=scope)
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False
        )
    if not result.success:
        print(f"rollback failed (Dagster run {result.run_id})", file=sys.stderr)
        return 1
    meta = _promoted_metadata(result)
    print(f"champion v{meta['old_version']} -> v{meta['new_version']} ({args.reason}; by {who})")
    return 0


def _duration(seconds: float) -> str:
    """45s, 3m05s, 1h02m: short enough for a progress line."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def format_progress(
    label: str,
    done: int,
    total: int,
    reasons: Mapping[str, int],
    promotions: int,
    elapsed: float,
) -> str:
    """One progress line: days done, decisions so far, elapsed and estimated time left."""
    head = f"[{label}] " if label else ""
    share = 100 * done // total if total else 100
    decided = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "none"
    left = elapsed / done * (total - done) if done else None
    eta = f"~{_duration(left)} left" if left is not None else "time left unknown"
    return (
        f"{head}day {done}/{total} ({share}%)  retrains: {decided}  promotions {promotions}  "
        f"{_duration(elapsed)} elapsed, {eta}"
    )


class ProgressLine:
    """The replay's progress as one line, rewritten in place (``\\r``) on a terminal; elsewhere a
    plain line every ~10 % of the days, so logs stay short. Called as
    ``progress(record, done, total)``, as ``run_backtest`` does."""

    def __init__(
        self,
        stream: TextIO,
        label: str = "",
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream, self.label, self.clock = stream, label, clock
        self.tty = stream.isatty() if tty is None else tty
        self.began = clock()
        self.reasons: Counter[str] = Counter()
        self.versions: set[str] = set()
        self.promotions = 0
        self.decile = 0
        self.width = 0

    def _count(self, record: DayRecord) -> None:
        self.reasons.update(record.reasons)
        version = record.champion_version
        if version is not None and version not in self.versions:
            self.promotions += bool(self.versions)  # the first champion seen is not a promotion
            self.versions.add(version)

    def __call__(self, record: DayRecord, done: int, total: int) -> None:
        self._count(record)
        line = format_progress(
            self.label, done, total, self.reasons, self.promotions, self.clock() - self.began
        )
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
        else:
            decile = 10 * done // total if total else 10
            if decile <= self.decile and done < total:
                return
            self.decile = decile
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the rewritten line, so what follows starts on a new one."""
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()
        self.width = 0


def _quiet_mlflow() -> None:
    import os

    # MLflow draws a "Downloading artifacts" bar at every model load: hundreds in a replay.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _backtest(args: argparse.Namespace) -> int:
    """Replay a landing folder through the real definitions; print the timeline and summary."""
    import tempfile

    _quiet_mlflow()
    from retrain_assets.backtest.replay import load_truth, run_backtest
    from retrain_assets.backtest.report import format_report

    if args.compare:
        return _compare(args)
    if args.policy or args.policies or args.chart:
        raise SystemExit("--policy, --policies and --chart go with --compare")
    cfg = model_config(_fleet(args.config), args.model)
    truth = load_truth(truth_path(args.truth, cfg), cfg)
    progress = None if args.quiet else ProgressLine(sys.stderr)
    with tempfile.TemporaryDirectory(prefix="retrain-backtest-") as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        try:
            report = run_backtest(
                cfg,
                out,
                date_from=args.date_from,
                date_to=args.date_to,
                truth=truth,
                last_days=args.last_days,
                html=args.html,
                progress=progress,
            )
        finally:
            if progress is not None:
                progress.close()
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.out:
        print(f"instance, MLflow store and DVC repo kept in {args.out}", file=sys.stderr)
    return 0


def truth_path(given: Path | None, cfg: RetrainConfig) -> Path | None:
    """--truth, else for a fleet model <folder>/<model>/ground_truth.json when it exists (where
    `simulate --model` writes it); None lets load_truth look beside the config file."""
    if given is not None or cfg.fleet_model is None or cfg.source is None:
        return given
    beside = cfg.source.parent / cfg.fleet_model / "ground_truth.json"
    return beside if beside.is_file() else None


def model_lines(fleet: Fleet) -> list[str]:
    """`models`: a line per model (name, task, registered model, workdir, ok), then one per
    broken model (name, BROKEN, file, the error on one line)."""
    rows = [
        [name, cfg.task, cfg.model.registered_name, str(cfg.workdir), "ok"]
        for name, cfg in fleet.models.items()
    ]
    names_width = max((len(b.name) for b in fleet.broken), default=0)
    widths = [max([len(r[i]) for r in rows] + [names_width * (i == 0)]) for i in range(4)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[4]]) for r in rows
    ]
    for b in fleet.broken:
        first, *rest = [line.strip() for line in b.error.splitlines() if line.strip()] or [""]
        error = " ".join([first, "; ".join(rest)]).strip()
        lines.append(f"{b.name.ljust(widths[0])}  BROKEN  {b.file}  {error}")
    return lines


def _models(args: argparse.Namespace) -> int:
    """Print the models of the config in force; exit 1 when one is broken (or nothing loads)."""
    from retrain_assets.config import ConfigError

    try:
        fleet = _fleet(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in model_lines(fleet):
        print(line)
    if fleet.single:
        where = f"single-model config {next(iter(fleet.models.values())).source}"
    else:
        where = f"fleet folder {fleet.folder}"
    print(f"{where}: {len(fleet.models)} ok, {len(fleet.broken)} broken", file=sys.stderr)
    return 1 if fleet.broken else 0


def _status(args: argparse.Namespace) -> int:
    """Print every model's status against the instance in $DAGSTER_HOME; exit 1 when one needs
    attention (or the config does not load), else 0."""
    import dagster as dg

    from retrain_assets.config import ConfigError
    from retrain_assets.lib.overview import status_text
    from retrain_assets.overview import fleet_rows

    try:
        fleet = _fleet(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        instance = dg.DagsterInstance.get()
    except dg.DagsterError as exc:  # DAGSTER_HOME unset or not a folder
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with instance:
        rows = fleet_rows(fleet, instance)
    print(status_text(rows))
    return 1 if any(r.needs_attention for r in rows) else 0


def _chart_path(args: argparse.Namespace) -> Path:
    """--chart, else beside --json, else in --out, else compare.png in the current folder."""
    if args.chart:
        return Path(args.chart)
    if args.json:
        return Path(args.json).with_suffix(".png")
    return Path(args.out) / "compare.png" if args.out else Path("compare.png")


def _compare_progress(args: argparse.Namespace, lines: list[ProgressLine]) -> Callable | None:
    """A progress line per policy replay, named ``[policy i/n]``."""
    if args.quiet:
        return None

    def start(name: str, index: int, count: int) -> ProgressLine:
        for line in lines:
            line.close()
        lines.append(ProgressLine(sys.stderr, label=f"{name} {index}/{count}"))
        return lines[-1]

    return start


def _compare(args: argparse.Namespace) -> int:
    """Replay the history once per policy; print the table, write the chart (and the JSON)."""
    import tempfile

    from retrain_assets.backtest import compare
    from retrain_assets.backtest.replay import load_truth

    cfg = model_config(_fleet(args.config), args.model)
    truth = load_truth(truth_path(args.truth, cfg), cfg)
    try:
        chosen = (
            [n.strip() for n in args.policies.split(",") if n.strip()] if args.policies else None
        )
        user = [compare.parse_policy_arg(text) for text in args.policy or []]
        overlays, origins = compare.select_policies(chosen, user)
        compare.policy_configs(cfg, overlays, origins)  # every overlay checked before replaying
    except compare.PolicyError as exc:
        raise SystemExit(f"error: {exc}") from None
    lines: list[ProgressLine] = []
    with tempfile.TemporaryDirectory(prefix="retrain-compare-") as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        try:
            result = compare.compare_policies(
                cfg,
                overlays,
                out,
                truth,
                origins=origins,
                progress=_compare_progress(args, lines),
                date_from=args.date_from,
                date_to=args.date_to,
                last_days=args.last_days,
                html=args.html,
            )
        finally:
            for line in lines:
                line.close()
    print(compare.format_comparison(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    chart = compare.plot_comparison(result, _chart_path(args))
    print(f"chart: {chart}", file=sys.stderr)
    if args.out:
        print(
            f"each policy's instance, MLflow store and DVC repo kept in {args.out}", file=sys.stderr
        )
    return 0


def _iso_day(value: str) -> str:
    return dt.date.fromisoformat(value).isoformat()


MODEL_HELP = (
    "the model, when the config is a fleet folder (required then); with a single file it is "
    "optional and must be that model's model.registered_name"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retrain-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("simulate", help="write a simulated landing folder, retrain.yaml and truth")
    _simulate_arguments(s)
    s.set_defaults(func=_simulate)
    d = sub.add_parser("dev", help="demo data if needed, the MLflow UI and `dagster dev`")
    d.add_argument("--host", default="127.0.0.1", help="bind address (default: localhost only)")
    d.add_argument("--port", type=int, default=3000, help="Dagster UI port")
    d.add_argument("--mlflow-port", type=int, default=5000, help="MLflow UI port")
    d.add_argument(
        "--feed-interval", type=float, default=20.0, help="seconds between demo days landing"
    )
    d.set_defaults(func=_dev)
    r = sub.add_parser("rollback", help="move the champion back to the version it replaced")
    r.add_argument("--reason", required=True, help="recorded on the version and the run")
    r.add_argument("--by", default=None, help="who asks (default: the current user)")
    r.add_argument("--model", default=None, metavar="NAME", help=MODEL_HELP)
    r.set_defaults(func=_rollback)
    b = sub.add_parser(
        "backtest",
        help="replay a landing folder day by day through the real sensors, jobs and schedule",
    )
    _backtest_arguments(b)
    b.set_defaults(func=_backtest)
    m = sub.add_parser(
        "models",
        help="list the models of the config in force, ok or broken (exit 1 when one is broken)",
    )
    m.add_argument(
        "--config",
        default=None,
        help="a model's YAML file or a fleet folder (default: $RETRAIN_CONFIG, else the demo's)",
    )
    m.set_defaults(func=_models)
    _status_parser(sub)
    return parser


STATUS_HELP = (
    "one line per model: champion and its age, live (and estimated) metric against its test "
    "value, last drift, last retraining, challenger in canary, and why it needs attention; read "
    "from the Dagster instance in $DAGSTER_HOME and each model's MLflow registry. Exit code 0 "
    "when no model needs attention, 1 when one does (or the config does not load)"
)


def _status_parser(sub: Any) -> None:
    st = sub.add_parser(
        "status",
        help="the fleet at a glance (exit 1 when a model needs attention)",
        description=STATUS_HELP,
    )
    st.add_argument(
        "--config",
        default=None,
        help="a model's YAML file or a fleet folder (default: $RETRAIN_CONFIG, else the demo's)",
    )
    st.set_defaults(func=_status)


def _simulate_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--days", type=int, default=60)
    s.add_argument("--rows-per-day", type=int, default=1000)
    s.add_argument("--drift", choices=sim.DRIFT_KINDS, default="none")
    s.add_argument("--drift-day", type=int, default=30, help="0-based first drifted day")
    s.add_argument("--label-delay", type=int, default=3, help="labels of day d land on d+L")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--reference-rows", type=int, default=5000)
    s.add_argument(
        "--task",
        choices=sim.TASKS,
        default="binary",
        help="target: binary (defaulted), multiclass (repayment) or regression (loss_amount)",
    )
    s.add_argument(
        "--start-date",
        type=dt.date.fromisoformat,
        default=None,
        help="first day (default: far enough back that every file is dated in the past)",
    )
    s.add_argument("--overwrite", action="store_true", help="replace an existing landing folder")
    s.add_argument(
        "--model",
        default=None,
        metavar="NAME",
        help="write one model of a fleet: --out is the fleet folder, the model's file "
        "<out>/NAME.yaml (fleet defaults for workdir, registered model and experiment) and its "
        "feed and ground_truth.json in <out>/NAME/",
    )


def _backtest_arguments(b: argparse.ArgumentParser) -> None:
    b.add_argument(
        "--config",
        required=True,
        help="the retrain.yaml of the data to replay, or a fleet folder (then --model NAME)",
    )
    b.add_argument("--model", default=None, metavar="NAME", help=MODEL_HELP)
    b.add_argument("--from", dest="date_from", type=_iso_day, default=None, help="first day")
    b.add_argument("--to", dest="date_to", type=_iso_day, default=None, help="last day")
    b.add_argument("--json", default=None, help="also write the report as JSON to this path")
    b.add_argument(
        "--out",
        default=None,
        help="keep the replay's instance, MLflow store and DVC repo in this new folder "
        "(default: a temporary folder, removed afterwards)",
    )
    b.add_argument(
        "--truth",
        type=Path,
        default=None,
        help="answer key (default: ground_truth.json next to the config, if any)",
    )
    b.add_argument("--last-days", type=int, default=7, help="label days of the final live AUC")
    b.add_argument("--html", action="store_true", help="write Evidently HTML reports (slow)")
    b.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    b.add_argument(
        "--compare",
        action="store_true",
        help="replay the history once per policy (never, weekly, policy, daily by default) "
        "and compare them: a table, a chart, and with --json the figures",
    )
    b.add_argument(
        "--policy",
        action="append",
        default=None,
        metavar="NAME=FILE",
        help="with --compare: also replay the config with this YAML overlay merged in (repeatable)",
    )
    b.add_argument(
        "--policies",
        default=None,
        metavar="A,B,...",
        help="with --compare: the policies to replay, among never, weekly, policy, daily "
        "and the --policy names",
    )
    b.add_argument(
        "--chart",
        default=None,
        help="with --compare: the PNG chart's path (default: beside --json, else in --out, "
        "else compare.png here)",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
