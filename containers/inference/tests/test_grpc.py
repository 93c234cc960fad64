"""StepFlow 0.13 ("gRPC pull"): the server run as the constructs run it for generation
0.13 (`python3 -m stepflow_inference`, no arguments, STEPFLOW_TRANSPORT=grpc,
STEPFLOW_TASKS_URL, STEPFLOW_QUEUE_NAME, STEPFLOW_BLOB_URL) against the real StepFlow
core 0.13.0 (stepflow-server from the stepflow-orchestrator wheel) with the real
stepflow-py 0.13.0 worker; flows go through the core's REST API.

Runs in the 0.13 pass of verify/inference/run.sh (stepflow-py 0.13 first on PYTHONPATH)."""

from __future__ import annotations

import importlib.util
import json
import math
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from conftest import EMBED_MODEL, Core, base_env, embed_rerank_flow, free_port, grpc_config

pytestmark = pytest.mark.generation("0.13")

RUN_COMPLETED = 2  # results[].status / summary.status in the 0.13 REST API


def test_the_013_sdk_and_core_are_the_pinned_ones(contract):
    gen = contract["generations"]["0.13"]
    assert version("stepflow-py") == gen["sdk"]
    assert version("stepflow-orchestrator") == gen["orchestrator"]
    import stepflow_py

    # Imported from the --target directory, not from the venv's stepflow-py 0.11.
    assert importlib.util.find_spec("stepflow_py.worker.grpc_worker") is not None
    assert importlib.util.find_spec("stepflow_py.worker.http_server") is None, stepflow_py


@pytest.fixture
def core(start_core, inference_contract) -> Core:
    """stepflow-server 0.13.0 with the inference plugin as the constructs configure it
    for 0.13: `type: grpc` with queueName = routePrefix, route `/<routePrefix>`."""
    prefix = inference_contract["routePrefix"]
    return start_core(grpc_config(prefix, prefix))


def worker_env(model_cache_dir: Path, workdir: Path, core_address: str, queue: str, **extra):
    """The environment the constructs give the 0.13 inference container."""
    return base_env(
        model_cache_dir,
        workdir,
        STEPFLOW_TRANSPORT="grpc",
        STEPFLOW_TASKS_URL=core_address,
        STEPFLOW_QUEUE_NAME=queue,
        STEPFLOW_BLOB_URL=core_address,
        **{"STEPFLOW_KIT_HEARTBEAT_FILE": str(workdir / "tmp" / "stepflow-worker.heartbeat"), **extra},
    )


def probe_command(core_address: str) -> int:
    """The constructs' 0.13 startup/readiness exec probe (coreReachableCommand)."""
    code = (
        'import os, urllib.request; urllib.request.urlopen("http://" + '
        'os.environ["STEPFLOW_TASKS_URL"] + "/api/v1/health", timeout=3)'
    )
    env = {"PATH": "/usr/bin:/bin", "STEPFLOW_TASKS_URL": core_address}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True).returncode


def _wait_components(client: httpx.Client, plugin: str, timeout: float = 120) -> set[str]:
    deadline = time.monotonic() + timeout
    while True:
        comps = client.get("/api/v1/components").json()["components"]
        ids = {c["componentId"] for c in comps if c.get("plugin") == plugin}
        if ids:
            return ids
        assert time.monotonic() < deadline, comps
        time.sleep(0.2)


