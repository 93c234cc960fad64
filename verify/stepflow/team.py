"""A team's own component server in the real-StepFlow tier.

The installations of verify/stepflow/team-chart.mjs (one directory, per generation:
team-with-sdk.yaml, team-only.yaml) are started as the manifests say, like the ones of
dist/, with one more image stand-in: the team's module (`--team-dir`, the directory of
verify/stepflow/team_worker/team_tools.py) is mounted read-only and put on PYTHONPATH of
the container that runs it (`python3 -m team_tools`, or the worker loop with
STEPFLOW_KIT_SERVER=team_tools:server), as the team's image installs it beside stepflow-py
(printed as a REWRITE line). Checks per installation: the manifests route /team to the
team's worker (and the python-sdk is there or gone as the variant says); probes; the core
starts cleanly; the core lists exactly the team's components for the plugin `team`; a
two-step flow over /team/stats and /team/whoami computes the right values in the team's
pod; with the python-sdk also the stock flows and a flow crossing both workers.
"""
from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

from manifests import Env, is_core, load_objects, pod_spec, role, workloads
from pods import Runner, Scenario, info, log

ROUTE = "team"  # the worker's routePrefix in team-chart.mjs
TEAM_COMPONENTS = {"stats", "whoami"}  # what team_tools.py registers
SERVER_NAME = "team-tools"  # team_tools.SERVER_NAME


def team_workloads(r: Runner, env: Env) -> list[dict[str, Any]]:
    return [wl for wl in workloads(env) if r.team_module(pod_spec(wl)["containers"][0]) is not None]


def stats_of(values: list[float]) -> dict[str, float]:
    n = len(values)
    mean = math.fsum(values) / n
    return {"count": n, "sum": math.fsum(values), "mean": mean, "min": min(values), "max": max(values),
            "stdev": math.sqrt(math.fsum((v - mean) ** 2 for v in values) / n)}


def close(a: Any, b: float) -> bool:
    return isinstance(a, (int, float)) and math.isclose(float(a), b, rel_tol=1e-9, abs_tol=1e-9)


def check_manifests(r: Runner, env: Env, label: str, cfg_text_cfg: dict[str, Any]) -> bool:
    """What the file says, before anything runs: the team's worker and its route, and the
    built-in servers there or gone as the variant (the file's name) says."""
    res = r.results
    teams = team_workloads(r, env)
    ok = res.check(len(teams) == 1, f"{label} one workload runs the team's module",
                   ", ".join(f"{wl['metadata']['name']}: {pod_spec(wl)['containers'][0].get('command')}" for wl in teams)
                   or "none")
    plugins = cfg_text_cfg.get("plugins") or {}
    routes = cfg_text_cfg.get("routes") or {}
    team_routes = [k for k, rules in routes.items() if any(x.get("plugin") == ROUTE for x in rules or [])]
    want_route = "/team" if r.generation == "0.13" else "/team/{*component}"
    plugin = plugins.get(ROUTE) or {}
    want_type = "grpc" if r.generation == "0.13" else "stepflow"
    ok &= res.check(plugin.get("type") == want_type and team_routes == [want_route],
                    f"{label} the core's config has plugin {ROUTE!r} ({want_type}) routed at {want_route}",
                    f"plugin {plugin}, routes {team_routes}")
    others = sorted(role(wl) for wl in workloads(env) if not is_core(pod_spec(wl)["containers"][0]) and wl not in teams)
    want_sdk = "team-only" not in env.path.name
    ok &= res.check(others == (["python-sdk"] if want_sdk else []) and (("python" in plugins) == want_sdk)
                    and "inference" not in plugins,
                    f"{label} built-in servers: {'the python-sdk only' if want_sdk else 'none (pythonSdk: false)'}",
                    f"other workloads {others}, plugins {sorted(plugins)}")
    return ok


