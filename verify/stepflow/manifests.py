"""What the synthesized manifests say, read back from the YAML: the objects of one
environment file, its workloads and pod specs, the core's StepFlow config (the ConfigMap
key its --config names), container ports by name, and the role of each workload. Plain
functions over the parsed objects: nothing here starts a process."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KIT_WORKER = "stepflow_kit_worker"  # the python-sdk image's worker loop (containers/python-sdk)
KIT_SERVER_ENV = "STEPFLOW_KIT_SERVER"  # module:attribute of the StepflowServer the loop serves
STOCK_SERVER = "stepflow_py.worker.main:server"  # what the loop serves without KIT_SERVER_ENV


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


def container_port_by_name(wl: dict[str, Any], name_or_number: Any) -> int:
    if isinstance(name_or_number, int) or str(name_or_number).isdigit():
        return int(name_or_number)
    for c in pod_spec(wl)["containers"]:
        for p in c.get("ports") or []:
            if p.get("name") == name_or_number:
                return int(p["containerPort"])
    raise SystemExit(f"port name {name_or_number!r} not found in {wl['metadata']['name']}")


def pod_name(wl: dict[str, Any], i: int) -> str:
    """The name the controller gives replica i: <name>-<i> (StatefulSet), <name>-<hash>-<hash><i>."""
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
    return str(envs.get(KIT_SERVER_ENV) or "").strip() in ("", STOCK_SERVER)


def role(wl: dict[str, Any]) -> str:
    """core, python-sdk (the stock server), or the container's name (inference, a team's own worker)."""
    c = pod_spec(wl)["containers"][0]
    if is_core(c):
        return "core"
    if module_of(c).startswith("stepflow_py") or (module_of(c) == KIT_WORKER and serves_stock_server(c)):
        return "python-sdk"
    return c["name"]  # inference, a team's own worker
