"""The ``retrain-assets`` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from retrain_assets.lib.data import simulate as sim

if TYPE_CHECKING:
    from retrain_assets.backtest.report import DayRecord


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
    truth = sim.simulate(args.out, spec, overwrite=args.overwrite)
    print(json.dumps(truth, indent=2))
    print(f"wrote {args.out}/landing and {args.out}/retrain.yaml", file=sys.stderr)
    return 0


def _dev(args: argparse.Namespace) -> int:
    from retrain_assets import dev

    return dev.run(
        host=args.host,
        port=args.port,
        mlflow_port=args.mlflow_port,
        feed_interval=args.feed_interval,
    )


def _rollback(args: argparse.Namespace) -> int:
    """Run rollback_job against the instance in $DAGSTER_HOME, so the UI shows who and why."""
    import getpass

    import dagster as dg

    from retrain_assets import names
    from retrain_assets.config import load_config
    from retrain_assets.definitions import build_definitions
    from retrain_assets.run_config import rollback_run_config

    defs = build_definitions(load_config())
    job = defs.resolve_job_def(names.ROLLBACK_JOB)
    who = args.by or getpass.getuser()
    run_config = rollback_run_config(args.reason, requested_by=who)
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False
        )
    if not result.success:
        print(f"rollback failed (Dagster run {result.run_id})", file=sys.stderr)
        return 1
    event = result.asset_materializations_for_node(names.PROMOTED_MODEL)[0]
    meta = {k: v.value for k, v in event.metadata.items()}
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
    from retrain_assets.config import load_config

    if args.compare:
        return _compare(args)
    if args.policy or args.policies or args.chart:
        raise SystemExit("--policy, --policies and --chart go with --compare")
    cfg = load_config(args.config)
    truth = load_truth(args.truth, cfg)
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
    from retrain_assets.config import load_config

    cfg = load_config(args.config)
    truth = load_truth(args.truth, cfg)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retrain-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("simulate", help="write a simulated landing folder, retrain.yaml and truth")
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
    r.set_defaults(func=_rollback)
    b = sub.add_parser(
        "backtest",
        help="replay a landing folder day by day through the real sensors, jobs and schedule",
    )
    _backtest_arguments(b)
    b.set_defaults(func=_backtest)
    return parser


def _backtest_arguments(b: argparse.ArgumentParser) -> None:
    b.add_argument("--config", required=True, help="the retrain.yaml of the data to replay")
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
