"""python3 -m stepflow_kit_worker: the stock stepflow-py components, served in a
reconnect loop (see loop.py). Exit status: 0 after SIGTERM/SIGINT, 2 configuration
error."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from .loop import ConfigError, LoopSettings, WorkerLoop

EPILOG = """
Environment variables:
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
  STEPFLOW_LOG_LEVEL, STEPFLOW_LOG_DESTINATION, STEPFLOW_OTLP_ENDPOINT, ...
                                logging and tracing, as for the stock worker
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m stepflow_kit_worker",
        description="StepFlow Python worker (stock stepflow-py components, gRPC pull, "
        "reconnects whenever the core goes away)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)

    transport = os.environ.get("STEPFLOW_TRANSPORT", "grpc").strip().lower() or "grpc"
    try:
        if transport != "grpc":
            raise ConfigError(
                f"STEPFLOW_TRANSPORT={transport!r}: this worker serves the gRPC pull "
                "transport only (set STEPFLOW_TRANSPORT=grpc or leave it unset)"
            )
        settings = LoopSettings.from_env()
    except ConfigError as exc:
        print(f"stepflow_kit_worker: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        # The stock worker's module builds its StepflowServer (built-in components plus
        # /echo) at import time; this worker serves that very server.
        from stepflow_py.worker import main as stock
        from stepflow_py.worker.observability import setup_observability
    except ImportError as exc:
        print(
            f"stepflow_kit_worker: stepflow-py 0.12 or newer is needed ({exc})",
            file=sys.stderr,
        )
        return 2
    setup_observability()
    logging.getLogger("stepflow_kit_worker").info(
        "serving %s", ", ".join(sorted(stock.server.get_components()))
    )
    return asyncio.run(WorkerLoop(stock.server, settings).run())


if __name__ == "__main__":
    sys.exit(main())
