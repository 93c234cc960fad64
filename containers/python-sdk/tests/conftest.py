"""Fixtures: the real StepFlow core 0.13 (stepflow-server from the stepflow-orchestrator
wheel) on a free port of 127.0.0.1, which a test can kill and start again on the same
port, and `python3 -m stepflow_kit_worker` processes with the environment the
constructs give the python-sdk container for StepFlow 0.13.

containers/python-sdk/tests/run.sh runs these tests in a virtualenv with the contract's
0.13 versions of stepflow-py and stepflow-orchestrator."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

TESTS_DIR = Path(__file__).resolve().parent
PKG_DIR = TESTS_DIR.parent  # holds stepflow_kit_worker/
RUN_COMPLETED = 2  # results[].status in the 0.13 REST API


def _contract_path() -> Path:
    env = os.environ.get("STEPFLOW_KIT_CONTRACT")
    if env:
        return Path(env)
    return TESTS_DIR.parents[2] / "src" / "contract.json"


@pytest.fixture(scope="session")
def contract() -> dict[str, Any]:
    path = _contract_path()
    assert path.is_file(), f"contract not found: {path} (set STEPFLOW_KIT_CONTRACT)"
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def sdk_contract(contract: dict[str, Any]) -> dict[str, Any]:
    return contract["components"]["python-sdk"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def core_binary() -> Path:
    spec = importlib.util.find_spec("stepflow_orchestrator")
    assert spec is not None and spec.origin, "stepflow-orchestrator is not importable"
    binary = Path(spec.origin).parent / "bin" / "stepflow-server"
    assert binary.is_file(), binary
    return binary


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> float:
    """Poll predicate() until it is true; returns the seconds it took."""
    t0 = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Core:
    """One stepflow-server 0.13 with a gRPC plugin for the queue `queue`, routed at
    /<route>, as the constructs configure the python-sdk plugin for 0.13. start() after
    kill() reuses the port, as a restarted pod keeps its Service address."""

    def __init__(self, workdir: Path, queue: str, route: str, health: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.health = health
        self.config = workdir / "stepflow-config.yml"
        self.config.write_text(
            json.dumps(  # JSON is valid YAML
                {
                    "plugins": {
                        "builtin": {"type": "builtin"},
                        route: {"type": "grpc", "queueName": queue},
                    },
                    "routes": {f"/{route}": [{"plugin": route}], "/": [{"plugin": "builtin"}]},
                    "storageConfig": {"type": "inMemory"},
                }
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def address(self) -> str:  # what STEPFLOW_TASKS_URL / STEPFLOW_BLOB_URL hold
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.address}"

    @property
    def log(self) -> Path:
        return self.workdir / f"core-{self.starts}.log"

    def start(self, timeout: float = 60) -> Core:
        assert self.proc is None or self.proc.poll() is not None, "core already running"
        self.starts += 1
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(core_binary()), "--port", str(self.port), "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )

        def healthy() -> bool:
            assert self.proc is not None
            assert self.proc.poll() is None, f"core exited:\n{self.log.read_text()}"
            try:
                return httpx.get(self.base_url + self.health, timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout, "the core's health endpoint")
        return self

    def kill(self) -> None:
        """kill -9: no goodbye to the workers (a crashed or evicted pod)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)

    def terminate(self) -> None:
        """SIGTERM: the core ends its sessions (a pod deleted or rolled)."""
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)


@pytest.fixture
def core(tmp_path: Path, contract: dict[str, Any], sdk_contract: dict[str, Any]) -> Iterator[Core]:
    prefix = sdk_contract["routePrefix"]
    c = Core(tmp_path, prefix, prefix, contract["components"]["core"]["health"]["readiness"])
    try:
        yield c.start()
    finally:
        c.stop()


class Worker:
    """One `python3 -m stepflow_kit_worker` process."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.log = workdir / "worker.log"
        self.heartbeat = Path(env["STEPFLOW_KIT_HEARTBEAT_FILE"])
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stepflow_kit_worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records (stepflow-py logs one JSON object per line)."""
        out = []
        for line in self.text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        return self.proc.returncode


