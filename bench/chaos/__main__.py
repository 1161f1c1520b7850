"""``make chaos`` (``python -m bench.chaos``): the fault suite; see the package docstring."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ..machine import machine
from . import __doc__ as DOC
from .report import table
from .scenarios import SCENARIOS, Options, Result


def _tree() -> dict[str, Any]:
    """The commit the daemon ran from and whether its code had uncommitted changes: each
    ``adaptd run`` child imports the working tree as it is when it starts, and the tree may
    be shared with other work while the suite runs."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "daemon", "replay", "adapters")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "daemon_code_modified": None if changed is None else bool(changed),
    }


async def _run(opts: Options, names: list[str]) -> list[Result]:
    results = []
    for name in names:
        print(f"\n== {name} ==", flush=True)
        result = await SCENARIOS[name](opts)
        results.append(result)
        print(table(name, result.figures, result.seconds), flush=True)
        for note in result.notes:
            print(f"note: {note}")
        for check in result.checks:
            print(check.line(), flush=True)
        if result.incidents:
            print(f"{len(result.incidents)} incidents with evidence (py-spy dumps, logs):")
            for incident in result.incidents:
                print(f"  {incident['time']} pid {incident['pid']}: {incident['why']}")
    return results


def _setting(item: str) -> tuple[str, str]:
    """``--set``'s ``ADAPTD_NAME=VALUE`` as a pair.

    >>> _setting("ADAPTD_KAFKA__GROUP_INSTANCE_ID=replica-0")
    ('ADAPTD_KAFKA__GROUP_INSTANCE_ID', 'replica-0')
    """
    name, sep, value = item.partition("=")
    if not sep or not name.startswith("ADAPTD_"):
        raise SystemExit(f"--set takes ADAPTD_NAME=VALUE, got {item!r}")
    return name, value


_SCENARIO_KNOBS: tuple[tuple[str, str, type, str], ...] = (
    ("--learner-s", "learner_s", float, "learner: seconds of continuous adaptation"),
    ("--soak-adaptations", "soak_adaptations", int, "soak: adaptations to run through"),
    ("--soak-timeout", "soak_timeout_s", float, "soak: the most seconds they may take"),
)
"""Options of the adapting scenarios on the command line: flag, field, type, help."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=DOC)
    parser.add_argument("--out", type=Path, default=Path("docs/bench/chaos.json"))
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of the daemon")
    parser.add_argument("--rate", type=int, default=400, help="records per second fed")
    parser.add_argument(
        "--pause", type=float, default=10.0, help="seconds of each SIGSTOP and network cut"
    )
    parser.add_argument(
        "--redis-down", type=float, default=3.0, help="seconds Redis stays down after SIGKILL"
    )
    parser.add_argument(
        "--redis-maxmemory",
        default=Options.redis_maxmemory,
        help="redis_full: the maxmemory Redis starts with (Redis units: 1800kb, 2mb)",
    )
    parser.add_argument(
        "--full",
        type=float,
        default=Options.full_s,
        help="redis_full: seconds Redis stays full before its maxmemory is raised",
    )
    for flag, name, kind, what in _SCENARIO_KNOBS:
        parser.add_argument(flag, dest=name, type=kind, default=getattr(Options, name), help=what)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="ADAPTD_NAME=VALUE",
        help="a setting of every daemon, as its environment variable (repeatable), e.g. "
        "ADAPTD_KAFKA__GROUP_INSTANCE_ID=replica-0",
    )
    parser.add_argument("--work", type=Path, help="folder for logs (default: a new temp one)")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="adaptd-chaos-"))
    opts = Options(
        rate=args.rate,
        kills=args.kills,
        pause_s=args.pause,
        redis_down_s=args.redis_down,
        redis_maxmemory=args.redis_maxmemory,
        full_s=args.full,
        **{name: getattr(args, name) for _, name, _, _ in _SCENARIO_KNOBS},
        seed=args.seed,
        work=work,
        daemon_settings=tuple(_setting(item) for item in args.set),
    )
    names = args.only or list(SCENARIOS)
    info = machine()
    print(f"machine: {info['cpu']} ({info['cores']} cores); logs and evidence in {work}")
    print(
        f"feed {opts.rate} records/s in 4 streams, a malformed record every 97th; "
        "each scenario its own Tansu broker, redis-server (AOF) and `adaptd run` children"
    )
    t0 = time.monotonic()
    tree = _tree()
    results = asyncio.run(_run(opts, names))
    elapsed = time.monotonic() - t0
    tree_after = _tree()
    ok = all(r.ok for r in results)
    out: dict[str, Any] = {
        "machine": info,
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "run_time_s": round(elapsed, 1),
        "ok": ok,
        "tree": tree if tree_after == tree else {"at_start": tree, "at_end": tree_after},
        "options": {
            "rate": opts.rate,
            "kills": opts.kills,
            "pause_s": opts.pause_s,
            "steady_s": opts.steady_s,
            "redis_down_s": opts.redis_down_s,
            "redis_maxmemory": opts.redis_maxmemory,
            "full_s": opts.full_s,
            "churn_streams": opts.churn_streams,
            "churn_regime_len": opts.churn_regime_len,
            "learner_s": opts.learner_s,
            "learner_rate": opts.learner_rate,
            "soak_adaptations": opts.soak_adaptations,
            "soak_rate": opts.soak_rate,
            "seed": opts.seed,
        },
        "scenarios": {r.name: r.as_dict() for r in results},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    failed = [f"{r.name}: {c.name}" for r in results for c in r.checks if not c.ok]
    print(f"\nrun time {elapsed:.0f} s; {'ALL PASS' if ok else 'FAIL: ' + '; '.join(failed)}")
    print(f"written to {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
