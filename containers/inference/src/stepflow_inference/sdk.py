"""Which stepflow-py generation is installed, and whether it offers the selected transport.

stepflow-py 0.11 serves components over HTTP (the core calls `POST /`); stepflow-py
0.12/0.13 has no HTTP server and instead pulls tasks from the core over gRPC. The two
cannot be installed together (same `stepflow_py` package), so the image is built for
one of them (build argument STEPFLOW_PY_VERSION) and STEPFLOW_TRANSPORT must match it.
This module must stay import-light: it runs before the server starts.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

# Modules each transport needs (all must be importable).
TRANSPORT_MODULES = {
    "http": ("stepflow_py.worker.http_server", "fastapi", "uvicorn"),
    "grpc": ("stepflow_py.worker.grpc_worker", "grpc"),
}


class SdkMismatchError(RuntimeError):
    """The installed stepflow-py cannot serve the transport STEPFLOW_TRANSPORT selects."""


def sdk_version() -> str:
    try:
        return importlib.metadata.version("stepflow-py")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def check_sdk_supports(transport: str) -> None:
    missing = [m for m in TRANSPORT_MODULES[transport] if not _importable(m)]
    if not missing:
        return
    version = sdk_version()
    if transport == "http":
        raise SdkMismatchError(
            f"STEPFLOW_TRANSPORT=http (the default) needs stepflow-py 0.11 with its 'http' "
            f"extra, but the installed stepflow-py {version} lacks {', '.join(missing)} "
            "(stepflow-py 0.12+ has no HTTP server: its workers pull tasks over gRPC). "
            "Fix: set STEPFLOW_TRANSPORT=grpc, STEPFLOW_TASKS_URL=<core host>:<port> and "
            "STEPFLOW_QUEUE_NAME (StepFlow 0.13), or use an image built with "
            "STEPFLOW_PY_VERSION=0.11.0 (StepFlow 0.11)."
        )
    raise SdkMismatchError(
        f"STEPFLOW_TRANSPORT=grpc needs stepflow-py 0.12 or newer (gRPC pull worker), but "
        f"the installed stepflow-py {version} lacks {', '.join(missing)}. "
        "Fix: use an image built with STEPFLOW_PY_VERSION=0.13.0 (StepFlow 0.13), or unset "
        "STEPFLOW_TRANSPORT to serve HTTP (StepFlow 0.11)."
    )
