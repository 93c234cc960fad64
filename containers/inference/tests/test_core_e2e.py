"""End to end with the real StepFlow core (stepflow-server 0.11.1 from the
stepflow-orchestrator wheel): the core routes /<routePrefix>/{*component} to this
server over HTTP, and a flow calling /inference/embed and /inference/rerank runs.

The inference server is started with a load delay and the core right after its
/health answers: the core's startup-time `initialize` of every plugin must succeed while
the model is still loading, and a run submitted then waits for the model."""

from __future__ import annotations

import httpx
from conftest import base_env, embed_rerank_flow, http_config


def test_flow_through_core(server_factory, start_core, model_cache_dir, inference_contract, tmp_path):
    prefix = inference_contract["routePrefix"]
    env = base_env(model_cache_dir, tmp_path / "w", STEPFLOW_INFERENCE_LOAD_DELAY_SECONDS="2")
    inf = server_factory(env)
    inf.wait_status(inference_contract["health"]["liveness"], 200, timeout=60)

    # Started right after /health: its initialize of the plugin happens while loading.
    core = start_core(http_config(prefix, inf.base_url))
    with httpx.Client(base_url=core.base_url, timeout=120.0) as client:
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
    core.stop()
    # The core addressed the component by the path after the route prefix.
    assert "Executing component /embed " in inf.stderr()
