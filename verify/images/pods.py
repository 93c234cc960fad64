"""Runs the kit's images with runc, each container configured exactly as dist/dev.yaml
configures it, and checks what the issue asks of a real image (verify/images/README.md).

The manifests are read back from the YAML. For every container of every Deployment and
StatefulSet, the OCI runtime configuration is built the way the kubelet and containerd
build it:

* process: the manifest's command and args (Kubernetes semantics over the image's
  ENTRYPOINT/CMD, $(VAR) expanded), the image's environment followed by the manifest's
  env (value, fieldRef, configMapKeyRef), HOSTNAME = the pod name, the image's working
  directory, user runAsUser:runAsGroup with fsGroup and supplementalGroups as additional
  groups, every capability set empty (drop ALL), noNewPrivileges from
  allowPrivilegeEscalation: false;
* root file system read-only when readOnlyRootFilesystem is true; seccomp: containerd's
  RuntimeDefault profile (verify/images/seccomp) when seccompProfile is RuntimeDefault;
  the CPU and memory limits as cgroup limits;
* mounts: containerd's default set (proc, dev, devpts, shm, mqueue, sysfs and cgroup read
  only), the kubelet's /etc/hosts, /etc/hostname, /etc/resolv.conf and
  /dev/termination-log, and every volumeMount: emptyDir as a directory (medium Memory:
  tmpfs with the sizeLimit), ConfigMap as its files (defaultMode), a claim of a
  volumeClaimTemplate as a directory that outlives the container; fsGroup ownership on
  all of them, as the kubelet applies it;
* every pod in one network namespace the tier made (loopback only): the kubelet's hosts
  file maps each Service's names (and the StatefulSet pods' names under their headless
  Service) to 127.0.0.1, standing in for cluster DNS and Service routing.

Results are JSON lines in the harness's results file (verify/lib/summary.py).
"""
from __future__ import annotations

import argparse
import copy
import errno
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

SCENARIO = "images"
# containerd's default capability set (pkg/oci defaultUnixCaps): the control container.
CONTAINERD_DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
PROBE_FILE = "/.stepflow-images-write-probe"

# The probe each image runs with its own tools: python3 (python-sdk, inference: distroless has
# no shell) or busybox sh (core: no python). Both try a write to the root file system and to
# every writable mount, and print /proc/self/status of a process with the container's settings.
PY_PROBE = r"""
import errno, json, os, sys
out = {"mounts": {}}
try:
    with open(sys.argv[1], "w") as f:
        f.write("x")
    out["root"] = "written"
except OSError as e:
    out["root"] = errno.errorcode.get(e.errno, str(e.errno))
for p in sys.argv[2:]:
    fn = os.path.join(p, ".stepflow-images-write-probe")
    try:
        with open(fn, "w") as f:
            f.write("x")
        os.unlink(fn)
        out["mounts"][p] = "written"
    except OSError as e:
        out["mounts"][p] = errno.errorcode.get(e.errno, str(e.errno))
with open("/proc/self/status") as f:
    out["status"] = f.read()
print(json.dumps(out))
"""
SH_PROBE = r"""
f=$1; shift
if msg=$( { : >"$f"; } 2>&1 ); then echo "root written"; else echo "root $msg"; fi
for p in "$@"; do
  if ( : >"$p/.stepflow-images-write-probe" ) 2>/dev/null; then rm -f "$p/.stepflow-images-write-probe"; echo "mount $p written"; else echo "mount $p failed"; fi
done
echo "--- status"
cat /proc/self/status
"""


class Results:
    def __init__(self, path: str) -> None:
        self.path = path
        self.failed = 0

    def check(self, ok: bool, check: str, obj: str, message: str = "") -> bool:
        row = {"scenario": SCENARIO, "check": check, "object": obj, "ok": bool(ok), "message": message}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{'PASS' if ok else 'FAIL'}: {check}: {obj}" + ("" if ok else f"\n      {message}"), flush=True)
        if not ok:
            self.failed += 1
        return ok

    def note(self, text: str) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({"scenario": SCENARIO, "note": text}) + "\n")
        print(f"NOTE: {text}", flush=True)


def log(msg: str) -> None:
    print(f"[images {time.strftime('%H:%M:%S', time.gmtime())}] {msg}", file=sys.stderr, flush=True)


# ---- the manifests --------------------------------------------------------------------------

def load_docs(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def quantity_bytes(q: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(q))
    if not m:
        raise SystemExit(f"pods.py: quantity {q!r} not understood")
    mult = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[m.group(2)]
    return int(float(m.group(1)) * mult)


def quantity_millicpu(q: str) -> int:
    q = str(q)
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined variables are replaced, $$ is a literal $,
    undefined references stay as they are."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", sub, text)


