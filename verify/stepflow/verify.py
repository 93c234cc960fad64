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
only the standard library plus PyYAML.
"""
from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CORE_BINARY = "/usr/local/bin/stepflow-server"
KIT_WORKER = "stepflow_kit_worker"  # the python-sdk image's worker loop (containers/python-sdk)
KIT_SERVER_ENV = "STEPFLOW_KIT_SERVER"  # module:attribute of the StepflowServer the loop serves

# --------------------------------------------------------------------------- results


class Results:
    def __init__(self) -> None:
        self.passed: list[str] = []
        self.failed: list[str] = []

    def check(self, ok: bool, name: str, detail: str = "") -> bool:
        line = f"{'PASS' if ok else 'FAIL'}: {name}" + (f" -- {detail}" if detail else "")
        print(line, flush=True)
        (self.passed if ok else self.failed).append(name)
        return ok


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def info(msg: str) -> None:
    print(f"INFO: {msg}", flush=True)


# --------------------------------------------------------------------------- manifests


def load_objects(path: Path) -> list[dict[str, Any]]:
    with path.open() as fh:
        return [d for d in yaml.safe_load_all(fh) if isinstance(d, dict)]


@dataclass
class Env:
    """One environment file (dist/dev.yaml, dist/prod.yaml, ...)."""

    path: Path
    objects: list[dict[str, Any]]

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o.get("kind") in kinds]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        for o in self.objects:
            md = o.get("metadata", {})
            if o.get("kind") == kind and md.get("name") == name:
                if namespace is None or md.get("namespace", namespace) == namespace:
                    return o
        return None


def workloads(env: Env) -> list[dict[str, Any]]:
    return env.of_kind("Deployment", "StatefulSet")


def pod_spec(wl: dict[str, Any]) -> dict[str, Any]:
    return wl["spec"]["template"]["spec"]


def selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def is_core(container: dict[str, Any]) -> bool:
    cmd = container.get("command") or []
    return bool(cmd) and os.path.basename(cmd[0]) == "stepflow-server"


def core_workload(env: Env) -> tuple[dict[str, Any], dict[str, Any]]:
    found = [(wl, c) for wl in workloads(env) for c in pod_spec(wl)["containers"] if is_core(c)]
    if len(found) != 1:
        raise SystemExit(f"{env.path}: expected exactly one container running stepflow-server, found {len(found)}")
    return found[0]


def config_from_manifests(env: Env) -> tuple[str, str, dict[str, Any], str]:
    """Find the StepFlow config the core container reads: --config PATH (or STEPFLOW_CONFIG)
    -> the volumeMount holding PATH -> the ConfigMap volume -> the key. Returns
    (configmap name, key, configmap object, config text)."""
    wl, c = core_workload(env)
    args = list(c.get("args") or [])
    cfg_path = None
    for i, a in enumerate(args):
        if a in ("--config", "-c") and i + 1 < len(args):
            cfg_path = args[i + 1]
        elif a.startswith("--config="):
            cfg_path = a.split("=", 1)[1]
    if cfg_path is None:
        for e in c.get("env") or []:
            if e.get("name") == "STEPFLOW_CONFIG":
                cfg_path = e.get("value")
    if cfg_path is None:
        raise SystemExit(f"{env.path}: core container has neither --config nor STEPFLOW_CONFIG")
    vols = {v["name"]: v for v in pod_spec(wl).get("volumes") or []}
    best = None
    for m in c.get("volumeMounts") or []:
        mp = m["mountPath"].rstrip("/")
        if cfg_path.startswith(mp + "/") and (best is None or len(mp) > len(best["mountPath"].rstrip("/"))):
            best = m
    if best is None:
        raise SystemExit(f"{env.path}: no volumeMount of the core container holds {cfg_path}")
    vol = vols[best["name"]]
    if "configMap" not in vol:
        raise SystemExit(f"{env.path}: {cfg_path} is not on a configMap volume")
    cm_name = vol["configMap"]["name"]
    rel = cfg_path[len(best["mountPath"].rstrip("/")) + 1:]
    if best.get("subPath"):
        rel = best["subPath"]
    key = rel
    for item in vol["configMap"].get("items") or []:
        if item["path"] == rel:
            key = item["key"]
    ns = wl["metadata"].get("namespace")
    cm = env.get("ConfigMap", cm_name, ns)
    if cm is None or key not in (cm.get("data") or {}):
        raise SystemExit(f"{env.path}: ConfigMap {cm_name} key {key} not found")
    return cm_name, key, cm, cm["data"][key]


# --------------------------------------------------------------------------- local plan


def free_port(preferred: int, used: set[int]) -> int:
    def bindable(p: int) -> bool:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                return False
        return True

    if preferred not in used and bindable(preferred):
        used.add(preferred)
        return preferred
    p = 20000 + (preferred % 1000)
    while p in used or not bindable(p):
        p += 1000 if p < 60000 else -40999
    used.add(p)
    return p


@dataclass
class Replica:
    workload: dict[str, Any]
    index: int
    pod_name: str
    ports: dict[int, int] = field(default_factory=dict)  # containerPort -> local port
    containers: dict[str, "Proc"] = field(default_factory=dict)


@dataclass
class ServicePlan:
    obj: dict[str, Any]
    name: str
    namespace: str
    replicas: list[Replica]
    port_map: dict[int, int] = field(default_factory=dict)  # service port -> local port
    proxies: list["TcpProxy"] = field(default_factory=list)


def container_port_by_name(wl: dict[str, Any], name_or_number: Any) -> int:
    if isinstance(name_or_number, int) or str(name_or_number).isdigit():
        return int(name_or_number)
    for c in pod_spec(wl)["containers"]:
        for p in c.get("ports") or []:
            if p.get("name") == name_or_number:
                return int(p["containerPort"])
    raise SystemExit(f"port name {name_or_number!r} not found in {wl['metadata']['name']}")


# --------------------------------------------------------------------------- tcp proxy


class TcpProxy:
    """A Service stand-in: one listening port on 127.0.0.1, connections spread over the
    backends like kube-proxy does (per TCP connection): round-robin for
    sessionAffinity None, pinned by client address for sessionAffinity ClientIP."""

    def __init__(self, listen_port: int, backends: list[int], affinity: str, label: str) -> None:
        self.listen_port = listen_port
        self.backends = backends
        self.affinity = affinity
        self.label = label
        self.counts = {b: 0 for b in backends}
        self._next = 0
        self._pins: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")

    def stop(self) -> None:
        def _close() -> None:
            if self._server:
                self._server.close()
            for t in asyncio.all_tasks(self._loop):
                t.cancel()
            self._loop.stop()

        self._loop.call_soon_threadsafe(_close)
        self._thread.join(5)

    def _pick(self, client: str) -> int:
        if self.affinity == "ClientIP":
            if client not in self._pins:
                self._pins[client] = self.backends[self._next % len(self.backends)]
                self._next += 1
            return self._pins[client]
        b = self.backends[self._next % len(self.backends)]
        self._next += 1
        return b

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                try:
                    w.close()
                except Exception:
                    pass

        async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
            peer = cw.get_extra_info("peername")[0]
            backend = self._pick(peer)
            self.counts[backend] += 1
            try:
                br, bw = await asyncio.open_connection("127.0.0.1", backend)
            except OSError:
                cw.close()
                return
            await asyncio.gather(pipe(cr, bw), pipe(br, cw))

        async def main() -> None:
            self._server = await asyncio.start_server(handle, "127.0.0.1", self.listen_port)
            self._ready.set()

        self._loop.run_until_complete(main())
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    script: str  # mount-namespace setup, run by /bin/sh before exec
    uid: int | None
    gid: int | None
    log_path: Path
    popen: subprocess.Popen | None = None
    restarts: int = 0
    exits: list[int] = field(default_factory=list)
    started_at: float = 0.0

    def privdrop(self) -> list[str]:
        if self.uid is None:
            return []
        gid = self.gid if self.gid is not None else self.uid
        return ["setpriv", f"--reuid={self.uid}", f"--regid={gid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]

    def start(self) -> None:
        fh = self.log_path.open("ab")
        fh.write(f"\n===== start {time.strftime('%H:%M:%S')} {shlex.join(self.argv)}\n".encode())
        fh.flush()
        full = ["unshare", "-m", "--propagation", "private", "--", "/bin/sh", "-ec",
                self.script + '\nexec "$@"', "sh", *self.privdrop(), *self.argv]
        self.popen = subprocess.Popen(full, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        self.started_at = time.time()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(5)
        else:
            try:  # children of an exited leader, if any
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def exec_in(self, cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
        """Run cmd inside this container's mount namespace with its env and user (exec probe)."""
        assert self.popen is not None
        full = ["nsenter", "-t", str(self.popen.pid), "-m", "--", *self.privdrop(), *cmd]
        return subprocess.run(full, env=self.env, capture_output=True, timeout=timeout)

    def tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


