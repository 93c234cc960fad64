"""The workers' environment variables, read in one place.

Both images' workers read the StepFlow 0.13 pull settings from the same variables: the
python-sdk worker (`python3 -m stepflow_kit_worker`, `loop.LoopSettings.from_env`) and
the inference server (`stepflow_inference.config.Settings.from_env`, which this package
ships with). They read them with these functions, so a value means the same to both and
a bad one gets the same message, which names the variable. Standard library only: the
inference server reads its settings before torch is imported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_TASKS_URL = "localhost:7837"  # stepflow-py 0.13's default
DEFAULT_MAX_CONCURRENT = 4
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """An environment variable has a value the worker cannot use; the message names it
    and says what is allowed."""


def text(env: Mapping[str, str], name: str, default: str) -> str:
    """The value without surrounding white space; unset or empty: `default`."""
    return env.get(name, "").strip() or default


def choice(
    env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...], hint: str = ""
) -> str:
    """One of `allowed` (case-insensitive); unset or empty: `default`."""
    value = text(env, name, default).lower()
    if value not in allowed:
        why = f" ({hint})" if hint else ""
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}{why}")
    return value


def positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < 1:
        raise ConfigError(f"{name}={raw!r} must be at least 1")
    return value


def number(env: Mapping[str, str], name: str, default: float, low: float = 0, high: float = math.inf) -> float:
    """A number from `low` to `high`; unset or empty: `default`."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        allowed = f"at least {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
        raise ConfigError(f"{name}={raw!r} must be {allowed}")
    return value


def boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false")


@dataclass(frozen=True)
class PullTarget:
    """Where a gRPC pull worker takes its tasks from, and how many at once."""

    tasks_url: str  # STEPFLOW_TASKS_URL: host:port of the core
    queue_name: str  # STEPFLOW_QUEUE_NAME: the core plugin's queueName
    max_concurrent: int  # STEPFLOW_MAX_CONCURRENT

    @classmethod
    def from_env(cls, env: Mapping[str, str], default_queue: str) -> PullTarget:
        tasks_url = text(env, "STEPFLOW_TASKS_URL", DEFAULT_TASKS_URL)
        if "://" in tasks_url or "/" in tasks_url:
            raise ConfigError(
                f"STEPFLOW_TASKS_URL={tasks_url!r} must be host:port of the StepFlow core "
                "(a gRPC target: no scheme, no path), e.g. stepflow-core.stepflow.svc:8080"
            )
        return cls(
            tasks_url=tasks_url,
            queue_name=text(env, "STEPFLOW_QUEUE_NAME", default_queue),
            max_concurrent=positive_int(env, "STEPFLOW_MAX_CONCURRENT", DEFAULT_MAX_CONCURRENT),
        )