class Pod:
    """One pod of a workload: its name, containers and volumes, as the manifest says."""

    def __init__(self, docs: list[dict[str, Any]], wl: dict[str, Any]) -> None:
        self.docs = docs
        self.wl = wl
        self.kind = wl["kind"]
        self.name = f"{wl['metadata']['name']}-0"
        self.namespace = wl["metadata"].get("namespace", "default")
        self.spec = wl["spec"]["template"]["spec"]
        self.psc = self.spec.get("securityContext") or {}
        self.claims = {t["metadata"]["name"]: t for t in wl["spec"].get("volumeClaimTemplates") or []}
        self.volumes = {v["name"]: v for v in self.spec.get("volumes") or []}

    def component(self) -> str:
        return self.wl["metadata"].get("labels", {}).get("app.kubernetes.io/component", self.wl["metadata"]["name"])

    def configmap(self, name: str) -> dict[str, Any]:
        for d in self.docs:
            if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == name \
                    and d["metadata"].get("namespace", "default") == self.namespace:
                return d
        raise SystemExit(f"pods.py: ConfigMap {self.namespace}/{name} is not in the manifests")

    def env(self, c: dict[str, Any]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        known: dict[str, str] = {}
        for e in c.get("env") or []:
            if "value" in e:
                v = expand(str(e["value"]), known)
            elif "valueFrom" in e and "fieldRef" in e["valueFrom"]:
                path = e["valueFrom"]["fieldRef"]["fieldPath"]
                fields = {"metadata.name": self.name, "metadata.namespace": self.namespace,
                          "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1",
                          "spec.nodeName": "images-node",
                          "spec.serviceAccountName": self.spec.get("serviceAccountName", "default")}
                if path not in fields:
                    raise SystemExit(f"pods.py: {self.name}/{c['name']} env {e['name']}: fieldRef {path} not supported here")
                v = fields[path]
            elif "valueFrom" in e and "configMapKeyRef" in e["valueFrom"]:
                ref = e["valueFrom"]["configMapKeyRef"]
                v = str(self.configmap(ref["name"])["data"][ref["key"]])
            else:
                raise SystemExit(f"pods.py: {self.name}/{c['name']} env {e['name']}: {e.get('valueFrom')} not supported here")
            known[e["name"]] = v
            out.append((e["name"], v))
        if c.get("envFrom"):
            raise SystemExit(f"pods.py: {self.name}/{c['name']}: envFrom not supported here")
        return out

    def security(self, c: dict[str, Any]) -> dict[str, Any]:
        csc = c.get("securityContext") or {}

        def pick(key: str) -> Any:
            return csc[key] if key in csc else self.psc.get(key)
        return {
            "runAsUser": pick("runAsUser"), "runAsGroup": pick("runAsGroup"),
            "runAsNonRoot": pick("runAsNonRoot"), "fsGroup": self.psc.get("fsGroup"),
            "supplementalGroups": self.psc.get("supplementalGroups") or [],
            "readOnlyRootFilesystem": bool(csc.get("readOnlyRootFilesystem")),
            "allowPrivilegeEscalation": csc.get("allowPrivilegeEscalation", True),
            "privileged": bool(csc.get("privileged")),
            "capabilities": csc.get("capabilities") or {},
            "seccompProfile": pick("seccompProfile") or {},
        }


def pods(docs: list[dict[str, Any]]) -> list[Pod]:
    return [Pod(docs, d) for d in docs if d.get("kind") in ("Deployment", "StatefulSet")]


def hosts_entries(docs: list[dict[str, Any]]) -> list[str]:
    """Every Service name a pod may dial, and the StatefulSet pods' names under their
    headless Service, all at 127.0.0.1 (the pods share one network namespace)."""
    names: list[str] = []
    for d in docs:
        if d.get("kind") != "Service":
            continue
        s, ns = d["metadata"]["name"], d["metadata"].get("namespace", "default")
        names += [s, f"{s}.{ns}", f"{s}.{ns}.svc", f"{s}.{ns}.svc.cluster.local"]
    for d in docs:
        if d.get("kind") == "StatefulSet" and d["spec"].get("serviceName"):
            p, s, ns = f"{d['metadata']['name']}-0", d["spec"]["serviceName"], d["metadata"].get("namespace", "default")
            names += [f"{p}.{s}.{ns}.svc", f"{p}.{s}.{ns}.svc.cluster.local"]
    return names


# ---- images and bundles -----------------------------------------------------------------------

def image_config(layout: str, tag: str) -> dict[str, Any]:
    """The OCI image configuration of LAYOUT:TAG (an OCI image layout skopeo wrote)."""
    root = Path(layout)
    index = json.loads((root / "index.json").read_text())
    for m in index["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            man = json.loads(blob(root, m["digest"]).read_text())
            return json.loads(blob(root, man["config"]["digest"]).read_text())
    raise SystemExit(f"pods.py: no {tag} in {layout}")


def blob(root: Path, digest: str) -> Path:
    algo, hexd = digest.split(":", 1)
    return root / "blobs" / algo / hexd


class Container:
    def __init__(self, run: "Runner", pod: Pod, c: dict[str, Any], bundle: str, img: dict[str, Any]) -> None:
        self.run, self.pod, self.c, self.bundle, self.img = run, pod, c, Path(bundle), img
        self.id = f"{run.prefix}-{pod.component()}"
        self.sec = pod.security(c)
        self.log = run.work / f"{self.id}.log"
        self.pid = 0
        self.env = self.make_env()
        self.argv = self.make_argv()
        self.writable: list[str] = []

    def make_env(self) -> list[tuple[str, str]]:
        env: dict[str, str] = {}
        for kv in self.img.get("config", {}).get("Env") or []:
            k, _, v = kv.partition("=")
            env[k] = v
        env["HOSTNAME"] = self.pod.name
        for k, v in self.pod.env(self.c):
            env[k] = v
        return list(env.items())

    def make_argv(self) -> list[str]:
        cfg = self.img.get("config", {})
        envd = dict(self.env)
        cmd = [expand(x, envd) for x in self.c.get("command") or []]
        args = [expand(x, envd) for x in self.c.get("args") or []]
        if cmd:
            return cmd + args
        return list(cfg.get("Entrypoint") or []) + (args if "args" in self.c else list(cfg.get("Cmd") or []))

    def expected_argv(self) -> list[str]:
        envd = dict(self.env)
        return [expand(x, envd) for x in (self.c.get("command") or []) + (self.c.get("args") or [])]

    # -- the OCI runtime configuration --
    def volume_mounts(self) -> list[dict[str, Any]]:
        mounts: list[dict[str, Any]] = []
        fs_group = self.sec["fsGroup"]
        for vm in self.c.get("volumeMounts") or []:
            name, dest = vm["name"], vm["mountPath"]
            ro = bool(vm.get("readOnly"))
            vol = self.pod.volumes.get(name)
            if vol is not None and "emptyDir" in vol:
                ed = vol["emptyDir"] or {}
                if ed.get("medium") == "Memory":
                    size = quantity_bytes(ed["sizeLimit"]) if ed.get("sizeLimit") else None
                    opts = ["nosuid", "nodev", "mode=1777" if fs_group is None else "mode=2777"]
                    if fs_group is not None:
                        opts.append(f"gid={fs_group}")
                    if size:
                        opts.append(f"size={size}")
                    mounts.append({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts})
                else:
                    d = self.run.work / "pods" / self.pod.name / "volumes" / name
                    d.mkdir(parents=True, exist_ok=True)
                    os.chmod(d, 0o777)
                    self.fs_group_own(d)
                    mounts.append(self.bind(d, dest, ro))
                if not ro:
                    self.writable.append(dest)
            elif vol is not None and "configMap" in vol:
                cm = self.pod.configmap(vol["configMap"]["name"])
                d = self.run.work / "pods" / self.pod.name / "volumes" / name
                d.mkdir(parents=True, exist_ok=True)
                mode = vol["configMap"].get("defaultMode", 0o644)
                for key, value in (cm.get("data") or {}).items():
                    (d / key).write_text(value)
                    os.chmod(d / key, mode)
                self.fs_group_own(d)
                mounts.append(self.bind(d, dest, True))
            elif name in self.pod.claims or (vol is not None and "persistentVolumeClaim" in vol):
                d = self.run.claim_dir(name, self.pod.name)
                self.fs_group_own(d, recursive=True)
                mounts.append(self.bind(d, dest, ro))
                if not ro:
                    self.writable.append(dest)
            else:
                raise SystemExit(f"pods.py: {self.pod.name}/{self.c['name']}: volume {name} of a kind not supported here: {vol}")
        return mounts

    def fs_group_own(self, d: Path, recursive: bool = False) -> None:
        """The kubelet's fsGroup ownership: group fsGroup, group read/write, setgid on dirs."""
        g = self.sec["fsGroup"]
        if g is None:
            return
        paths = [d]
        if recursive:
            paths += [Path(r) / n for r, ds, fs in os.walk(d) for n in ds + fs]
        for p in paths:
            if p.is_symlink():
                continue
            os.chown(p, -1, g)
            mode = os.stat(p).st_mode
            os.chmod(p, (mode | 0o060 | (0o2010 if p.is_dir() else 0)) & 0o7777)

    @staticmethod
    def bind(src: Path, dest: str, ro: bool) -> dict[str, Any]:
        return {"destination": dest, "type": "bind", "source": str(src),
                "options": ["rbind", "rprivate", "ro" if ro else "rw"]}

    def kubelet_files(self) -> list[dict[str, Any]]:
        d = self.run.work / "pods" / self.pod.name / "kubelet"
        d.mkdir(parents=True, exist_ok=True)
        hosts = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback",
                 f"127.0.0.1 {self.pod.name}"] + [f"127.0.0.1 {n}" for n in self.run.hosts]
        (d / "hosts").write_text("\n".join(hosts) + "\n")
        (d / "hostname").write_text(self.pod.name + "\n")
        ns = self.pod.namespace
        (d / "resolv.conf").write_text(f"search {ns}.svc.cluster.local svc.cluster.local cluster.local\n"
                                       "nameserver 127.0.0.1\noptions ndots:5\n")
        term = d / f"termination-log-{self.c['name']}"
        term.write_text("")
        os.chmod(term, 0o666)
        for f in ("hosts", "hostname", "resolv.conf"):
            os.chmod(d / f, 0o644)
        return [self.bind(d / "hosts", "/etc/hosts", False), self.bind(d / "hostname", "/etc/hostname", False),
                self.bind(d / "resolv.conf", "/etc/resolv.conf", False),
                self.bind(term, "/dev/termination-log", False)]

    def config(self, control: bool = False, argv: list[str] | None = None) -> dict[str, Any]:
        base = json.loads((self.bundle / "config.json").read_text())
        sec = self.sec
        if sec["privileged"]:
            raise SystemExit(f"pods.py: {self.id}: privileged containers are not run here")
        if (sec["capabilities"].get("add") or []) or "ALL" not in (sec["capabilities"].get("drop") or []):
            raise SystemExit(f"pods.py: {self.id}: only 'drop: [ALL]' without additions is run here, got {sec['capabilities']}")
        uid = sec["runAsUser"] if sec["runAsUser"] is not None else 0
        gid = sec["runAsGroup"] if sec["runAsGroup"] is not None else 0
        if control:
            uid = gid = 0
        extra = sorted({g for g in [sec["fsGroup"], *sec["supplementalGroups"]] if g is not None})
        proc = base["process"]
        proc["terminal"] = False
        proc["args"] = argv or self.argv
        proc["env"] = [f"{k}={v}" for k, v in self.env]
        proc["cwd"] = self.img.get("config", {}).get("WorkingDir") or "/"
        proc["user"] = {"uid": uid, "gid": gid, "additionalGids": extra}
        caps: list[str] = CONTAINERD_DEFAULT_CAPS if control else []
        proc["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
        proc["capabilities"].update({"inheritable": [], "ambient": []})
        proc["noNewPrivileges"] = False if control else (sec["allowPrivilegeEscalation"] is False)
        proc.pop("rlimits", None)
        proc.pop("apparmorProfile", None)
        proc.pop("selinuxLabel", None)
        cfg: dict[str, Any] = {"ociVersion": base["ociVersion"], "process": proc,
                               "root": {"path": str(self.bundle / "rootfs"),
                                        "readonly": False if control else sec["readOnlyRootFilesystem"]},
                               "hostname": self.pod.name}
        volume_mounts = self.volume_mounts()
        taken = {m["destination"] for m in volume_mounts}
        defaults = [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ]
        cfg["mounts"] = [m for m in defaults if m["destination"] not in taken] + self.kubelet_files() + volume_mounts
        linux = base.get("linux", {})
        linux["namespaces"] = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                               {"type": "cgroup"}, {"type": "network", "path": self.run.netns_path}]
        linux.pop("uidMappings", None)
        linux.pop("gidMappings", None)
        linux["cgroupsPath"] = f"/{self.run.prefix}/{self.id}{'-control' if control else ''}"
        res = linux.setdefault("resources", {})
        limits = (self.c.get("resources") or {}).get("limits") or {}
        if "memory" in limits:
            res["memory"] = {"limit": quantity_bytes(limits["memory"])}
        if "cpu" in limits:
            res["cpu"] = {"period": 100000, "quota": quantity_millicpu(limits["cpu"]) * 100}
        sp = sec["seccompProfile"]
        if not control:
            if sp.get("type") != "RuntimeDefault":
                raise SystemExit(f"pods.py: {self.id}: seccompProfile {sp} (only RuntimeDefault is run here)")
            linux["seccomp"] = self.run.seccomp
        else:
            linux.pop("seccomp", None)
        cfg["linux"] = linux
        return cfg

    # -- running --
    def start(self, control: bool = False, argv: list[str] | None = None, name: str | None = None) -> None:
        cid = name or self.id
        bdir = self.run.work / "bundles" / cid
        bdir.mkdir(parents=True, exist_ok=True)
        (bdir / "config.json").write_text(json.dumps(self.config(control, argv), indent=2))
        log_path = self.run.work / f"{cid}.log"
        with open(log_path, "wb") as out:
            r = subprocess.run([*self.run.runc, "run", "-d", "--bundle", str(bdir), "--pid-file", str(bdir / "pid"), cid],
                               stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        if r.returncode != 0:
            raise RuntimeError(f"runc run {cid} failed (exit {r.returncode}): {tail(log_path)}")
        self.run.started.append(cid)
        if name is None:
            self.pid = int((bdir / "pid").read_text())
            self.log = log_path

    def alive(self, cid: str | None = None) -> bool:
        r = subprocess.run([*self.run.runc, "state", cid or self.id], capture_output=True, text=True)
        return r.returncode == 0 and json.loads(r.stdout).get("status") == "running"

    def exec(self, argv: list[str], timeout: float = 60, cid: str | None = None) -> subprocess.CompletedProcess:
        """A process in the container with the container's own settings (user, groups,
        capabilities, no_new_privs, environment; seccomp and cgroup are the container's)."""
        cid = cid or self.id
        cfg = json.loads((self.run.work / "bundles" / cid / "config.json").read_text())
        proc = copy.deepcopy(cfg["process"])
        proc["args"] = argv
        pfile = self.run.work / "bundles" / cid / f"exec-{random.randrange(1 << 30)}.json"
        pfile.write_text(json.dumps(proc))
        try:
            return subprocess.run([*self.run.runc, "exec", "--process", str(pfile), cid],
                                  capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        finally:
            pfile.unlink(missing_ok=True)

    def stop(self, cid: str | None = None, grace: float = 15.0) -> None:
        cid = cid or self.id
        subprocess.run([*self.run.runc, "kill", cid, "TERM"], capture_output=True)
        end = time.time() + grace
        while time.time() < end and self.alive(cid):
            time.sleep(0.2)
        subprocess.run([*self.run.runc, "delete", "-f", cid], capture_output=True)
        if cid in self.run.started:
            self.run.started.remove(cid)


def tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def parse_status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip()] = v.strip()
    return out


class Runner:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.res = Results(a.results)
        self.work = Path(a.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.runc = [a.runc, "--root", str(self.work / "runc")]
        self.prefix = a.prefix
        self.netns_path = f"/var/run/netns/{a.netns}"
        self.seccomp = json.loads(Path(a.seccomp).read_text())
        self.docs = load_docs(a.dist)
        self.hosts = hosts_entries(self.docs)
        self.started: list[str] = []
        self.containers: dict[str, Container] = {}
        self.bundles = dict(x.split("=", 1) for x in a.bundle)
        self.layouts = dict(x.split("=", 1) for x in a.layout)

    def claim_dir(self, claim: str, pod: str) -> Path:
        d = self.work / "claims" / f"{claim}-{pod}"
        if not d.exists():
            d.mkdir(parents=True)
            if claim == "model-cache" and self.a.model_dir:
                shutil.copytree(self.a.model_dir, d / self.a.model_name)
        return d

    def container(self, component: str) -> Container:
        if component in self.containers:
            return self.containers[component]
        for pod in pods(self.docs):
            if pod.component() != component:
                continue
            cs = pod.spec["containers"]
            if len(cs) != 1 or pod.spec.get("initContainers"):
                raise SystemExit(f"pods.py: {pod.name}: one container and no init containers expected")
            c = cs[0]
            layout, _, tag = self.layouts[component].rpartition(":")
            ctr = Container(self, pod, c, self.bundles[component], image_config(layout, tag))
            self.containers[component] = ctr
            return ctr
        raise SystemExit(f"pods.py: no workload of component {component} in {self.a.dist}")

    def stop_all(self) -> None:
        for cid in list(self.started):
            subprocess.run([*self.runc, "kill", cid, "KILL"], capture_output=True)
            subprocess.run([*self.runc, "delete", "-f", cid], capture_output=True)
        self.started.clear()

    # ---- checks ----
    def probe(self, ctr: Container, cid: str | None = None) -> tuple[str, dict[str, str], dict[str, str], str]:
        """(root write result, mount -> result, /proc/self/status fields, raw output)"""
        shell = ctr.pod.component() == "core"
        if shell:
            r = ctr.exec(["/bin/sh", "-c", SH_PROBE, "sh", PROBE_FILE, *ctr.writable], cid=cid)
            out = r.stdout
            head, _, status = out.partition("--- status\n")
            root = "?"
            mounts: dict[str, str] = {}
            for line in head.splitlines():
                if line.startswith("root "):
                    msg = line[5:]
                    root = "written" if msg == "written" else ("EROFS" if "Read-only file system" in msg else msg)
                elif line.startswith("mount "):
                    p, _, v = line[6:].rpartition(" ")
                    mounts[p] = v
            return root, mounts, parse_status(status), out + r.stderr
        r = ctr.exec(["python3", "-c", PY_PROBE, PROBE_FILE, *ctr.writable], cid=cid)
        try:
            data = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return "?", {}, {}, r.stdout + r.stderr
        return data["root"], data["mounts"], parse_status(data["status"]), r.stdout + r.stderr

    def status_verdicts(self, st: dict[str, str], ctr: Container) -> dict[str, tuple[bool, str]]:
        sec = ctr.sec
        uid, gid = sec["runAsUser"], sec["runAsGroup"]
        groups = sorted({g for g in [sec["fsGroup"], *sec["supplementalGroups"]] if g is not None})
        v: dict[str, tuple[bool, str]] = {}
        v["uids"] = (st.get("Uid", "").split() == [str(uid)] * 4 and st.get("Gid", "").split() == [str(gid)] * 4
                     and sorted(int(x) for x in st.get("Groups", "").split()) == groups,
                     f"Uid {st.get('Uid')!r} Gid {st.get('Gid')!r} Groups {st.get('Groups')!r}; manifest: {uid}, {gid}, {groups}")
        capsets = {k: st.get(k) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
        v["caps"] = (all(x is not None and int(x, 16) == 0 for x in capsets.values()), f"{capsets}")
        v["nnp"] = (st.get("NoNewPrivs") == "1", f"NoNewPrivs {st.get('NoNewPrivs')!r}")
        v["seccomp"] = (st.get("Seccomp") == "2" and int(st.get("Seccomp_filters", "0") or 0) >= 1,
                        f"Seccomp {st.get('Seccomp')!r} Seccomp_filters {st.get('Seccomp_filters')!r}")
        return v

    def check_security(self, ctr: Container) -> None:
        comp = ctr.pod.component()
        obj = f"{comp} ({ctr.pod.name}, {ctr.c['image']})"
        cmdline = Path(f"/proc/{ctr.pid}/cmdline").read_bytes().split(b"\0")[:-1]
        got = [x.decode() for x in cmdline]
        self.res.check(got == ctr.expected_argv(), "the process runs the manifest's command and args", obj,
                       f"/proc/{ctr.pid}/cmdline {got}, manifest {ctr.expected_argv()}")
        main = parse_status(Path(f"/proc/{ctr.pid}/status").read_text())
        for key, (ok, msg) in self.status_verdicts(main, ctr).items():
            what = {"uids": "the manifest's runAsUser, runAsGroup and fsGroup", "caps": "no capabilities (CapInh/Prm/Eff/Bnd/Amb 0)",
                    "nnp": "NoNewPrivs: 1", "seccomp": "seccomp filtering (Seccomp: 2)"}[key]
            self.res.check(ok, f"the main process's /proc/PID/status: {what}", obj, msg)
        root, mounts, st, raw = self.probe(ctr)
        self.res.check(root == "EROFS", "a write to the root file system fails with EROFS", obj,
                       f"open({PROBE_FILE}, 'w') gave {root}: {raw[-400:]}")
        for key, (ok, msg) in self.status_verdicts(st, ctr).items():
            self.res.check(ok, f"/proc/self/status of a process with the container's settings: {key}", obj, msg)
        self.res.check(bool(ctr.writable) and all(mounts.get(p) == "written" for p in ctr.writable),
                       "every emptyDir and claim path is writable by the container's user", obj,
                       f"writable mounts {ctr.writable}: {mounts}")

    def control(self, ctr: Container) -> None:
        """The same probe in a container of the same image with the protections off (user
        root, root file system writable, containerd's default capabilities, no_new_privs
        off, no seccomp): every verdict must turn, else the checks could not fail."""
        cid = f"{ctr.id}-control"
        ctr.start(control=True, argv=["/bin/sh", "-c", "sleep 600"], name=cid)
        try:
            root, _, st, raw = self.probe(ctr, cid=cid)
            v = self.status_verdicts(st, ctr)
            self.res.check(root == "written", "control: a root file system write succeeds where readOnlyRootFilesystem is off",
                           cid, f"{root}: {raw[-300:]}")
            for key in ("uids", "caps", "nnp", "seccomp"):
                self.res.check(not v[key][0], f"control: the {key} check fails on a container without that protection", cid, v[key][1])
        finally:
            ctr.stop(cid, grace=1)
            # The control wrote into the unpacked image the other containers run from.
            Path(ctr.bundle / "rootfs" / PROBE_FILE.lstrip("/")).unlink(missing_ok=True)

    def http(self, method: str, url: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")
        except (urllib.error.URLError, OSError) as e:
            return 0, str(e)

    def probe_once(self, ctr: Container, probe: dict[str, Any]) -> tuple[bool, str]:
        if "exec" in probe:
            r = ctr.exec(probe["exec"]["command"], timeout=float(probe.get("timeoutSeconds", 1)) + 10)
            return r.returncode == 0, f"exit {r.returncode} {r.stderr.strip()[-200:]}"
        if "httpGet" in probe:
            port = probe["httpGet"]["port"]
            if isinstance(port, str):
                port = next(p["containerPort"] for p in ctr.c.get("ports", []) if p.get("name") == port)
            st, body = self.http("GET", f"http://127.0.0.1:{port}{probe['httpGet'].get('path', '/')}",
                                 timeout=float(probe.get("timeoutSeconds", 1)))
            return 200 <= st < 400, f"HTTP {st} {str(body)[:200]}"
        return False, f"probe kind not supported here: {probe}"

    def wait_probe(self, ctr: Container, kind: str, budget: float) -> None:
        probe = ctr.c.get(kind)
        if not probe:
            return
        obj = f"{ctr.pod.component()} ({ctr.pod.name})"
        t0 = time.time()
        ok, detail = False, ""
        while time.time() - t0 < budget:
            ok, detail = self.probe_once(ctr, probe)
            if ok or not ctr.alive():
                break
            time.sleep(float(probe.get("periodSeconds", 10)) / 4)
        self.res.check(ok, f"the manifest's {kind} passes", obj,
                       f"after {time.time() - t0:.1f} s: {detail}; log: {tail(ctr.log, 8)}")

    def budget(self, ctr: Container, kind: str) -> float:
        p = ctr.c.get(kind) or {}
        return float(p.get("initialDelaySeconds", 0)) + float(p.get("failureThreshold", 3)) * float(p.get("periodSeconds", 10))

    def run_flow(self, core: str, flow: dict[str, Any], inp: Any, timeout: int = 120) -> tuple[bool, Any, str]:
        st, stored = self.http("POST", f"{core}/flows", {"flow": flow})
        if st != 200 or not isinstance(stored, dict) or not stored.get("flowId"):
            return False, None, f"store flow: HTTP {st} {str(stored)[:300]}"
        st, run = self.http("POST", f"{core}/runs", {"flowId": stored["flowId"], "input": [inp], "wait": True,
                                                      "timeoutSecs": timeout}, timeout=timeout + 10)
        if st != 200 or not isinstance(run, dict) or not run.get("results"):
            return False, None, f"run: HTTP {st} {str(run)[:300]}"
        item = run["results"][0]
        if item.get("status") in ("completed", 2) and "output" in item:
            return True, item["output"], "completed"
        return False, None, f"status {item.get('status')}: {str(item)[:400]}"

    def component_path(self, config: dict[str, Any], plugin: str, name: str) -> str:
        for key, rules in (config.get("routes") or {}).items():
            if any(r.get("plugin") == plugin for r in rules or []) and key != "/":
                return key.rstrip("/") + "/" + name.lstrip("/")
        raise SystemExit(f"pods.py: no route for plugin {plugin}")

    def flows(self, core_ctr: Container) -> None:
        port = next(p["containerPort"] for p in core_ctr.c.get("ports", []))
        core = f"http://127.0.0.1:{port}/api/v1"
        st, body = self.http("GET", f"{core}/health")
        self.res.check(st == 200 and isinstance(body, dict) and body.get("status") == "healthy",
                       "the core answers GET /api/v1/health", core_ctr.c["image"], f"HTTP {st} {body}")
        cfg_vol = next(v for v in core_ctr.pod.volumes.values() if "configMap" in v)
        config = yaml.safe_load(next(iter(core_ctr.pod.configmap(cfg_vol["configMap"]["name"])["data"].values())))
        # The workers register their components through the core.
        want = {p for p, spec in config["plugins"].items() if spec.get("type") == "grpc"}
        served: dict[str, list[str]] = {}
        t0 = time.time()
        workers = [c for c in self.containers.values() if c is not core_ctr]
        while time.time() - t0 < 300:
            st, body = self.http("GET", f"{core}/components?includeSchemas=false")
            listed = body.get("components", []) if isinstance(body, dict) else []
            served = {p: [c.get("componentId") for c in listed if c.get("plugin") == p] for p in want}
            if all(served.values()) or not all(w.alive() for w in workers):
                break
            time.sleep(3)
        for p in sorted(want):
            self.res.check(bool(served.get(p)), f"the core lists the components of plugin {p!r} (its worker connected)",
                           f"queue {config['plugins'][p].get('queueName')}", f"after {time.time() - t0:.0f} s: {served.get(p)}")
        # python-sdk: a UDF.
        a, b = random.randint(1, 10**6), random.randint(1, 10**6)
        udf = next((c for c in served.get("python", []) if c.strip("/") == "udf"), None)
        if udf:
            st, blob_ = self.http("POST", f"{core}/blobs", {"data": {
                "code": "input['a'] + input['b']",
                "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                                 "required": ["a", "b"]}}})
            path = self.component_path(config, "python", udf)
            ok, out, detail = self.run_flow(core, {"name": "images-udf", "steps": [
                {"id": "add", "component": path, "input": {"blob_id": (blob_ or {}).get("blobId"), "input": {"$input": "$"}}}],
                "output": {"$step": "add"}}, {"a": a, "b": b})
            self.res.check(ok and out == a + b, "a flow runs a UDF on the python-sdk image through the core", path,
                           f"a={a} b={b}: expected {a + b}, got {out!r} ({detail})")
        else:
            self.res.check(False, "a flow runs a UDF on the python-sdk image through the core", "python", f"no udf in {served.get('python')}")
        embed = next((c for c in served.get("inference", []) if c.strip("/") == "embed"), None)
        if embed:
            path = self.component_path(config, "inference", embed)
            texts = [f"images tier {random.randint(0, 10**6)}", "the cat sat on the mat"]
            ok, out, detail = self.run_flow(core, {"name": "images-embed", "steps": [
                {"id": "e", "component": path, "input": {"texts": {"$input": "texts"}}}], "output": {"$step": "e"}},
                {"texts": texts}, timeout=300)
            vecs = out.get("embeddings") if isinstance(out, dict) else None
            norms = [math.sqrt(sum(x * x for x in v)) for v in vecs] if vecs else []
            good = ok and vecs is not None and len(vecs) == 2 and all(abs(n - 1) < 1e-3 for n in norms) \
                and {len(v) for v in vecs} == {384}
            self.res.check(good, "a flow embeds texts with the inference image and the mounted model through the core", path,
                           f"{len(vecs or [])} vectors, dims {sorted({len(v) for v in vecs or []})}, norms "
                           f"{[round(n, 4) for n in norms]}, model {out.get('model') if isinstance(out, dict) else None} ({detail})")
        else:
            self.res.check(False, "a flow embeds texts with the inference image and the mounted model through the core",
                           "inference", f"no embed in {served.get('inference')}")

    def state_db(self, core_ctr: Container) -> None:
        """The core keeps its sqlite database on the claim mounted at the state path; the
        image's own sqlite3 reads it and backs it up as containers/README.md says."""
        state = next(vm for vm in core_ctr.c["volumeMounts"] if vm["name"] in core_ctr.pod.claims)
        host = self.claim_dir(state["name"], core_ctr.pod.name) / "stepflow.db"
        ok = host.is_file() and host.read_bytes()[:16] == b"SQLite format 3\x00"
        st = host.stat() if host.exists() else None
        self.res.check(ok and st is not None and st.st_uid == core_ctr.sec["runAsUser"],
                       f"the core keeps its sqlite database on the claim mounted at {state['mountPath']}", str(host),
                       f"exists {host.exists()}, SQLite header {ok}, owner uid {st.st_uid if st else None}")
        db = f"{state['mountPath']}/stepflow.db"
        r = core_ctr.exec(["sqlite3", db, "select name from sqlite_master where type='table' order by name"])
        tables = r.stdout.split()
        runs = next((t for t in tables if t in ("runs", "flow_runs")), None)
        count = core_ctr.exec(["sqlite3", db, f"select count(*) from {runs}"]).stdout.strip() if runs else ""
        self.res.check(r.returncode == 0 and runs is not None and count.isdigit() and int(count) >= 2,
                       "the image's sqlite3 reads the core's database: the flows' runs are in it", db,
                       f"exit {r.returncode} {r.stderr.strip()[:200]}; tables {tables}; rows in {runs}: {count!r}")
        backup = f"{state['mountPath']}/images-backup.db"
        r = core_ctr.exec(["sqlite3", db, f".backup {backup}"])
        chk = core_ctr.exec(["sqlite3", backup, "pragma integrity_check"])
        self.res.check(r.returncode == 0 and chk.stdout.strip() == "ok",
                       "the backup command of containers/README.md works in the running core", backup,
                       f"backup exit {r.returncode} {r.stderr.strip()[:200]}; integrity_check {chk.stdout.strip()!r}")

    def run_all(self) -> None:
        order = ["core", "python-sdk", "inference"]
        for comp in order:
            ctr = self.container(comp)
            log(f"starting {ctr.id}: {' '.join(ctr.argv)} as {ctr.sec['runAsUser']}:{ctr.sec['runAsGroup']}")
            ctr.start()
        core = self.containers["core"]
        for comp in order:
            ctr = self.containers[comp]
            self.wait_probe(ctr, "startupProbe", self.budget(ctr, "startupProbe"))
        for comp in order:
            ctr = self.containers[comp]
            if not ctr.alive():
                self.res.check(False, "the container keeps running", ctr.id, tail(ctr.log))
                continue
            self.check_security(ctr)
            self.wait_probe(ctr, "readinessProbe", self.budget(ctr, "readinessProbe"))
            self.wait_probe(ctr, "livenessProbe", self.budget(ctr, "livenessProbe"))
        self.flows(core)
        self.state_db(core)
        for comp in order:
            ctr = self.containers[comp]
            self.res.check(ctr.alive(), "the container ran throughout without exiting", ctr.id, tail(ctr.log))
        self.control(core)
        for comp in reversed(order):
            self.containers[comp].stop(grace=min(15.0, float(self.containers[comp].pod.spec.get("terminationGracePeriodSeconds", 30))))

    def run_marker(self, comp: str, marker: str, expect: bool) -> None:
        """Start COMPONENT as the manifest runs it and report whether MARKER shows in its log
        within 60 s (the rebuilt image's change), then stop it."""
        ctr = self.container(comp)
        ctr.start()
        t0 = time.time()
        seen = False
        while time.time() - t0 < 60:
            text = ctr.log.read_text(errors="replace")
            seen = marker in text
            # The marker is printed when the package is imported, before the process logs
            # anything: its first log line means the import is over.
            if seen or '"level"' in text or not ctr.alive():
                break
            time.sleep(0.5)
        ctr.stop(grace=5)
        self.res.check(seen == expect, f"the freshly pulled {comp} image runs {'the changed' if expect else 'the original'} source",
                       ctr.c["image"], f"marker {marker!r} {'seen' if seen else 'not seen'} in the log: {tail(ctr.log, 5)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["all", "marker"])
    ap.add_argument("--dist", required=True)
    ap.add_argument("--bundle", action="append", default=[], help="COMPONENT=DIR (umoci's bundle)")
    ap.add_argument("--layout", action="append", default=[], help="COMPONENT=OCI_LAYOUT:TAG (the pulled image)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--runc", required=True)
    ap.add_argument("--netns", required=True)
    ap.add_argument("--prefix", required=True, help="container id and cgroup prefix")
    ap.add_argument("--seccomp", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--model-dir", default="")
    ap.add_argument("--model-name", default="all-MiniLM-L6-v2")
    ap.add_argument("--component", default="")
    ap.add_argument("--marker", default="")
    ap.add_argument("--expect", choices=["yes", "no"], default="yes")
    a = ap.parse_args()
    r = Runner(a)

    def on_signal(signum: int, _frame: Any) -> None:
        r.stop_all()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if a.mode == "all":
            r.run_all()
        else:
            r.run_marker(a.component, a.marker, a.expect == "yes")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        r.res.check(False, "the containers run", a.mode, str(e))
    except Exception as e:  # a failure of this program is a failed check, never a silent one
        import traceback
        r.res.check(False, "verify/images/pods.py runs to its end", a.mode,
                    f"{type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}")
    finally:
        r.stop_all()
    return 1 if r.res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
