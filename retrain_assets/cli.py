"""The ``retrain-assets`` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from retrain_assets.lib.data import simulate as sim


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


def _backtest(args: argparse.Namespace) -> int:
    """Replay a landing folder through the real definitions; print the timeline and summary."""
    import os
    import tempfile

    # MLflow draws a "Downloading artifacts" bar at every model load: hundreds in a replay.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    from retrain_assets.backtest.replay import load_truth, run_backtest
    from retrain_assets.backtest.report import DayRecord, format_report
    from retrain_assets.config import load_config

    cfg = load_config(args.config)
    truth = load_truth(args.truth, cfg)

    def progress(record: DayRecord, done: int, total: int) -> None:
        if not args.quiet:
            row = record.to_row()
            print(
                f"{row['day']}  drift {row['drift_share']}  auc {row['live_auc']}  "
                f"{row['reason'] or ''} {row['gates'] or ''} {row['canary'] or ''} "
                f"champion v{row['champion_version']}",
                file=sys.stderr,
            )

    with tempfile.TemporaryDirectory(prefix="retrain-backtest-") as tmp:
        out = Path(args.out) if args.out else Path(tmp)
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
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.out:
        print(f"instance, MLflow store and DVC repo kept in {args.out}", file=sys.stderr)
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
    b.add_argument("--quiet", action="store_true", help="no per-day progress on stderr")
    b.set_defaults(func=_backtest)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
