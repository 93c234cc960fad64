"""Scenarios of the real-StepFlow tier: plan the local stand-ins for the pods and Services
of one environment file, start them, probe them and drive workflows through the core."""
from __future__ import annotations

import argparse
import hashlib
import math
import random
import re
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from verify import (Env, Replica, Results, Runner, ServicePlan, TcpProxy, config_from_manifests,
                    container_port_by_name, core_workload, free_port, info, is_core, load_objects, log,
                    pod_spec, selector_matches, workloads)

MAX_REPLICAS = 3


def pod_name(wl: dict[str, Any], i: int) -> str:
    name = wl["metadata"]["name"]
    if wl["kind"] == "StatefulSet":
        return f"{name}-{i}"
    h = hashlib.sha256(name.encode()).hexdigest()
    return f"{name}-{h[:10]}-{h[10:15]}{i}"


def module_of(c: dict[str, Any]) -> str:
    cmd = c.get("command") or []
    return cmd[2] if len(cmd) >= 3 and cmd[1] == "-m" else ""


def serves_stock_server(c: dict[str, Any]) -> bool:
    """The worker loop serves the stock server unless STEPFLOW_KIT_SERVER names another."""
    envs = {e["name"]: e.get("value") for e in c.get("env") or []}
    return str(envs.get("STEPFLOW_KIT_SERVER") or "").strip() in ("", "stepflow_py.worker.main:server")


def role(wl: dict[str, Any]) -> str:
    c = pod_spec(wl)["containers"][0]
    if is_core(c):
        return "core"
    if module_of(c).startswith("stepflow_py") or (module_of(c) == "stepflow_kit_worker" and serves_stock_server(c)):
        return "python-sdk"
    return c["name"]  # inference, a team's own worker


