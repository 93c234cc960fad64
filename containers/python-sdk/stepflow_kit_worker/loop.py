"""The reconnect loop around stepflow-py's gRPC pull worker (StepFlow 0.12/0.13).

`WorkerLoop.run()` runs the SDK's own worker,
`stepflow_py.worker.grpc_worker.run_grpc_worker`, again and again in one process:

* The SDK worker returns when the core goes away after a successful session, and when
  the core stayed unreachable for its 15 connection attempts (2 s apart). Each time,
  the loop logs the reason at INFO, waits `reconnect_delay` seconds (default 1) and
  starts it again, for as long as the process lives. A restarted core therefore gets
  its workers back within a few seconds, without a container restart and without the
  kubelet's restart back-off.
* SIGTERM/SIGINT stop the loop at once, also while the worker is idle (the SDK's own
  handler only takes effect when the next task arrives): the pull stream is closed, no
  new task is taken, the tasks already pulled may finish for `shutdown_grace` seconds
  (STEPFLOW_SHUTDOWN_GRACE_SECS, the SDK's setting, default 10), tasks still running
  then are cancelled (the core re-dispatches them once their heartbeats stop), and
  `run()` returns 0.
* A core check (GET /api/v1/health on STEPFLOW_TASKS_URL every 5 s) closes the pull
  stream when a core that answered stops answering twice in a row: stepflow-server
  0.13 answers SIGTERM by waiting for its open streams, so a stopping core exits
  within seconds instead of at its grace period's end.
* Every gRPC channel stepflow-py opens gets GRPC_CHANNEL_OPTIONS (below): its own
  subchannel pool and a short reconnect back-off, so a returning core is reached at
  once, and keepalive pings, so a hung core or a silently dead connection ends the pull
  stream within about 30 s.
* With a heartbeat file configured, a task on the same asyncio event loop touches it
  every `heartbeat_interval` seconds (default 5). A liveness probe that checks the
  file's age therefore fails when the event loop hangs, and only then: the file is
  refreshed while the core is down, too.
* With a ready file configured (STEPFLOW_KIT_READY_FILE), the worker says whether it
  is ready from its own state, not from the core's: the file is touched every second
  while the pull stream's gRPC channel to STEPFLOW_TASKS_URL is connected, and for
  `ready_grace` seconds (STEPFLOW_KIT_READY_GRACE_SECS, default 60) after it last was,
  while the loop reconnects; then it is removed until the worker is connected again.
  A readiness probe that checks the file's age therefore keeps every worker Ready
  through a core restart (which would otherwise turn all of them NotReady at once,
  blocking drains and rollouts behind their disruption budgets) and reports a worker
  that has not reached its core for longer. No file before the first connection, and
  none once the worker is stopping.

The loop imports stepflow-py lazily (in `run()`), so this module can be imported in an
environment without the 0.13 SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .env import DEFAULT_MAX_CONCURRENT, DEFAULT_TASKS_URL, ConfigError, PullTarget, number, text

logger = logging.getLogger("stepflow_kit_worker")

# The SDK's module and function whose log records name the reason its worker returned
# ("gRPC server went away after successful session ...", "giving up after 15
# consecutive failures ...").
SDK_WORKER_LOGGER = "stepflow_py.worker.grpc_worker"
SDK_WORKER_FUNCTION = "run_grpc_worker"
# Name of the SDK coroutine that executes one pulled task (claim, run, CompleteTask).
SDK_TASK_COROUTINE = "handle_task"

DEFAULT_QUEUE_NAME = "python"  # the SDK's default
DEFAULT_SHUTDOWN_GRACE_SECS = 10.0
DEFAULT_RECONNECT_DELAY_SECS = 1.0
MAX_RECONNECT_DELAY_SECS = 2.0
HEARTBEAT_INTERVAL_SECS = 5.0
# The ready file (STEPFLOW_KIT_READY_FILE): refreshed this often while the worker is ready;
# ready = connected to the core, or not connected for at most the grace.
READY_INTERVAL_SECS = 1.0
DEFAULT_READY_GRACE_SECS = 60.0
MAX_READY_GRACE_SECS = 3600.0
# The core check: GET <STEPFLOW_TASKS_URL>/api/v1/health every CORE_CHECK_SECS while
# the SDK worker runs; once the core has answered in a session, CORE_CHECK_FAILURES
# failures in a row close the pull stream, and the loop opens a new one. stepflow-server 0.13 answers SIGTERM by waiting for its
# open streams before it exits (and stops answering HTTP meanwhile): without this, a
# stopping core would wait for its whole termination grace period.
CORE_HEALTH_PATH = "/api/v1/health"
DEFAULT_CORE_CHECK_SECS = 5.0
CORE_CHECK_TIMEOUT_SECS = 3.0
CORE_CHECK_FAILURES = 2


# gRPC channel arguments for every channel stepflow-py opens in this process (the pull
# stream, CompleteTask, heartbeats, blobs). stepflow-py creates its channels without
# arguments, so they share gRPC's process-wide subchannel pool: after the core has been
# away for a while, a new channel to it inherits a subchannel in exponential reconnect
# back-off (up to 120 s) and fails at once with the last, stale "Connection refused",
# long after the core is back. A channel-local pool and a back-off of at most 2 s make
# each new channel connect afresh.
# HTTP/2 keepalive pings (every 20 s, 10 s to answer, also on a stream that carries no
# data) end a pull stream whose core is hung or whose connection died silently, which
# stepflow-py's channels would otherwise wait on forever.
GRPC_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 20000),
    ("grpc.keepalive_timeout_ms", 10000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.ping_timeout_ms", 10000),
)


# Every channel stepflow-py opened in this process, by target (held weakly: the SDK closes
# and drops them), for `channel_connected`.
_CHANNELS: dict[str, weakref.WeakSet[Any]] = {}


def install_grpc_channel_options() -> None:
    """Make grpc.aio.insecure_channel() add GRPC_CHANNEL_OPTIONS (arguments the caller
    gives win) and remember each channel it opens. Idempotent."""
    import grpc.aio

    original = grpc.aio.insecure_channel
    if getattr(original, "stepflow_kit_options", False):
        return

    def insecure_channel(target: str, options: Any = None, *args: Any, **kwargs: Any) -> Any:
        merged = dict(GRPC_CHANNEL_OPTIONS)
        merged.update(dict(options or ()))
        channel = original(target, list(merged.items()), *args, **kwargs)
        _CHANNELS.setdefault(target, weakref.WeakSet()).add(channel)
        return channel

    insecure_channel.stepflow_kit_options = True  # type: ignore[attr-defined]
    insecure_channel.__wrapped__ = original  # type: ignore[attr-defined]
    grpc.aio.insecure_channel = insecure_channel


def channel_connected(target: str) -> bool:
    """Whether a gRPC channel this process opened to `target` (the pull stream's, for
    STEPFLOW_TASKS_URL) is connected: its own state, not a question to the core."""
    import grpc

    for channel in list(_CHANNELS.get(target, ())):
        try:
            if channel.get_state(try_to_connect=False) == grpc.ChannelConnectivity.READY:
                return True
        except Exception:  # noqa: BLE001 - a closed channel is not connected
            continue
    return False


def _core_check_env(env: dict[str, str]) -> float:
    value = number(env, "STEPFLOW_KIT_CORE_CHECK_SECS", DEFAULT_CORE_CHECK_SECS, 0, 60)
    if 0 < value < 1:
        raise ConfigError(f"STEPFLOW_KIT_CORE_CHECK_SECS={value:g} must be 0 (off) or 1 to 60")
    return value


async def core_health_problem(tasks_url: str, timeout: float = CORE_CHECK_TIMEOUT_SECS) -> str | None:
    """None when GET http://<tasks_url>/api/v1/health answers 200 within `timeout`,
    else what went wrong (HTTP/1.1 by hand: stepflow-py brings no HTTP client)."""
    host, _, port = tasks_url.rpartition(":")
    host = host.strip("[]") or "localhost"
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                f"GET {CORE_HEALTH_PATH} HTTP/1.1\r\nHost: {tasks_url}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
            status_line = await reader.readline()
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        if writer is not None:
            writer.close()
    parts = status_line.decode("latin-1").split()
    if len(parts) >= 2 and parts[1] == "200":
        return None
    return f"status line {status_line[:60]!r}"


@dataclass(frozen=True)
class LoopSettings:
    """What the loop needs, read from the same environment variables as the SDK worker."""

    tasks_url: str = DEFAULT_TASKS_URL
    queue_name: str = DEFAULT_QUEUE_NAME
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE_SECS
    heartbeat_file: str | None = None
    heartbeat_interval: float = HEARTBEAT_INTERVAL_SECS
    reconnect_delay: float = DEFAULT_RECONNECT_DELAY_SECS
    core_check_interval: float = DEFAULT_CORE_CHECK_SECS  # 0: no core check
    ready_file: str | None = None
    ready_interval: float = READY_INTERVAL_SECS
    ready_grace: float = DEFAULT_READY_GRACE_SECS

    @classmethod
    def from_env(
        cls, env: dict[str, str] | None = None, default_queue: str = DEFAULT_QUEUE_NAME
    ) -> LoopSettings:
        """STEPFLOW_TASKS_URL, STEPFLOW_QUEUE_NAME, STEPFLOW_MAX_CONCURRENT,
        STEPFLOW_SHUTDOWN_GRACE_SECS, STEPFLOW_KIT_HEARTBEAT_FILE (unset or empty: no
        heartbeat file), STEPFLOW_KIT_RECONNECT_DELAY_SECS (0 to 2, default 1),
        STEPFLOW_KIT_CORE_CHECK_SECS (0 = off, else 1 to 60, default 5),
        STEPFLOW_KIT_READY_FILE (unset or empty: no ready file) and
        STEPFLOW_KIT_READY_GRACE_SECS (0 to 3600, default 60)."""
        env = dict(os.environ if env is None else env)
        target = PullTarget.from_env(env, default_queue)
        heartbeat = text(env, "STEPFLOW_KIT_HEARTBEAT_FILE", "") or None
        if heartbeat is not None and not os.path.isabs(heartbeat):
            raise ConfigError(f"STEPFLOW_KIT_HEARTBEAT_FILE={heartbeat!r} must be an absolute path")
        ready = text(env, "STEPFLOW_KIT_READY_FILE", "") or None
        if ready is not None and not os.path.isabs(ready):
            raise ConfigError(f"STEPFLOW_KIT_READY_FILE={ready!r} must be an absolute path")
        if ready is not None and ready == heartbeat:
            raise ConfigError(
                f"STEPFLOW_KIT_READY_FILE={ready!r} must differ from STEPFLOW_KIT_HEARTBEAT_FILE"
            )
        return cls(
            tasks_url=target.tasks_url,
            queue_name=target.queue_name,
            max_concurrent=target.max_concurrent,
            shutdown_grace=number(
                env, "STEPFLOW_SHUTDOWN_GRACE_SECS", DEFAULT_SHUTDOWN_GRACE_SECS, 0, 86400
            ),
            heartbeat_file=heartbeat,
            reconnect_delay=number(
                env,
                "STEPFLOW_KIT_RECONNECT_DELAY_SECS",
                DEFAULT_RECONNECT_DELAY_SECS,
                0,
                MAX_RECONNECT_DELAY_SECS,
            ),
            core_check_interval=_core_check_env(env),
            ready_file=ready,
            ready_grace=number(
                env, "STEPFLOW_KIT_READY_GRACE_SECS", DEFAULT_READY_GRACE_SECS, 0, MAX_READY_GRACE_SECS
            ),
        )


class _LastRecord(logging.Handler):
    """Keeps the last message the SDK worker's outer loop logged, to name why it
    returned (its shutdown helper's messages after that say nothing about the why)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.funcName != SDK_WORKER_FUNCTION:
            return
        try:
            self.message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not break the loop
            self.message = str(record.msg)


def touch(path: str) -> None:
    """Create the file if needed and set its modification time to now."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.utime(fd)
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def in_flight_tasks() -> list[asyncio.Task[Any]]:
    """The SDK worker's task executions still running on this event loop."""
    current = asyncio.current_task()
    return [
        t
        for t in asyncio.all_tasks()
        if t is not current
        and not t.done()
        and getattr(t.get_coro(), "__qualname__", "") == SDK_TASK_COROUTINE
    ]


WorkerFactory = Callable[[], Awaitable[None]]


class WorkerLoop:
    """Runs the SDK's gRPC pull worker for `server` until stopped; see the module doc."""

    def __init__(
        self,
        server: Any,
        settings: LoopSettings,
        *,
        worker_factory: WorkerFactory | None = None,
        connected: Callable[[], bool] | None = None,
    ) -> None:
        self.server = server
        self.settings = settings
        self._worker_factory = worker_factory
        self._connected = connected
        self._session: asyncio.Task[Any] | None = None
        self._stop: asyncio.Event | None = None
        self._stop_reason: str | None = None
        self._exit_code = 0
        self.sessions = 0  # how many times the SDK worker was started

    # -- control ------------------------------------------------------------------

    def request_stop(self, reason: str, exit_code: int = 0) -> None:
        """Stop reconnecting and finish (from the event loop's thread). The first call
        sets the reason and the exit code of run()."""
        if self._stop_reason is None:
            self._stop_reason = reason
            self._exit_code = exit_code
            logger.info("%s: stopping; no new tasks, finishing tasks in progress", reason)
        else:
            logger.info("%s: already stopping (%s)", reason, self._stop_reason)
        if self._stop is not None:
            self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop_reason is not None

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, f"{sig.name} received")

    # -- the parts ----------------------------------------------------------------

    def _start_worker(self) -> Awaitable[None]:
        if self._worker_factory is not None:
            return self._worker_factory()
        from stepflow_py.worker.grpc_worker import run_grpc_worker

        install_grpc_channel_options()

        return run_grpc_worker(
            server=self.server,
            tasks_url=self.settings.tasks_url,
            queue_name=self.settings.queue_name,
            max_concurrent=self.settings.max_concurrent,
        )

    async def _heartbeat(self) -> None:
        path = self.settings.heartbeat_file
        assert path is not None
        failing = False
        while True:
            try:
                touch(path)
                if failing:
                    logger.info("heartbeat file %s is written again", path)
                failing = False
            except OSError as exc:
                if not failing:
                    logger.error("cannot write the heartbeat file %s: %s", path, exc)
                failing = True
            await asyncio.sleep(self.settings.heartbeat_interval)

    def connected(self) -> bool:
        """Connected to the core: the SDK worker's session runs and its gRPC channel to
        STEPFLOW_TASKS_URL is connected."""
        if self._connected is not None:
            return self._connected()
        session = self._session
        return session is not None and not session.done() and channel_connected(self.settings.tasks_url)

    async def _ready_file(self) -> None:
        """Keeps the ready file while connected and for ready_grace seconds after; see the
        module doc."""
        path = self.settings.ready_file
        assert path is not None
        grace = self.settings.ready_grace
        last_connected: float | None = None
        was_connected = ready = failing = False
        while True:
            now = time.monotonic()
            if self.connected():
                if not was_connected:
                    logger.info("connected to the core at %s: ready", self.settings.tasks_url)
                was_connected = True
                last_connected = now
            elif was_connected:
                was_connected = False
                logger.info(
                    "not connected to the core at %s: ready for up to %g s while reconnecting",
                    self.settings.tasks_url,
                    grace,
                )
            now_ready = last_connected is not None and now - last_connected <= grace
            if now_ready:
                try:
                    touch(path)
                    failing = False
                except OSError as exc:
                    if not failing:
                        logger.error("cannot write the ready file %s: %s", path, exc)
                    failing = True
            elif ready:
                logger.warning(
                    "not connected to the core at %s for %g s: not ready until it is again",
                    self.settings.tasks_url,
                    grace,
                )
                _remove(path)
            ready = now_ready
            await asyncio.sleep(self.settings.ready_interval)

    async def _watch_core(self, session: asyncio.Task[Any]) -> str:
        """Returns (and cancels `session`) once the core, after answering a health check
        in this session, failed CORE_CHECK_FAILURES in a row; runs until cancelled
        otherwise. While the core has not answered yet, the SDK's own retries go on
        undisturbed."""
        failures = 0
        answered = False
        interval = self.settings.core_check_interval
        first = True
        while True:
            if not first:  # the first check right away: is the core up as we connect?
                await asyncio.sleep(interval)
            first = False
            problem = await core_health_problem(self.settings.tasks_url)
            if problem is None:
                answered = True
                failures = 0
                continue
            if not answered:
                continue
            failures += 1
            if failures >= CORE_CHECK_FAILURES:
                session.cancel()
                return (
                    f"the core at {self.settings.tasks_url} failed {failures} health checks "
                    f"in a row (GET {CORE_HEALTH_PATH}: {problem}); closed the pull stream"
                )

    async def _drain(self) -> None:
        """Let the tasks already pulled finish, at most shutdown_grace seconds."""
        running = in_flight_tasks()
        if not running:
            logger.info("no task in progress")
            return
        grace = self.settings.shutdown_grace
        logger.info("waiting up to %.0f s for %d task(s) in progress", grace, len(running))
        t0 = time.monotonic()
        _done, pending = await asyncio.wait(running, timeout=grace)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
        logger.info(
            "%d task(s) finished, %d cancelled after %.1f s (the core re-dispatches them)",
            len(running) - len(pending),
            len(pending),
            time.monotonic() - t0,
        )

    # -- the loop -----------------------------------------------------------------

    async def run(self) -> int:
        """Serve until request_stop() (SIGTERM/SIGINT); returns the exit code."""
        self._stop = asyncio.Event()
        if self._stop_reason is not None:
            self._stop.set()
        settings = self.settings
        if self._worker_factory is None and not self.server.get_components():
            logger.error("no components registered: nothing to serve")
            return 2
        last = _LastRecord()
        sdk_logger = logging.getLogger(SDK_WORKER_LOGGER)
        sdk_logger.addHandler(last)
        heartbeat = None
        if settings.heartbeat_file is not None:
            heartbeat = asyncio.create_task(self._heartbeat(), name="stepflow-kit-heartbeat")
        readiness = None
        if settings.ready_file is not None:
            _remove(settings.ready_file)  # a container restarted in the same pod finds /tmp as it was
            readiness = asyncio.create_task(self._ready_file(), name="stepflow-kit-ready")
        self._install_signal_handlers()
        logger.info(
            "worker loop: STEPFLOW_TASKS_URL=%s STEPFLOW_QUEUE_NAME=%s STEPFLOW_MAX_CONCURRENT=%d "
            "STEPFLOW_SHUTDOWN_GRACE_SECS=%g heartbeat file %s every %g s, reconnect delay %g s, "
            "core check every %g s, ready file %s (grace %g s)",
            settings.tasks_url,
            settings.queue_name,
            settings.max_concurrent,
            settings.shutdown_grace,
            settings.heartbeat_file or "(none)",
            settings.heartbeat_interval,
            settings.reconnect_delay,
            settings.core_check_interval,
            settings.ready_file or "(none)",
            settings.ready_grace,
        )
        stop_wait = asyncio.create_task(self._stop.wait(), name="stepflow-kit-stop")
        try:
            while not self._stop.is_set():
                last.message = None
                self.sessions += 1
                session = asyncio.create_task(self._start_worker(), name="stepflow-grpc-worker")
                self._session = session
                # The SDK worker installs its own SIGTERM/SIGINT handlers in its first
                # step (before its first await); let that step run, then put ours back.
                await asyncio.sleep(0)
                self._install_signal_handlers()
                watch = None
                if settings.core_check_interval > 0 and self._worker_factory is None:
                    watch = asyncio.create_task(self._watch_core(session), name="stepflow-kit-core")
                await asyncio.wait({session, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                watched = None
                if watch is not None:
                    if watch.done() and not watch.cancelled():
                        watched = watch.result()
                    watch.cancel()
                if not session.done():  # stop requested
                    session.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await session
                    break
                exc = None if session.cancelled() else session.exception()
                if watched is not None:
                    reason = watched
                elif exc is not None:
                    reason = f"the gRPC worker failed: {type(exc).__name__}: {exc}"
                    logger.warning("%s", reason, exc_info=exc)
                elif last.message:
                    reason = f"the gRPC worker returned after: {last.message}"
                else:
                    reason = "the gRPC worker returned"
                if self._stop.is_set():
                    break
                logger.info(
                    "%s; reconnecting to %s in %g s (session %d)",
                    reason,
                    settings.tasks_url,
                    settings.reconnect_delay,
                    self.sessions + 1,
                )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(stop_wait), settings.reconnect_delay)
            await self._drain()
        finally:
            stop_wait.cancel()
            for task in (heartbeat, readiness):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if settings.ready_file is not None:
                _remove(settings.ready_file)
            sdk_logger.removeHandler(last)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        logger.info("worker loop stopped (%s)", self._stop_reason or "no reason")
        return self._exit_code
