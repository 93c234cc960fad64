#!/usr/bin/env python3
"""A minimal OTLP/gRPC receiver for the telemetry checks (telemetry.py starts it).

It serves the unary Export methods of the three OTLP collector services on 127.0.0.1 only:
  /opentelemetry.proto.collector.trace.v1.TraceService/Export
  /opentelemetry.proto.collector.metrics.v1.MetricsService/Export
  /opentelemetry.proto.collector.logs.v1.LogsService/Export
and counts what arrives per `service.name` resource attribute: spans (and their names),
metric data points (and metric names), log records, export requests, and the request's
`grpc-encoding` and `user-agent`.

gRPC over HTTP/2 is spoken with the pure-Python `h2` library rather than with grpcio:
grpcio's server accepts the message encodings identity, deflate and gzip only and rejects
anything else before a handler runs (`Error parsing 'grpc-encoding' metadata`), while an
OpenTelemetry Collector also accepts zstd (and snappy). This receiver decompresses gzip,
deflate and zstd (`zstandard`), so it takes what a collector takes.

Once listening it prints one line `{"port": N}` on stdout. After every export it rewrites
the JSON file given with --out (atomically): {service: {signal: {...}}}. It exits on
SIGTERM/SIGINT, or when its parent process goes away (checked every second).

Needs h2, zstandard and opentelemetry-proto (telemetry.py makes a cached venv with the
pinned versions, see RECEIVER_REQUIREMENTS there).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Callable

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import zstandard
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

UNKNOWN = "(no service.name)"
MAX_NAMES = 40  # distinct span/metric names kept per service
ACCEPTED = "identity,gzip,deflate,zstd"


def service_name(resource: Any) -> str:
    for kv in resource.attributes:
        if kv.key == "service.name":
            v = kv.value
            return v.string_value if v.HasField("string_value") else str(v)
    return UNKNOWN


def data_points(metric: Any) -> int:
    for kind in ("gauge", "sum", "histogram", "exponential_histogram", "summary"):
        if metric.HasField(kind):
            return len(getattr(metric, kind).data_points)
    return 0


def attr_value(v: Any) -> str:
    return v.string_value if v.HasField("string_value") else str(v).strip()


class Counts:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.data: dict[str, dict[str, Any]] = {}
        self.started = time.time()
        self.write()

    def rec(self, service: str, signal_: str) -> dict[str, Any]:
        svc = self.data.setdefault(service, {})
        return svc.setdefault(signal_, {"exports": 0, "items": 0, "names": {}, "first_s": None, "last_s": None,
                                        "resource": {}, "encodings": {}, "user_agents": {}})

    def add(self, signal_: str, service: str, items: int, names: list[str], resource: Any) -> None:
        rec = self.rec(service, signal_)
        rec["items"] += items
        now = round(time.time() - self.started, 2)
        rec["first_s"] = rec["first_s"] if rec["first_s"] is not None else now
        rec["last_s"] = now
        for n in names:
            if n in rec["names"] or len(rec["names"]) < MAX_NAMES:
                rec["names"][n] = rec["names"].get(n, 0) + 1
        for kv in resource.attributes:
            rec["resource"][kv.key] = attr_value(kv.value)

    def export_seen(self, signal_: str, services: set[str], encoding: str, agent: str) -> None:
        for s in services:
            rec = self.rec(s, signal_)
            rec["exports"] += 1
            rec["encodings"][encoding] = rec["encodings"].get(encoding, 0) + 1
            rec["user_agents"][agent] = rec["user_agents"].get(agent, 0) + 1

    def write(self) -> None:
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.out)


# --------------------------------------------------------------------------- the three services


def make_handlers(counts: Counts) -> dict[str, tuple[str, Any, Callable[[Any], None], Any]]:
    def traces(req: Any) -> set[str]:
        seen = set()
        for rs in req.resource_spans:
            svc = service_name(rs.resource)
            seen.add(svc)
            spans = [sp for ss in rs.scope_spans for sp in ss.spans]
            counts.add("traces", svc, len(spans), [sp.name for sp in spans], rs.resource)
        return seen

    def metrics(req: Any) -> set[str]:
        seen = set()
        for rm in req.resource_metrics:
            svc = service_name(rm.resource)
            seen.add(svc)
            ms = [m for sm in rm.scope_metrics for m in sm.metrics]
            counts.add("metrics", svc, sum(data_points(m) for m in ms), [m.name for m in ms], rm.resource)
        return seen

    def logs(req: Any) -> set[str]:
        seen = set()
        for rl in req.resource_logs:
            svc = service_name(rl.resource)
            seen.add(svc)
            recs = [lr for sl in rl.scope_logs for lr in sl.log_records]
            counts.add("logs", svc, len(recs), [], rl.resource)
        return seen

    base = "/opentelemetry.proto.collector"
    return {
        f"{base}.trace.v1.TraceService/Export": ("traces", trace_pb.ExportTraceServiceRequest, traces,
                                                  trace_pb.ExportTraceServiceResponse),
        f"{base}.metrics.v1.MetricsService/Export": ("metrics", metrics_pb.ExportMetricsServiceRequest, metrics,
                                                      metrics_pb.ExportMetricsServiceResponse),
        f"{base}.logs.v1.LogsService/Export": ("logs", logs_pb.ExportLogsServiceRequest, logs,
                                                logs_pb.ExportLogsServiceResponse),
    }


def decompress(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return zlib.decompress(data, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise ValueError(f"unsupported grpc-encoding {encoding!r}")


def grpc_messages(body: bytes, encoding: str) -> list[bytes]:
    """The length-prefixed messages of a gRPC request body (1 byte compressed flag, 4 bytes length)."""
    out, i = [], 0
    while i < len(body):
        if len(body) - i < 5:
            raise ValueError("truncated gRPC message prefix")
        flag, n = body[i], int.from_bytes(body[i + 1:i + 5], "big")
        msg = body[i + 5:i + 5 + n]
        if len(msg) != n:
            raise ValueError("truncated gRPC message")
        out.append(decompress(msg, encoding) if flag else msg)
        i += 5 + n
    return out


class GrpcProtocol(asyncio.Protocol):
    def __init__(self, handlers: dict[str, Any], counts: Counts) -> None:
        self.handlers = handlers
        self.counts = counts
        self.conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, dict[str, Any]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.conn.initiate_connection()
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            if self.transport is not None:
                self.transport.close()
            return
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                self.streams[ev.stream_id] = {"headers": dict(ev.headers), "body": bytearray()}
            elif isinstance(ev, h2.events.DataReceived):
                st = self.streams.get(ev.stream_id)
                if st is not None:
                    st["body"] += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                st = self.streams.pop(ev.stream_id, None)
                if st is not None:
                    self.answer(ev.stream_id, st)
            elif isinstance(ev, h2.events.StreamReset):
                self.streams.pop(ev.stream_id, None)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                if self.transport is not None:
                    self.transport.close()
        self.flush()

    def answer(self, sid: int, st: dict[str, Any]) -> None:
        h = st["headers"]
        path = h.get(":path", "")
        encoding = h.get("grpc-encoding", "identity")
        agent = h.get("user-agent", "")
        head = [(":status", "200"), ("content-type", "application/grpc"), ("grpc-accept-encoding", ACCEPTED)]
        handler = self.handlers.get(path)
        if handler is None:
            self.conn.send_headers(sid, head + [("grpc-status", "12"), ("grpc-message", f"unknown method {path}")],
                                   end_stream=True)
            return
        signal_, req_cls, fn, resp_cls = handler
        try:
            seen: set[str] = set()
            for msg in grpc_messages(bytes(st["body"]), encoding):
                seen |= fn(req_cls.FromString(msg))
            self.counts.export_seen(signal_, seen, encoding, agent)
            self.counts.write()
        except Exception as e:  # noqa: BLE001 - a bad request is answered, never fatal
            self.conn.send_headers(sid, head + [("grpc-status", "13"), ("grpc-message", f"{type(e).__name__}: {e}"[:200])],
                                   end_stream=True)
            return
        payload = resp_cls().SerializeToString()
        self.conn.send_headers(sid, head)
        self.conn.send_data(sid, b"\x00" + len(payload).to_bytes(4, "big") + payload)
        self.conn.send_headers(sid, [("grpc-status", "0")], end_stream=True)


async def serve(args: argparse.Namespace) -> int:
    counts = Counts(Path(args.out))
    handlers = make_handlers(counts)
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(lambda: GrpcProtocol(handlers, counts), "127.0.0.1", args.port)
    except OSError as e:
        print(json.dumps({"error": f"cannot bind 127.0.0.1:{args.port}: {e}"}), flush=True)
        return 1
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    parent = os.getppid()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            if os.getppid() != parent:  # the caller died: do not outlive it
                break
    server.close()
    counts.write()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSON file the counts are written to")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    return asyncio.run(serve(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
