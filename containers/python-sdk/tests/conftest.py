"""Fixtures: the real StepFlow core 0.13 (stepflow-server from the stepflow-orchestrator
wheel) on a free port of 127.0.0.1, which a test can kill and start again on the same
port, and `python3 -m stepflow_kit_worker` processes with the environment the
constructs give the python-sdk container for StepFlow 0.13.

containers/python-sdk/tests/run.sh runs these tests in a virtualenv with the contract's
0.13 versions of stepflow-py and stepflow-orchestrator."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

TESTS_DIR = Path(__file__).resolve().parent
PKG_DIR = TESTS_DIR.parent  # holds stepflow_kit_worker/
# The StepFlow fixtures shared with verify/ (verify/fixtures/stepflow_fixtures).
sys.path.insert(0, str(TESTS_DIR.parents[2] / "verify" / "fixtures"))
from stepflow_fixtures.core import Core, grpc_config  # noqa: E402
from stepflow_fixtures.processes import Process, free_port, wait_until  # noqa: E402,F401
from stepflow_fixtures.pytest_fixtures import contract, start_core  # noqa: E402,F401

RUN_COMPLETED = 2  # results[].status in the 0.13 REST API


@pytest.fixture(scope="session")
def sdk_contract(contract: dict[str, Any]) -> dict[str, Any]:
    return contract["components"]["python-sdk"]


@pytest.fixture
def core(start_core: Any, sdk_contract: dict[str, Any]) -> Core:
    """The core 0.13 with a gRPC plugin for the python-sdk's queue, routed at
    /<routePrefix>, as the constructs configure it."""
    prefix = sdk_contract["routePrefix"]
    return start_core(grpc_config(prefix, prefix))


class Worker(Process):
    """One `python3 -m stepflow_kit_worker` process (started at once)."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.heartbeat = Path(env["STEPFLOW_KIT_HEARTBEAT_FILE"])
        argv = [sys.executable, "-m", "stepflow_kit_worker"]
        super().__init__(argv, env=env, cwd=workdir, log=workdir / "worker.log", grace=30)
        self.start()

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records (stepflow-py logs one JSON object per line)."""
        out = []
        for line in self.text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


def worker_env(core: Core, workdir: Path, queue: str, **extra: str) -> dict[str, str]:
    """The environment of the 0.13 python-sdk container (src/components/python-sdk.ts)."""
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
        "STEPFLOW_KIT_READY_FILE": str(workdir / "tmp" / "stepflow-worker.ready"),
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
