"""Settings of the inference server, read from environment variables.

Every variable is documented in containers/inference/README.md. This module must stay
import-light (no torch/transformers): it runs before the HTTP server starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_CACHE_DIR = "/models"
DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"
DEFAULT_MAX_BATCH_SIZE = 32
# Writable cache root in the container (an emptyDir in Kubernetes); see contract.json
# paths.cache.
DEFAULT_CACHE_ROOT = "/var/cache/stepflow"
# Organisation used on the hub for a bare model name such as "all-MiniLM-L6-v2".
DEFAULT_HUB_ORG = "sentence-transformers"

DEVICES = ("auto", "cpu", "cuda")
# STEPFLOW_TRANSPORT: "http" (StepFlow 0.11, the core calls this server; the default)
# or "grpc" (StepFlow 0.12/0.13, this process pulls tasks from the core's queue).
TRANSPORTS = ("http", "grpc")
# Defaults of the gRPC pull worker. The tasks URL default is stepflow-py 0.13's own;
# the queue name defaults to this component's route prefix (contract routePrefix).
DEFAULT_TASKS_URL = "localhost:7837"
DEFAULT_QUEUE_NAME = "inference"
DEFAULT_MAX_CONCURRENT = 4
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A setting has an invalid value; the message says which and how to fix it."""


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false")


def _positive_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < 1:
        raise ConfigError(f"{name}={raw!r} must be at least 1")
    return value


def _non_negative_float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r} must not be negative")
    return value


@dataclass(frozen=True)
class Settings:
    model_cache_dir: Path
    device: str
    embed_model: str
    allow_download: bool
    max_batch_size: int
    load_delay_seconds: float
    transport: str = "http"
    tasks_url: str = DEFAULT_TASKS_URL
    queue_name: str = DEFAULT_QUEUE_NAME
    max_concurrent: int = DEFAULT_MAX_CONCURRENT

    @property
    def embed_model_dir(self) -> Path:
        """Directory the embedding model is loaded from."""
        return self.model_cache_dir / self.embed_model

    @property
    def embed_model_repo(self) -> str:
        """Hub repository id used when downloading is allowed."""
        if "/" in self.embed_model:
            return self.embed_model
        return f"{DEFAULT_HUB_ORG}/{self.embed_model}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        device = env.get("STEPFLOW_INFERENCE_DEVICE", "auto").strip().lower() or "auto"
        if device not in DEVICES:
            raise ConfigError(
                f"STEPFLOW_INFERENCE_DEVICE={device!r} is not one of {', '.join(DEVICES)}"
            )
        model = env.get("STEPFLOW_INFERENCE_EMBED_MODEL", DEFAULT_EMBED_MODEL).strip()
        parts = model.split("/")
        if not model or any(p in ("", ".", "..") for p in parts) or len(parts) > 2:
            raise ConfigError(
                f"STEPFLOW_INFERENCE_EMBED_MODEL={model!r} must be a directory name "
                "under MODEL_CACHE_DIR such as 'all-MiniLM-L6-v2' (or 'org/name')"
            )
        transport = env.get("STEPFLOW_TRANSPORT", "http").strip().lower() or "http"
        if transport not in TRANSPORTS:
            raise ConfigError(
                f"STEPFLOW_TRANSPORT={transport!r} is not one of {', '.join(TRANSPORTS)} "
                "(http: StepFlow 0.11, the core calls this server; grpc: StepFlow 0.13, "
                "this server pulls tasks from the core)"
            )
        tasks_url = env.get("STEPFLOW_TASKS_URL", DEFAULT_TASKS_URL).strip() or DEFAULT_TASKS_URL
        if "://" in tasks_url or "/" in tasks_url:
            raise ConfigError(
                f"STEPFLOW_TASKS_URL={tasks_url!r} must be host:port of the StepFlow core "
                "(gRPC target, no scheme or path), e.g. stepflow-core.stepflow.svc:8080"
            )
        queue_name = env.get("STEPFLOW_QUEUE_NAME", DEFAULT_QUEUE_NAME).strip()
        if not queue_name:
            queue_name = DEFAULT_QUEUE_NAME
        cache_dir = env.get("MODEL_CACHE_DIR", DEFAULT_MODEL_CACHE_DIR).strip()
        if not cache_dir:
            cache_dir = DEFAULT_MODEL_CACHE_DIR
        return cls(
            model_cache_dir=Path(cache_dir),
            device=device,
            embed_model=model,
            allow_download=_bool(env, "STEPFLOW_INFERENCE_ALLOW_DOWNLOAD", False),
            max_batch_size=_positive_int(
                env, "STEPFLOW_INFERENCE_MAX_BATCH_SIZE", DEFAULT_MAX_BATCH_SIZE
            ),
            load_delay_seconds=_non_negative_float(
                env, "STEPFLOW_INFERENCE_LOAD_DELAY_SECONDS", 0.0
            ),
            transport=transport,
            tasks_url=tasks_url,
            queue_name=queue_name,
            max_concurrent=_positive_int(env, "STEPFLOW_MAX_CONCURRENT", DEFAULT_MAX_CONCURRENT),
        )


def apply_process_defaults(settings: Settings, env: dict[str, str] | None = None) -> None:
    """Set cache and offline variables before torch/transformers are imported.

    Library caches go under /var/cache/stepflow (or XDG_CACHE_HOME if set) so that a
    read-only root filesystem works. Unless downloading is allowed, the hub libraries
    are forced offline so nothing reaches out to a model hub.
    """
    env = os.environ if env is None else env
    cache_root = env.get("XDG_CACHE_HOME") or DEFAULT_CACHE_ROOT
    env.setdefault("XDG_CACHE_HOME", cache_root)
    env.setdefault("HF_HOME", os.path.join(cache_root, "huggingface"))
    env.setdefault("TORCH_HOME", os.path.join(cache_root, "torch"))
    env.setdefault("TRITON_CACHE_DIR", os.path.join(cache_root, "triton"))
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(cache_root, "torchinductor"))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if not settings.allow_download:
        env["HF_HUB_OFFLINE"] = "1"
        env["TRANSFORMERS_OFFLINE"] = "1"
