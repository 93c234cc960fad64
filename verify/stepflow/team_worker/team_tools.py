"""A team's own StepFlow component server, as a team would ship it in its own image.

Two components, registered with stepflow-py's StepflowServer (0.11 and 0.13 alike):

* `stats`  -- {"values": [numbers]} -> count, sum, mean, min, max of the values
* `whoami` -- {"tag": str} -> the tag back, with the pod name (HOSTNAME) and this
  server's name, so a caller sees which pod ran the step

How it is served (what verify/stepflow/team-chart.mjs puts into the manifests):

* StepFlow 0.13 (gRPC pull): `python3 -m stepflow_kit_worker` with
  `STEPFLOW_KIT_SERVER=team_tools:server` -- the python-sdk image's worker loop
  (reconnects, heartbeat file, prompt SIGTERM) serving this module's `server`.
* StepFlow 0.11 (HTTP push): `python3 -m team_tools --host 0.0.0.0 --port 8081` -- this
  module's own entry point, stepflow-py 0.11's HTTP server (POST / JSON-RPC, GET /health).
"""

# No `from __future__ import annotations`: stepflow-py reads the component functions'
# annotations at runtime (input and output schemas) and needs real types.
import argparse
import asyncio
import inspect
import math
import os
import sys
from typing import Annotated

import msgspec
from msgspec import Meta
from stepflow_py.worker.server import StepflowServer

SERVER_NAME = "team-tools"


class StatsInput(msgspec.Struct, kw_only=True):
    """Numbers to summarize."""

    values: Annotated[list[float], Meta(min_length=1, description="At least one number.")]


class StatsOutput(msgspec.Struct, kw_only=True):
    count: int
    sum: float
    mean: float
    min: float
    max: float
    stdev: Annotated[float, Meta(description="Population standard deviation.")]


class WhoamiInput(msgspec.Struct, kw_only=True):
    tag: str


class WhoamiOutput(msgspec.Struct, kw_only=True):
    tag: str
    pod: str
    server: str


def stats(input: StatsInput) -> StatsOutput:
    """Count, sum, mean, min, max and population standard deviation of the values."""
    n = len(input.values)
    total = math.fsum(input.values)
    mean = total / n
    var = math.fsum((v - mean) ** 2 for v in input.values) / n
    return StatsOutput(
        count=n,
        sum=total,
        mean=mean,
        min=min(input.values),
        max=max(input.values),
        stdev=math.sqrt(var),
    )


def whoami(input: WhoamiInput) -> WhoamiOutput:
    """The tag back, with the pod (HOSTNAME) that ran the step and the server's name."""
    return WhoamiOutput(tag=input.tag, pod=os.environ.get("HOSTNAME", ""), server=SERVER_NAME)


def _register(server: StepflowServer, func, name: str) -> None:
    """stepflow-py 0.13: component(id=, subpath=); 0.11: component(name=)."""
    params = inspect.signature(server.component).parameters
    if "subpath" in params and "id" in params:
        server.component(func, id=name, subpath=name)
    else:
        server.component(func, name=name)


# Only the team's components: no built-in /udf (it would run any code a caller stores).
server = StepflowServer(include_builtins=False)
_register(server, stats, "stats")
_register(server, whoami, "whoami")


def main(argv: list[str] | None = None) -> int:
    """StepFlow 0.11: serve HTTP on --host/--port (stepflow-py 0.11's own server)."""
    parser = argparse.ArgumentParser(
        prog="python3 -m team_tools",
        description="team-tools component server over HTTP (StepFlow 0.11, stepflow-py[http] "
        "0.11). For StepFlow 0.13 run `python3 -m stepflow_kit_worker` with "
        "STEPFLOW_KIT_SERVER=team_tools:server.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port (default: 8081)")
    args = parser.parse_args(argv)
    try:
        import stepflow_py.worker.http_server  # noqa: F401
    except ImportError as exc:
        print(
            f"team_tools: stepflow-py 0.11 with its http extra is needed to serve HTTP ({exc}); "
            "with stepflow-py 0.13 run python3 -m stepflow_kit_worker with "
            "STEPFLOW_KIT_SERVER=team_tools:server",
            file=sys.stderr,
        )
        return 2
    from stepflow_py.worker.observability import setup_observability

    setup_observability()
    asyncio.run(server.run(host=args.host, port=args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
