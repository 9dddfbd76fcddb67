"""The soak: every chaos scenario in turn, each taking random faults for its share of the time
with the same processes throughout (so their memory growth over the share is measured), then
the report (tests/chaos/report.py):

    python -m tests.chaos.soak --seconds 3600 --seed 7 --out .chaos/soak.md

`make soak SECONDS=3600` runs it. Each scenario is a pytest session of its own (each enters
its own private network namespace: testenv/faults.py); a failing scenario does not stop the
soak, its violations are in the report and the exit status is non-zero."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.chaos.report import load, render

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = [
    "tests/chaos/test_mesos_chaos.py",
    "tests/chaos/test_zk_scale_chaos.py",
    "tests/chaos/test_zk_sync_chaos.py",
    "tests/chaos/test_monitor_chaos.py",
    # the operator's own scenarios with the Kubernetes control plane (rolling restart,
    # ZkMigration phases, MarathonApp canary), which share their time box between the three
    "tests/chaos/test_operator_chaos.py",
]
SETUP_SECONDS = 60  # about what each scenario spends starting and checking at the end


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="chaos soak over every scenario")
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / ".chaos" / "soak.md")
    args = parser.parse_args(argv)
    if not 60 <= args.seconds <= 7 * 24 * 3600:
        parser.error("--seconds must be between 60 and 604800")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    records = args.out.with_suffix(".jsonl")
    records.unlink(missing_ok=True)
    began = time.monotonic()
    share = max(30, args.seconds // len(SCENARIOS) - SETUP_SECONDS)
    failed = []
    for i, scenario in enumerate(SCENARIOS):
        env = {
            **os.environ,
            "ORCHESTRATOR_CHAOS": "1",
            "CHAOS_SEED": str(args.seed + i),
            "CHAOS_SECONDS": str(share),
            "CHAOS_REPORT": str(records),
        }
        command = [sys.executable, "-m", "pytest", scenario, "-q", "-p", "no:cacheprovider"]
        done = subprocess.run(command, env=env, cwd=REPO)
        if done.returncode != 0:
            failed.append(scenario)
    minutes = (time.monotonic() - began) / 60
    text = render(
        load(records),
        f"Soak: {minutes:.0f} min, seed {args.seed}",
        f"make soak SECONDS={args.seconds} SOAK_SEED={args.seed}",
    )
    if failed:
        text += "\nScenarios that failed: " + ", ".join(failed) + "\n"
    args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