def _dot(a, b) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_flow_through_core_013(core, server_factory, model_cache_dir, inference_contract, tmp_path):
    prefix = inference_contract["routePrefix"]
    env = worker_env(
        model_cache_dir,
        tmp_path / "w",
        core.address,
        prefix,
        STEPFLOW_INFERENCE_LOAD_DELAY_SECONDS="5",
    )
    # No arguments at all, as in the 0.13 manifests.
    worker = server_factory(env, args=[])
    assert probe_command(core.address) == 0
    assert probe_command(f"127.0.0.1:{free_port()}") != 0  # the probe can fail

    texts = ["The stock market fell sharply.", "Boil the pasta for ten minutes."]
    with httpx.Client(base_url=core.base_url, timeout=300.0) as client:
        # The worker announces its components (discovery task) before the model is loaded.
        assert _wait_components(client, prefix) == {"embed", "rerank"}
        assert "ready after" not in worker.stderr()
        flow = embed_rerank_flow("inference-e2e-013", prefix)
        r = client.post("/api/v1/flows", json={"flow": flow})
        assert r.status_code == 200, r.text
        flow_id = r.json()["flowId"]
        run_input = {"texts": texts, "query": "How do I cook spaghetti?"}
        # Submitted while the model is (most likely) still loading: the tasks wait.
        r = client.post(
            "/api/v1/runs", json={"flowId": flow_id, "input": [run_input], "wait": True}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["summary"]["status"] == RUN_COMPLETED, body
        result = body["results"][0]
        assert result["status"] == RUN_COMPLETED, result
        out = result["output"]
        # A second run on the same worker: the model is not loaded again.
        r = client.post(
            "/api/v1/runs",
            json={"flowId": flow_id, "input": [{"texts": ["again"], "query": "q"}], "wait": True},
        )
        assert r.json()["results"][0]["status"] == RUN_COMPLETED, r.text

    emb = out["embed"]
    assert emb["model"] == EMBED_MODEL and emb["dimensions"] == 384
    assert [len(v) for v in emb["embeddings"]] == [384, 384]
    for v in emb["embeddings"]:
        assert math.isclose(math.sqrt(_dot(v, v)), 1.0, abs_tol=1e-4)
    assert [d["index"] for d in out["rerank"]["results"]] == [1, 0]

    # The vectors that travelled through core and gRPC are the model's own: compute
    # them here with the same code and model files, in this process.
    from stepflow_inference.model import Embedder

    direct = Embedder(model_cache_dir / EMBED_MODEL, "cpu").encode(texts)
    for got, want in zip(emb["embeddings"], direct, strict=True):
        assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-4

    log = worker.stderr()
    assert log.count("inference device: cpu") == 1
    assert log.count("loaded embedding model") == 1
    assert "Executing task" in log and "component_id=embed" in log

    # SIGTERM on an idle worker: stops promptly (stepflow-py 0.13's own handler would
    # wait for the next task), exit 0.
    assert worker.proc is not None
    t0 = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=30) == 0, worker.stderr()
    print(f"worker stopped {time.monotonic() - t0:.1f}s after SIGTERM")
    assert "gRPC worker stopped (exit status 0)" in worker.stderr()


