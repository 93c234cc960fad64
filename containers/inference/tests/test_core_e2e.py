"""End to end with the real StepFlow core (stepflow-server 0.11.1 from the
stepflow-orchestrator wheel): the core routes /<routePrefix>/{*component} to this
server over HTTP, and a flow calling /inference/embed and /inference/rerank runs.

The inference server is started with a load delay and the core right after its
/health answers: the core's startup-time `initialize` of every plugin must succeed while
the model is still loading, and a run submitted then waits for the model."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from pathlib import Path

import httpx
from conftest import base_env, embed_rerank_flow, free_port


def _core_binary() -> Path:
    spec = importlib.util.find_spec("stepflow_orchestrator")
    assert spec is not None and spec.origin, "stepflow-orchestrator (test extra) is not installed"
    binary = Path(spec.origin).parent / "bin" / "stepflow-server"
    assert binary.is_file(), binary
    return binary


def test_flow_through_core(server_factory, model_cache_dir, contract, inference_contract, tmp_path):
    prefix = inference_contract["routePrefix"]
    core_health = contract["components"]["core"]["health"]["readiness"]
    env = base_env(model_cache_dir, tmp_path / "w", STEPFLOW_INFERENCE_LOAD_DELAY_SECONDS="2")
    inf = server_factory(env)
    inf.wait_status(inference_contract["health"]["liveness"], 200, timeout=60)

    config = tmp_path / "stepflow-config.yml"
    config.write_text(
        json.dumps(  # JSON is valid YAML
            {
                "plugins": {
                    "builtin": {"type": "builtin"},
                    "inference": {"type": "stepflow", "url": inf.base_url},
                },
                "routes": {
                    f"/{prefix}/{{*component}}": [{"plugin": "inference"}],
                    "/{*component}": [{"plugin": "builtin"}],
                },
                "storageConfig": {"type": "inMemory"},
            }
        )
    )
    port = free_port()
    core_log = tmp_path / "core.log"
    with open(core_log, "wb") as log:
        core = subprocess.Popen(
            [str(_core_binary()), "--port", str(port), "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=120.0) as client:
            deadline = time.monotonic() + 60
            while True:
                assert core.poll() is None, (
                    f"core exited {core.returncode}:\n{core_log.read_text()}"
                )
                try:
                    if client.get(core_health).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, core_log.read_text()
                time.sleep(0.1)
            # The core lists the component server's own names (without the route prefix).
            listed = {c["component"] for c in client.get("/api/v1/components").json()["components"]}
            assert {"/embed", "/rerank"} <= listed, listed

            flow = embed_rerank_flow("inference-e2e", prefix)
            r = client.post("/api/v1/flows", json={"flow": flow})
            assert r.status_code == 200, r.text
            flow_id = r.json()["flowId"]
            run_input = {
                "texts": ["The stock market fell sharply.", "Boil the pasta for ten minutes."],
                "query": "How do I cook spaghetti?",
            }
            r = client.post(
                "/api/v1/runs", json={"flowId": flow_id, "input": [run_input], "wait": True}
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["status"] == "completed", body
            result = body["results"][0]["result"]
            assert result["outcome"] == "success", result
            out = result["result"]
            assert out["embed"]["dimensions"] == 384
            assert [len(v) for v in out["embed"]["embeddings"]] == [384, 384]
            assert [d["index"] for d in out["rerank"]["results"]] == [1, 0]
    finally:
        core.terminate()
        try:
            core.wait(timeout=20)
        except subprocess.TimeoutExpired:
            core.kill()
            core.wait()
    # The core addressed the component by the path after the route prefix.
    assert "Executing component /embed " in inf.stderr()
