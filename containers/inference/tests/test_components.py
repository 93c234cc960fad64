"""The embed and rerank components, called over the JSON-RPC protocol of stepflow-py
0.11 exactly as the StepFlow core does (POST / with initialize, initialized,
components/list|info|execute), against one real server process."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import pytest

SIMILAR = ("A man is eating food.", "A man is eating a piece of bread.")
UNRELATED = "The stock market fell sharply on Monday."


def _ok(response: dict) -> dict:
    assert "error" not in response, response
    return response["result"]


def _embed(srv, texts: list[str]) -> list[list[float]]:
    out = _ok(srv.execute("/embed", {"texts": texts}))["output"]
    assert out["model"] == "all-MiniLM-L6-v2"
    assert len(out["embeddings"]) == len(texts)
    return out["embeddings"]


def _dot(a, b) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_initialize_result(ready_server):
    result = _ok(ready_server.handshake())
    assert result["serverProtocolVersion"] == 1


def test_components_list_declares_schemas(ready_server):
    comps = _ok(ready_server.rpc("components/list", {}).json())["components"]
    by_name = {c["component"]: c for c in comps}
    # Only our two components: the SDK's arbitrary-code `udf` builtin is not exposed.
    assert set(by_name) == {"/embed", "/rerank"}
    embed_in = str(by_name["/embed"]["input_schema"])
    assert "texts" in embed_in
    assert "embeddings" in str(by_name["/embed"]["output_schema"])
    rerank_in = str(by_name["/rerank"]["input_schema"])
    for field in ("query", "documents", "top_k"):
        assert field in rerank_in
    assert "score" in str(by_name["/rerank"]["output_schema"])
    info = _ok(ready_server.rpc("components/info", {"component": "/embed"}).json())
    assert info["info"]["component"] == "/embed"


def test_embed_vectors_are_384_dim_unit_length(ready_server):
    vectors = _embed(ready_server, ["hello world", "StepFlow runs GenAI workflows."])
    for v in vectors:
        assert len(v) == 384
        assert math.isclose(math.sqrt(_dot(v, v)), 1.0, abs_tol=1e-4)


def test_similar_sentences_score_higher(ready_server):
    a, b, c = _embed(ready_server, [*SIMILAR, UNRELATED])
    similar, unrelated = _dot(a, b), _dot(a, c)
    assert similar > 0.5
    assert similar > unrelated + 0.3, (similar, unrelated)


def test_matches_sentence_transformers(ready_server, bundled_model_dir):
    """Same vectors as sentence-transformers' own encode() with normalization."""
    st = pytest.importorskip("sentence_transformers")
    texts = [*SIMILAR, UNRELATED, "short", "a somewhat longer sentence " * 20]
    ours = _embed(ready_server, texts)
    model = st.SentenceTransformer(str(bundled_model_dir), device="cpu")
    ref = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    for mine, theirs in zip(ours, ref.tolist(), strict=True):
        assert max(abs(x - y) for x, y in zip(mine, theirs, strict=True)) < 1e-4


def test_component_name_without_leading_slash(ready_server):
    out = _ok(ready_server.execute("embed", {"texts": ["x"]}))["output"]
    assert out["dimensions"] == 384


def test_empty_input(ready_server):
    assert _embed(ready_server, []) == []
    out = _ok(ready_server.execute("/rerank", {"query": "q", "documents": []}))["output"]
    assert out["results"] == []


def test_rerank_orders_by_similarity(ready_server):
    query = "How long should I boil spaghetti?"
    docs = [
        UNRELATED,
        "Dogs are loyal animals.",
        "Cook the pasta in salted boiling water for about ten minutes.",
        "It is sunny and warm today.",
    ]
    out = _ok(ready_server.execute("/rerank", {"query": query, "documents": docs}))["output"]
    results = out["results"]
    assert len(results) == len(docs)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert {r["index"] for r in results} == set(range(len(docs)))
    for r in results:
        assert r["document"] == docs[r["index"]]
    assert results[0]["index"] == 2  # the pasta sentence wins
    # Scores are the cosine similarities of the embed component's vectors.
    q, *d = _embed(ready_server, [query, *docs])
    for r in results:
        assert math.isclose(r["score"], _dot(q, d[r["index"]]), abs_tol=1e-5)
    top = _ok(ready_server.execute("/rerank", {"query": query, "documents": docs, "top_k": 2}))[
        "output"
    ]["results"]
    assert [r["index"] for r in top] == [r["index"] for r in results[:2]]


def test_invalid_input_is_a_jsonrpc_error(ready_server):
    resp = ready_server.execute("/embed", {"texts": "not a list"})
    assert "error" in resp and resp["error"]["message"]
    resp = ready_server.execute("/rerank", {"query": "q", "documents": ["a"], "top_k": 0})
    assert "error" in resp
    resp = ready_server.execute("/nope", {})
    assert "error" in resp and "nope" in resp["error"]["message"]


def _stats(srv) -> dict:
    return srv.client.get("/ready").json()


def test_large_request_is_split_into_batches(ready_server):
    batch = _stats(ready_server)["maxBatchSize"]
    assert batch == 8  # STEPFLOW_INFERENCE_MAX_BATCH_SIZE of the fixture
    before = _stats(ready_server)["forwardPasses"]
    texts = [f"sentence number {i}" for i in range(2 * batch + 3)]
    vectors = _embed(ready_server, texts)
    after = _stats(ready_server)
    assert after["forwardPasses"] - before == 3
    assert after["largestBatch"] <= batch
    # Batch composition does not change a text's vector.
    alone = _embed(ready_server, [texts[-1]])[0]
    assert max(abs(x - y) for x, y in zip(alone, vectors[-1], strict=True)) < 1e-5


def test_concurrent_requests_are_coalesced(ready_server):
    texts = [f"concurrent text {i}" for i in range(12)]
    expected = {t: v for t, v in zip(texts, _embed(ready_server, texts), strict=True)}
    before = _stats(ready_server)["forwardPasses"]
    pairs = [texts[i : i + 2] for i in range(0, 12, 2)] * 2  # 12 requests, 24 texts
    with ThreadPoolExecutor(max_workers=len(pairs)) as pool:
        results = list(pool.map(lambda p: (p, _embed(ready_server, p)), pairs))
    passes = _stats(ready_server)["forwardPasses"] - before
    assert passes < len(pairs), f"{passes} forward passes for {len(pairs)} requests"
    for p, vectors in results:  # every caller got the vectors of its own texts
        for t, v in zip(p, vectors, strict=True):
            assert max(abs(x - y) for x, y in zip(v, expected[t], strict=True)) < 1e-5
