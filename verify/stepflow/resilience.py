"""State, recovery and worker loss with the real StepFlow programs, started as the manifests
say (pods.py starts the pods): the core killed mid-flow and started again on its claim,
workers killed and rolled, the spread of work over worker replicas, the cost of losing a 0.11
component server, and a backup/restore of the core's sqlite database.

Every step of the flows used here is the stock python-sdk `/udf`, running code stored as a
blob that reports to a tracker on 127.0.0.1 (an HTTP server in this process) when it starts
and when it finishes, and that holds (polls the tracker) while the tracker says so. The
tracker's records count step executions; holds put the kill at a known point of a run."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from manifests import Env, load_objects, pod_spec, role
from pods import Proc, Replica, Runner, Scenario, info, log
from stepflow_fixtures.runs import norm_status, wait_runs

# The UDF of every step: report start, hold while told to, sleep, report done.
STEP_CODE = '''async def step(input, context):
    import asyncio, json, os, urllib.request
    rec = {'tag': input['tag'], 'step': input['step'], 'pid': os.getpid(),
           'host': os.environ.get('HOSTNAME', '')}
    def post(ev):
        req = urllib.request.Request(input['tracker'] + '/' + ev, data=json.dumps(rec).encode(),
                                     method='POST', headers={'content-type': 'application/json'})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())
    told = await asyncio.to_thread(post, 'start')
    n = 0
    while told.get('hold') and n < 600:
        await asyncio.sleep(0.1)
        n += 1
        told = await asyncio.to_thread(post, 'poll')
    await asyncio.sleep(input.get('sleep', 0))
    await asyncio.to_thread(post, 'done')
    return {'value': input['value'] + 1, 'host': rec['host']}
step
'''


class Tracker:
    """Records of step executions, posted by the UDF: (tag, step, start|done, host, pid)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.holds: set[tuple[str, str]] = set()
        self.lock = threading.Lock()
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("content-length", 0))
                try:
                    body = json.loads(self.rfile.read(n) or b"{}")
                except json.JSONDecodeError:
                    body = {}
                ev = self.path.strip("/")
                with tracker.lock:
                    if ev in ("start", "done"):
                        tracker.records.append({**body, "ev": ev, "t": time.time()})
                    hold = (body.get("tag"), body.get("step")) in tracker.holds
                out = json.dumps({"hold": hold}).encode()
                self.send_response(200)
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()

    def hold(self, tag: str, step: str) -> None:
        with self.lock:
            self.holds.add((tag, step))

    def release(self, tag: str, step: str) -> None:
        with self.lock:
            self.holds.discard((tag, step))

    def select(self, tag: str | None = None, step: str | None = None, ev: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.records if (tag is None or r.get("tag") == tag)
                    and (step is None or r.get("step") == step) and (ev is None or r["ev"] == ev)]

    def count(self, tag: str, step: str, ev: str) -> int:
        return len(self.select(tag, step, ev))

    def wait(self, tag: str, step: str, ev: str, n: int = 1, timeout: float = 30) -> bool:
        end = time.time() + timeout
        while time.time() < end:
            if self.count(tag, step, ev) >= n:
                return True
            time.sleep(0.1)
        return False




