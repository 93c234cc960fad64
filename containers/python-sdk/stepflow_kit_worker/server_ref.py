"""Which StepflowServer `python3 -m stepflow_kit_worker` serves: STEPFLOW_KIT_SERVER.

`STEPFLOW_KIT_SERVER=module:attribute` names a `stepflow_py.worker.server.StepflowServer`
instance (the attribute may be dotted: `pkg.tools:servers.main`), importable from
`sys.path` (PYTHONPATH). Unset or empty: the stock stepflow-py server
`stepflow_py.worker.main:server` (the built-in /udf plus /echo). A team's own component
server therefore runs in the same reconnect loop, heartbeat and SIGTERM handling as the
stock one, e.g. with `STEPFLOW_KIT_SERVER=team_tools:server`.

Every way the value can be wrong is a ConfigError (exit status 2), raised before the
worker dials the core: not of the form module:attribute, a module that is not found or
fails to import, a missing attribute, an attribute that is not a StepflowServer, and a
server without components.
"""

from __future__ import annotations

import importlib
import os
import re
from typing import Any

from .env import ConfigError

ENV_NAME = "STEPFLOW_KIT_SERVER"
DEFAULT_SERVER = "stepflow_py.worker.main:server"  # what `python3 -m stepflow_py.worker.main` serves

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = rf"{_NAME}(?:\.{_NAME})*"
SPEC_PATTERN = re.compile(rf"^({_DOTTED}):({_DOTTED})$")


class ServerImportError(ConfigError):
    """The module named by STEPFLOW_KIT_SERVER raised while it was imported (its
    traceback is worth showing: the error is in that module)."""


def server_spec(env: dict[str, str] | None = None) -> str:
    """The value of STEPFLOW_KIT_SERVER (whitespace stripped), or DEFAULT_SERVER."""
    env = dict(os.environ if env is None else env)
    return env.get(ENV_NAME, "").strip() or DEFAULT_SERVER


def parse_spec(spec: str) -> tuple[str, str]:
    """'module:attribute' -> (module, attribute); ConfigError for any other form."""
    m = SPEC_PATTERN.match(spec)
    if not m:
        raise ConfigError(
            f"{ENV_NAME}={spec!r} must be module:attribute, naming a stepflow-py "
            "StepflowServer instance (e.g. team_tools:server); unset serves the stock "
            f"server ({DEFAULT_SERVER})"
        )
    return m.group(1), m.group(2)


def load_server(spec: str) -> Any:
    """Import the module of `spec` and return its StepflowServer (see the module doc)."""
    module_name, attribute = parse_spec(spec)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise ConfigError(
                f"{ENV_NAME}={spec!r}: no module named {missing!r} on the Python path "
                f"(PYTHONPATH={os.environ.get('PYTHONPATH', '')!r}); install the module in "
                "the image beside stepflow-py, or add its directory to PYTHONPATH"
            ) from None
        raise ServerImportError(
            f"{ENV_NAME}={spec!r}: importing {module_name!r} failed: {exc}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - whatever the module raises is its error
        raise ServerImportError(
            f"{ENV_NAME}={spec!r}: importing {module_name!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    parts = attribute.split(".")
    for i, part in enumerate(parts):
        if not hasattr(obj, part):
            owner = module_name if i == 0 else f"{module_name}:{'.'.join(parts[:i])}"
            raise ConfigError(f"{ENV_NAME}={spec!r}: {owner!r} has no attribute {part!r}")
        obj = getattr(obj, part)
    from stepflow_py.worker.server import StepflowServer

    if not isinstance(obj, StepflowServer):
        raise ConfigError(
            f"{ENV_NAME}={spec!r} is a {type(obj).__module__}.{type(obj).__qualname__}, "
            "not a stepflow_py.worker.server.StepflowServer instance"
        )
    if not obj.get_components():
        raise ConfigError(f"{ENV_NAME}={spec!r}: the server has no components registered")
    return obj
