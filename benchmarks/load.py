"""Code-location load time against a bare `import dagster`, as whole fresh processes: the code
location's module imported and its lazy definitions built (`defs()`), as Dagster's loader does.

Why: every Dagster process loads the code location (each run worker, each step process of the
multiprocess executor, every sensor/schedule evaluation in the code server, every UI reload), so
whatever the code location imports on top of Dagster is paid again and again. The goal is a load
at most 1.5x `python -c "import dagster"`, the floor no code location can go below.

Both commands run as fresh subprocesses of the same interpreter and environment, RETRAIN_CONFIG
pointing at a small simulated feed in a temp folder, interleaved (ABBA order) and repeated; medians
are reported. With --why (or automatically when the goal is missed), `python -X importtime` shows
which modules the code location imports that Dagster does not, the heaviest subtrees first, the
chain of our modules that pulls each in, and every one of our modules that imports them at module
level.

    .venv/bin/python -m benchmarks.load             # 9 repeats of each
    .venv/bin/python -m benchmarks.load --why       # also the import-time breakdown
    .venv/bin/python -m benchmarks.load --alt-root /tmp/patched   # + a patched copy of the
        # package (DIR/retrain_assets, first on PYTHONPATH), timed in the same interleaved loop
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from retrain_assets.lib.data.simulate import SimulationSpec, simulate

GOAL = 1.5
PACKAGE = "retrain_assets"
ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    # The module imported and its lazy definitions built (`defs()`), as Dagster's loader does.
    "definitions": "from retrain_assets.definitions import defs; defs()",
    "dagster": "import dagster",
    "python": "pass",  # interpreter start-up alone, for scale
}
QUIET = {
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def _env(config: Path) -> dict[str, str]:
    # A deployment has bytecode: with PYTHONDONTWRITEBYTECODE set, the warm-up run could not
    # write our package's .pyc files and every timed run would compile it from source again.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **QUIET, "RETRAIN_CONFIG": str(config)}


def bytecode_note() -> str:
    """Whether site-packages carry .pyc files (uv installs without them unless asked)."""
    import importlib.util

    spec = importlib.util.find_spec("dagster")
    origin = spec.origin if spec and spec.origin else ""
    cached = importlib.util.cache_from_source(origin) if origin else ""
    return (
        "site-packages bytecode present"
        if Path(cached).exists()
        else ("WARNING: no .pyc for dagster: every process compiles it (install with bytecode)")
    )


def _run(code: str, env: dict[str, str], *flags: str, cwd: Path = ROOT) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *flags, "-c", code], env=env, cwd=cwd, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{code!r} failed:\n{done.stderr[-2000:]}")
    return seconds, done.stderr


def measure(
    env: dict[str, str], repeats: int, alt_root: Path | None = None
) -> dict[str, list[float]]:
    """Wall seconds per command, interleaved in ABBA order so a drifting load hits all alike.

    With ``alt_root``, "patched" is the definitions import of the package copy in that folder
    (first on PYTHONPATH; run from a temp folder, since `-c` puts the cwd first on sys.path)."""
    runs = {name: (code, env, ROOT) for name, code in COMMANDS.items()}
    if alt_root is not None:
        alt_env = {**env, "PYTHONPATH": str(alt_root)}
        runs["patched"] = (COMMANDS["definitions"], alt_env, Path(env["RETRAIN_CONFIG"]).parent)
        check = "import retrain_assets; print(retrain_assets.__file__)"
        where = subprocess.run(
            [sys.executable, "-c", check],
            env=alt_env,
            cwd=runs["patched"][2],
            text=True,
            capture_output=True,
            check=True,
        ).stdout.strip()
        if not where.startswith(str(alt_root)):
            raise SystemExit(f"--alt-root: retrain_assets still resolves to {where}")
    names = list(runs)
    for name in names:  # warm the page cache and .pyc files: not measured
        code, run_env, cwd = runs[name]
        _run(code, run_env, cwd=cwd)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            code, run_env, cwd = runs[name]
            times[name].append(_run(code, run_env, cwd=cwd)[0])
    return times


@dataclass
class Node:
    name: str
    self_us: int
    cumulative_us: int
    level: int
    ancestors: list[str] = field(default_factory=list)


_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def importtime_tree(stderr: str) -> list[Node]:
    """`-X importtime` lines as nodes in import (pre-)order, each with its chain of importers."""
    rows = []
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if m:
            level = len(m.group(3)) // 2
            rows.append(Node(m.group(4), int(m.group(1)), int(m.group(2)), level))
    # importtime prints a module after its children: reversed, every parent precedes its subtree.
    stack: list[Node] = []
    nodes = []
    for node in reversed(rows):
        while stack and stack[-1].level >= node.level:
            stack.pop()
        node.ancestors = [n.name for n in stack]
        stack.append(node)
        nodes.append(node)
    return nodes


def module_level_importers(packages: set[str], loaded: set[str]) -> dict[str, list[str]]:
    """Top package -> those of our ``loaded`` modules that import it at module level."""
    found: dict[str, list[str]] = {p: [] for p in packages}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if module.endswith(".__init__"):
            module = module.removesuffix(".__init__")
        if module not in loaded:
            continue
        tree = ast.parse(path.read_text())
        for stmt in tree.body:  # module level only; a TYPE_CHECKING block is never executed
            if isinstance(stmt, ast.Import):
                tops = {alias.name.split(".")[0] for alias in stmt.names}
            elif isinstance(stmt, ast.ImportFrom) and stmt.level == 0 and stmt.module:
                tops = {stmt.module.split(".")[0]}
            else:
                continue
            for top in tops & packages:
                found[top].append(module)
    return found


def why(env: dict[str, str], top: int = 8) -> None:
    """Print the heaviest imports the code location adds to `import dagster`, and who adds them."""
    _, ours = _run(COMMANDS["definitions"], env, "-X", "importtime")
    _, base = _run(COMMANDS["dagster"], env, "-X", "importtime")
    tree = importtime_tree(ours)
    in_dagster = {n.name for n in importtime_tree(base)}
    extra = [n for n in tree if n.name not in in_dagster]
    added_self = sum(n.self_us for n in extra if not n.name.startswith(PACKAGE))
    ours_self = sum(n.self_us for n in extra if n.name.startswith(PACKAGE))
    print(
        f"-X importtime: modules imported on top of dagster: {len(extra)}; their own time "
        f"{added_self / 1e3:.0f} ms third-party + {ours_self / 1e3:.0f} ms ours"
    )
    # Roots: third-party modules not in dagster's import whose importer is one of ours (or the
    # top level), i.e. the subtrees our code asks for.
    roots = [
        n
        for n in extra
        if not n.name.startswith(PACKAGE)
        and (not n.ancestors or n.ancestors[-1].startswith(PACKAGE))
    ]
    roots.sort(key=lambda n: -n.cumulative_us)
    print(f"{'module':28s}{'cumulative us':>14s}  pulled in by")
    for node in roots[:top]:
        chain = " -> ".join(a for a in node.ancestors if a.startswith(PACKAGE))
        print(f"{node.name:28s}{node.cumulative_us:14,d}  {chain or '(top level)'}")
        # Other packages inside this subtree (numpy, pyarrow under pandas), heaviest first.
        inside = [
            n
            for n in tree
            if node.name in n.ancestors
            and n.name.split(".")[0] != node.name.split(".")[0]
            and n.ancestors[-1].split(".")[0] != n.name.split(".")[0]
            and n.cumulative_us > 10_000
        ]
        shown: set[str] = set()
        for sub in sorted(inside, key=lambda n: -n.cumulative_us):
            if sub.name.split(".")[0] not in shown and len(shown) < 4:
                shown.add(sub.name.split(".")[0])
                print(f"  {'incl. ' + sub.name:26s}{sub.cumulative_us:14,d}")
    heavy = {n.name.split(".")[0] for n in roots[:top] if n.cumulative_us > 20_000}
    loaded = {n.name for n in tree if n.name.startswith(PACKAGE)}
    for package, modules in sorted(module_level_importers(heavy, loaded).items()):
        if modules:
            print(f"module-level `import {package}` in: {', '.join(modules)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="runs of each command (>= 7)")
    parser.add_argument("--why", action="store_true", help="always print the importtime view")
    parser.add_argument("--alt-root", type=Path, help="also time DIR/retrain_assets (a patch)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        simulate(Path(tmp), SimulationSpec(days=5, rows_per_day=200))
        env = _env(Path(tmp) / "retrain.yaml")
        alt = args.alt_root.resolve() if args.alt_root else None
        times = measure(env, max(args.repeats, 7), alt)
        med = {name: statistics.median(values) for name, values in times.items()}
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.repeats} repeats; "
            f"{bytecode_note()}"
        )
        for name, values in times.items():
            spread = f"{min(values) * 1e3:.0f}..{max(values) * 1e3:.0f} ms"
            label = f"{COMMANDS[name]!r}" if name in COMMANDS else f"{name} ({alt})"
            print(f"{label:40s} median {med[name] * 1e3:6.0f} ms  ({spread})")
        ratios = [a / b for a, b in zip(times["definitions"], times["dagster"], strict=True)]
        ratio = med["definitions"] / med["dagster"]
        print(
            f"code location on top of dagster: {(med['definitions'] - med['dagster']) * 1e3:.0f} "
            f"ms; per-pair ratios {min(ratios):.2f}..{max(ratios):.2f}"
        )
        if alt is not None:
            patched = med["patched"] / med["dagster"]
            print(
                f"patched copy: {med['patched'] * 1e3:.0f} ms, ratio {patched:.2f} to dagster; "
                f"saves {(med['definitions'] - med['patched']) * 1e3:.0f} ms per process"
            )
        if args.why or ratio > GOAL:
            why(env)
    print(
        f"RESULT load: retrain_assets.definitions defs() {med['definitions']:.2f} s vs import "
        f"dagster {med['dagster']:.2f} s, ratio {ratio:.2f} (goal {GOAL})"
    )


if __name__ == "__main__":
    main()