def worker_env(core: Core, workdir: Path, queue: str, **extra: str) -> dict[str, str]:
    """The environment of the 0.13 python-sdk container (see src/ and PLAN)."""
    for d in ("home", "tmp"):
        (workdir / d).mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir / "home"),
        "TMPDIR": str(workdir / "tmp"),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(PKG_DIR), os.environ.get("PYTHONPATH", "")) if p
        ),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "STEPFLOW_TRANSPORT": "grpc",
        "STEPFLOW_TASKS_URL": core.address,
        "STEPFLOW_QUEUE_NAME": queue,
        "STEPFLOW_BLOB_URL": core.address,
        "STEPFLOW_LOG_LEVEL": "INFO",
        "STEPFLOW_KIT_HEARTBEAT_FILE": str(workdir / "tmp" / "stepflow-worker.heartbeat"),
    }
    env.update(extra)
    return env


@pytest.fixture
def worker_factory(tmp_path: Path, core: Core, sdk_contract: dict[str, Any]) -> Iterator[Any]:
    started: list[Worker] = []

    def make(**extra: str) -> Worker:
        workdir = tmp_path / f"worker{len(started)}"
        workdir.mkdir()
        w = Worker(workdir, worker_env(core, workdir, sdk_contract["routePrefix"], **extra))
        started.append(w)
        return w

    yield make
    for w in started:
        w.stop()


# --- flows over the stock /udf component --------------------------------------------


def store_blob(client: httpx.Client, data: Any) -> str:
    r = client.post("/api/v1/blobs", json={"data": data})
    assert r.status_code == 200, r.text
    return r.json()["blobId"]


def udf_flow(client: httpx.Client, route: str, code: str, name: str) -> str:
    """Stores a one-step flow running `code` with the stock /udf component; returns its id."""
    blob = store_blob(client, {"code": code, "input_schema": {"type": "object"}})
    flow = {
        "name": name,
        "steps": [
            {
                "id": "udf",
                "component": f"/{route}/udf",
                "input": {"blob_id": blob, "input": {"$input": "$"}},
            }
        ],
        "output": {"$step": "udf"},
    }
    r = client.post("/api/v1/flows", json={"flow": flow})
    assert r.status_code == 200, r.text
    return r.json()["flowId"]


ADD_CODE = "input['a'] + input['b']"
SLEEP_CODE = (
    "async def slow(input, context):\n"
    "    import asyncio\n"
    "    await asyncio.sleep(input['secs'])\n"
    "    return {'slept': input['secs']}\n"
    "slow"
)


def run_flow(client: httpx.Client, flow_id: str, inp: Any, timeout: float = 60) -> dict[str, Any]:
    r = client.post(
        "/api/v1/runs",
        json={"flowId": flow_id, "input": [inp], "wait": True, "timeoutSecs": int(timeout)},
        timeout=timeout + 10,
    )
    assert r.status_code == 200, r.text
    return r.json()["results"][0]


def served_components(client: httpx.Client, plugin: str) -> set[str]:
    try:
        # The core answers only once its plugins reported (or after a wait), so a
        # slow answer means "not yet" here.
        r = client.get("/api/v1/components", params={"includeSchemas": "false"})
    except httpx.TimeoutException:
        return set()
    if r.status_code != 200:
        return set()
    return {c["componentId"] for c in r.json()["components"] if c.get("plugin") == plugin}


def add_round_trip(core: Core, route: str, timeout: float = 30) -> Any:
    """Stores the add flow on `core` (in-memory: gone after a restart) and runs it."""
    with core.client(timeout) as client:
        flow_id = udf_flow(client, route, ADD_CODE, "kit-add")
        result = run_flow(client, flow_id, {"a": 20, "b": 22}, timeout=timeout)
    assert result["status"] == RUN_COMPLETED, result
    return result["output"]


# --- measured figures, printed in the terminal summary ------------------------------

_FIGURES: list[str] = []


@pytest.fixture
def figure() -> Any:
    """figure("reconnect after kill -9", 1.2) records a measured time for the summary."""

    def record(what: str, seconds: float) -> None:
        _FIGURES.append(f"{what}: {seconds:.2f} s")

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES:
        terminalreporter.section("measured")
        for line in _FIGURES:
            terminalreporter.write_line(line)
