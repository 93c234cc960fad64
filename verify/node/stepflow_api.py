"""The StepFlow core's REST API (0.13, /api/v1) as the node tier uses it, through a
port-forward: blobs, flows, runs (standard library only)."""
from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))  # stepflow_fixtures
from stepflow_fixtures.runs import TERMINAL, norm_status, wait_runs  # noqa: E402

__all__ = ["TERMINAL", "ApiError", "Flows", "StepFlow", "norm_status"]

# UDF code run by the stock python-sdk `/udf` component (stored as blobs).
ADD_CODE = "input['a'] + input['b']"
NESTED_CODE = ("async def nested(input, context):\n"
               "    s = await context.evaluate_flow_by_id(input['flow_id'], {'a': input['a'], 'b': input['b']})\n"
               "    return {'sum': s, 'double': s * 2}\n"
               "nested")
# A step that awaits (does not block the worker's event loop) and names the pod it ran in.
SLEEP_CODE = ("async def wait(input, context):\n"
              "    import asyncio, os\n"
              "    await asyncio.sleep(input['seconds'])\n"
              "    return {'value': input['value'], 'host': os.environ.get('HOSTNAME', '')}\n"
              "wait")


class ApiError(RuntimeError):
    pass


class StepFlow:
    """One HTTP connection per thread (keep-alive), to the URL of a port-forward."""

    def __init__(self, url: str) -> None:
        self.set_url(url)
        self.local = threading.local()

    def set_url(self, url: str) -> None:
        u = urlparse(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.generation = time.monotonic()  # connections of an older URL are dropped

    def _conn(self, timeout: float) -> http.client.HTTPConnection:
        c = getattr(self.local, "conn", None)
        if c is None or getattr(self.local, "gen", None) != self.generation:
            if c is not None:
                c.close()
            c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            self.local.conn, self.local.gen = c, self.generation
        c.timeout = timeout
        if c.sock is not None:
            c.sock.settimeout(timeout)
        return c

    def api(self, method: str, path: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"} if data is not None else {}
        for attempt in (1, 2):
            c = self._conn(timeout)
            try:
                c.request(method, "/api/v1" + path, body=data, headers=headers)
                r = c.getresponse()
                raw = r.read()
                try:
                    return r.status, json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    return r.status, raw.decode(errors="replace")
            except (OSError, http.client.HTTPException) as exc:
                c.close()
                self.local.conn = None
                if attempt == 2 or isinstance(exc, TimeoutError):
                    return 0, f"{type(exc).__name__}: {exc}"
        return 0, "unreachable"

    def health(self, timeout: float = 3) -> bool:
        st, _ = self.api("GET", "/health", timeout=timeout)
        return st == 200

    def blob(self, data: Any) -> str:
        st, b = self.api("POST", "/blobs", {"data": data})
        if st != 200 or not isinstance(b, dict) or "blobId" not in b:
            raise ApiError(f"POST /blobs: HTTP {st} {str(b)[:300]}")
        return b["blobId"]

    def flow(self, flow: dict[str, Any]) -> str:
        st, f = self.api("POST", "/flows", {"flow": flow})
        if st != 200 or not isinstance(f, dict) or not f.get("flowId"):
            raise ApiError(f"POST /flows: HTTP {st} {str(f)[:300]}")
        return f["flowId"]

    def submit(self, flow_id: str, inp: Any) -> str:
        st, r = self.api("POST", "/runs", {"flowId": flow_id, "input": [inp], "wait": False})
        rid = (r.get("summary") or r).get("runId") if isinstance(r, dict) else None
        if st not in (200, 202) or not rid:
            raise ApiError(f"POST /runs: HTTP {st} {str(r)[:300]}")
        return rid

    def run_wait(self, flow_id: str, inp: Any, timeout: int = 60) -> tuple[bool, Any, str]:
        """(completed?, output, detail) of one run with wait=true."""
        st, run = self.api("POST", "/runs", {"flowId": flow_id, "input": [inp], "wait": True, "timeoutSecs": timeout},
                           timeout=timeout + 10)
        if st != 200 or not isinstance(run, dict) or not run.get("results"):
            return False, None, f"HTTP {st} {str(run)[:300]}"
        item = run["results"][0]
        s = norm_status(item.get("status"))
        if s == "completed":
            return True, item.get("output"), "completed"
        return False, None, f"{s}: {str(item.get('errorMessage') or item.get('result'))[:300]}"

    def status(self, rid: str) -> tuple[str, Any]:
        st, r = self.api("GET", f"/runs/{rid}", timeout=10)
        if st != 200 or not isinstance(r, dict):
            return f"HTTP {st}", None
        return norm_status((r.get("summary") or r).get("status")), r

    def output(self, rid: str) -> Any:
        st, r = self.api("GET", f"/runs/{rid}/items", timeout=10)
        if st == 200 and isinstance(r, dict):
            items = r.get("items") or r.get("results") or []
            if items:
                return items[0].get("output", items[0].get("result"))
        return None

    def wait_runs(self, rids: list[str], timeout: float) -> dict[str, str]:
        return wait_runs(lambda rid: self.status(rid)[0], rids, timeout)


class Flows:
    """The flows the tier runs, stored once per core state."""

    def __init__(self, sf: StepFlow, python_udf: str, embed: str) -> None:
        self.sf = sf
        self.python_udf = python_udf  # e.g. /python/udf (route of the plugin served by the python-sdk)
        self.embed = embed  # e.g. /inference/embed
        self.ids: dict[str, str] = {}

    def add(self) -> str:
        if "add" not in self.ids:
            blob = self.sf.blob({"code": ADD_CODE, "input_schema": {
                "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}})
            self.ids["add"] = self.sf.flow({"name": "node-add", "description": "a + b in the python-sdk",
                                            "steps": [{"id": "add", "component": self.python_udf,
                                                       "input": {"blob_id": blob, "input": {"$input": "$"}}}],
                                            "output": {"$step": "add"}})
        return self.ids["add"]

    def nested(self) -> str:
        if "nested" not in self.ids:
            blob = self.sf.blob({"code": NESTED_CODE, "input_schema": {"type": "object"}})
            self.ids["nested"] = self.sf.flow({
                "name": "node-nested", "description": "a UDF evaluating a sub-flow through the core",
                "steps": [{"id": "outer", "component": self.python_udf,
                           "input": {"blob_id": blob, "input": {"flow_id": self.add(), "a": {"$input": "a"}, "b": {"$input": "b"}}}}],
                "output": {"$step": "outer"}})
        return self.ids["nested"]

    def sleep(self) -> str:
        """One step: await asyncio.sleep(input.seconds), return {value, host}."""
        if "sleep" not in self.ids:
            blob = self.sf.blob({"code": SLEEP_CODE, "input_schema": {"type": "object"}})
            self.ids["sleep"] = self.sf.flow({
                "name": "node-sleep", "description": "one step awaiting asyncio.sleep",
                "steps": [{"id": "wait", "component": self.python_udf,
                           "input": {"blob_id": blob, "input": {"seconds": {"$input": "seconds"}, "value": {"$input": "value"}}}}],
                "output": {"$step": "wait"}})
        return self.ids["sleep"]

    def embedding(self) -> str:
        if "embed" not in self.ids:
            self.ids["embed"] = self.sf.flow({"name": "node-embed", "description": "embed through the core",
                                              "steps": [{"id": "e", "component": self.embed,
                                                         "input": {"texts": {"$input": "texts"}}}],
                                              "output": {"$step": "e"}})
        return self.ids["embed"]
