"""Settings of the inference server, read from environment variables.

Every variable is documented in containers/inference/README.md. This module must stay
import-light (no torch/transformers): it runs before the HTTP server starts. The values
are read with stepflow_kit_worker.env, the reader the python-sdk worker uses too (the
package ships beside this one, in the image and in the tests' venv).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stepflow_kit_worker.env import (
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_TASKS_URL,
    ConfigError,
    PullTarget,
    boolean,
    choice,
    number,
    positive_int,
    text,
)

__all__ = ["ConfigError", "Settings", "apply_process_defaults"]

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
# The gRPC pull worker's variables are read as the python-sdk worker reads them
# (stepflow_kit_worker.env); only the queue name's default is this component's own, its
# route prefix (contract routePrefix).
DEFAULT_QUEUE_NAME = "inference"


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
        device = choice(env, "STEPFLOW_INFERENCE_DEVICE", "auto", DEVICES)
        model = env.get("STEPFLOW_INFERENCE_EMBED_MODEL", DEFAULT_EMBED_MODEL).strip()
        parts = model.split("/")
        if not model or any(p in ("", ".", "..") for p in parts) or len(parts) > 2:
            raise ConfigError(
                f"STEPFLOW_INFERENCE_EMBED_MODEL={model!r} must be a directory name "
                "under MODEL_CACHE_DIR such as 'all-MiniLM-L6-v2' (or 'org/name')"
            )
        transport = choice(
            env,
            "STEPFLOW_TRANSPORT",
            "http",
            TRANSPORTS,
            "http: StepFlow 0.11, the core calls this server; grpc: StepFlow 0.13, "
            "this server pulls tasks from the core",
        )
        target = PullTarget.from_env(env, DEFAULT_QUEUE_NAME)
        return cls(
            model_cache_dir=Path(text(env, "MODEL_CACHE_DIR", DEFAULT_MODEL_CACHE_DIR)),
            device=device,
            embed_model=model,
            allow_download=boolean(env, "STEPFLOW_INFERENCE_ALLOW_DOWNLOAD", False),
            max_batch_size=positive_int(
                env, "STEPFLOW_INFERENCE_MAX_BATCH_SIZE", DEFAULT_MAX_BATCH_SIZE
            ),
            load_delay_seconds=number(env, "STEPFLOW_INFERENCE_LOAD_DELAY_SECONDS", 0.0),
            transport=transport,
            tasks_url=target.tasks_url,
            queue_name=target.queue_name,
            max_concurrent=target.max_concurrent,
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
