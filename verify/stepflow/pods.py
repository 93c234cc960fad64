"""The local stand-ins for the pods and Services of synthesized manifests: the shared
infrastructure of the real-StepFlow tier (verify.py, scenarios.py, resilience.py, team.py,
telemetry.py), which imports none of them.

* `Runner`: one run of the tier. It turns a container of the manifests into a process
  (`Proc`): the command, args and env as written (Service host names -> 127.0.0.1, the
  core binary and python3 -> the venvs standing in for the images), its volumes and
  read-only root in a private mount namespace, its user by setpriv; it starts pods like
  the kubelet (init containers, then the main ones; an exited main container is started
  again), runs their probes, stops them.
* `Scenario`: one set of running pods for one environment file, planned (replicas, local
  ports, a `TcpProxy` per Service with several backends) and started; a context manager
  that stops everything it started; and the checks and workflows through the core that
  the scenarios share.
* `Results`: the PASS/FAIL lines.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import math
import os
import random
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from manifests import (KIT_SERVER_ENV, KIT_WORKER, Env, config_from_manifests, container_port_by_name,
                       core_workload, is_core, module_of, pod_name, pod_spec, role, selector_matches, workloads)
from stepflow_fixtures.core import core_binary

CORE_BINARY = "/usr/local/bin/stepflow-server"

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

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """SIGTERM and SIGHUP interrupt the block; an interruption, a set-up error
        (SystemExit) or a crash inside it ends it as a failed check: '<what> interrupted',
        '<what> setup', '<what> crashed'."""
        def terminate(signum: int, _frame: Any) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, terminate)
        signal.signal(signal.SIGHUP, terminate)
        try:
            yield
        except KeyboardInterrupt as e:
            self.check(False, f"{what} interrupted", str(e))
        except SystemExit as e:
            if e.code not in (0, None):
                self.check(False, f"{what} setup", str(e.code))
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            self.check(False, f"{what} crashed", f"{type(e).__name__}: {e}")

    def summary(self, heading: str, summary_file: str) -> int:
        """Prints '<heading>N passed, M failed' and the failed checks, writes 'N M' to
        summary_file (run.sh adds them up); the exit status: 0 when something passed and
        nothing failed."""
        print(f"{heading}{len(self.passed)} passed, {len(self.failed)} failed", flush=True)
        for name in self.failed:
            print(f"  failed: {name}", flush=True)
        if summary_file:
            Path(summary_file).write_text(f"{len(self.passed)} {len(self.failed)}\n")
        return 0 if self.passed and not self.failed else 1


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def info(msg: str) -> None:
    print(f"INFO: {msg}", flush=True)


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
        try:
            self.core_bin = core_binary(self.core_venv)
        except FileNotFoundError as e:
            raise SystemExit(str(e)) from None
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
        module = module_of(c)
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
        if is_core(c):
            return None, [], True
        module = module_of(c)
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


# --------------------------------------------------------------------------- scenario

MAX_REPLICAS = 3


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
        self.monitor: threading.Thread | None = None

    def __enter__(self) -> Scenario:
        """Plans the pods and Services (nothing runs yet); leaving the block stops every
        process and proxy of the run, also on failure."""
        self.r.stop_monitor.clear()
        try:
            self.plan()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.r.stop_all()
        if self.monitor is not None and self.monitor.is_alive():
            self.monitor.join(5)

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

    @contextlib.contextmanager
    def uncounted(self) -> Iterator[Results]:
        """The checks made inside are printed but not counted: they go to the Results
        yielded (the set-up checks of a scenario whose own verdict is what counts)."""
        sub, saved = Results(), self.r.results
        self.r.results = self.res = sub
        try:
            yield sub
        finally:
            self.r.results = self.res = saved

    def start(self, core_first: bool | None = None) -> None:
        """The proxies, then the pods in two waves, the core's first or last (default: first
        for 0.11, whose core initializes its component servers at its start; last for
        0.13, whose workers must wait for the core), then the kubelet stand-in's monitor
        (Runner.monitor: an exited main container is started again)."""
        if core_first is None:
            core_first = self.r.generation == "0.11"
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
        self.monitor = threading.Thread(target=self.r.monitor, daemon=True)
        self.monitor.start()

    def start_checked(self) -> tuple[bool, dict[str, Any], dict[str, list[str]]]:
        """start(), then the checks every installation gets: each probe of each main
        container, the core's clean start, the servers listening on all addresses, the
        components the core lists. Returns (every probe passed, the StepFlow config, the
        components served per plugin)."""
        self.start()
        probes_ok = self.r.check_probes(self.label, self.reps, self.services)
        self.core_log_clean()
        self.check_listen_addresses()
        cfg = self.config()
        return probes_ok, cfg, self.check_components(cfg)

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