def test_grpc_worker_missing_model_fails_fast(tmp_path):
    empty = tmp_path / "models"
    empty.mkdir()
    env = worker_env(empty, tmp_path / "w", f"127.0.0.1:{free_port()}", "inference")
    proc = subprocess.run(
        [sys.executable, "-m", "stepflow_inference"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr
    assert str(empty / EMBED_MODEL) in proc.stderr


def test_http_transport_needs_the_011_sdk(tmp_path, model_cache_dir):
    """This environment has stepflow-py 0.13 (no HTTP server): leaving STEPFLOW_TRANSPORT
    unset is a configuration error that says what to set."""
    env = base_env(model_cache_dir, tmp_path / "w")
    proc = subprocess.run(
        [sys.executable, "-m", "stepflow_inference", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "stepflow-py 0.13.0" in proc.stderr
    assert "STEPFLOW_TRANSPORT=grpc" in proc.stderr


def test_sigterm_while_core_unreachable_and_image_cmd_args_ignored(
    server_factory, model_cache_dir, tmp_path
):
    """The image's CMD (--host/--port) does not break a gRPC worker, and a worker that
    cannot reach the core (it retries every 2 s) still stops promptly on SIGTERM."""
    env = worker_env(
        model_cache_dir,
        tmp_path / "w",
        f"127.0.0.1:{free_port()}",
        "inference",
        STEPFLOW_INFERENCE_LOAD_DELAY_SECONDS="60",
    )
    worker = server_factory(env, args=["--host", "0.0.0.0", "--port", "8082"])
    deadline = time.monotonic() + 120
    while "Reconnecting" not in worker.stderr():
        assert worker.proc is not None and worker.proc.poll() is None, worker.stderr()
        assert time.monotonic() < deadline, worker.stderr()
        time.sleep(0.2)
    assert "ignoring --host/--port" in worker.stderr()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=20) == 0, worker.stderr()


def _run_embed(core: Core, prefix: str, texts: list[str]) -> dict:
    """Stores the embed+rerank flow on `core` (in-memory: gone after a restart), runs it."""
    with httpx.Client(base_url=core.base_url, timeout=300.0) as client:
        r = client.post("/api/v1/flows", json={"flow": embed_rerank_flow("inference-rc", prefix)})
        assert r.status_code == 200, r.text
        r = client.post(
            "/api/v1/runs",
            json={
                "flowId": r.json()["flowId"],
                "input": [{"texts": texts, "query": "q"}],
                "wait": True,
                "timeoutSecs": 120,
            },
        )
        assert r.status_code == 200, r.text
        result = r.json()["results"][0]
    assert result["status"] == RUN_COMPLETED, result
    return result["output"]


def _heartbeat_age(env: dict[str, str]) -> float:
    return time.time() - Path(env["STEPFLOW_KIT_HEARTBEAT_FILE"]).stat().st_mtime


def test_core_killed_and_restarted_the_same_process_serves_again(
    core, server_factory, model_cache_dir, inference_contract, tmp_path
):
    """kill -9 of the core, a new core on the same address: the worker (same process,
    never exited) serves the new core within 30 s; its heartbeat file stays fresh."""
    prefix = inference_contract["routePrefix"]
    env = worker_env(model_cache_dir, tmp_path / "w", core.address, prefix)
    worker = server_factory(env, args=[])
    assert worker.proc is not None
    with httpx.Client(base_url=core.base_url, timeout=60) as client:
        _wait_components(client, prefix)
    assert _run_embed(core, prefix, ["one"])["embed"]["dimensions"] == 384
    core.kill()
    time.sleep(3)
    core.start()
    t0 = time.monotonic()
    with httpx.Client(base_url=core.base_url, timeout=60) as client:
        assert _wait_components(client, prefix, timeout=30) == {"embed", "rerank"}
    assert _run_embed(core, prefix, ["two"])["embed"]["dimensions"] == 384
    took = time.monotonic() - t0
    print(f"served the restarted core {took:.1f}s after its return")
    assert took < 30
    assert worker.proc.poll() is None, worker.stderr()
    assert _heartbeat_age(env) < 6
    # The model is loaded once per process, however often the core restarts.
    assert worker.stderr().count("loaded embedding model") == 1
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=20) == 0, worker.stderr()


def test_worker_outlives_the_sdk_giving_up_and_serves_a_late_core(
    server_factory, start_core, model_cache_dir, inference_contract, tmp_path
):
    """stepflow-py 0.13's worker gives up after 15 failed connection attempts 2 s apart;
    the worker loop starts it again (logged at INFO with the reason), so a core that
    appears only after that is still served, by the same process."""
    prefix = inference_contract["routePrefix"]
    late = start_core(grpc_config(prefix, prefix), start=False)
    env = worker_env(model_cache_dir, tmp_path / "w", late.address, prefix)
    worker = server_factory(env, args=[])
    assert worker.proc is not None
    deadline = time.monotonic() + 120
    while not ("giving up after 15 consecutive failures" in worker.stderr()
               and "reconnecting to" in worker.stderr()):
        assert worker.proc.poll() is None, worker.stderr()
        assert time.monotonic() < deadline, worker.stderr()
        time.sleep(0.5)
    reconnects = [
        json.loads(line)
        for line in worker.stderr().splitlines()
        if line.startswith("{") and "reconnecting to" in line
    ]
    assert reconnects and all(r["level"] == "INFO" for r in reconnects), reconnects
    assert "giving up after 15 consecutive failures" in reconnects[0]["message"]
    assert _heartbeat_age(env) < 6  # alive while waiting for the core
    late.start()
    t0 = time.monotonic()
    with httpx.Client(base_url=late.base_url, timeout=60) as client:
        assert _wait_components(client, prefix, timeout=30) == {"embed", "rerank"}
    print(f"served the late core {time.monotonic() - t0:.1f}s after it started")
    assert _run_embed(late, prefix, ["late"])["embed"]["dimensions"] == 384
    assert worker.proc.poll() is None, worker.stderr()


def test_a_model_that_fails_to_load_stops_the_looping_worker_with_3(
    core, server_factory, model_cache_dir, inference_contract, tmp_path
):
    """The worker loop would reconnect forever; a model that cannot load (cuda asked for
    on a machine without a GPU) still ends the process, with status 3, while connected."""
    import torch

    assert not torch.cuda.is_available(), "this test needs a machine without a GPU"
    env = worker_env(
        model_cache_dir,
        tmp_path / "w",
        core.address,
        inference_contract["routePrefix"],
        STEPFLOW_INFERENCE_DEVICE="cuda",
    )
    worker = server_factory(env, args=[])
    assert worker.proc is not None
    assert worker.proc.wait(timeout=180) == 3, worker.stderr()
    err = worker.stderr()
    assert "torch.cuda.is_available() is false" in err
    assert "model loading failed: stopping" in err