# --------------------------------------------------------------------------- the run


class Runner:
    def __init__(self, args: argparse.Namespace, results: Results) -> None:
        self.args = args
        self.results = results
        self.core_venv = Path(args.core_venv)
        self.core_bin = self.core_venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
            "site-packages" / "stepflow_orchestrator" / "bin" / "stepflow-server"
        if not self.core_bin.exists():
            found = list(self.core_venv.glob("lib/python*/site-packages/stepflow_orchestrator/bin/stepflow-server"))
            if not found:
                raise SystemExit(f"stepflow-server not found in {self.core_venv}")
            self.core_bin = found[0]
        self.inference_venv = Path(args.inference_venv) if args.inference_venv else None
        self.kit_dir = Path(os.environ.get("STEPFLOW_VERIFY_KIT_DIR") or
                            Path(__file__).resolve().parents[2] / "containers" / "python-sdk")
        self.model_dir = Path(args.model_dir) if args.model_dir else None
        # The team's own component modules (verify/stepflow/team_worker), standing in for what
        # a team's image installs beside stepflow-py.
        self.team_dir = Path(args.team_dir).resolve() if getattr(args, "team_dir", "") else None
        # Not under /tmp: the containers get their own /tmp (emptyDir), which would hide it.
        base = Path(args.workdir) if args.workdir else Path.home() / ".cache" / "stepflow-kit" / "stepflow-verify-runs"
        base.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="run-", dir=base))
        # Mount points missing on this machine are created on the host (the containers' root is
        # the host's): another run of the tier at the same time needs them too, so they are only
        # removed by the last run holding this lock.
        lockdir = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")
        self.mountpoint_lock = (lockdir / "stepflow-verify-mountpoints.lock").open("a")
        fcntl.flock(self.mountpoint_lock, fcntl.LOCK_SH)
        self.rewrites: list[str] = []
        self.procs: list[Proc] = []
        self.proxies: list[TcpProxy] = []
        self.created_dirs: list[Path] = []
        self.generation = args.generation
        self.stop_monitor = threading.Event()
        self.ephemeral: dict[str, dict[str, Any]] = {}
        self.proc_lock = threading.Lock()

    # ---- rewrites -------------------------------------------------------------------

    def rewrite(self, what: str, before: str, after: str) -> None:
        line = f"REWRITE: {what}: {before!r} -> {after!r}"
        if line not in self.rewrites:
            self.rewrites.append(line)
            print(line, flush=True)

    def host_map(self, services: list[ServicePlan]) -> list[tuple[re.Pattern, ServicePlan]]:
        out = []
        for sp in services:
            if sp.obj["spec"].get("clusterIP") != "None":
                continue
            # pod DNS names through a headless Service: <pod>.<service>.<namespace>.svc[.cluster.local]
            for rep in sp.replicas:
                ports = {}
                for p in sp.obj["spec"].get("ports") or []:
                    cport = container_port_by_name(rep.workload, p.get("targetPort", p["port"]))
                    ports[int(p["port"])] = rep.ports.get(cport, cport)
                pod = ServicePlan(obj=sp.obj, name=f"{rep.pod_name}.{sp.name}", namespace=sp.namespace,
                                  replicas=[rep], port_map=ports)
                names = [f"{pod.name}.{sp.namespace}.svc.cluster.local", f"{pod.name}.{sp.namespace}.svc",
                         f"{pod.name}.{sp.namespace}"]
                alt = "|".join(re.escape(n) for n in names)
                out.append((re.compile(rf"(?:(?<=://)(?:{alt})(?::(\d+))?(?![\w.-])|(?<![\w.-])(?:{alt}):(\d+)(?![\w-]))"), pod))
        for sp in services:
            names = [f"{sp.name}.{sp.namespace}.svc.cluster.local", f"{sp.name}.{sp.namespace}.svc",
                     f"{sp.name}.{sp.namespace}", sp.name]
            alt = "|".join(re.escape(n) for n in names)
            # a host name: after "://" (port optional) or followed by ":<port>"
            out.append((re.compile(rf"(?:(?<=://)(?:{alt})(?::(\d+))?(?![\w.-])|(?<![\w.-])(?:{alt}):(\d+)(?![\w-]))"), sp))
        return out

    def rewrite_hosts(self, text: str, services: list[ServicePlan], what: str) -> str:
        for pat, sp in self.host_map(services):
            def sub(m: re.Match) -> str:
                port = m.group(1) or m.group(2)
                if port is None:
                    return "127.0.0.1"
                local = sp.port_map.get(int(port))
                if local is None:
                    raise SystemExit(f"{what}: {m.group(0)} names port {port}, which Service {sp.name} does not expose")
                return f"127.0.0.1:{local}"
            new = pat.sub(sub, text)
            for m in pat.finditer(text):
                self.rewrite(what, m.group(0), sub(m))
            text = new
        return text

    # ---- env and command -------------------------------------------------------------

    def resolve_env(self, env: Env, wl: dict[str, Any], c: dict[str, Any], pod_name: str,
                    services: list[ServicePlan], image_path: str) -> dict[str, str]:
        ns = wl["metadata"].get("namespace", "default")
        out: dict[str, str] = {
            "PATH": f"{image_path}:/usr/local/bin:/usr/bin:/bin",
            "HOSTNAME": pod_name,
        }
        for ef in c.get("envFrom") or []:
            if "configMapRef" in ef:
                cm = env.get("ConfigMap", ef["configMapRef"]["name"], ns)
                if cm is None:
                    raise SystemExit(f"envFrom ConfigMap {ef['configMapRef']['name']} not in manifests")
                for k, v in (cm.get("data") or {}).items():
                    out[ef.get("prefix", "") + k] = v
            else:
                raise SystemExit(f"unsupported envFrom {ef}")
        for e in c.get("env") or []:
            name = e["name"]
            if "value" in e:
                val = str(e["value"])
                val = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: out.get(m.group(1), m.group(0)), val)
            elif "valueFrom" in e:
                vf = e["valueFrom"]
                if "fieldRef" in vf:
                    fp = vf["fieldRef"]["fieldPath"]
                    val = {"metadata.name": pod_name, "metadata.namespace": ns, "status.podIP": "127.0.0.1",
                           "spec.nodeName": "localhost"}.get(fp)
                    if val is None:
                        raise SystemExit(f"unsupported fieldRef {fp}")
                elif "configMapKeyRef" in vf:
                    ref = vf["configMapKeyRef"]
                    cm = env.get("ConfigMap", ref["name"], ns)
                    val = (cm or {}).get("data", {}).get(ref["key"])
                    if val is None:
                        raise SystemExit(f"configMapKeyRef {ref} not in manifests")
                elif "resourceFieldRef" in vf:
                    ref = vf["resourceFieldRef"]
                    res = ref["resource"].split(".", 1)
                    raw = str(c.get("resources", {}).get(res[0], {}).get(res[1], "0"))
                    val = raw.rstrip("m") if not raw.endswith("m") else str(max(1, -(-int(raw[:-1]) // 1000)))
                else:
                    raise SystemExit(f"unsupported valueFrom {vf}")
            else:
                val = ""
            new = self.rewrite_hosts(val, services, f"{pod_name}/{c['name']} env {name}")
            out[name] = new
        if self.generation == "0.13" and self.args.inference_sdk013 and image_path.startswith(str(self.inference_venv or "//")):
            # containers/inference builds its 0.13 image with stepflow-py 0.13; here that SDK lives in a
            # directory shadowing the venv's 0.11 SDK (see verify/inference/run.sh)
            self.rewrite(f"{pod_name}/{c['name']} env PYTHONPATH (image stand-in: stepflow-py 0.13 for the inference venv)",
                         out.get("PYTHONPATH", ""), self.args.inference_sdk013)
            out["PYTHONPATH"] = self.args.inference_sdk013
        if out.get("STEPFLOW_INFERENCE_DEVICE") == "cuda" and not self.have_gpu():
            self.rewrite(f"{pod_name}/{c['name']} env STEPFLOW_INFERENCE_DEVICE (NO GPU on this machine; "
                         f"the GPU path is NOT verified)", "cuda", "cpu")
            out["STEPFLOW_INFERENCE_DEVICE"] = "cpu"
        return out

    @staticmethod
    def have_gpu() -> bool:
        return any(Path("/dev").glob("nvidia[0-9]*"))

    def map_argv(self, argv: list[str], env: dict[str, str], what: str, python: str | None,
                 services: list[ServicePlan], port_rewrites: dict[int, int]) -> list[str]:
        out = []
        for i, a in enumerate(argv):
            a = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), a)
            if i == 0 and a == CORE_BINARY:
                self.rewrite(f"{what} command", a, str(self.core_bin))
                a = str(self.core_bin)
            elif i == 0 and a in ("python3", "python", "/usr/bin/python3", "/usr/local/bin/python3"):
                if python is None:
                    raise SystemExit(f"{what}: no python for {a}")
                self.rewrite(f"{what} command", a, python)
                a = python
            else:
                a2 = self.rewrite_hosts(a, services, f"{what} args")
                if a2 == a and a.isdigit() and int(a) in port_rewrites and port_rewrites[int(a)] != int(a):
                    a2 = str(port_rewrites[int(a)])
                    self.rewrite(f"{what} args (port collision)", a, a2)
                a = a2
            out.append(a)
        return out

    # ---- volumes -----------------------------------------------------------------------

    def mount_script(self, env: Env, wl: dict[str, Any], c: dict[str, Any], pod_dir: Path,
                     services: list[ServicePlan], venvs: list[Path]) -> str:
        ps = pod_spec(wl)
        vols = {v["name"]: v for v in ps.get("volumes") or []}
        claims = {t["metadata"]["name"]: t for t in wl["spec"].get("volumeClaimTemplates") or []}
        sc = {**(ps.get("securityContext") or {}), **(c.get("securityContext") or {})}
        lines = ["mount --make-rprivate /", "mount -t tmpfs -o mode=755 tmpfs /srv"]
        env_c = {e["name"]: e.get("value") for e in c.get("env") or []}
        mounts: list[str] = []
        # The stand-in "image": the venvs, read-only, at a path any uid can traverse.
        for i, v in enumerate(venvs):
            target = f"/srv/stepflow-verify/{i}"
            mounts.append(f"mkdir -p {target} && mount --bind {shlex.quote(str(v))} {target} && mount -o remount,bind,ro {target}")
        for m in c.get("volumeMounts") or []:
            mp = m["mountPath"]
            self.ensure_mountpoint(Path(mp))
            name = m["name"]
            ro = m.get("readOnly", False)
            if name in vols:
                v = vols[name]
                if "emptyDir" in v:
                    size = v["emptyDir"].get("sizeLimit")
                    opts = "mode=1777" + (f",size={size.replace('Mi', 'm').replace('Gi', 'g')}" if size else "")
                    mounts.append(f"mount -t tmpfs -o {opts} tmpfs {shlex.quote(mp)}")
                elif "configMap" in v or "secret" in v:
                    kind = "ConfigMap" if "configMap" in v else "Secret"
                    ref = v.get("configMap") or v.get("secret")
                    obj = env.get(kind, ref.get("name") or ref.get("secretName"), wl["metadata"].get("namespace"))
                    if obj is None:
                        raise SystemExit(f"{kind} volume {name} not in manifests")
                    d = pod_dir / f"vol-{name}"
                    d.mkdir(parents=True, exist_ok=True)
                    data = dict(obj.get("data") or {})
                    items = ref.get("items")
                    files = {it["path"]: data[it["key"]] for it in items} if items else data
                    for fname, content in files.items():
                        content = self.rewrite_hosts(content, services, f"{kind} {obj['metadata']['name']} key {fname}")
                        (d / fname).parent.mkdir(parents=True, exist_ok=True)
                        (d / fname).write_text(content)
                        os.chmod(d / fname, 0o444)
                    os.chmod(d, 0o755)
                    mounts.append(f"mount --bind {shlex.quote(str(d))} {shlex.quote(mp)} && mount -o remount,bind,ro {shlex.quote(mp)}")
                    ro = False
                elif "persistentVolumeClaim" in v:
                    raise SystemExit(f"persistentVolumeClaim volume {name}: not emulated")
                else:
                    raise SystemExit(f"unsupported volume {v}")
            elif name in claims:
                d = pod_dir / f"pvc-{name}"
                d.mkdir(parents=True, exist_ok=True)
                if env_c.get("MODEL_CACHE_DIR") == mp:
                    if self.model_dir is None:
                        raise SystemExit("a model volume is needed but no --model-dir was given")
                    model = env_c.get("STEPFLOW_INFERENCE_EMBED_MODEL") or "all-MiniLM-L6-v2"
                    src = pod_dir / f"pvc-{name}-models"
                    (src / model).parent.mkdir(parents=True, exist_ok=True)
                    if not (src / model).exists():
                        (src / model).symlink_to(self.model_dir)
                    info(f"{wl['metadata']['name']}: PVC {name} at {mp} pre-populated: {model}/ -> {self.model_dir} (read-only)")
                    mounts.append(f"mount --bind {shlex.quote(str(src))} {shlex.quote(mp)} && mount -o remount,bind,ro {shlex.quote(mp)}")
                    continue
                os.chmod(d, 0o777)
                # a bind mount inherits the read-only flag of the root remounted above: make it rw
                mounts.append(f"mount --bind {shlex.quote(str(d))} {shlex.quote(mp)} && "
                              f"mount -o remount,bind,rw {shlex.quote(mp)}")
            else:
                raise SystemExit(f"volumeMount {name} has no volume")
            if ro:
                mounts.append(f"mount -o remount,bind,ro {shlex.quote(mp)}")
        venv_mounts = [m for m in mounts if m.startswith("mkdir -p /srv/")]
        lines += venv_mounts
        if sc.get("readOnlyRootFilesystem"):
            lines.append("mount -o remount,bind,ro /")
        lines += [m for m in mounts if m not in venv_mounts]
        return "\n".join(lines)

    def ensure_mountpoint(self, p: Path) -> None:
        missing = []
        q = p
        while not q.exists():
            missing.append(q)
            q = q.parent
        for d in reversed(missing):
            d.mkdir()
            self.created_dirs.append(d)
            info(f"created missing mount point {d} on the host (removed at the end)")

    # ---- starting pods -----------------------------------------------------------------

    def team_module(self, c: dict[str, Any]) -> str | None:
        """The team module a container runs, when it is one of --team-dir: `python3 -m <module>`
        or the worker loop with STEPFLOW_KIT_SERVER=<module>:<attribute>, the module's top
        package being a file or directory in the team directory. None otherwise."""
        if self.team_dir is None:
            return None
        cmd = c.get("command") or []
        module = cmd[2] if len(cmd) >= 3 and cmd[1] == "-m" else ""
        if module == KIT_WORKER:
            envs = {e["name"]: e.get("value") for e in c.get("env") or []}
            module = str(envs.get(KIT_SERVER_ENV) or "").partition(":")[0]
        top = module.partition(".")[0]
        if top and ((self.team_dir / f"{top}.py").is_file() or (self.team_dir / top / "__init__.py").is_file()):
            return module
        return None

    def python_for(self, c: dict[str, Any]) -> tuple[str | None, list[Path], bool]:
        """The venv standing in for this container's image: (python path as seen inside
        the mount namespace, venvs to mount, can drop to the manifest's uid)."""
        cmd = c.get("command") or []
        if is_core(c):
            return None, [], True
        module = cmd[2] if len(cmd) >= 3 and cmd[1] == "-m" else ""
        if self.team_module(c) is not None:
            # a team's image = stepflow-py (+ the python-sdk image's worker loop) + the team's module
            extra = [self.kit_dir] if module == KIT_WORKER else []
            return "/srv/stepflow-verify/0/bin/python3", [self.core_venv, *extra, self.team_dir], True
        if module.startswith("stepflow_py"):
            return "/srv/stepflow-verify/0/bin/python3", [self.core_venv], True
        if module == KIT_WORKER:
            # the python-sdk image = stepflow-py + containers/python-sdk (the worker loop module)
            return "/srv/stepflow-verify/0/bin/python3", [self.core_venv, self.kit_dir], True
        if self.inference_venv is None:
            return None, [], False
        # the inference venv was made by containers/inference from a python under /root: run as root
        return str(self.inference_venv / "bin" / "python3"), [], False

    def make_pod(self, env: Env, rep: Replica, services: list[ServicePlan], port_rewrites: dict[int, int]) -> None:
        wl = rep.workload
        ps = pod_spec(wl)
        pod_dir = self.work / rep.pod_name
        pod_dir.mkdir(parents=True, exist_ok=True)
        for kind, lst in (("init", ps.get("initContainers") or []), ("main", ps["containers"])):
            for c in lst:
                what = f"{rep.pod_name}/{c['name']}"
                python, venvs, can_drop = self.python_for(c)
                if kind == "main" and not is_core(c) and python is None:
                    raise SystemExit(f"{what}: no stand-in image")
                image_path = os.path.dirname(python) if python else os.path.dirname(str(self.core_bin))
                envd = self.resolve_env(env, wl, c, rep.pod_name, services, image_path)
                if self.kit_dir in venvs or (self.team_dir is not None and self.team_dir in venvs):
                    paths, parts = [], []
                    if self.kit_dir in venvs:
                        paths.append(f"/srv/stepflow-verify/{venvs.index(self.kit_dir)}")
                        parts.append(f"{self.kit_dir} = the image's {KIT_WORKER} module")
                    if self.team_dir is not None and self.team_dir in venvs:
                        paths.append(f"/srv/stepflow-verify/{venvs.index(self.team_dir)}")
                        parts.append(f"{self.team_dir} = the team image's {self.team_module(c)} module")
                    self.rewrite(f"{what} env PYTHONPATH (image stand-in: {'; '.join(parts)})",
                                 envd.get("PYTHONPATH", ""), ":".join(paths))
                    envd["PYTHONPATH"] = ":".join(paths)
                argv = self.map_argv(list(c.get("command") or []) + list(c.get("args") or []), envd, what,
                                     python, services, port_rewrites)
                if not argv:
                    raise SystemExit(f"{what}: no command in the manifest (the image entrypoint is unknown here)")
                if kind == "init" and argv[0] in ("/bin/sh", "sh"):
                    self.rewrite(f"{what} command", argv[0], "/bin/sh of this machine (image shell stand-in)")
                sc = {**(ps.get("securityContext") or {}), **(c.get("securityContext") or {})}
                uid = sc.get("runAsUser") if can_drop else None
                gid = sc.get("runAsGroup") if can_drop else None
                if sc.get("runAsUser") is not None and uid is None:
                    info(f"{what}: runs as root here (its stand-in venv lives under /root); manifest runAsUser={sc.get('runAsUser')}")
                script = self.mount_script(env, wl, c, pod_dir, services, venvs)
                proc = Proc(name=what, argv=argv, env=envd, script=script, uid=uid, gid=gid,
                            log_path=self.work / f"{rep.pod_name}.{c['name']}.log")
                proc.kind = kind  # type: ignore[attr-defined]
                proc.container = c  # type: ignore[attr-defined]
                proc.replica = rep  # type: ignore[attr-defined]
                rep.containers[f"{kind}:{c['name']}"] = proc

    def start_pod(self, rep: Replica) -> threading.Thread:
        """Start a pod like the kubelet: init containers one after the other (each must exit 0),
        then the main containers; a main container that exits is restarted (restartPolicy Always)."""

        def run() -> None:
            for key, p in rep.containers.items():
                if not key.startswith("init:"):
                    continue
                log(f"start init container {p.name}")
                if p not in self.procs:
                    self.procs.append(p)
                p.start()
                deadline = time.time() + self.args.init_timeout
                while p.alive() and time.time() < deadline and not self.stop_monitor.is_set():
                    time.sleep(0.2)
                if p.alive():
                    p.stop()
                    p.exits.append(-1)
                    log(f"init container {p.name} did not finish within {self.args.init_timeout}s")
                    return
                rc = p.popen.returncode if p.popen else -1
                p.exits.append(rc)
                log(f"init container {p.name} exited {rc} after {time.time() - p.started_at:.1f}s")
                if rc != 0:
                    return
            for key, p in rep.containers.items():
                if key.startswith("main:"):
                    log(f"start container {p.name}: {shlex.join(p.argv)}")
                    if p not in self.procs:
                        self.procs.append(p)
                    with self.proc_lock:
                        p.stopped = False  # type: ignore[attr-defined]
                        p.exit_seen = False  # type: ignore[attr-defined]
                        p.start()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def monitor(self) -> None:
        while not self.stop_monitor.is_set():
            for p in list(self.procs):
                # under the lock: a scenario's deliberate kill (kill()) is never taken for an exit
                with self.proc_lock:
                    if getattr(p, "kind", "") != "main" or p.popen is None or getattr(p, "stopped", False):
                        continue
                    rc = p.popen.poll()
                    if rc is None or getattr(p, "exit_seen", False):
                        continue
                    p.exit_seen = True  # type: ignore[attr-defined]
                    p.exits.append(rc)
                log(f"container {p.name} EXITED rc={rc}; last log lines:\n{p.tail(4)}")
                if p.restarts < 5 and not self.stop_monitor.is_set():
                    time.sleep(min(10, 2 ** p.restarts))
                    with self.proc_lock:
                        if getattr(p, "stopped", False):
                            continue
                        p.stop(grace=2)  # whatever is left of the old process group
                        p.restarts += 1
                        log(f"restart {p.name} (restart #{p.restarts}, restartPolicy Always)")
                        p.exit_seen = False  # type: ignore[attr-defined]
                        p.start()
            self.stop_monitor.wait(0.3)

    # ---- deliberate kills and restarts (the scenario's, not counted as exits) ----------------

    def kill(self, p: Proc, sig: int = signal.SIGKILL, grace: float = 15.0) -> tuple[int | None, float]:
        """Stop a main container on purpose: sig to its process group, wait up to grace seconds
        (then SIGKILL, like the kubelet at the end of terminationGracePeriodSeconds).
        Returns (exit status, seconds until it exited)."""
        self.measure_ephemeral(p)
        with self.proc_lock:
            p.stopped = True  # type: ignore[attr-defined]
        t0 = time.time()
        if p.popen is None or p.popen.poll() is not None:
            return (p.popen.returncode if p.popen else None), 0.0
        try:
            os.killpg(p.popen.pid, sig)
        except ProcessLookupError:
            pass
        try:
            rc = p.popen.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(p.popen.pid, signal.SIGKILL)
            rc = p.popen.wait(5)
        took = time.time() - t0
        try:  # whatever is left of its process group
            os.killpg(p.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        log(f"{p.name}: stopped on purpose with signal {sig}: exit {rc} after {took:.1f}s")
        return rc, took

    def restart(self, p: Proc) -> None:
        """Start a container again in the same pod (same name, env and volumes): what the kubelet
        does after the container exits, and what the StatefulSet controller's new pod gets."""
        with self.proc_lock:
            if p.popen is not None and p.popen.poll() is None:
                raise RuntimeError(f"{p.name}: restart while it still runs")
            p.stopped = False  # type: ignore[attr-defined]
            p.exit_seen = False  # type: ignore[attr-defined]
            log(f"start container {p.name} again: {shlex.join(p.argv)}")
            p.start()

    # ---- ephemeral storage ------------------------------------------------------------------

    def measure_ephemeral(self, p: Proc) -> None:
        """KiB used in each emptyDir of a running container (du inside its mount namespace) and
        the size of its log (the kubelet counts container logs as ephemeral storage); the largest
        value seen per container is kept."""
        if not hasattr(p, "container") or p.popen is None or p.popen.poll() is not None:
            return
        wl = p.replica.workload  # type: ignore[attr-defined]
        vols = {v["name"]: v for v in pod_spec(wl).get("volumes") or []}
        key = f"{wl['metadata']['name']}/{p.container['name']}"  # type: ignore[attr-defined]
        rec = self.ephemeral.setdefault(key, {})
        for m in p.container.get("volumeMounts") or []:  # type: ignore[attr-defined]
            v = vols.get(m["name"])
            if v is None or "emptyDir" not in v:
                continue
            try:
                r = subprocess.run(["nsenter", "-t", str(p.popen.pid), "-m", "--", "du", "-sk", m["mountPath"]],
                                   capture_output=True, timeout=10)
                kib = int(r.stdout.split()[0]) if r.returncode == 0 and r.stdout else -1
            except (subprocess.TimeoutExpired, ValueError, IndexError):
                kib = -1
            k = f"emptyDir {m['name']} ({m['mountPath']}, sizeLimit {v['emptyDir'].get('sizeLimit', 'none')})"
            rec[k] = max(rec.get(k, -1), kib)
        try:
            rec["log"] = max(rec.get("log", 0), p.log_path.stat().st_size // 1024)
        except OSError:
            pass
        sc = {**(pod_spec(wl).get("securityContext") or {}), **(p.container.get("securityContext") or {})}  # type: ignore[attr-defined]
        rec["readOnlyRootFilesystem"] = bool(sc.get("readOnlyRootFilesystem"))

    def stop_all(self) -> None:
        for p in self.procs:
            if getattr(p, "kind", "") == "main":
                self.measure_ephemeral(p)
        self.stop_monitor.set()
        for p in reversed(self.procs):
            p.stopped = True  # type: ignore[attr-defined]
            p.stop()
        for px in self.proxies:
            px.stop()
        self.procs.clear()
        self.proxies.clear()

    def cleanup(self) -> None:
        self.stop_all()
        try:
            fcntl.flock(self.mountpoint_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            last = True
        except OSError:
            last = False
        for d in reversed(self.created_dirs):
            if not last:
                info(f"left {d} on the host: another run of the tier is using it")
                continue
            try:
                d.rmdir()
            except OSError as e:
                info(f"could not remove {d}: {e}")
        self.mountpoint_lock.close()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            info(f"logs kept in {self.work}")

    # ---- probes --------------------------------------------------------------------------

    def probe_once(self, p: Proc, probe: dict[str, Any], rep: Replica, services: list[ServicePlan]) -> tuple[bool, str]:
        timeout = float(probe.get("timeoutSeconds", 1))
        if "httpGet" in probe:
            hg = probe["httpGet"]
            cport = container_port_by_name(rep.workload, hg["port"])
            lport = rep.ports.get(cport, cport)
            host = hg.get("host", "127.0.0.1")
            scheme = hg.get("scheme", "HTTP").lower()
            url = f"{scheme}://{host}:{lport}{hg.get('path', '/')}"
            req = urllib.request.Request(url, headers={h["name"]: h["value"] for h in hg.get("httpHeaders") or []})
            req.add_header("User-Agent", "kube-probe/1.30")
            ctx = ssl._create_unverified_context() if scheme == "https" else None
            try:
                with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
                    return 200 <= r.status < 400, f"GET {url} -> {r.status}"
            except urllib.error.HTTPError as e:
                return False, f"GET {url} -> {e.code}"
            except Exception as e:  # noqa: BLE001
                return False, f"GET {url} -> {type(e).__name__}: {e}"
        if "exec" in probe:
            cmd = self.map_argv(list(probe["exec"]["command"]), p.env, f"{p.name} exec probe",
                                p.argv[0] if os.path.basename(p.argv[0]).startswith("python") else None,
                                services, {})
            try:
                r = p.exec_in(cmd, timeout=timeout)
            except subprocess.TimeoutExpired:
                return False, f"exec {shlex.join(cmd)} -> timeout {timeout}s"
            return r.returncode == 0, f"exec {shlex.join(cmd)} -> rc {r.returncode} {r.stderr.decode(errors='replace')[-300:].strip()}"
        if "tcpSocket" in probe:
            cport = container_port_by_name(rep.workload, probe["tcpSocket"]["port"])
            lport = rep.ports.get(cport, cport)
            try:
                with socket.create_connection(("127.0.0.1", lport), timeout=timeout):
                    return True, f"tcp 127.0.0.1:{lport} open"
            except OSError as e:
                return False, f"tcp 127.0.0.1:{lport} -> {e}"
        return False, f"unsupported probe {list(probe)}"

    def wait_probe(self, p: Proc, probe: dict[str, Any], rep: Replica, services: list[ServicePlan],
                   budget: float) -> tuple[bool, str, float]:
        t0 = time.time()
        detail = "not tried"
        while True:
            if not p.alive():
                return False, f"process not running ({detail})", time.time() - t0
            ok, detail = self.probe_once(p, probe, rep, services)
            if ok:
                return True, detail, time.time() - t0
            if time.time() - t0 > budget:
                return False, detail, time.time() - t0
            time.sleep(min(1.0, float(probe.get("periodSeconds", 10))))

    def check_probes(self, env_label: str, reps: list[Replica], services: list[ServicePlan]) -> bool:
        """Every probe of every main container must answer success. Startup probes within their
        own budget (initialDelaySeconds + failureThreshold x periodSeconds) counted from the
        container start; liveness/readiness within theirs counted from startup success."""
        all_ok = True
        for rep in reps:
            for key, p in rep.containers.items():
                if not key.startswith("main:"):
                    continue
                c = p.container  # type: ignore[attr-defined]
                # wait until the kubelet would have started this container (init containers done)
                deadline = time.time() + self.args.init_timeout + 5
                while p.popen is None and time.time() < deadline:
                    time.sleep(0.2)
                if p.popen is None:
                    all_ok &= self.results.check(False, f"{env_label} {p.name} started", "init containers never finished")
                    continue
                for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                    probe = c.get(kind)
                    if not probe:
                        info(f"{p.name}: no {kind} in the manifest")
                        continue
                    budget = float(probe.get("initialDelaySeconds", 0)) + \
                        float(probe.get("failureThreshold", 3)) * float(probe.get("periodSeconds", 10))
                    if kind == "startupProbe":
                        budget -= (time.time() - p.started_at)
                    ok, detail, took = self.wait_probe(p, probe, rep, services, max(budget, 0.5))
                    all_ok &= self.results.check(ok, f"{env_label} {p.name} {kind}",
                                                 f"{detail} after {took:.1f}s (budget {budget:.0f}s)")
                    if not ok:
                        print(p.tail(8), flush=True)
        return all_ok

    # ---- REST helpers --------------------------------------------------------------------

    @staticmethod
    def http_json(method: str, url: str, body: Any = None, timeout: float = 60,
                  headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"content-type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        except (OSError, urllib.error.URLError) as e:
            return 0, f"{type(e).__name__}: {e}"
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except json.JSONDecodeError:
            # a streamable-HTTP (SSE) answer: take the last data: line
            datas = [ln[5:].strip() for ln in text.splitlines() if ln.startswith("data:")]
            return status, json.loads(datas[-1]) if datas else text


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
    from scenarios import run_all  # noqa: PLC0415

    results = Results()

    def _terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        run_all(args, results)
    except KeyboardInterrupt as e:
        results.check(False, "tier interrupted", str(e))
    except SystemExit as e:
        if e.code not in (0, None):
            results.check(False, "tier setup", str(e.code))
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        results.check(False, "tier crashed", f"{type(e).__name__}: {e}")
    print(f"generation {args.generation} ({args.dist}): {len(results.passed)} passed, {len(results.failed)} failed", flush=True)
    for name in results.failed:
        print(f"  failed: {name}", flush=True)
    if args.summary_file:
        Path(args.summary_file).write_text(f"{len(results.passed)} {len(results.failed)}\n")
    return 0 if not results.failed and results.passed else 1


if __name__ == "__main__":
    sys.exit(main())