class Scenario:
    """One set of running pods for one environment file."""

    def __init__(self, runner: Runner, env: Env, label: str, replicas_override: dict[str, int] | None = None,
                 affinity_override: dict[str, str] | None = None) -> None:
        self.r = runner
        self.env = env
        self.label = label
        self.res: Results = runner.results
        self.replicas_override = replicas_override or {}
        self.affinity_override = affinity_override or {}
        self.reps: list[Replica] = []
        self.services: list[ServicePlan] = []
        self.used: set[int] = set()

    # ---- planning ---------------------------------------------------------------------

    def plan(self) -> None:
        wls = workloads(self.env)
        counts: dict[str, int] = {}
        for wl in wls:
            n = int(wl["spec"].get("replicas", 1))
            n = self.replicas_override.get(role(wl), n)
            if n > MAX_REPLICAS:
                info(f"{wl['metadata']['name']}: manifest says {n} replicas, running {MAX_REPLICAS} here")
                n = MAX_REPLICAS
            if role(wl) not in ("core", "python-sdk") and n > 1:
                info(f"{wl['metadata']['name']}: manifest says {n} replicas, running 1 here (model server memory/CPU)")
                n = 1
            counts[wl["metadata"]["name"]] = n
        svcs = [s for s in self.env.of_kind("Service")]
        # Services in front of several replicas get a proxy on the Service port: reserve it first.
        proxied: dict[str, list[int]] = {}
        for s in svcs:
            if s["spec"].get("clusterIP") == "None":
                continue
            sel = s["spec"].get("selector") or {}
            for wl in wls:
                if selector_matches(sel, wl["spec"]["template"]["metadata"].get("labels", {})) and counts[wl["metadata"]["name"]] > 1:
                    for p in s["spec"].get("ports") or []:
                        self.used.add(int(p["port"]))
                        proxied.setdefault(s["metadata"]["name"], []).append(int(p["port"]))
        for wl in wls:
            for i in range(counts[wl["metadata"]["name"]]):
                rep = Replica(workload=wl, index=i, pod_name=pod_name(wl, i))
                for c in pod_spec(wl)["containers"]:
                    for p in c.get("ports") or []:
                        cp = int(p["containerPort"])
                        rep.ports[cp] = free_port(cp, self.used)
                self.reps.append(rep)
        for s in svcs:
            md = s["metadata"]
            sel = s["spec"].get("selector") or {}
            backs = [r for r in self.reps if selector_matches(sel, r.workload["spec"]["template"]["metadata"].get("labels", {}))]
            sp = ServicePlan(obj=s, name=md["name"], namespace=md.get("namespace", "default"), replicas=backs)
            for p in s["spec"].get("ports") or []:
                if not backs:
                    continue
                cport = container_port_by_name(backs[0].workload, p.get("targetPort", p["port"]))
                locals_ = [b.ports[cport] for b in backs]
                headless = s["spec"].get("clusterIP") == "None"
                if len(locals_) == 1 or headless:
                    sp.port_map[int(p["port"])] = locals_[0]
                    if int(p["port"]) != locals_[0]:
                        self.r.rewrite(f"Service {md['name']} port", str(p["port"]), str(locals_[0]))
                else:
                    lp = int(p["port"])
                    affinity = self.affinity_override.get(md["name"], s["spec"].get("sessionAffinity", "None"))
                    px = TcpProxy(lp, locals_, affinity, f"Service {md['name']}:{lp}")
                    sp.proxies.append(px)
                    sp.port_map[lp] = lp
                    info(f"Service {md['name']}:{lp} -> {len(locals_)} replicas at 127.0.0.1:{locals_} "
                         f"(kube-proxy stand-in, per-connection, sessionAffinity={affinity})")
            self.services.append(sp)
        for rep in self.reps:
            rewrites = {cp: lp for cp, lp in rep.ports.items() if cp != lp}
            for cp, lp in rewrites.items():
                self.r.rewrite(f"{rep.pod_name} containerPort (port collision)", str(cp), str(lp))
            self.r.make_pod(self.env, rep, self.services, rewrites)

    # ---- running ----------------------------------------------------------------------

    def start(self, core_first: bool) -> None:
        for sp in self.services:
            for px in sp.proxies:
                px.start()
                self.r.proxies.append(px)
        cores = [r for r in self.reps if role(r.workload) == "core"]
        others = [r for r in self.reps if role(r.workload) != "core"]
        first, second = (cores, others) if core_first else (others, cores)
        log(f"{self.label}: starting {'core' if core_first else 'component'} pods first (pods start in any order)")
        for rep in first:
            self.r.start_pod(rep)
        time.sleep(3)
        for rep in second:
            self.r.start_pod(rep)

    def core_url(self) -> str:
        rep = next(r for r in self.reps if role(r.workload) == "core")
        _, c = core_workload(self.env)
        cport = int(c["ports"][0]["containerPort"])
        return f"http://127.0.0.1:{rep.ports[cport]}/api/v1"

    def config(self) -> dict[str, Any]:
        _, _, _, text = config_from_manifests(self.env)
        return yaml.safe_load(self.r.rewrite_hosts(text, self.services, "config (re-read)"))

    def plugin_workload(self, cfg: dict[str, Any], plugin: str) -> dict[str, Any] | None:
        p = cfg["plugins"][plugin]
        if p.get("type") == "stepflow" and p.get("url"):
            m = re.match(r"https?://127\.0\.0\.1:(\d+)", p["url"])
            if not m:
                return None
            port = int(m.group(1))
            for sp in self.services:
                if port in sp.port_map.values() and sp.replicas:
                    return sp.replicas[0].workload
        if p.get("type") == "grpc":
            q = p.get("queueName")
            for rep in self.reps:
                c = pod_spec(rep.workload)["containers"][0]
                envs = {e["name"]: e.get("value") for e in c.get("env") or []}
                if role(rep.workload) != "core" and envs.get("STEPFLOW_QUEUE_NAME", "python") == q:
                    return rep.workload
        return None

    @staticmethod
    def component_path(cfg: dict[str, Any], plugin: str, name: str) -> str | None:
        for key, rules in (cfg.get("routes") or {}).items():
            if any(r.get("plugin") == plugin for r in rules or []):
                name = name.lstrip("/")
                if "{*component}" in key:
                    return key.replace("{*component}", name)
                if key != "/":
                    return key.rstrip("/") + "/" + name
        return None

    # ---- checks -----------------------------------------------------------------------

    def check_listen_addresses(self) -> None:
        """A pod's server must listen on all addresses (the pod IP), not loopback only."""
        socks = {}
        for f in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(f).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[3] != "0A":
                    continue
                addr, port = parts[1].split(":")
                socks.setdefault(int(port, 16), set()).add(addr)
        for rep in self.reps:
            for cp, lp in rep.ports.items():
                addrs = socks.get(lp, set())
                wildcard = any(set(a) == {"0"} for a in addrs)
                self.res.check(wildcard, f"{self.label} {rep.pod_name} listens on all addresses on port {lp}",
                               f"bound: {sorted(addrs) or 'nothing'}")

    def check_components(self, cfg: dict[str, Any]) -> dict[str, list[str]]:
        core = self.core_url()
        st, body = self.r.http_json("GET", f"{core}/components?includeSchemas=false")
        self.res.check(st == 200 and isinstance(body, dict), f"{self.label} core GET /api/v1/components", f"HTTP {st}")
        listed = body.get("components", []) if isinstance(body, dict) else []
        names = {c.get("component") or c.get("componentId") for c in listed}
        served: dict[str, list[str]] = {}
        for pname, p in cfg["plugins"].items():
            if p.get("type") == "stepflow" and p.get("url"):
                st2, rpc = self.r.http_json("POST", p["url"].rstrip("/") + "/",
                                            {"jsonrpc": "2.0", "id": "verify-1", "method": "components/list", "params": {}},
                                            headers={"accept": "application/json, text/event-stream"})
                own = [c["component"] for c in (rpc.get("result", {}) if isinstance(rpc, dict) else {}).get("components", [])]
                served[pname] = own
                missing = [n for n in own if n not in names]
                self.res.check(bool(own) and not missing,
                               f"{self.label} core lists the components of plugin {pname!r}",
                               f"server {p['url']} has {own}; missing from core: {missing}")
            elif p.get("type") == "grpc":
                own = [c.get("componentId") for c in listed if c.get("plugin") == pname]
                served[pname] = own
                failed = [f.get("plugin") if isinstance(f, dict) else f for f in body.get("failedPlugins") or []]
                ok = bool(own) and pname not in failed
                self.res.check(ok, f"{self.label} core lists the components of plugin {pname!r} (queue {p.get('queueName')})",
                               f"{own}; complete={body.get('complete')} failedPlugins={body.get('failedPlugins')}")
        return served

    def run_flow(self, flow: dict[str, Any], inp: Any, timeout: int = 60) -> tuple[bool, Any, str]:
        core = self.core_url()
        st, stored = self.r.http_json("POST", f"{core}/flows", {"flow": flow})
        if st != 200 or not isinstance(stored, dict) or not stored.get("flowId"):
            return False, None, f"store flow: HTTP {st} {str(stored)[:300]}"
        st, run = self.r.http_json("POST", f"{core}/runs",
                                   {"flowId": stored["flowId"], "input": [inp], "wait": True, "timeoutSecs": timeout},
                                   timeout=timeout + 10)
        if st != 200 or not isinstance(run, dict) or not run.get("results"):
            return False, None, f"run: HTTP {st} {str(run)[:300]}"
        item = run["results"][0]
        # 0.11: status "completed", result {"outcome":"success","result":v}; 0.13: status 2, output v
        if item.get("status") in ("completed", 2):
            res = item.get("result")
            if isinstance(res, dict) and res.get("outcome") == "success":
                return True, res.get("result"), "completed"
            if "output" in item:
                return True, item["output"], "completed"
        return False, None, f"status {item.get('status')}: {str(item.get('result') or item.get('errorMessage'))[:400]}"

    def store_blob(self, data: Any) -> str:
        st, b = self.r.http_json("POST", f"{self.core_url()}/blobs", {"data": data})
        if st != 200 or not isinstance(b, dict) or "blobId" not in b:
            raise RuntimeError(f"POST /blobs: HTTP {st} {b}")
        return b["blobId"]

    def python_flows(self, cfg: dict[str, Any], served: dict[str, list[str]]) -> dict[str, Any] | None:
        """Flows over the stock python-sdk server's /udf: (add) and (nested: a UDF that calls back
        into the core to evaluate the add flow -- a bidirectional request)."""
        plugin = None
        for pname in cfg["plugins"]:
            wl = self.plugin_workload(cfg, pname)
            if wl is not None and role(wl) == "python-sdk":
                plugin = pname
        if plugin is None:
            self.res.check(False, f"{self.label} a plugin of the config is served by the python-sdk workload")
            return None
        udf = next((n for n in served.get(plugin, []) if n.strip("/") == "udf"), None)
        if udf is None:
            self.res.check(False, f"{self.label} python-sdk serves udf", f"it serves {served.get(plugin)}")
            return None
        path = self.component_path(cfg, plugin, udf)
        add_code = {"code": "input['a'] + input['b']",
                    "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                                     "required": ["a", "b"]}}
        add_blob = self.store_blob(add_code)
        add_flow = {"name": "verify-add", "description": "a + b in the python-sdk",
                    "steps": [{"id": "add", "component": path,
                               "input": {"blob_id": add_blob, "input": {"$input": "$"}}}],
                    "output": {"$step": "add"}}
        st, stored = self.r.http_json("POST", f"{self.core_url()}/flows", {"flow": add_flow})
        nested_code = {"code": ("async def nested(input, context):\n"
                                "    s = await context.evaluate_flow_by_id(input['flow_id'], {'a': input['a'], 'b': input['b']})\n"
                                "    return {'sum': s, 'double': s * 2}\n"
                                "nested"),
                       "input_schema": {"type": "object"}}
        nested_blob = self.store_blob(nested_code)
        nested_flow = {"name": "verify-nested", "description": "a UDF evaluating a sub-flow through the core",
                       "steps": [{"id": "outer", "component": path,
                                  "input": {"blob_id": nested_blob,
                                            "input": {"flow_id": stored["flowId"], "a": {"$input": "a"}, "b": {"$input": "b"}}}}],
                       "output": {"$step": "outer"}}
        return {"plugin": plugin, "path": path, "add": add_flow, "nested": nested_flow}

    def workflow_round(self, flows: dict[str, Any], tag: str, assert_each: bool = True,
                       timeout: int = 60) -> tuple[int, int, list[str]]:
        a, b = random.randint(1, 10**6), random.randint(1, 10**6)
        ok_n, errs = 0, []
        ok, out, detail = self.run_flow(flows["add"], {"a": a, "b": b}, timeout=timeout)
        good = ok and out == a + b
        ok_n += good
        if not good:
            errs.append(f"add: {detail} got {out!r}")
        if assert_each:
            self.res.check(good, f"{tag} workflow {flows['path']} a+b via the core REST API",
                           f"input a={a} b={b}, expected {a + b}, got {out!r} ({detail})")
        ok, out, detail = self.run_flow(flows["nested"], {"a": a, "b": b}, timeout=timeout)
        good = ok and out == {"sum": a + b, "double": 2 * (a + b)}
        ok_n += good
        if not good:
            errs.append(f"nested: {detail} got {out!r}")
        if assert_each:
            self.res.check(good, f"{tag} workflow: UDF calling back into the core (evaluate_flow_by_id)",
                           f"expected {{'sum': {a + b}, 'double': {2 * (a + b)}}}, got {out!r} ({detail})")
        return ok_n, 2, errs

    def inference_flow(self, cfg: dict[str, Any], served: dict[str, list[str]]) -> None:
        for pname in cfg["plugins"]:
            wl = self.plugin_workload(cfg, pname)
            if wl is None or role(wl) in ("core", "python-sdk"):
                continue
            embed = next((n for n in served.get(pname, []) if n.strip("/") == "embed"), None)
            if embed is None:
                self.res.check(False, f"{self.label} inference plugin {pname!r} serves embed", f"{served.get(pname)}")
                continue
            path = self.component_path(cfg, pname, embed)
            texts = [f"verify {random.randint(0, 10**6)}", "the cat sat on the mat", "a feline rested on the rug"]
            ok, out, detail = self.run_flow({"name": "verify-embed", "description": "embed through the core",
                                             "steps": [{"id": "e", "component": path, "input": {"texts": {"$input": "texts"}}}],
                                             "output": {"$step": "e"}}, {"texts": texts}, timeout=120)
            vecs = (out or {}).get("embeddings") if isinstance(out, dict) else None
            norms = [math.sqrt(sum(x * x for x in v)) for v in vecs] if vecs else []
            good = ok and vecs is not None and len(vecs) == len(texts) and all(abs(n - 1) < 1e-3 for n in norms) \
                and len({len(v) for v in vecs}) == 1
            self.res.check(good, f"{self.label} workflow {path} through the core",
                           f"{len(vecs or [])} vectors for {len(texts)} texts, dims {sorted({len(v) for v in vecs or []})}, "
                           f"norms {[round(n, 4) for n in norms]} ({detail})")

    def check_no_restarts(self) -> None:
        for rep in self.reps:
            for key, p in rep.containers.items():
                if key.startswith("main:"):
                    self.res.check(p.restarts == 0 and not p.exits, f"{self.label} {p.name} ran without exiting/restarting",
                                   f"restarts={p.restarts} exits={p.exits}")
                else:
                    self.res.check(p.exits == [0], f"{self.label} init container {p.name} exited 0", f"exits={p.exits}")

    def core_log_clean(self) -> None:
        rep = next(r for r in self.reps if role(r.workload) == "core")
        p = next(v for k, v in rep.containers.items() if k.startswith("main:"))
        text = p.log_path.read_text(errors="replace") if p.log_path.exists() else ""
        bad = [ln for ln in text.splitlines() if "Server error" in ln or "Configuration error" in ln]
        self.res.check(not bad and "Starting Stepflow server" in text, f"{self.label} core loaded the config without error",
                       (bad[0][:300] if bad else "log shows a clean start"))


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
        sc = Scenario(r, env, label, replicas_override={"python-sdk": 2},
                      affinity_override={svc["metadata"]["name"]: override} if (override and svc) else None)
        r.stop_monitor.clear()
        mon = threading.Thread(target=r.monitor, daemon=True)
        try:
            sc.plan()
            sc.start(core_first=(generation == "0.11"))
            mon.start()
            sub = Results()  # set-up checks of this scenario: reported, not counted (only its verdict is)
            saved = r.results
            r.results = sub
            sc.res = sub
            started = r.check_probes(label, sc.reps, sc.services)
            cfg = sc.config()
            served = sc.check_components(cfg)
            flows = sc.python_flows(cfg, served) if started else None
            r.results = saved
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
        finally:
            r.stop_all()
            if mon.is_alive():
                mon.join(5)


def run_env(r: Runner, envfile: Path) -> None:
    env = Env(envfile, load_objects(envfile))
    label = f"[{envfile.name} gen {r.generation}]"
    log(f"===== {label} {envfile}")
    r.rewrites.clear()
    cm_name, key, _, _ = config_from_manifests(env)
    info(f"StepFlow config: ConfigMap {cm_name} key {key}")
    sc = Scenario(r, env, label)
    r.stop_monitor.clear()
    mon = threading.Thread(target=r.monitor, daemon=True)
    try:
        sc.plan()
        sc.start(core_first=(r.generation == "0.11"))
        mon.start()
        probes_ok = r.check_probes(label, sc.reps, sc.services)
        sc.core_log_clean()
        sc.check_listen_addresses()
        cfg = sc.config()
        served = sc.check_components(cfg)
        if probes_ok:
            flows = sc.python_flows(cfg, served)
            if flows:
                sc.workflow_round(flows, label)
            sc.inference_flow(cfg, served)
        sc.check_no_restarts()
    finally:
        r.stop_all()
        if mon.is_alive():
            mon.join(5)
    replicas_probe(r, env, r.results, r.generation, label)


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
            from resilience import run_resilience  # noqa: PLC0415
            run_resilience(r, files[0])
        # A team's own worker beside (or instead of) the built-in ones; see team.py.
        if getattr(args, "team_dist", ""):
            from team import run_team  # noqa: PLC0415
            run_team(r, Path(args.team_dist))
        report_ephemeral(r)
    finally:
        r.cleanup()


def report_ephemeral(r: Runner) -> None:
    """The most each container used of its emptyDirs and its log over the tier."""
    for key, rec in sorted(r.ephemeral.items()):
        parts = [f"{k} {v} KiB" for k, v in rec.items() if k not in ("readOnlyRootFilesystem",)]
        print(f"EPHEMERAL: gen {r.generation} {key}: " + "; ".join(parts) +
              f"; outside volumes: {'0 (read-only root file system)' if rec.get('readOnlyRootFilesystem') else 'NOT MEASURED (root writable)'}",
              flush=True)
