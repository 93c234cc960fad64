"""Entry point: python3 -m stepflow_inference --host 0.0.0.0 --port 8082"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from .config import ConfigError, Settings, apply_process_defaults

DEFAULT_PORT = 8082  # contract.json components.inference.port

EPILOG = """
Environment variables (see README.md):
  MODEL_CACHE_DIR                     model root directory (default: /models)
  STEPFLOW_INFERENCE_EMBED_MODEL      model directory under MODEL_CACHE_DIR
                                      (default: all-MiniLM-L6-v2)
  STEPFLOW_INFERENCE_DEVICE           auto | cpu | cuda (default: auto)
  STEPFLOW_INFERENCE_ALLOW_DOWNLOAD   true | false (default: false)
  STEPFLOW_INFERENCE_MAX_BATCH_SIZE   texts per forward pass (default: 32)
  STEPFLOW_LOG_LEVEL                  DEBUG | INFO | WARNING | ERROR (default: INFO)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m stepflow_inference",
        description="StepFlow inference component server (embed, rerank)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})"
    )
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
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
    logger.info(
        "settings: MODEL_CACHE_DIR=%s STEPFLOW_INFERENCE_EMBED_MODEL=%s "
        "STEPFLOW_INFERENCE_DEVICE=%s STEPFLOW_INFERENCE_ALLOW_DOWNLOAD=%s "
        "STEPFLOW_INFERENCE_MAX_BATCH_SIZE=%d",
        settings.model_cache_dir,
        settings.embed_model,
        settings.device,
        str(settings.allow_download).lower(),
        settings.max_batch_size,
    )

    from .server import serve

    return asyncio.run(serve(settings, args.host, args.port))


if __name__ == "__main__":
    sys.exit(main())