def team_flow(sc: Scenario, team_pods: set[str]) -> None:
    """/team/stats over random numbers, then /team/whoami: values computed in the team's pod."""
    values = [float(random.randint(-10**6, 10**6)) / 8 for _ in range(random.randint(3, 9))]
    tag = f"verify-{random.randint(0, 10**9)}"
    flow = {"name": "team-stats", "description": "a team's own components through the core",
            "steps": [{"id": "stats", "component": f"/{ROUTE}/stats", "input": {"values": {"$input": "values"}}},
                      {"id": "who", "component": f"/{ROUTE}/whoami",
                       "input": {"tag": {"$input": "tag"}, "after": {"$step": "stats", "path": "$.count"}}}],
            "output": {"stats": {"$step": "stats"}, "who": {"$step": "who"}}}
    t0 = time.time()
    ok, out, detail = sc.run_flow(flow, {"values": values, "tag": tag})
    took = time.time() - t0
    want = stats_of(values)
    got = (out or {}).get("stats") if isinstance(out, dict) else None
    good = ok and isinstance(got, dict) and all(close(got.get(k), v) for k, v in want.items())
    sc.res.check(good, f"{sc.label} workflow /{ROUTE}/stats through the core computes the statistics",
                 f"{len(values)} values, expected {want}, got {got!r} ({detail}, {took:.2f} s)")
    who = (out or {}).get("who") if isinstance(out, dict) else None
    good = ok and isinstance(who, dict) and who.get("tag") == tag and who.get("pod") in team_pods \
        and who.get("server") == SERVER_NAME
    sc.res.check(good, f"{sc.label} workflow /{ROUTE}/whoami ran in the team's pod",
                 f"expected tag {tag}, pod in {sorted(team_pods)}, server {SERVER_NAME}; got {who!r} ({detail})")


def crossing_flow(sc: Scenario, python_path: str) -> None:
    """A flow over both workers: the team's /team/stats, then the stock python-sdk's UDF on its output."""
    values = [float(random.randint(1, 1000)) for _ in range(5)]
    blob = sc.store_blob({"code": "input['sum'] / input['count']", "input_schema": {"type": "object"}})
    flow = {"name": "team-and-python", "description": "team stats, then a python-sdk UDF",
            "steps": [{"id": "stats", "component": f"/{ROUTE}/stats", "input": {"values": {"$input": "values"}}},
                      {"id": "mean", "component": python_path,
                       "input": {"blob_id": blob, "input": {"sum": {"$step": "stats", "path": "$.sum"},
                                                            "count": {"$step": "stats", "path": "$.count"}}}}],
            "output": {"$step": "mean"}}
    ok, out, detail = sc.run_flow(flow, {"values": values})
    want = math.fsum(values) / len(values)
    sc.res.check(ok and close(out, want), f"{sc.label} workflow /{ROUTE}/stats -> {python_path} (two workers, one run)",
                 f"expected {want}, got {out!r} ({detail})")


def run_team_env(r: Runner, envfile: Path) -> None:
    env = Env(envfile, load_objects(envfile))
    label = f"[team {envfile.name} gen {r.generation}]"
    log(f"===== {label} {envfile}")
    r.rewrites.clear()
    t0 = time.time()
    with Scenario(r, env, label) as sc:
        if not check_manifests(r, env, label, sc.config()):
            return
        probes_ok, cfg, served = sc.start_checked()
        core = sc.core_url()
        st, body = r.http_json("GET", f"{core}/components?includeSchemas=false")
        listed = body.get("components", []) if isinstance(body, dict) else []
        if r.generation == "0.13":
            team_listed = {c.get("componentId") for c in listed if c.get("plugin") == ROUTE}
        else:  # 0.11 lists each server's own names ("/stats") without the plugin: the team server's
            # components/list (JSON-RPC), each of them also in the core's list
            names = {c.get("component") for c in listed}
            team_listed = {n.lstrip("/") for n in served.get(ROUTE, []) if n in names}
            if len(team_listed) != len(served.get(ROUTE, [])):
                team_listed.add("(not all listed by the core)")
        r.results.check(team_listed == TEAM_COMPONENTS, f"{label} the core lists exactly the team's components",
                        f"plugin {ROUTE!r}: {sorted(x for x in team_listed if x)}; expected {sorted(TEAM_COMPONENTS)}")
        if probes_ok:
            team_pods = {rep.pod_name for rep in sc.reps if rep.workload in team_workloads(r, env)}
            team_flow(sc, team_pods)
            if "python" in cfg.get("plugins", {}):
                flows = sc.python_flows(cfg, served)
                if flows:
                    sc.workflow_round(flows, label)
                    crossing_flow(sc, flows["path"])
        sc.check_no_restarts()
    print(f"FIGURE: {label} started, checked and stopped in {time.time() - t0:.1f} s", flush=True)


def run_team(r: Runner, team_dist: Path) -> None:
    if r.team_dir is None:
        raise SystemExit("--team-dist needs --team-dir (the directory of the team's modules)")
    files = sorted(team_dist.glob("*.yaml"))
    if not files:
        raise SystemExit(f"no *.yaml in {team_dist}")
    info(f"team installations: {', '.join(f.name for f in files)}; team modules from {r.team_dir}")
    for f in files:
        run_team_env(r, f)
