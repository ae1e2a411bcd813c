"""The ``retrain-assets`` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from retrain_assets.lib import simulate as sim


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

    from retrain_assets.config import load_config
    from retrain_assets.defs import build_definitions

    defs = build_definitions(load_config())
    job = defs.resolve_job_def("rollback_job")
    who = args.by or getpass.getuser()
    run_config = {
        "ops": {
            "promoted_model": {
                "config": {"rollback": True, "reason": args.reason, "requested_by": who}
            }
        }
    }
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False
        )
    if not result.success:
        print(f"rollback failed (Dagster run {result.run_id})", file=sys.stderr)
        return 1
    event = result.asset_materializations_for_node("promoted_model")[0]
    meta = {k: v.value for k, v in event.metadata.items()}
    print(f"champion v{meta['old_version']} -> v{meta['new_version']} ({args.reason}; by {who})")
    return 0


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
