"""Scenarios of the real-StepFlow tier on each environment file of the dist directory:
its pods started as the manifests say, probed, listed and driven through the core
(run_env), then several python-sdk replicas behind the address the core uses
(replicas_probe)."""
from __future__ import annotations

from pathlib import Path

from manifests import Env, config_from_manifests, load_objects, role, selector_matches, workloads
from pods import Results, Runner, Scenario, info, log


def replicas_probe(r: Runner, env: Env, results: Results, generation: str, base_label: str) -> None:
    """Several python-sdk replicas behind the address the core uses. 0.11: the Service stand-in
    proxies per TCP connection with the manifest's sessionAffinity (asserted), then with the
    opposite setting (evidence only). 0.13: two workers pull from the same queue."""
    svc = None
    for s in env.of_kind("Service"):
        sel = s["spec"].get("selector") or {}
        for wl in workloads(env):
            if role(wl) == "python-sdk" and selector_matches(sel, wl["spec"]["template"]["metadata"].get("labels", {})) \
                    and s["spec"].get("clusterIP") != "None":
                svc = s
    variants: list[tuple[str, str | None, bool]] = []
    if generation == "0.11":
        if svc is None:
            results.check(False, f"{base_label} a Service selects the python-sdk pods")
            return
        manifest_aff = svc["spec"].get("sessionAffinity", "None")
        other = "None" if manifest_aff == "ClientIP" else "ClientIP"
        variants = [(manifest_aff, None, True), (other, other, False)]
    else:
        variants = [("n/a (workers pull)", None, True)]
    for aff, override, asserted in variants:
        label = f"{base_label} python-sdk x2 sessionAffinity={aff}" + ("" if asserted else " [evidence only]")
        with Scenario(r, env, label, replicas_override={"python-sdk": 2},
                      affinity_override={svc["metadata"]["name"]: override} if (override and svc) else None) as sc:
            sc.start()
            with sc.uncounted() as sub:  # set-up checks of this scenario: reported, not counted (only its verdict is)
                started = r.check_probes(label, sc.reps, sc.services)
                cfg = sc.config()
                served = sc.check_components(cfg)
                flows = sc.python_flows(cfg, served) if started else None
            if not started or flows is None:
                if asserted:
                    results.check(False, f"{label}: pods up", "; ".join(sub.failed))
                else:
                    info(f"EVIDENCE {label}: pods did not come up: {'; '.join(sub.failed)}")
                continue
            ok_total, n_total, errs = 0, 0, []
            # The evidence-only setting hangs runs until the timeout: a few short rounds show it,
            # without spending minutes of every tier run on it.
            rounds, timeout = (r.args.runs, 20) if asserted else (min(r.args.runs, 5), 8)
            for i in range(rounds):
                # a single run takes well under 1 s; the timeout bounds a hanging run
                ok_n, n, e = sc.workflow_round(flows, label, assert_each=False, timeout=timeout)
                ok_total += ok_n
                n_total += n
                errs += e
            counts = {px.label: px.counts for sp in sc.services for px in sp.proxies}
            kinds: dict[str, int] = {}
            for e in errs:
                k = ("Blob API URL not configured (replica never got the core's initialize)"
                     if "Blob API URL not configured" in e else
                     "run still running at the timeout (callback answered by the other replica?)"
                     if "status running" in e or "status 1" in e else e[:120])
                kinds[k] = kinds.get(k, 0) + 1
            detail = (f"{ok_total}/{n_total} workflow runs succeeded over {rounds} rounds (add + nested); "
                      f"connections per backend: {counts}; failures by kind: {kinds}")
            if asserted:
                results.check(ok_total == n_total, f"{label}: every workflow run succeeds", detail)
            else:
                info(f"EVIDENCE {label}: {detail}")


def run_env(r: Runner, envfile: Path) -> None:
    env = Env(envfile, load_objects(envfile))
    label = f"[{envfile.name} gen {r.generation}]"
    log(f"===== {label} {envfile}")
    r.rewrites.clear()
    cm_name, key, _, _ = config_from_manifests(env)
    info(f"StepFlow config: ConfigMap {cm_name} key {key}")
    with Scenario(r, env, label) as sc:
        probes_ok, cfg, served = sc.start_checked()
        if probes_ok:
            flows = sc.python_flows(cfg, served)
            if flows:
                sc.workflow_round(flows, label)
            sc.inference_flow(cfg, served)
        sc.check_no_restarts()
    replicas_probe(r, env, r.results, r.generation, label)


def report_ephemeral(r: Runner) -> None:
    """The most each container used of its emptyDirs and its log over the tier."""
    for key, rec in sorted(r.ephemeral.items()):
        parts = [f"{k} {v} KiB" for k, v in rec.items() if k not in ("readOnlyRootFilesystem",)]
        print(f"EPHEMERAL: gen {r.generation} {key}: " + "; ".join(parts) +
              f"; outside volumes: {'0 (read-only root file system)' if rec.get('readOnlyRootFilesystem') else 'NOT MEASURED (root writable)'}",
              flush=True)
