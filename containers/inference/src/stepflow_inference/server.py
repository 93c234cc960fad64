"""The StepFlow component server: components, probes, the HTTP app and the gRPC worker.

Two transports, one per StepFlow generation (STEPFLOW_TRANSPORT, see sdk.py):

* http (StepFlow 0.11, stepflow-py 0.11): the core calls this server. stepflow-py
  0.11's StepflowServer.run() builds its FastAPI app internally and offers no hook to
  add routes. So this module builds the very same app with the SDK's public
  stepflow_py.worker.http_server.create_test_app() (which returns the FastAPI app that
  run() would serve: POST / for JSON-RPC and GET /health), adds GET /ready to it, and
  serves it with uvicorn itself. Model loading runs in a background thread after the
  socket is bound, so /health and the JSON-RPC `initialize` handshake answer at once
  while /ready says 503 until the model is loaded.

* grpc (StepFlow 0.13, stepflow-py 0.13): no listener. The same components are
  registered with a stepflow-py StepflowServer and served by the SDK's pull worker
  stepflow_py.worker.grpc_worker.run_grpc_worker(), which dials the core at
  STEPFLOW_TASKS_URL, pulls tasks from STEPFLOW_QUEUE_NAME and reports results back.
  stepflow_kit_worker.loop.WorkerLoop (the python-sdk image's worker loop, built into
  this package) runs it: it connects again whenever the core goes away, touches
  STEPFLOW_KIT_HEARTBEAT_FILE every 5 s and stops promptly on SIGTERM/SIGINT.
  The model loads in the background meanwhile; tasks pulled before it is loaded wait.

In both modes the model is loaded once per process and the device logic is the same.
"""

# No `from __future__ import annotations` here: the SDK reads the component functions'
# annotations at runtime (inspect.signature) and needs real types, not strings.
import asyncio
import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from stepflow_py.worker.server import ComponentEntry, StepflowServer

from .config import Settings
from .model import Batcher, Embedder, load_embedder

logger = logging.getLogger(__name__)

SERVICE_NAME = "stepflow-inference"


# --- component schemas (msgspec structs -> JSON Schema via the SDK) ----------------


class EmbedInput(msgspec.Struct, kw_only=True):
    """Texts to embed."""

    texts: Annotated[list[str], Meta(description="Texts to embed, in order.")]


class EmbedOutput(msgspec.Struct, kw_only=True):
    """L2-normalized sentence embeddings, one per input text, in input order."""

    embeddings: Annotated[
        list[list[float]],
        Meta(description="One unit-length vector per input text (mean pooling)."),
    ]
    model: Annotated[str, Meta(description="Model directory name that produced them.")]
    dimensions: Annotated[int, Meta(description="Length of each vector.")]


class RerankInput(msgspec.Struct, kw_only=True):
    """A query and the documents to order by relevance to it."""

    query: Annotated[str, Meta(description="The query text.")]
    documents: Annotated[list[str], Meta(description="Candidate documents.")]
    top_k: (
        Annotated[int, Meta(ge=1, description="Return only the best top_k documents.")] | None
    ) = None


class RerankResult(msgspec.Struct, kw_only=True):
    index: Annotated[int, Meta(description="Position of the document in the input.")]
    document: str
    score: Annotated[float, Meta(description="Cosine similarity with the query.")]


class RerankOutput(msgspec.Struct, kw_only=True):
    """Documents sorted by descending cosine similarity with the query."""

    results: list[RerankResult]
    model: str


# --- process state -----------------------------------------------------------------


