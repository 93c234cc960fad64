"""Process lifecycle: probes agree with src/contract.json, /health answers before the
model is loaded and /ready only after, a missing model fails fast naming its path, and
nothing is written outside the directories a read-only root filesystem leaves
writable."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import TESTS_DIR, base_env


def test_probe_transitions(server_factory, model_cache_dir, inference_contract, tmp_path):
    health = inference_contract["health"]
    assert health["liveness"] != health["readiness"]
    assert health["readiness"] == health["startup"]
    env = base_env(model_cache_dir, tmp_path / "w", STEPFLOW_INFERENCE_LOAD_DELAY_SECONDS="3")
    srv = server_factory(env)
    srv.wait_status(health["liveness"], 200, timeout=60)
    # The process is up but the model is not loaded yet.
    r = srv.get(health["readiness"])
    assert r is not None and r.status_code == 503, r
    assert r.json()["status"] == "loading"
    # The core initializes every plugin at its own startup: that works while loading.
    assert srv.handshake()["result"]["serverProtocolVersion"] == 1
    # A component call made while loading waits for the model instead of failing.
    with ThreadPoolExecutor(max_workers=1) as pool:
        early = pool.submit(srv.execute, "/embed", {"texts": ["sent before the model was ready"]})
        t0 = time.monotonic()
        ready = srv.wait_status(health["readiness"], 200)
        early_result = early.result(timeout=120)
    assert "error" not in early_result, early_result
    assert len(early_result["result"]["output"]["embeddings"][0]) == 384
    body = ready.json()
    assert body["status"] == "ready" and body["device"] == "cpu" and body["dimensions"] == 384
    assert srv.get(health["liveness"]).status_code == 200
    assert srv.get(health["startup"]).status_code == 200
    print(f"model ready {time.monotonic() - t0:.1f}s after the 3 s load delay; /ready: {body}")
    # The device is logged once, at start.
    assert srv.stderr().count("inference device: cpu") == 1
    # SIGTERM -> graceful uvicorn shutdown; uvicorn then re-raises the signal.
    assert srv.stop() in (0, -15)


def test_missing_model_fails_fast_naming_the_path(tmp_path):
    empty = tmp_path / "models"
    empty.mkdir()
    env = base_env(empty, tmp_path / "w")
    proc = subprocess.run(
        [sys.executable, "-m", "stepflow_inference", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3
    expected = str(empty / "all-MiniLM-L6-v2")
    assert expected in proc.stderr
    assert "STEPFLOW_INFERENCE_ALLOW_DOWNLOAD=true" in proc.stderr
    assert "does not exist" in proc.stderr


def test_incomplete_model_dir_names_missing_files(tmp_path, bundled_model_dir):
    models = tmp_path / "models"
    (models / "mini").mkdir(parents=True)
    (models / "mini" / "config.json").write_bytes((bundled_model_dir / "config.json").read_bytes())
    env = base_env(models, tmp_path / "w", STEPFLOW_INFERENCE_EMBED_MODEL="mini")
    proc = subprocess.run(
        [sys.executable, "-m", "stepflow_inference", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3
    assert str(models / "mini") in proc.stderr
    assert "model.safetensors" in proc.stderr


def test_bad_setting_exits_2(tmp_path, model_cache_dir):
    env = base_env(model_cache_dir, tmp_path / "w", STEPFLOW_INFERENCE_DEVICE="tpu")
    proc = subprocess.run(
        [sys.executable, "-m", "stepflow_inference", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "STEPFLOW_INFERENCE_DEVICE" in proc.stderr


def test_cuda_requested_without_gpu_fails_clearly(server_factory, model_cache_dir, tmp_path):
    import torch

    if torch.cuda.is_available():
        return  # nothing to check on a GPU machine
    env = base_env(model_cache_dir, tmp_path / "w", STEPFLOW_INFERENCE_DEVICE="cuda")
    srv = server_factory(env)
    assert srv.proc.wait(timeout=180) == 3
    assert "torch.cuda.is_available() is false" in srv.stderr()


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_writes_only_to_tmp_caches_and_models(server_factory, model_cache_dir, tmp_path):
    """Start the server with an empty HOME and working directory, serve requests, stop
    it, and check every write the audit hook saw is under TMPDIR, XDG_CACHE_HOME (the
    stand-in for /var/cache/stepflow), MODEL_CACHE_DIR or /dev."""
    work = tmp_path / "w"
    env = base_env(model_cache_dir, work, STEPFLOW_TEST_WRITE_AUDIT=str(tmp_path / "writes.log"))
    home, cwd = work / "home", work / "cwd"
    cwd.mkdir()
    for d in (home, cwd):  # read-only for a non-root test user (root ignores the mode)
        d.chmod(0o555)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    srv = server_factory(
        env, launcher=[sys.executable, str(TESTS_DIR / "audit_launcher.py")], cwd=cwd
    )
    srv.wait_status("/ready", 200)
    srv.handshake()
    assert "error" not in srv.execute("/embed", {"texts": ["read-only root filesystem"]})
    assert "error" not in srv.execute("/rerank", {"query": "q", "documents": ["a", "b"]})
    assert srv.stop() in (0, -15)
    allowed = [env["TMPDIR"], env["XDG_CACHE_HOME"], str(model_cache_dir), "/dev/"]
    log = (tmp_path / "writes.log").read_text().splitlines()
    outside = [
        line for line in log if not any(line.split("\t", 1)[1].startswith(a) for a in allowed)
    ]
    assert outside == [], "writes outside the writable directories:\n" + "\n".join(outside)
    assert _tree(home) == [] and _tree(cwd) == []
    print(f"{len(log)} audited writes, all inside {allowed}: {log[:10]}")
    for d in (home, cwd):
        os.chmod(d, 0o755)


def test_allow_download_tries_the_hub_and_fails_clearly_when_offline(server_factory, tmp_path):
    """With STEPFLOW_INFERENCE_ALLOW_DOWNLOAD=true a missing model is not an error at
    start: the server comes up, /ready says 503 while it downloads, and a failed download
    (here: hub forced offline) ends the process with status 3 and a logged reason."""
    models = tmp_path / "models"
    models.mkdir()
    env = base_env(
        models,
        tmp_path / "w",
        STEPFLOW_INFERENCE_ALLOW_DOWNLOAD="true",
        HF_HUB_OFFLINE="1",
        STEPFLOW_INFERENCE_LOAD_DELAY_SECONDS="2",
    )
    srv = server_factory(env)
    srv.wait_status("/health", 200, timeout=60)
    r = srv.get("/ready")
    assert r is not None and r.status_code == 503
    assert srv.proc.wait(timeout=180) == 3
    err = srv.stderr()
    assert (
        "downloading sentence-transformers/all-MiniLM-L6-v2 into "
        + str(models / "all-MiniLM-L6-v2")
        in err
    )
    assert "model loading failed" in err


def test_grpc_transport_needs_the_013_sdk(tmp_path, model_cache_dir):
    """This environment has stepflow-py 0.11 (HTTP only): STEPFLOW_TRANSPORT=grpc is a
    configuration error that says which image to use."""
    env = base_env(model_cache_dir, tmp_path / "w", STEPFLOW_TRANSPORT="grpc")
    proc = subprocess.run(
        [sys.executable, "-m", "stepflow_inference"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "STEPFLOW_TRANSPORT=grpc needs stepflow-py 0.12 or newer" in proc.stderr
    assert "stepflow-py 0.11.0" in proc.stderr
    assert "STEPFLOW_PY_VERSION=0.13.0" in proc.stderr
