"""Sentence-embedding model: loading from MODEL_CACHE_DIR, encoding, batching.

torch and transformers are imported lazily (inside functions) so the HTTP server can
answer /health while they load.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Settings

logger = logging.getLogger(__name__)

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer.model")
# Used when the model directory has no sentence_bert_config.json.
_FALLBACK_MAX_SEQ_LENGTH = 512


class ModelNotFoundError(RuntimeError):
    """The model directory is missing or incomplete and downloading is not allowed."""


def missing_model_files(model_dir: Path) -> list[str]:
    """Names of what a loadable model directory lacks (empty list: looks complete)."""
    missing = []
    if not (model_dir / "config.json").is_file():
        missing.append("config.json")
    if not any((model_dir / f).is_file() for f in _WEIGHT_FILES):
        missing.append(" or ".join(_WEIGHT_FILES))
    if not any((model_dir / f).is_file() for f in _TOKENIZER_FILES):
        missing.append(" or ".join(_TOKENIZER_FILES))
    return missing


def check_model_present(settings: Settings) -> None:
    """Fail fast, before the server starts, when the model cannot be loaded."""
    model_dir = settings.embed_model_dir
    missing = missing_model_files(model_dir)
    if not missing or settings.allow_download:
        return
    what = "does not exist" if not model_dir.exists() else f"lacks {', '.join(missing)}"
    raise ModelNotFoundError(
        f"embedding model not found: {model_dir} {what}. "
        f"Fix: put the files of the model '{settings.embed_model_repo}' "
        f"(config.json, model.safetensors, tokenizer files) in {model_dir} "
        "(MODEL_CACHE_DIR/STEPFLOW_INFERENCE_EMBED_MODEL, e.g. a pre-populated volume "
        "mounted at MODEL_CACHE_DIR), or choose another directory with "
        "STEPFLOW_INFERENCE_EMBED_MODEL, or set STEPFLOW_INFERENCE_ALLOW_DOWNLOAD=true "
        "to download it from the model hub into MODEL_CACHE_DIR."
    )


def resolve_device(requested: str) -> tuple[str, str]:
    """Return (device, reason) for STEPFLOW_INFERENCE_DEVICE."""
    import torch

    cuda = torch.cuda.is_available()
    if requested == "cpu":
        return "cpu", "STEPFLOW_INFERENCE_DEVICE=cpu"
    if requested == "cuda":
        if not cuda:
            raise RuntimeError(
                "STEPFLOW_INFERENCE_DEVICE=cuda but torch.cuda.is_available() is false "
                "(no GPU visible to this container, or the NVIDIA runtime is missing); "
                "use STEPFLOW_INFERENCE_DEVICE=auto or cpu, or schedule the pod on a GPU node"
            )
        return "cuda", "STEPFLOW_INFERENCE_DEVICE=cuda"
    if cuda:
        return "cuda", "STEPFLOW_INFERENCE_DEVICE=auto and CUDA is available"
    return "cpu", "STEPFLOW_INFERENCE_DEVICE=auto and CUDA is not available"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return {}


def _pooling_mode(model_dir: Path) -> str:
    """Pooling declared by a sentence-transformers model directory (default: mean)."""
    config = _read_json(model_dir / "1_Pooling" / "config.json")
    if not config or config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    raise RuntimeError(
        f"unsupported pooling in {model_dir / '1_Pooling' / 'config.json'}: "
        "only mean-token and CLS pooling are implemented"
    )


def download_model(settings: Settings) -> None:
    """Download the model from the hub into MODEL_CACHE_DIR/<name> (only if allowed)."""
    from huggingface_hub import snapshot_download

    target = settings.embed_model_dir
    logger.info("downloading %s into %s", settings.embed_model_repo, target)
    target.mkdir(parents=True, exist_ok=True)
    snapshot_download(
        repo_id=settings.embed_model_repo,
        local_dir=str(target),
        allow_patterns=[
            "*.json",
            "*.txt",
            "*.model",
            "model.safetensors",
            "1_Pooling/*",
        ],
    )


class Embedder:
    """A transformer encoder with sentence-transformers-style pooling.

    encode() is thread-safe: a lock makes sure only one forward pass uses the model at
    a time.
    """

    def __init__(self, model_dir: Path, device: str):
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model_dir = model_dir
        self.device = device
        self._torch = torch
        self._lock = threading.Lock()
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        self.model = model.to(device).eval()
        st_config = _read_json(model_dir / "sentence_bert_config.json")
        max_len = int(st_config.get("max_seq_length") or _FALLBACK_MAX_SEQ_LENGTH)
        max_pos = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(max_pos, int) and max_pos > 0:
            max_len = min(max_len, max_pos)
        self.max_seq_length = max_len
        self.pooling = _pooling_mode(model_dir)
        self.dimensions = int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        """One forward pass over `texts`; returns L2-normalized embeddings."""
        torch = self._torch
        if not texts:
            return []
        with self._lock, torch.inference_mode():
            enc = self.tokenizer(
                list(texts),
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="pt",
            ).to(self.device)
            out = self.model(**enc)
            tokens = out.last_hidden_state
            if self.pooling == "cls":
                pooled = tokens[:, 0]
            else:
                mask = enc["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=1)
            return pooled.cpu().tolist()


def check_torch_usable() -> None:
    """transformers silently disables a PyTorch it considers too old (4.57: < 2.1,
    5.x: < 2.6), which would surface later as an obscure error; say so plainly."""
    import torch
    import transformers
    from transformers.utils import is_torch_available

    if not is_torch_available():
        raise RuntimeError(
            f"transformers {transformers.__version__} cannot use the installed torch "
            f"{torch.__version__} (too old for this transformers); install the torch and "
            "transformers versions pinned together in containers/inference/pyproject.toml"
        )


def load_embedder(settings: Settings) -> Embedder:
    """Load the embedding model once (called at process start, in a worker thread)."""
    check_torch_usable()
    device, reason = resolve_device(settings.device)
    logger.info("inference device: %s (%s)", device, reason)
    model_dir = settings.embed_model_dir
    if missing_model_files(model_dir):
        if not settings.allow_download:
            check_model_present(settings)  # raises ModelNotFoundError
        download_model(settings)
        still_missing = missing_model_files(model_dir)
        if still_missing:
            raise ModelNotFoundError(
                f"download of {settings.embed_model_repo} into {model_dir} did not "
                f"produce {', '.join(still_missing)}"
            )
    start = time.monotonic()
    embedder = Embedder(model_dir, device)
    logger.info(
        "loaded embedding model %s from %s in %.1f s (dimensions=%d, max_seq_length=%d, "
        "pooling=%s)",
        settings.embed_model,
        model_dir,
        time.monotonic() - start,
        embedder.dimensions,
        embedder.max_seq_length,
        embedder.pooling,
    )
    return embedder


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future[list[list[float]]]
    results: list[list[float]] = field(default_factory=list)
    taken: int = 0  # texts already handed to a batch


class Batcher:
    """Coalesces concurrent embedding requests into forward passes of at most
    max_batch_size texts.

    A single worker task per process runs the passes one after the other in a worker
    thread (so the event loop keeps serving /health and new requests meanwhile).
    Requests that arrive while a pass runs are combined into the next pass; a request
    with more than max_batch_size texts is split over several passes.
    """

    def __init__(self, encode: Callable[[list[str]], list[list[float]]], max_batch_size: int):
        self._encode = encode
        self.max_batch_size = max_batch_size
        self._jobs: deque[_Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self.forward_passes = 0
        self.texts_encoded = 0
        self.largest_batch = 0

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._run(), name="embedding-batcher")
        job = _Job(texts=list(texts), future=loop.create_future())
        self._jobs.append(job)
        self._wakeup.set()
        return await job.future

    def _next_batch(self) -> list[tuple[_Job, int, int]]:
        """Slices (job, start, end) of pending texts, at most max_batch_size in all."""
        batch: list[tuple[_Job, int, int]] = []
        room = self.max_batch_size
        for job in self._jobs:
            if room == 0:
                break
            left = len(job.texts) - job.taken
            if left <= 0:
                continue
            n = min(left, room)
            batch.append((job, job.taken, job.taken + n))
            job.taken += n
            room -= n
        return batch

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._jobs:
                batch = self._next_batch()
                if not batch:
                    break
                texts = [t for job, s, e in batch for t in job.texts[s:e]]
                try:
                    vectors = await asyncio.to_thread(self._encode, texts)
                except Exception as exc:  # fail every request that had texts in this pass
                    failed = {id(job) for job, _, _ in batch}
                    for job, _, _ in batch:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    self._jobs = deque(j for j in self._jobs if id(j) not in failed)
                    continue
                self.forward_passes += 1
                self.texts_encoded += len(texts)
                self.largest_batch = max(self.largest_batch, len(texts))
                pos = 0
                for job, s, e in batch:
                    job.results.extend(vectors[pos : pos + (e - s)])
                    pos += e - s
                remaining: deque[_Job] = deque()
                for job in self._jobs:
                    if len(job.results) == len(job.texts):
                        if not job.future.done():
                            job.future.set_result(job.results)
                    elif not job.future.cancelled():
                        remaining.append(job)
                self._jobs = remaining
