"""Unit tests of the environment settings (no model, no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepflow_inference import __main__ as entry
from stepflow_inference.config import ConfigError, Settings, apply_process_defaults


def test_defaults_match_contract(inference_contract, contract):
    s = Settings.from_env({})
    assert s.model_cache_dir == Path(contract["paths"]["models"])
    assert s.device == "auto"
    assert s.embed_model == "all-MiniLM-L6-v2"
    assert s.allow_download is False
    assert s.max_batch_size == 32
    assert s.embed_model_dir == Path(contract["paths"]["models"]) / "all-MiniLM-L6-v2"
    assert entry.DEFAULT_PORT == inference_contract["port"]
    assert inference_contract["module"] == "stepflow_inference"


def test_values_are_read():
    s = Settings.from_env(
        {
            "MODEL_CACHE_DIR": "/data/m",
            "STEPFLOW_INFERENCE_DEVICE": "CUDA",
            "STEPFLOW_INFERENCE_EMBED_MODEL": "BAAI/bge-small-en-v1.5",
            "STEPFLOW_INFERENCE_ALLOW_DOWNLOAD": "true",
            "STEPFLOW_INFERENCE_MAX_BATCH_SIZE": "64",
        }
    )
    assert s.device == "cuda"
    assert s.allow_download is True
    assert s.max_batch_size == 64
    assert s.embed_model_dir == Path("/data/m/BAAI/bge-small-en-v1.5")
    assert s.embed_model_repo == "BAAI/bge-small-en-v1.5"
    assert Settings.from_env({}).embed_model_repo == "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.parametrize(
    "name,value",
    [
        ("STEPFLOW_INFERENCE_DEVICE", "tpu"),
        ("STEPFLOW_INFERENCE_ALLOW_DOWNLOAD", "maybe"),
        ("STEPFLOW_INFERENCE_MAX_BATCH_SIZE", "0"),
        ("STEPFLOW_INFERENCE_MAX_BATCH_SIZE", "many"),
        ("STEPFLOW_INFERENCE_EMBED_MODEL", "../etc"),
        ("STEPFLOW_INFERENCE_EMBED_MODEL", "/abs"),
    ],
)
def test_invalid_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_offline_by_default_and_caches_under_var_cache(contract):
    env: dict[str, str] = {}
    apply_process_defaults(Settings.from_env({}), env)
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["TRANSFORMERS_OFFLINE"] == "1"
    cache = contract["paths"]["cache"]
    for key in ("XDG_CACHE_HOME", "HF_HOME", "TORCH_HOME", "TRITON_CACHE_DIR"):
        assert env[key].startswith(cache), (key, env[key])


def test_download_allowed_leaves_hub_online_but_respects_explicit_offline():
    s = Settings.from_env({"STEPFLOW_INFERENCE_ALLOW_DOWNLOAD": "true"})
    env: dict[str, str] = {"XDG_CACHE_HOME": "/tmp/x"}
    apply_process_defaults(s, env)
    assert "HF_HUB_OFFLINE" not in env
    assert env["HF_HOME"] == "/tmp/x/huggingface"
    env = {"HF_HUB_OFFLINE": "1"}
    apply_process_defaults(s, env)
    assert env["HF_HUB_OFFLINE"] == "1"


def test_torch_too_old_for_transformers_is_reported(monkeypatch):
    import transformers.utils

    from stepflow_inference import model

    model.check_torch_usable()  # the pinned torch is fine
    monkeypatch.setattr(transformers.utils, "is_torch_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"cannot use the installed torch .* pinned together"):
        model.check_torch_usable()


def test_transport_settings():
    s = Settings.from_env({})
    assert (s.transport, s.tasks_url, s.queue_name, s.max_concurrent) == (
        "http",
        "localhost:7837",
        "inference",
        4,
    )
    s = Settings.from_env(
        {
            "STEPFLOW_TRANSPORT": "GRPC",
            "STEPFLOW_TASKS_URL": "stepflow-core.stepflow.svc:8080",
            "STEPFLOW_QUEUE_NAME": "gpu-inference",
            "STEPFLOW_MAX_CONCURRENT": "16",
        }
    )
    assert (s.transport, s.tasks_url, s.queue_name, s.max_concurrent) == (
        "grpc",
        "stepflow-core.stepflow.svc:8080",
        "gpu-inference",
        16,
    )


def test_queue_name_default_is_the_contract_route_prefix(inference_contract):
    assert Settings.from_env({}).queue_name == inference_contract["routePrefix"]


@pytest.mark.parametrize(
    "name,value",
    [
        ("STEPFLOW_TRANSPORT", "nats"),
        ("STEPFLOW_TASKS_URL", "http://core:8080"),
        ("STEPFLOW_TASKS_URL", "core:8080/api"),
        ("STEPFLOW_MAX_CONCURRENT", "0"),
    ],
)
def test_invalid_transport_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
