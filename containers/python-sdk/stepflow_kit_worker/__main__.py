"""python3 -m stepflow_kit_worker: a stepflow-py StepflowServer -- the stock one, or a
team's own named by STEPFLOW_KIT_SERVER (see server_ref.py) -- served in a reconnect
loop (see loop.py). Exit status: 0 after SIGTERM/SIGINT, 2 configuration error."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback

from .env import ConfigError, choice
from .loop import LoopSettings, WorkerLoop
from .server_ref import DEFAULT_SERVER, ServerImportError, load_server, server_spec

EPILOG = f"""
Environment variables:
  STEPFLOW_KIT_SERVER           the StepflowServer to serve, as module:attribute on the
                                Python path, e.g. team_tools:server for a team's own
                                components (default: {DEFAULT_SERVER},
                                the stock /udf and /echo); a bad value exits 2
  STEPFLOW_TRANSPORT            must be grpc or unset (the only transport served)
  STEPFLOW_TASKS_URL            core host:port to pull tasks from (default: localhost:7837)
  STEPFLOW_QUEUE_NAME           queue = the core plugin's queueName (default: python)
  STEPFLOW_BLOB_URL             core host:port of the blob API (read by stepflow-py)
  STEPFLOW_MAX_CONCURRENT       tasks executed at once (default: 4)
  STEPFLOW_SHUTDOWN_GRACE_SECS  after SIGTERM, how long tasks in progress may finish
                                (default: 10)
  STEPFLOW_KIT_HEARTBEAT_FILE   absolute path touched every 5 s by the event loop (a
                                liveness probe checks its age); unset: no file
  STEPFLOW_KIT_RECONNECT_DELAY_SECS
                                wait before connecting again, 0 to 2 (default: 1)
  STEPFLOW_KIT_CORE_CHECK_SECS  GET /api/v1/health on the core this often; a core that
                                answered and then fails twice in a row gets its pull
                                stream closed (0: off; 1 to 60, default: 5)
  STEPFLOW_KIT_READY_FILE       absolute path touched every second while the worker is
                                connected to the core, and for the grace below after it
                                last was (a readiness probe checks its age); unset: no file
  STEPFLOW_KIT_READY_GRACE_SECS how long a worker reconnecting to its core stays ready,
                                0 to 3600 (default: 60)
  STEPFLOW_LOG_LEVEL, STEPFLOW_LOG_DESTINATION, STEPFLOW_OTLP_ENDPOINT, ...
                                logging and tracing, as for the stock worker
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m stepflow_kit_worker",
        description="StepFlow Python worker: serves a stepflow-py StepflowServer (the stock "
        "components, or a team's own with STEPFLOW_KIT_SERVER) over gRPC pull and reconnects "
        "whenever the core goes away (StepFlow 0.12/0.13)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)

    try:
        choice(
            os.environ,
            "STEPFLOW_TRANSPORT",
            "grpc",
            ("grpc",),
            "this worker serves the gRPC pull transport only: set grpc or leave it unset",
        )
        settings = LoopSettings.from_env()
        spec = server_spec()
    except ConfigError as exc:
        print(f"stepflow_kit_worker: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        from stepflow_py.worker.grpc_worker import run_grpc_worker  # noqa: F401
        from stepflow_py.worker.observability import setup_observability
    except ImportError as exc:
        print(
            f"stepflow_kit_worker: stepflow-py 0.12 or newer is needed ({exc}); with "
            "stepflow-py 0.11 a component server serves HTTP itself "
            "(StepflowServer.run(host=..., port=...))",
            file=sys.stderr,
        )
        return 2
    try:
        # The default, stepflow_py.worker.main, builds the stock StepflowServer (built-in
        # components plus /echo) at import time; this worker serves that very server.
        server = load_server(spec)
    except ConfigError as exc:
        print(f"stepflow_kit_worker: configuration error: {exc}", file=sys.stderr)
        if isinstance(exc, ServerImportError) and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        return 2
    setup_observability()
    logging.getLogger("stepflow_kit_worker").info(
        "serving %s from %s", ", ".join(sorted(server.get_components())), spec
    )
    return asyncio.run(WorkerLoop(server, settings).run())


if __name__ == "__main__":
    sys.exit(main())
