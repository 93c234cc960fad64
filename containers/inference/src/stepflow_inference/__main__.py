"""Entry point.

StepFlow 0.11 (HTTP):  python3 -m stepflow_inference --host 0.0.0.0 --port 8082
StepFlow 0.13 (gRPC):  STEPFLOW_TRANSPORT=grpc STEPFLOW_TASKS_URL=<core>:8080 \
                       STEPFLOW_QUEUE_NAME=inference python3 -m stepflow_inference
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from .config import ConfigError, Settings, apply_process_defaults
from .sdk import SdkMismatchError, check_sdk_supports, sdk_version

DEFAULT_PORT = 8082  # contract.json components.inference.port
DEFAULT_HOST = "127.0.0.1"

EPILOG = """
Environment variables (see README.md):
  MODEL_CACHE_DIR                     model root directory (default: /models)
  STEPFLOW_INFERENCE_EMBED_MODEL      model directory under MODEL_CACHE_DIR
                                      (default: all-MiniLM-L6-v2)
  STEPFLOW_INFERENCE_DEVICE           auto | cpu | cuda (default: auto)
  STEPFLOW_INFERENCE_ALLOW_DOWNLOAD   true | false (default: false)
  STEPFLOW_INFERENCE_MAX_BATCH_SIZE   texts per forward pass (default: 32)
  STEPFLOW_LOG_LEVEL                  DEBUG | INFO | WARNING | ERROR (default: INFO)
  STEPFLOW_TRANSPORT                  http (StepFlow 0.11, default) | grpc (StepFlow 0.13)
With STEPFLOW_TRANSPORT=grpc (needs stepflow-py 0.13; no listener, --host/--port unused):
  STEPFLOW_TASKS_URL                  core host:port to pull tasks from (default: localhost:7837)
  STEPFLOW_QUEUE_NAME                 queue = the core plugin's queueName (default: inference)
  STEPFLOW_MAX_CONCURRENT             tasks executed at once (default: 4)
  STEPFLOW_SHUTDOWN_GRACE_SECS        after SIGTERM, how long tasks in progress may
                                      finish (default: 10)
  STEPFLOW_KIT_HEARTBEAT_FILE         absolute path the worker touches every 5 s (a
                                      liveness probe checks its age); unset: no file
  STEPFLOW_KIT_RECONNECT_DELAY_SECS   wait before connecting again, 0 to 2 (default: 1)
  STEPFLOW_KIT_CORE_CHECK_SECS        core health check interval; 0: off (default: 5)
  STEPFLOW_KIT_READY_FILE             absolute path touched while connected to the core and
                                      for the grace below after (a readiness probe checks
                                      its age); unset: no file
  STEPFLOW_KIT_READY_GRACE_SECS       how long a reconnecting worker stays ready, 0 to
                                      3600 (default: 60)
"""


def grpc_loop_settings(settings: Settings) -> Any:
    """The worker loop's settings: address, queue and concurrency as `settings` read
    them, shutdown grace, heartbeat file, reconnect delay and core check from the same
    environment, by the same reader (stepflow_kit_worker.env)."""
    from stepflow_kit_worker.loop import LoopSettings

    return LoopSettings.from_env(default_queue=settings.queue_name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m stepflow_inference",
        description="StepFlow inference component server (embed, rerank)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default=None, help=f"HTTP bind address (default: {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=None, help=f"HTTP port (default: {DEFAULT_PORT})"
    )
    args = parser.parse_args(argv)

    loop_settings = None
    try:
        settings = Settings.from_env()
        check_sdk_supports(settings.transport)
        if settings.transport == "grpc":
            loop_settings = grpc_loop_settings(settings)
    except (ConfigError, SdkMismatchError) as exc:
        print(f"stepflow-inference: configuration error: {exc}", file=sys.stderr)
        return 2
    # Before torch/transformers/huggingface_hub are imported anywhere.
    apply_process_defaults(settings)

    from stepflow_py.worker.observability import setup_observability

    setup_observability()
    logger = logging.getLogger("stepflow_inference")

    from .model import ModelNotFoundError, check_model_present

    try:
        check_model_present(settings)
    except ModelNotFoundError as exc:
        logger.error("%s", exc)
        print(f"stepflow-inference: {exc}", file=sys.stderr, flush=True)
        return 3
    if settings.transport == "grpc" and (args.host is not None or args.port is not None):
        # The image's CMD passes --host/--port; a gRPC pull worker listens on nothing.
        logger.warning(
            "STEPFLOW_TRANSPORT=grpc: ignoring --host/--port (a gRPC pull worker has no listener)"
        )
    logger.info(
        "settings: stepflow-py %s STEPFLOW_TRANSPORT=%s MODEL_CACHE_DIR=%s "
        "STEPFLOW_INFERENCE_EMBED_MODEL=%s "
        "STEPFLOW_INFERENCE_DEVICE=%s STEPFLOW_INFERENCE_ALLOW_DOWNLOAD=%s "
        "STEPFLOW_INFERENCE_MAX_BATCH_SIZE=%d",
        sdk_version(),
        settings.transport,
        settings.model_cache_dir,
        settings.embed_model,
        settings.device,
        str(settings.allow_download).lower(),
        settings.max_batch_size,
    )

    if settings.transport == "grpc":
        from .server import serve_grpc

        return asyncio.run(serve_grpc(settings, loop_settings))

    from .server import serve

    host = DEFAULT_HOST if args.host is None else args.host
    port = DEFAULT_PORT if args.port is None else args.port
    return asyncio.run(serve(settings, host, port))


if __name__ == "__main__":
    sys.exit(main())
