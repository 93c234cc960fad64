"""StepFlow Python worker that stays connected (StepFlow 0.12/0.13, gRPC pull).

`python3 -m stepflow_kit_worker` serves the components of the stock stepflow-py worker
(`python3 -m stepflow_py.worker.main`: the built-in ones such as /udf, plus /echo) with
the SDK's own gRPC pull worker, restarted in a loop whenever it returns, so the process
outlives restarts of the StepFlow core. With `STEPFLOW_KIT_SERVER=module:attribute` it
serves a team's own StepflowServer instead (`stepflow_kit_worker.server_ref`).
`stepflow_kit_worker.loop.WorkerLoop` is the loop itself, for component servers with an
entry point of their own (the inference image uses it too), and `stepflow_kit_worker.env`
reads the environment variables both images' workers share.
"""

from .env import ConfigError
from .loop import LoopSettings, WorkerLoop

__all__ = ["ConfigError", "LoopSettings", "WorkerLoop"]