@dataclass
class State:
    settings: Settings
    status: str = "loading"  # loading | ready | failed
    error: str | None = None
    device: str | None = None
    embedder: Embedder | None = None
    batcher: Batcher | None = None
    started_at: float = field(default_factory=time.monotonic)
    load_seconds: float | None = None
    ready_event: asyncio.Event | None = None

    def mark_ready(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.device = embedder.device
        self.batcher = Batcher(embedder.encode, self.settings.max_batch_size)
        self.load_seconds = time.monotonic() - self.started_at
        self.status = "ready"
        if self.ready_event is not None:
            self.ready_event.set()

    async def wait_ready(self) -> Batcher:
        """The batcher; waits while the model is still loading."""
        if self.status == "failed":
            raise RuntimeError(f"model failed to load: {self.error}")
        if self.status != "ready":
            if self.ready_event is None:
                self.ready_event = asyncio.Event()
            await self.ready_event.wait()
            if self.status == "failed":
                raise RuntimeError(f"model failed to load: {self.error}")
        assert self.batcher is not None
        return self.batcher


class InferenceStepflowServer(StepflowServer):
    """StepflowServer that also accepts component names without the leading '/'.

    The SDK registers components as '/embed'; the core sends the path captured by
    its route (e.g. '/embed' for '/inference/embed'). Accepting 'embed' too costs
    nothing and keeps both spellings working.
    """

    def get_component(self, component_path: str) -> tuple[ComponentEntry, dict[str, str]] | None:
        found = super().get_component(component_path)
        if found is None and not component_path.startswith("/"):
            found = super().get_component("/" + component_path)
        return found


def _register(server: StepflowServer, func: Any, name: str) -> None:
    """Register `func` as component `name` (path `/name`) with either SDK generation.

    stepflow-py 0.11: component(name=...) is the path and the lookup key.
    stepflow-py 0.13: component(id=..., subpath=...): the core dispatches on the id and
    routes `/<routePrefix>/<subpath>` to it (name= still exists there as a deprecated
    alias of subpath)."""
    params = inspect.signature(server.component).parameters
    if "subpath" in params and "id" in params:
        server.component(func, id=name, subpath=name)
    else:
        server.component(func, name=name)


def register_components(server: StepflowServer, state: State) -> None:
    """The `embed` and `rerank` components, backed by the process's one model."""

    async def embed(input: EmbedInput) -> EmbedOutput:
        """Embed texts into L2-normalized sentence vectors (mean pooling)."""
        batcher = await state.wait_ready()
        vectors = await batcher.embed(input.texts)
        assert state.embedder is not None
        return EmbedOutput(
            embeddings=vectors,
            model=state.settings.embed_model,
            dimensions=state.embedder.dimensions,
        )

    async def rerank(input: RerankInput) -> RerankOutput:
        """Sort documents by cosine similarity of their embeddings with the query."""
        batcher = await state.wait_ready()
        if not input.documents:
            return RerankOutput(results=[], model=state.settings.embed_model)
        vectors = await batcher.embed([input.query, *input.documents])
        query, docs = vectors[0], vectors[1:]
        scored = [
            RerankResult(
                index=i,
                document=doc,
                score=float(sum(q * d for q, d in zip(query, vec, strict=True))),
            )
            for i, (doc, vec) in enumerate(zip(input.documents, docs, strict=True))
        ]
        scored.sort(key=lambda r: (-r.score, r.index))
        if input.top_k is not None:
            scored = scored[: input.top_k]
        return RerankOutput(results=scored, model=state.settings.embed_model)

    _register(server, embed, "embed")
    _register(server, rerank, "rerank")


def build_server(state: State) -> InferenceStepflowServer:
    # No built-in components: the SDK's `udf` would let callers run arbitrary code.
    server = InferenceStepflowServer(include_builtins=False)
    register_components(server, state)
    server.set_initialized(True)  # as the SDK's own run_http_server() does
    return server


def build_app(state: State) -> Any:
    from fastapi.responses import JSONResponse
    from stepflow_py.worker.http_server import create_test_app

    app = create_test_app(build_server(state))
    app.title = SERVICE_NAME

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Readiness/startup probe: 200 once the model is loaded, 503 before."""
        body: dict[str, Any] = {
            "status": state.status,
            "service": SERVICE_NAME,
            "model": state.settings.embed_model,
        }
        if state.status != "ready":
            if state.error:
                body["error"] = state.error
            return JSONResponse(body, status_code=503)
        assert state.embedder is not None and state.batcher is not None
        body.update(
            device=state.device,
            dimensions=state.embedder.dimensions,
            loadSeconds=round(state.load_seconds or 0.0, 3),
            maxBatchSize=state.batcher.max_batch_size,
            forwardPasses=state.batcher.forward_passes,
            textsEncoded=state.batcher.texts_encoded,
            largestBatch=state.batcher.largest_batch,
        )
        return JSONResponse(body, status_code=200)

    return app


async def _load(state: State, on_failure: Any) -> None:
    settings = state.settings
    try:
        if settings.load_delay_seconds:
            await asyncio.sleep(settings.load_delay_seconds)
        embedder = await asyncio.to_thread(load_embedder, settings)
    except Exception as exc:  # noqa: BLE001 - reported, then the process exits
        state.status = "failed"
        state.error = str(exc)
        logger.error("model loading failed, exiting: %s", exc)
        if state.ready_event is not None:
            state.ready_event.set()  # tasks waiting for the model fail now
        on_failure()
        return
    state.mark_ready(embedder)
    logger.info(
        "ready after %.1f s (%s)",
        state.load_seconds or 0.0,
        "GET /ready now answers 200" if settings.transport == "http" else "executing tasks",
    )


async def serve(settings: Settings, host: str, port: int) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code."""
    import uvicorn

    state = State(settings=settings)
    state.ready_event = asyncio.Event()
    app = build_app(state)
    config = uvicorn.Config(
        app=app,
        host=host,
        port=port,
        log_level="warning",
        timeout_keep_alive=5,
        lifespan="off",
    )
    server = uvicorn.Server(config)

    def stop() -> None:
        server.should_exit = True

    logger.info("starting %s on %s:%d (model loads in the background)", SERVICE_NAME, host, port)
    loader = asyncio.create_task(_load(state, stop), name="model-loader")
    try:
        await server.serve()
    finally:
        if not loader.done():
            loader.cancel()
    return 3 if state.status == "failed" else 0


async def serve_grpc(settings: Settings, loop_settings: Any) -> int:
    """StepFlow 0.13: pull tasks from the core until SIGTERM/SIGINT; returns the process
    exit code.

    `loop_settings` (a stepflow_kit_worker.loop.LoopSettings with this server's tasks
    URL, queue and concurrency) configures the worker loop: it restarts stepflow-py's
    worker whenever that returns (the core went away, or stayed unreachable for the
    SDK's 15 attempts), so the process outlives restarts of the core; it touches the
    heartbeat file; on SIGTERM/SIGINT it stops pulling at once, lets tasks already
    pulled finish (at most STEPFLOW_SHUTDOWN_GRACE_SECS, default 10) and returns 0. A
    failed model load stops the worker: exit 3."""
    from stepflow_kit_worker.loop import WorkerLoop

    state = State(settings=settings)
    state.ready_event = asyncio.Event()
    # No built-in components: the SDK's `udf` would let callers run arbitrary code.
    server = StepflowServer(include_builtins=False)
    register_components(server, state)
    logger.info(
        "starting %s as a gRPC pull worker: STEPFLOW_TASKS_URL=%s STEPFLOW_QUEUE_NAME=%s "
        "STEPFLOW_MAX_CONCURRENT=%d (model loads in the background)",
        SERVICE_NAME,
        settings.tasks_url,
        settings.queue_name,
        settings.max_concurrent,
    )
    worker_loop = WorkerLoop(server, loop_settings)
    loader = asyncio.create_task(
        _load(state, lambda: worker_loop.request_stop("model loading failed", exit_code=3)),
        name="model-loader",
    )
    try:
        code = await worker_loop.run()
    finally:
        if not loader.done():
            loader.cancel()
    logger.info("gRPC worker stopped (exit status %d)", code)
    return code
