"""What the node tier's checks share: results, kubectl, port-forwards (standard library only).

Every check runs inside the node's network namespace (verify/node/run.sh starts this program
with in_node), so the API server, the Service addresses and the port-forwards are reachable.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NETPROBE = (HERE / "netprobe.py").read_text()


def log(msg: str) -> None:
    print(f"[node {time.strftime('%H:%M:%S', time.gmtime())}] {msg}", file=sys.stderr, flush=True)


class Results:
    """Rows for verify/lib/summary.py: one JSON line per check, {"note": ...} per figure."""

    def __init__(self, path: str, scenario: str) -> None:
        self.path = path
        self.scenario = scenario
        self.failed = 0

    def _write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def check(self, ok: bool, check: str, obj: str, message: str = "") -> bool:
        self._write({"scenario": self.scenario, "check": check, "object": obj, "ok": bool(ok), "message": message})
        print(f"{'PASS' if ok else 'FAIL'}: [{self.scenario}] {check}: {obj}" + (f" -- {message}" if message and not ok else ""),
              file=sys.stderr, flush=True)
        if not ok:
            self.failed += 1
        return bool(ok)

    def note(self, text: str) -> None:
        self._write({"scenario": self.scenario, "note": text})
        print(f"FIGURE: [{self.scenario}] {text}", file=sys.stderr, flush=True)


class KubectlError(RuntimeError):
    pass


class Kube:
    def __init__(self, kubectl: str, kubeconfig: str) -> None:
        self.kubectl = kubectl
        self.kubeconfig = kubeconfig

    def cmd(self, *args: str) -> list[str]:
        return [self.kubectl, "--kubeconfig", self.kubeconfig, *args]

    def run(self, *args: str, input: str | None = None, timeout: float = 120, check: bool = True) -> str:
        p = subprocess.run(self.cmd(*args), input=input, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)}: exit {p.returncode}: {(p.stderr or p.stdout).strip()[:800]}")
        return p.stdout

    def json(self, *args: str, timeout: float = 60) -> Any:
        return json.loads(self.run(*args, "-o", "json", timeout=timeout))

    def apply(self, manifest: str) -> str:
        return self.run("apply", "-f", "-", input=manifest)

    def pods(self, ns: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", "pods", "-n", ns]
        if selector:
            args += ["-l", selector]
        return self.json(*args)["items"]

    def pod(self, ns: str, name: str) -> dict[str, Any]:
        return self.json("get", "pod", "-n", ns, name)

    def exec(self, ns: str, pod: str, container: str | None, argv: list[str], timeout: float = 60,
             input: str | None = None) -> tuple[int, str, str]:
        args = ["exec", "-n", ns, pod]
        if input is not None:
            args.append("-i")
        if container:
            args += ["-c", container]
        p = subprocess.run(self.cmd(*args, "--", *argv), input=input, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def wait_pods_ready(self, ns: str, selector: str | None, timeout: float, count: int | None = None) -> tuple[bool, str]:
        """All pods matching (and at least `count`, when given) Ready, none terminating."""
        end = time.time() + timeout
        detail = ""
        while time.time() < end:
            pods = [p for p in self.pods(ns, selector) if not p["metadata"].get("deletionTimestamp")]
            ready = [p for p in pods if is_ready(p)]
            detail = ", ".join(f"{p['metadata']['name']}={phase_of(p)}" for p in pods) or "no pods"
            if pods and len(ready) == len(pods) and (count is None or len(pods) == count):
                return True, detail
            time.sleep(1)
        return False, detail


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions") or [])


def phase_of(pod: dict[str, Any]) -> str:
    st = pod.get("status", {})
    bits = [st.get("phase", "?")]
    for cs in st.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "waiting" in state:
            bits.append(f"{cs['name']}:{state['waiting'].get('reason')}")
        elif not cs.get("ready"):
            bits.append(f"{cs['name']}:not-ready")
    return "/".join(bits)


def ts(s: str | None) -> float | None:
    """RFC 3339 (as the API server writes it) -> epoch seconds."""
    if not s:
        return None
    import calendar
    return calendar.timegm(time.strptime(s.replace("Z", "").split(".")[0], "%Y-%m-%dT%H:%M:%S"))


class PortForward:
    """`kubectl port-forward` to a Service (or pod) on a free port of 127.0.0.1, as a developer
    reaches the core: the kubelet streams the connection into the pod's network namespace."""

    def __init__(self, kube: Kube, ns: str, target: str, port: int) -> None:
        self.kube, self.ns, self.target, self.port = kube, ns, target, port
        self.proc: subprocess.Popen[str] | None = None
        self.local = 0
        self.lines: list[str] = []

    def start(self, timeout: float = 30) -> str:
        self.stop()
        self.lines = []
        self.proc = subprocess.Popen(
            self.kube.cmd("port-forward", "-n", self.ns, "--address", "127.0.0.1", self.target, f":{self.port}"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        found = threading.Event()

        def read() -> None:
            assert self.proc and self.proc.stdout
            for line in self.proc.stdout:
                self.lines.append(line.rstrip())
                m = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", line)
                if m and not found.is_set():
                    self.local = int(m.group(1))
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(timeout):
            out = "\n".join(self.lines[-5:])
            self.stop()
            raise KubectlError(f"port-forward {self.target}: no local port within {timeout:g} s: {out}")
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


class Listener:
    """netprobe.py listening in a pod's container (kubectl exec -i: closing stdin stops it) or
    in a network namespace of the tier (a local process)."""

    def __init__(self, argv: list[str], label: str) -> None:
        self.label = label
        self.accepted: list[str] = []
        self.lines: list[str] = []
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            line = line.rstrip()
            self.lines.append(line)
            if line == "LISTENING":
                self.ready.set()
            elif line.startswith("ACCEPT "):
                self.accepted.append(line.split()[1])

    def wait(self, timeout: float = 30) -> bool:
        return self.ready.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin
                self.proc.stdin.close()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()

    @staticmethod
    def in_pod(kube: Kube, ns: str, pod: str, container: str | None, host: str, port: int, seconds: int) -> Listener:
        args = ["exec", "-i", "-n", ns, pod] + (["-c", container] if container else [])
        return Listener(kube.cmd(*args, "--", "python3", "-c", NETPROBE, "listen", host, str(port), str(seconds)),
                        f"{pod}:{port}")

    @staticmethod
    def in_netns(netns: str, host: str, port: int, seconds: int) -> Listener:
        return Listener(["nsenter", f"--net=/run/netns/{netns}", sys.executable, str(HERE / "netprobe.py"),
                         "listen", host, str(port), str(seconds)], f"{netns} {host}:{port}")


def probe_connect(kube: Kube | None, where: tuple[str, str, str | None] | None, targets: list[str],
                  timeout: float = 3) -> dict[str, str]:
    """Connects from a pod's container (`where` = ns, pod, container) or, with `where` None,
    from the node's own network namespace; {target: outcome}."""
    if where is None:
        p = subprocess.run([sys.executable, str(HERE / "netprobe.py"), "connect", str(timeout), *targets],
                           capture_output=True, text=True, timeout=30 + timeout * len(targets))
        out = p.stdout
    else:
        assert kube is not None
        rc, out, err = kube.exec(where[0], where[1], where[2], ["python3", "-c", NETPROBE, "connect", str(timeout), *targets],
                                 timeout=30 + timeout * len(targets))
        if rc != 0:
            return {t: f"error: exec exit {rc}: {err.strip()[:200]}" for t in targets}
    result = {}
    for line in out.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        result[row["target"]] = row["outcome"]
    return {t: result.get(t, "error: no answer") for t in targets}


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default
