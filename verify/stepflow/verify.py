#!/usr/bin/env python3
"""Run the real StepFlow programs exactly as the synthesized manifests describe them.

For every environment file in the dist directory this reads the Kubernetes objects back
from the YAML, starts each container with the command, args, env, volumes and security
context written there (inside a private network namespace and one private mount
namespace per container), probes it with the probes written there, and drives a workflow
through the core server's REST API.

The only changes made to what the manifests say are printed as REWRITE lines:
  * Service host names -> 127.0.0.1 (and the Service port -> the local port serving it)
  * /usr/local/bin/stepflow-server -> the stepflow-orchestrator wheel's binary
  * python3 -> the python of the venv standing in for the container image
  * a port number, where two local processes would otherwise collide (replicas)

This file is run by run.sh (which prepares the venvs and the network namespace); it uses
only the standard library plus PyYAML. It runs the scenarios (scenarios.py, resilience.py,
team.py) on the shared infrastructure (pods.py: processes, probes, Services; manifests.py:
what the YAML says), which imports no scenario.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The StepFlow fixtures (verify/fixtures/stepflow_fixtures), which pods.py imports.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from pods import Results, Runner, info  # noqa: E402
from resilience import run_resilience  # noqa: E402
from scenarios import report_ephemeral, run_env  # noqa: E402
from team import run_team  # noqa: E402


def run_all(args: argparse.Namespace, results: Results) -> None:
    dist = Path(args.dist)
    files = sorted(dist.glob("*.yaml"))
    if not files:
        raise SystemExit(f"no *.yaml in {dist}")
    r = Runner(args, results)
    try:
        if r.inference_venv is None:
            info("inference: NOT INCLUDED -- no inference venv was given; inference pods cannot be started")
        only_team = getattr(args, "only_team", False)
        if not getattr(args, "only_resilience", False) and not only_team:
            for f in files:
                run_env(r, f)
        # State, recovery, worker loss, backup/restore: once per generation, on the first
        # environment file (dev.yaml); see resilience.py.
        if not only_team:
            run_resilience(r, files[0])
        # A team's own worker beside (or instead of) the built-in ones; see team.py.
        if getattr(args, "team_dist", ""):
            run_team(r, Path(args.team_dist))
        report_ephemeral(r)
    finally:
        r.cleanup()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dist", required=True)
    ap.add_argument("--generation", required=True, choices=["0.11", "0.13"])
    ap.add_argument("--core-venv", required=True)
    ap.add_argument("--inference-venv", default="")
    ap.add_argument("--inference-sdk013", default="", help="directory with stepflow-py 0.13, shadowing 0.11 in the inference venv")
    ap.add_argument("--model-dir", default="")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--init-timeout", type=float, default=180)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--only-resilience", action="store_true", help="skip the per-environment checks (development)")
    ap.add_argument("--team-dist", default="", help="directory with a team's installations (verify/stepflow/team-chart.mjs): "
                    "run team.py's checks on each *.yaml there")
    ap.add_argument("--team-dir", default="", help="directory holding the team's component modules (the team image's own)")
    ap.add_argument("--only-team", action="store_true", help="only the team's installations (--team-dist)")
    ap.add_argument("--summary-file", default="")
    ap.add_argument("--workdir", default="", help="parent of the run directory (logs, volumes); not under /tmp")
    args = ap.parse_args()

    results = Results()
    with results.guard("tier"):
        run_all(args, results)
    return results.summary(f"generation {args.generation} ({args.dist}): ", args.summary_file)

if __name__ == "__main__":
    sys.exit(main())