class Ops:
    """The REST calls and the pod operations of the scenarios."""

    def __init__(self, sc: Scenario, tracker: Tracker, label: str) -> None:
        self.sc = sc
        self.r = sc.r
        self.tr = tracker
        self.label = label
        self.res = sc.r.results
        self.core_rep = next(x for x in sc.reps if role(x.workload) == "core")
        self.core = next(p for k, p in self.core_rep.containers.items() if k.startswith("main:"))
        self.workers = [next(p for k, p in x.containers.items() if k.startswith("main:"))
                        for x in sc.reps if role(x.workload) == "python-sdk"]
        self.component = ""
        self.blob = ""
        self.flows: dict[int, str] = {}
        self.submitted = 0
        self.completed = 0

    def check(self, ok: bool, name: str, detail: str = "") -> bool:
        return self.res.check(ok, f"{self.label} {name}", detail)

    def api(self, method: str, path: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
        return self.r.http_json(method, f"{self.sc.core_url()}{path}", body, timeout=timeout)

    # ---- flows and runs -----------------------------------------------------------------

    def setup(self, cfg: dict[str, Any], served: dict[str, list[str]]) -> bool:
        plugin = next((p for p in cfg["plugins"] if (wl := self.sc.plugin_workload(cfg, p)) is not None
                       and role(wl) == "python-sdk"), None)
        udf = next((n for n in served.get(plugin or "", []) if n.strip("/") == "udf"), None)
        if plugin is None or udf is None:
            return self.check(False, "python-sdk serves udf", f"plugin {plugin}, served {served.get(plugin or '')}")
        self.component = self.sc.component_path(cfg, plugin, udf) or ""
        st, b = self.api("POST", "/blobs", {"data": {"code": STEP_CODE, "input_schema": {"type": "object"}}})
        if st != 200 or not isinstance(b, dict):
            return self.check(False, "store the step UDF as a blob", f"HTTP {st} {b}")
        self.blob = b["blobId"]
        return True

    def flow(self, steps: int, sleep: float = 0.0) -> str:
        """A flow of `steps` UDF steps in a row, s1 -> s2 -> ...; each adds 1 to value."""
        key = steps * 1000 + int(sleep * 100)
        if key in self.flows:
            return self.flows[key]
        defs = []
        for i in range(1, steps + 1):
            value = {"$input": "value"} if i == 1 else {"$step": f"s{i - 1}", "path": "$.value"}
            defs.append({"id": f"s{i}", "component": self.component,
                         "input": {"blob_id": self.blob,
                                   "input": {"tracker": self.tr.url, "tag": {"$input": "tag"}, "step": f"s{i}",
                                             "value": value, "sleep": sleep}}})
        flow = {"name": f"verify-chain-{steps}", "description": "UDF steps in a row, each reporting to the tracker",
                "steps": defs, "output": {"$step": f"s{steps}"}}
        st, f = self.api("POST", "/flows", {"flow": flow})
        if st != 200 or not isinstance(f, dict) or not f.get("flowId"):
            raise RuntimeError(f"store flow: HTTP {st} {str(f)[:300]}")
        self.flows[key] = f["flowId"]
        return f["flowId"]

    def submit(self, flow_id: str, tag: str, value: int = 0) -> str:
        st, r = self.api("POST", "/runs", {"flowId": flow_id, "input": [{"tag": tag, "value": value}], "wait": False})
        rid = (r.get("summary") or r).get("runId") if isinstance(r, dict) else None
        if st not in (200, 202) or not rid:
            raise RuntimeError(f"submit run: HTTP {st} {str(r)[:300]}")
        self.submitted += 1
        return rid

    def status(self, rid: str) -> str:
        st, r = self.api("GET", f"/runs/{rid}", timeout=5)
        if st != 200 or not isinstance(r, dict):
            return f"HTTP {st}"
        return norm_status((r.get("summary") or r).get("status"))

    def wait_runs(self, rids: list[str], timeout: float) -> dict[str, str]:
        out = wait_runs(self.status, rids, timeout)
        self.completed += sum(v == "completed" for v in out.values())
        return out

    def run_wait(self, flow_id: str, tag: str, timeout: int = 20) -> tuple[bool, str]:
        """One run with wait=true; (completed?, detail)."""
        st, r = self.api("POST", "/runs", {"flowId": flow_id, "input": [{"tag": tag, "value": 1}], "wait": True,
                                           "timeoutSecs": timeout}, timeout=timeout + 5)
        if st != 200 or not isinstance(r, dict):
            return False, f"HTTP {st} {str(r)[:200]}"
        item = (r.get("results") or [{}])[0]
        s = norm_status(item.get("status", (r.get("summary") or r).get("status")))
        err = item.get("errorMessage") or (item.get("result") or {}).get("error") if isinstance(item, dict) else None
        return s == "completed", s + (f": {str(err)[:200]}" if err and s != "completed" else "")

    def wait_healthy(self, timeout: float = 30) -> float | None:
        t0 = time.time()
        while time.time() - t0 < timeout:
            if not self.core.alive():
                return None
            st, _ = self.api("GET", "/health", timeout=1)
            if st == 200:
                return time.time() - t0
            time.sleep(0.2)
        return None

    def first_success(self, since: float, limit: float = 60) -> float | None:
        """Seconds from `since` until a new one-step run completes (tried every 0.5 s)."""
        flow1 = self.flow(1)
        n = 0
        while time.time() - since < limit:
            n += 1
            ok, _ = self.run_wait(flow1, f"probe-{int(since)}-{n}", timeout=5)
            self.submitted += 1
            if ok:
                self.completed += 1
                return time.time() - since
            self.submitted -= 1  # a probe that failed before the core came back is not a lost run
            time.sleep(0.5)
        return None

    def get_ok(self, path: str) -> tuple[bool, Any]:
        st, body = self.api("GET", path)
        return st == 200, body

    # ---- pods -----------------------------------------------------------------------------

    def wait_ready(self, p: Proc, timeout: float = 60) -> float | None:
        """The container's readiness probe (else startup probe) until it answers success."""
        c = p.container  # type: ignore[attr-defined]
        probe = c.get("readinessProbe") or c.get("startupProbe")
        t0 = time.time()
        if probe is None:
            return 0.0
        ok, detail, took = self.r.wait_probe(p, probe, p.replica, self.sc.services, timeout)  # type: ignore[attr-defined]
        return took if ok else None

    def worker_of(self, host: str) -> Proc | None:
        return next((p for p in self.workers if p.replica.pod_name == host), None)  # type: ignore[attr-defined]


def claim_dir(r: Runner, rep: Replica, name: str) -> Path:
    return r.work / rep.pod_name / f"pvc-{name}"


def state_location(ops: Ops, cfg: dict[str, Any]) -> tuple[str, str, Path] | None:
    """(database file inside the container, the claim holding it, its host directory) from the
    config's storageConfig and the core's volumeMounts / volumeClaimTemplates."""
    sc = cfg.get("storageConfig") or {}
    url = sc.get("databaseUrl") or ""
    if sc.get("type") != "sqlite" or not url.startswith("sqlite:"):
        return None
    path = urlparse(url).path if "://" in url else url[len("sqlite:"):].split("?", 1)[0]
    wl = ops.core_rep.workload
    claims = {t["metadata"]["name"] for t in wl["spec"].get("volumeClaimTemplates") or []}
    for m in ops.core.container.get("volumeMounts") or []:  # type: ignore[attr-defined]
        mp = m["mountPath"].rstrip("/")
        if path.startswith(mp + "/") and m["name"] in claims:
            return path, m["name"], claim_dir(ops.r, ops.core_rep, m["name"])
    return None


# --------------------------------------------------------------------------- scenarios


def core_crash(ops: Ops, gen: str) -> None:
    """a + d + e: SIGKILL the core while step s2 of a 3-step run is held in a worker, start
    it again in the same pod (same name = orchestrator id, same claim)."""
    tr, label = ops.tr, "core SIGKILL mid-flow"
    flow3, flow1 = ops.flow(3), ops.flow(1)
    pre_tag = f"pre-crash-{random.randint(0, 10**6)}"
    pre_run = ops.submit(flow1, pre_tag)
    pre = ops.wait_runs([pre_run], 30)[pre_run]
    st, blob_before = ops.api("GET", f"/blobs/{ops.blob}")
    tag = f"crash-{random.randint(0, 10**6)}"
    tr.hold(tag, "s2")
    rid = ops.submit(flow3, tag, 10)
    held = tr.wait(tag, "s2", "start", 1, 30)
    s1_done = tr.count(tag, "s1", "done")
    ops.check(held and s1_done == 1 and pre == "completed", f"{label}: set-up (s1 done, s2 held in a worker, an earlier run completed)",
              f"s2 started: {held}, s1 done: {s1_done}, earlier run {pre}")
    rc, _ = ops.r.kill(ops.core, signal.SIGKILL)
    log(f"core killed (exit {rc}) with s2 of run {rid} held in {tr.select(tag, 's2', 'start')[:1]}")
    tr.release(tag, "s2")  # the pre-crash s2 may finish now; its result has nowhere to go
    time.sleep(1)  # the kubelet's first restart is immediate; the old socket is gone by now
    t_restart = time.time()
    ops.r.restart(ops.core)
    health = ops.wait_healthy(30)
    first = ops.first_success(t_restart, 60)
    final = ops.wait_runs([rid], 90)[rid]
    starts = {s: tr.count(tag, s, "start") for s in ("s1", "s2", "s3")}
    ops.check(final == "completed", f"{label}: the interrupted run completes after the restart",
              f"run {rid}: {final}, {time.time() - t_restart:.1f}s after the restart (health after {health}s)")
    ops.check(starts["s1"] == 1, f"{label}: the step completed before the crash ran exactly once", f"s1 executions {starts['s1']}")
    ops.check(1 <= starts["s2"] <= 2, f"{label}: the step in flight ran at most twice", f"s2 executions {starts['s2']}")
    ops.check(starts["s3"] == 1, f"{label}: the step after the crash ran exactly once", f"s3 executions {starts['s3']}")
    ok_f, _ = ops.get_ok(f"/flows/{ops.flow(3)}")
    ok_b, blob_after = ops.get_ok(f"/blobs/{ops.blob}")
    ok_r, pre_body = ops.get_ok(f"/runs/{pre_run}")
    pre_after = norm_status((pre_body.get("summary") or pre_body).get("status")) if ok_r and isinstance(pre_body, dict) else "-"
    ops.check(ok_f and ok_b and blob_after == blob_before and pre_after == "completed",
              f"{label}: flows, blobs and runs stored before the crash are still there",
              f"GET flow {ok_f}, GET blob {ok_b} (same data: {blob_after == blob_before}), GET earlier run {pre_after}")
    detail = f"{first:.1f}s" if first is not None else "no run succeeded within 60 s"
    print(f"FIGURE: gen {gen} core restart -> first new run completed: {detail} (process start -> /health {health}s)", flush=True)
    if gen == "0.13":
        ops.check(first is not None and first <= 30, f"{label}: a new run succeeds within 30 s of the core restart", detail)
    else:
        info(f"{ops.label} {label}: a new run succeeded {detail} after the core restart (goal 30 s)")
    print(f"FIGURE: gen {gen} core SIGKILL mid-flow: step executions s1/s2/s3 = "
          f"{starts['s1']}/{starts['s2']}/{starts['s3']}; interrupted run {final}", flush=True)


def worker_crash(ops: Ops) -> None:
    """b: SIGKILL the worker that holds s2 while other replicas run; the run completes."""
    tr, label = ops.tr, "worker SIGKILL mid-task"
    tag = f"wcrash-{random.randint(0, 10**6)}"
    tr.hold(tag, "s2")
    rid = ops.submit(ops.flow(3), tag, 0)
    held = tr.wait(tag, "s2", "start", 1, 30)
    host = (tr.select(tag, "s2", "start") or [{}])[0].get("host", "")
    victim = ops.worker_of(host)
    if not ops.check(held and victim is not None, f"{label}: set-up (s2 held in a worker)", f"held in {host!r}"):
        tr.release(tag, "s2")
        return
    t0 = time.time()
    ops.r.kill(victim, signal.SIGKILL)
    tr.release(tag, "s2")
    final = ops.wait_runs([rid], 90)[rid]
    took = time.time() - t0
    s2 = tr.select(tag, "s2", "start")
    hosts = [x.get("host") for x in s2]
    ops.check(final == "completed", f"{label}: the run completes on another replica",
              f"run {final} {took:.1f}s after the kill; s2 ran on {hosts}; s1/s3 executions "
              f"{tr.count(tag, 's1', 'start')}/{tr.count(tag, 's3', 'start')}")
    print(f"FIGURE: gen 0.13 worker SIGKILL mid-task: run {final} {took:.1f}s after the kill, s2 executions {len(s2)} on {hosts}", flush=True)
    ops.r.restart(victim)  # the kubelet restarts the container
    ready = ops.wait_ready(victim, 60)
    ops.check(ready is not None, f"{label}: the killed worker comes back ready", f"ready after {ready}s")


def spread(ops: Ops, n: int) -> None:
    """Which replica ran each of n concurrent one-step runs (1.5 s each)."""
    tag0 = f"spread-{random.randint(0, 10**6)}"
    # 1.5 s per run: n runs at once exceed what one worker takes (STEPFLOW_MAX_CONCURRENT), so
    # every connected worker gets some
    flow = ops.flow(1, sleep=1.5)
    rids = [ops.submit(flow, f"{tag0}-{i}") for i in range(n)]
    res = ops.wait_runs(rids, 90)
    counts = {p.replica.pod_name: 0 for p in ops.workers}  # type: ignore[attr-defined]
    for i in range(n):
        for rec in ops.tr.select(f"{tag0}-{i}", "s1", "done")[:1]:
            counts[rec.get("host", "?")] = counts.get(rec.get("host", "?"), 0) + 1
    done = sum(v == "completed" for v in res.values())
    print(f"FIGURE: gen 0.13 spread of {n} concurrent runs over {len(ops.workers)} python-sdk replicas: {counts}", flush=True)
    ops.check(done == n and all(v > 0 for v in counts.values()),
              f"spread: every python-sdk replica ran work ({n} concurrent runs)", f"{done}/{n} completed; per replica {counts}")


def rolling_update(ops: Ops, n: int) -> None:
    """c: SIGTERM each worker in turn (wait for its exit, start the new one, wait ready) while
    n runs of a 3-step flow (1 s per step) are in flight."""
    label = "rolling update of the workers"
    tag0 = f"roll-{random.randint(0, 10**6)}"
    flow = ops.flow(3, sleep=1.0)
    rids = [ops.submit(flow, f"{tag0}-{i}") for i in range(n)]
    time.sleep(1)
    grace = float(pod_spec(ops.workers[0].replica.workload).get("terminationGracePeriodSeconds", 30))  # type: ignore[attr-defined]
    steps = []
    for p in ops.workers:
        in_flight = len({(x["tag"], x["step"]) for x in ops.tr.select(ev="start") if x.get("host") == p.replica.pod_name  # type: ignore[attr-defined]
                         and str(x.get("tag", "")).startswith(tag0)}) - \
            len({(x["tag"], x["step"]) for x in ops.tr.select(ev="done") if x.get("host") == p.replica.pod_name  # type: ignore[attr-defined]
                 and str(x.get("tag", "")).startswith(tag0)})
        rc, took = ops.r.kill(p, signal.SIGTERM, grace=grace)
        ops.r.restart(p)
        ready = ops.wait_ready(p, 60)
        steps.append((p.replica.pod_name, in_flight, rc, took, ready))  # type: ignore[attr-defined]
        ops.check(rc == 0 and took < grace and ready is not None,
                  f"{label}: {p.replica.pod_name} exits 0 on SIGTERM within terminationGracePeriodSeconds and comes back ready",  # type: ignore[attr-defined]
                  f"{in_flight} steps in flight at SIGTERM, exit {rc} after {took:.1f}s (grace {grace:.0f}s), ready after {ready}s")
    res = ops.wait_runs(rids, 120)
    done = sum(v == "completed" for v in res.values())
    recs = [x for x in ops.tr.select(ev="start") if str(x.get("tag", "")).startswith(tag0)]
    unique = len({(x["tag"], x["step"]) for x in recs})
    print(f"FIGURE: gen 0.13 rolling update of {len(ops.workers)} workers with {n} runs in flight: "
          f"{done}/{n} completed; step executions {len(recs)} for {unique} steps (re-executed {len(recs) - unique}); "
          f"per worker (pod, steps in flight at SIGTERM, exit, s to exit, s to ready): {steps}", flush=True)
    ops.check(done == n, f"{label}: all {n} runs in flight complete", f"{done}/{n} completed: "
              f"{ {k: v for k, v in res.items() if v != 'completed'} or 'all'}")


def worker_loss_011(ops: Ops, k: int = 5) -> None:
    """What a lost 0.11 python-sdk process costs: a run in flight when it is killed, k runs
    after the kubelet restarted it, then the core restart that heals it."""
    tr, label = ops.tr, "0.11 python-sdk SIGKILL while the core runs"
    w = ops.workers[0]
    tag = f"wloss-{random.randint(0, 10**6)}"
    tr.hold(tag, "s2")
    rid = ops.submit(ops.flow(3), tag, 0)
    held = tr.wait(tag, "s2", "start", 1, 30)
    ops.r.kill(w, signal.SIGKILL)
    tr.release(tag, "s2")
    t0 = time.time()
    ops.r.restart(w)  # the kubelet restarts the container
    ready = ops.wait_ready(w, 60)
    inflight = ops.wait_runs([rid], 60)[rid]
    ok_runs, kinds = 0, {}
    for i in range(k):
        ok, detail = ops.run_wait(ops.flow(1), f"{tag}-after-{i}", timeout=20)
        ops.submitted += 1
        ok_runs += ok
        ops.completed += ok
        if not ok:
            key = "Blob API URL not configured" if "Blob API URL not configured" in detail else detail[:120]
            kinds[key] = kinds.get(key, 0) + 1
    # the runbook: restart the core (kubectl rollout restart) -> it initializes the new process
    ops.r.kill(ops.core, signal.SIGTERM)
    t_restart = time.time()
    ops.r.restart(ops.core)
    ops.wait_healthy(30)
    healed = ops.first_success(t_restart, 60)
    ok_after = sum(ops.run_wait(ops.flow(1), f"{tag}-healed-{i}", timeout=20)[0] for i in range(k))
    ops.submitted += k
    ops.completed += ok_after
    print(f"FIGURE: gen 0.11 python-sdk SIGKILL while the core runs: run in flight (s2 held: {held}) -> {inflight} "
          f"({time.time() - t0:.1f}s); restarted python-sdk ready after {ready}s; then {ok_runs}/{k} new runs completed "
          f"(failures: {kinds or 'none'}); after a core restart the first run completed {healed}s after it and "
          f"{ok_after}/{k} runs completed", flush=True)
    ops.check(ok_runs == 0 and all("Blob API URL" in x for x in kinds),
              f"{label}: KNOWN 0.11 LIMITATION still true: UDF runs fail until the core restarts",
              f"{ok_runs}/{k} runs completed after the python-sdk restart; failures {kinds}")
    ops.check(healed is not None and ok_after == k, f"{label}: a core restart makes UDF runs work again",
              f"first run {healed}s after the core restart; {ok_after}/{k} runs completed")
    info(f"{ops.label} {label}: runs submitted {ops.submitted}, completed {ops.completed} so far "
         f"(the failures are the limitation above and the run in flight: {inflight})")
    ops.lost_expected = k + (inflight != "completed")  # type: ignore[attr-defined]


def backup_restore(ops: Ops, cfg: dict[str, Any], gen: str) -> None:
    """sqlite3 .backup while the core runs, stop the core, fresh empty claim with the backup as
    the DB file, start the core: it serves the flows, runs and blobs of the backup."""
    label = "backup/restore of the state"
    loc = state_location(ops, cfg)
    if not ops.check(loc is not None, "the sqlite database lies on the core's volumeClaimTemplate",
                     f"storageConfig {cfg.get('storageConfig')}"):
        return
    db, claim, host_dir = loc
    mount = db.rsplit("/", 1)[0]
    backup = f"{mount}/backup.db"
    flow1 = ops.flow(1)
    rid = ops.submit(flow1, f"backup-{random.randint(0, 10**6)}")
    before = ops.wait_runs([rid], 30)[rid]
    _, blob_data = ops.api("GET", f"/blobs/{ops.blob}")
    # kubectl exec <core-0> -- sqlite3 DB ".backup BACKUP"   (as the container's user)
    cmd = ["sqlite3", db, f".backup {backup}"]
    r = ops.core.exec_in(cmd, timeout=30)
    size = (host_dir / "backup.db").stat().st_size if (host_dir / "backup.db").exists() else 0
    if not ops.check(r.returncode == 0 and size > 0, f"{label}: `sqlite3 {db} \".backup {backup}\"` in the running core container",
                     f"exit {r.returncode} {r.stderr.decode(errors='replace')[-200:].strip()}; backup {size} bytes; db files "
                     f"{sorted(f.name + ':' + str(f.stat().st_size) for f in host_dir.iterdir())}"):
        return
    # kubectl cp <core-0>:BACKUP ./stepflow-backup.db
    saved = ops.r.work / f"stepflow-backup-{gen}.db"
    shutil.copy2(host_dir / "backup.db", saved)
    # a blob stored after the backup: must be gone after the restore
    st, mark = ops.api("POST", "/blobs", {"data": {"after-backup": random.randint(0, 10**9)}})
    marker = mark.get("blobId") if isinstance(mark, dict) else None
    # kubectl scale --replicas=0 (SIGTERM), a fresh claim, the backup copied in as the DB file
    grace = float(pod_spec(ops.core_rep.workload).get("terminationGracePeriodSeconds", 30))
    answers: list[tuple[float, int]] = []  # /health while the core shuts down

    def watch(t_sig: float) -> None:
        while ops.core.alive() and time.time() - t_sig < grace + 2:
            st_h, _ = ops.api("GET", "/health", timeout=1)
            answers.append((time.time() - t_sig, st_h))
            time.sleep(1)

    watcher = threading.Thread(target=watch, args=(time.time(),), daemon=True)
    watcher.start()
    rc, took = ops.r.kill(ops.core, signal.SIGTERM, grace=grace)
    watcher.join(5)
    served = [round(t, 1) for t, st_h in answers if st_h == 200]
    print(f"FIGURE: gen {gen} core /health during its shutdown: answered at {served or 'never'} s after SIGTERM, "
          f"{len(answers) - len(served)} of {len(answers)} probes failed", flush=True)
    old = host_dir.with_name(host_dir.name + ".replaced")
    host_dir.rename(old)
    host_dir.mkdir()
    os.chmod(host_dir, 0o777)
    target = host_dir / db.rsplit("/", 1)[1]
    shutil.copy2(saved, target)
    uid, gid = ops.core.uid, ops.core.gid
    if uid is not None:
        os.chown(target, uid, gid if gid is not None else uid)  # the helper pod runs as the core's user
    # kubectl exec <helper> -- sqlite3 DB "PRAGMA integrity_check"
    chk = subprocess.run(["sqlite3", str(target), "PRAGMA integrity_check"], capture_output=True, timeout=30)
    ops.check(chk.returncode == 0 and chk.stdout.strip() == b"ok", f"{label}: the restored file passes PRAGMA integrity_check",
              f"exit {chk.returncode}: {chk.stdout.decode(errors='replace').strip()[:200]} {chk.stderr.decode(errors='replace').strip()[:200]}")
    # kubectl scale --replicas=1: a new pod (init containers again) on the restored claim
    t0 = time.time()
    ops.r.start_pod(ops.core_rep).join(ops.r.args.init_timeout)
    health = ops.wait_healthy(30)
    first = ops.first_success(t0, 60)
    ok_f, _ = ops.get_ok(f"/flows/{flow1}")
    ok_b, blob_after = ops.get_ok(f"/blobs/{ops.blob}")
    ok_r, run_body = ops.get_ok(f"/runs/{rid}")
    run_after = norm_status((run_body.get("summary") or run_body).get("status")) if ok_r and isinstance(run_body, dict) else "-"
    st_m, _ = ops.api("GET", f"/blobs/{marker}") if marker else (0, None)
    ops.check(took <= grace + 1, f"{label}: the core stops within terminationGracePeriodSeconds (scale to 0)",
              f"exit {rc} after {took:.1f}s (grace {grace:.0f}s)")
    if rc == -9:
        print(f"FINDING: gen {gen} core did NOT exit on SIGTERM within terminationGracePeriodSeconds ({grace:.0f}s); "
              f"it was SIGKILLed at its end (the kubelet does the same)", flush=True)
    print(f"FIGURE: gen {gen} core SIGTERM -> exit {rc} after {took:.1f}s", flush=True)
    ops.check(ok_f and ok_b and blob_after == blob_data and before == "completed" and run_after == "completed" and st_m == 404,
              f"{label}: the core started on a fresh claim holding the backup serves its flows, runs and blobs",
              f"GET flow {ok_f}, blob {ok_b} (same data {blob_after == blob_data}), run {run_after}; blob stored after "
              f"the backup: HTTP {st_m} (404 expected); backup {size} bytes; health after {health}s")
    ops.check(first is not None, f"{label}: new runs succeed on the restored state", f"first run {first}s after the start")
    print(f"FIGURE: gen {gen} backup {size} bytes via sqlite3 .backup; restored core: /health after {health}s, "
          f"first new run {first}s after the pod start", flush=True)


# --------------------------------------------------------------------------- driver


def pods_up(sc: Scenario, label: str) -> tuple[bool, dict, dict]:
    """Probes and components of started pods: (up, config, served)."""
    with sc.uncounted() as sub:  # the set-up checks are those of run_env: reported, not counted here
        started = sc.r.check_probes(label, sc.reps, sc.services)
        cfg = sc.config()
        served = sc.check_components(cfg) if started else {}
    sc.res.check(started and not sub.failed, f"{label} pods up (probes, components)", "; ".join(sub.failed))
    return started and not sub.failed, cfg, served


def check_exits(ops: Ops) -> None:
    """Every exit of a main container that the scenario did not cause is a failure."""
    for rep in ops.sc.reps:
        for key, p in rep.containers.items():
            if key.startswith("main:"):
                ops.check(not p.exits and p.restarts == 0, f"{p.name} never exited on its own",
                          f"unexpected exits {p.exits}, restarts by the kubelet stand-in {p.restarts}")


def run_resilience(r: Runner, envfile: Path) -> None:
    env = Env(envfile, load_objects(envfile))
    gen = r.generation
    label = f"[{envfile.name} gen {gen} state]"
    log(f"===== {label} recovery, worker loss, backup/restore")
    t0 = time.time()
    tracker = Tracker()
    overrides = {"python-sdk": 3} if gen == "0.13" else {}
    try:
        with Scenario(r, env, label, replicas_override=overrides) as sc:
            sc.start()
            up, cfg, served = pods_up(sc, label)
            if not up:
                return
            ops = Ops(sc, tracker, label)
            if not ops.setup(cfg, served):
                return
            if gen == "0.13":
                # readiness only shows that the core is reachable: a worker that started before the
                # core connects at its next attempt, up to 2 s later
                time.sleep(3)
                spread(ops, 24)
            core_crash(ops, gen)
            if gen == "0.13":
                worker_crash(ops)
                rolling_update(ops, 20)
            backup_restore(ops, cfg, gen)
            lost = 0
            if gen == "0.11":
                before = (ops.submitted, ops.completed)
                worker_loss_011(ops)
                lost = getattr(ops, "lost_expected", 0)
                info(f"{label} 0.11 worker-loss scenario: submitted {ops.submitted - before[0]}, completed {ops.completed - before[1]}")
            check_exits(ops)
            print(f"FIGURE: gen {gen} runs submitted {ops.submitted}, completed {ops.completed}"
                  + (f" (the {lost} lost to the known 0.11 python-sdk restart limitation excluded below)" if lost else ""), flush=True)
            ops.check(ops.submitted - lost == ops.completed, "nothing lost: runs submitted = runs completed",
                      f"submitted {ops.submitted}, completed {ops.completed}" + (f", known 0.11 losses {lost}" if lost else ""))
            db = state_location(ops, cfg)
            if db:
                files = {f.name: f.stat().st_size for f in db[2].iterdir()} if db[2].exists() else {}
                print(f"FIGURE: gen {gen} state claim {db[1]} at the end: {files} bytes", flush=True)
    finally:
        tracker.stop()
        info(f"{label} took {time.time() - t0:.0f}s")
