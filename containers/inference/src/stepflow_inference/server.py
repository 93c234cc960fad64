"""The StepFlow component server: components, probes and the HTTP app.

stepflow-py 0.11's StepflowServer.run() builds its FastAPI app internally and offers no
hook to add routes. So this module builds the very same app with the SDK's public
stepflow_py.worker.http_server.create_test_app() (which returns the FastAPI app that
run() would serve: POST / for JSON-RPC and GET /health), adds GET /ready to it, and
serves it with uvicorn itself. Model loading runs in a background thread after the
socket is bound, so /health and the JSON-RPC `initialize` handshake answer at once
while /ready says 503 until the model is loaded.
"""

# No `from __future__ import annotations` here: the SDK reads the component functions'
# annotations at runtime (inspect.signature) and needs real types, not strings.
import asyncio
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


def build_server(state: State) -> InferenceStepflowServer:
    # No built-in components: the SDK's `udf` would let callers run arbitrary code.
    server = InferenceStepflowServer(include_builtins=False)

    @server.component(name="embed")
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

    @server.component(name="rerank")
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
        on_failure()
        return
    state.mark_ready(embedder)
    logger.info("ready after %.1f s (GET /ready now answers 200)", state.load_seconds or 0.0)


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
