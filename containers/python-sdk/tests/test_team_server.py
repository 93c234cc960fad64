"""STEPFLOW_KIT_SERVER: `python3 -m stepflow_kit_worker` serving a team's own
StepflowServer (a module of the team's, on PYTHONPATH) against the real StepFlow core
0.13.0, with the same reconnect loop, heartbeat and SIGTERM handling as the stock
server; and every bad value of the variable is a configuration error (exit 2)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from conftest import (
    PKG_DIR,
    RUN_COMPLETED,
    Core,
    Worker,
    grpc_config,
    served_components,
    wait_until,
    worker_env,
)

from stepflow_kit_worker import server_ref

SERVE_AGAIN_WITHIN = 10.0  # as in test_worker_loop.py
QUEUE = "team"  # the team's plugin: queueName and route prefix

# A team's module: its own components, no built-in /udf.
TEAM_MODULE = '''
import os

import msgspec
from stepflow_py.worker.server import StepflowServer


class WeightedInput(msgspec.Struct, kw_only=True):
    values: list[float]
    weights: list[float]


class WeightedOutput(msgspec.Struct, kw_only=True):
    mean: float
    pid: int


def weighted_mean(input: WeightedInput) -> WeightedOutput:
    """Sum of value x weight over the sum of the weights."""
    total = sum(v * w for v, w in zip(input.values, input.weights, strict=True))
    return WeightedOutput(mean=total / sum(input.weights), pid=os.getpid())


def shout(input: dict) -> dict:
    return {"text": input["text"].upper() + "!"}


tools = StepflowServer(include_builtins=False)
tools.component(weighted_mean, id="weighted_mean", subpath="weighted_mean")
tools.component(shout, id="shout", subpath="shout")
NOT_A_SERVER = 42
'''

BAD_MODULES = {
    "team_broken.py": "raise RuntimeError('the team module cannot start: no API key')\n",
    "team_needs_dep.py": "import team_dependency_that_is_not_installed  # noqa: F401\n",
    "team_empty.py": (
        "from stepflow_py.worker.server import StepflowServer\n"
        "server = StepflowServer(include_builtins=False)\n"
    ),
}


@pytest.fixture
def team_dir(tmp_path: Path) -> Path:
    d = tmp_path / "team-site"
    d.mkdir()
    (d / "team_calc.py").write_text(textwrap.dedent(TEAM_MODULE))
    for name, text in BAD_MODULES.items():
        (d / name).write_text(text)
    return d


@pytest.fixture
def team_core(start_core) -> Core:
    return start_core(grpc_config(QUEUE, QUEUE))


def team_worker(core: Core, tmp_path: Path, team_dir: Path, spec: str) -> Worker:
    workdir = tmp_path / "team-worker"
    workdir.mkdir()
    env = worker_env(
        core,
        workdir,
        QUEUE,
        STEPFLOW_KIT_SERVER=spec,
        PYTHONPATH=os.pathsep.join([str(PKG_DIR), str(team_dir)]),
    )
    return Worker(workdir, env)


def weighted_flow(client: httpx.Client) -> str:
    flow = {
        "name": "team-weighted",
        "steps": [
            {
                "id": "mean",
                "component": f"/{QUEUE}/weighted_mean",
                "input": {"values": {"$input": "values"}, "weights": {"$input": "weights"}},
            },
            {
                "id": "loud",
                "component": f"/{QUEUE}/shout",
                "input": {"text": {"$input": "label"}},
            },
        ],
        "output": {"mean": {"$step": "mean"}, "label": {"$step": "loud", "path": "text"}},
    }
    r = client.post("/api/v1/flows", json={"flow": flow})
    assert r.status_code == 200, r.text
    return r.json()["flowId"]


def run_weighted(core: Core, worker: Worker) -> None:
    """Store and run the team flow with random numbers; check the computed values."""
    values = [random.randint(1, 1000) for _ in range(4)]
    weights = [random.randint(1, 9) for _ in range(4)]
    expected = sum(v * w for v, w in zip(values, weights)) / sum(weights)
    with core.client(30) as client:
        flow_id = weighted_flow(client)
        r = client.post(
            "/api/v1/runs",
            json={
                "flowId": flow_id,
                "input": [{"values": values, "weights": weights, "label": "done"}],
                "wait": True,
                "timeoutSecs": 30,
            },
            timeout=40,
        )
    assert r.status_code == 200, r.text
    result = r.json()["results"][0]
    assert result["status"] == RUN_COMPLETED, result
    out = result["output"]
    assert out["mean"]["mean"] == pytest.approx(expected), (values, weights, out)
    assert out["mean"]["pid"] == worker.pid  # computed in the team worker's process
    assert out["label"] == "DONE!"


def wait_team_serving(core: Core, timeout: float) -> float:
    with core.client(10) as client:
        return wait_until(
            lambda: served_components(client, QUEUE) == {"weighted_mean", "shout"},
            timeout,
            "the team's components",
        )


def test_a_team_server_is_served_in_the_loop(team_core, team_dir, tmp_path, figure):
    worker = team_worker(team_core, tmp_path, team_dir, "team_calc:tools")
    try:
        took = wait_team_serving(team_core, 30)
        figure("team server: components listed after the worker's start", took)
        # Exactly the team's components: not the stock server's udf/echo.
        with team_core.client(10) as client:
            assert served_components(client, QUEUE) == {"weighted_mean", "shout"}
        run_weighted(team_core, worker)
        assert "serving shout, weighted_mean from team_calc:tools" in worker.text()

        # The loop's heartbeat, as for the stock server.
        first = worker.heartbeat.stat().st_mtime
        wait_until(lambda: worker.heartbeat.stat().st_mtime > first + 3, 12, "a heartbeat refresh")

        # The core killed and started again: the same process serves the team's
        # components again.
        pid = worker.pid
        team_core.kill()
        time.sleep(3)
        team_core.start()
        took = wait_team_serving(team_core, SERVE_AGAIN_WITHIN)
        figure("team server: serving again after the core's return (kill -9, down 3 s)", took)
        run_weighted(team_core, worker)
        assert worker.pid == pid and worker.alive(), worker.text()

        # SIGTERM while idle: prompt exit 0.
        t0 = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.proc.wait(timeout=10) == 0, worker.text()
        assert time.monotonic() - t0 < 3
    finally:
        worker.stop()


def run_module(tmp_path: Path, team_dir: Path, spec: str | None) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join([str(PKG_DIR), str(team_dir)]),
        "HOME": str(tmp_path),
        # Nothing listens there: a good value would start connecting instead of exiting.
        "STEPFLOW_TASKS_URL": "127.0.0.1:9",
    }
    if spec is not None:
        env["STEPFLOW_KIT_SERVER"] = spec
    return subprocess.run(
        [sys.executable, "-m", "stepflow_kit_worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "spec,needles",
    [
        ("team_calc", ["must be module:attribute"]),
        ("team_calc:", ["must be module:attribute"]),
        (":tools", ["must be module:attribute"]),
        ("team-calc:tools", ["must be module:attribute"]),
        ("team_calc.py:tools", ["no module named 'team_calc.py'"]),
        ("team_calc:tools()", ["must be module:attribute"]),
        ("team_missing:server", ["no module named 'team_missing'", "PYTHONPATH="]),
        ("team_calc:server", ["'team_calc' has no attribute 'server'"]),
        ("team_calc:tools.nothing", ["'team_calc:tools' has no attribute 'nothing'"]),
        ("team_calc:NOT_A_SERVER", ["is a builtins.int, not a stepflow_py"]),
        ("team_calc:shout", ["is a builtins.function, not a stepflow_py"]),
        (
            "team_broken:server",
            ["importing 'team_broken' failed: RuntimeError", "team_broken.py", "no API key"],
        ),
        (
            "team_needs_dep:server",
            ["importing 'team_needs_dep' failed", "team_dependency_that_is_not_installed"],
        ),
        ("team_empty:server", ["has no components registered"]),
    ],
)
def test_bad_server_values_exit_2_and_say_why(tmp_path, team_dir, spec, needles):
    proc = run_module(tmp_path, team_dir, spec)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert f"STEPFLOW_KIT_SERVER={spec!r}" in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_the_default_and_an_empty_value_are_the_stock_server():
    assert server_ref.server_spec({}) == "stepflow_py.worker.main:server"
    assert server_ref.server_spec({"STEPFLOW_KIT_SERVER": "  "}) == "stepflow_py.worker.main:server"
    assert server_ref.server_spec({"STEPFLOW_KIT_SERVER": " a.b:c.d "}) == "a.b:c.d"
    assert server_ref.parse_spec("a.b:c.d") == ("a.b", "c.d")
    stock = server_ref.load_server(server_ref.DEFAULT_SERVER)
    assert {"udf", "echo"} <= set(stock.get_components())


def test_help_documents_the_variable(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "stepflow_kit_worker", "--help"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PKG_DIR), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "STEPFLOW_KIT_SERVER" in proc.stdout
    assert "module:attribute" in proc.stdout
    assert server_ref.DEFAULT_SERVER in proc.stdout
