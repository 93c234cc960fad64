#!/usr/bin/env python3
"""Telemetry of the real StepFlow programs, started as the synthesized manifests say.

Synthesizes two installations with the library (lib/src, compiled by `tsc -p .`):
  * `telemetry`: the DEV preset with telemetry {logFormat: JSON, otlpEndpoint:
    http://otel-collector.observability.svc:4317} (tracing and metrics on by default);
  * `plain`: the DEV preset as it is (no endpoint, text logs).
Then, with pods.py's machinery (objects read back from the YAML; command, args, env,
volumes and security context as written; Service host names -> 127.0.0.1), it starts the
dev core (stepflow-server 0.13.0) and one python-sdk worker (stepflow-py 0.13.0 in the
image's `python3 -m stepflow_kit_worker` loop), no inference, and checks:
  1. with logFormat JSON every line the core writes (stdout and stderr, what `kubectl logs`
     shows) is a JSON object with `timestamp`, `level` and `message`;
  2. with the endpoint set, an OTLP/gRPC receiver on 127.0.0.1 (otlp_receiver.py; the
     endpoint's host is the one extra rewrite, printed as a REWRITE line) receives, per
     `service.name` resource attribute: trace spans and metrics from the core, trace spans
     (and logs) from the python-sdk worker after a workflow run through it
     (POST /api/v1/flows + /api/v1/runs with a /python/udf step, as verify.py's scenarios do);
  3. without an endpoint the core logs text lines, not JSON.

Prints PASS:/FAIL:/REWRITE:/FIGURE: lines and ends with `N passed, M failed` (exit 1 on a
failure, 2 on bad arguments). Needs root (a private network namespace, entered by itself
when the machine has interfaces other than lo, and one mount namespace per container), PyYAML
(it re-runs itself with the tools venv of run.sh when the python has none), node, and the
stepflow 0.13 venv of run.sh (its grpcio and opentelemetry-proto run the receiver).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "verify" / "fixtures"))  # the StepFlow fixtures (stepflow_fixtures)
from stepflow_fixtures import venvs  # noqa: E402
from stepflow_fixtures.contract import generation_requirements  # noqa: E402

# The venvs of run.sh (made from Debian's python3, usable by the manifests' uids).
BASE_PYTHON = "/usr/bin/python3"
CORE_VENV = venvs.Spec("stepflow-0.13", tuple(generation_requirements("0.13")))
TOOLS_VENV = venvs.Spec("stepflow-verify-tools", tuple(venvs.read_requirements(HERE / "requirements" / "tools.txt")))
RECEIVER_VENV = venvs.Spec("stepflow-otlp-receiver",
                           tuple(venvs.read_requirements(HERE / "requirements" / "otlp-receiver.txt")))
ENDPOINT = "http://otel-collector.observability.svc:4317"
COLLECTOR = ("otel-collector", "observability", 4317)  # Service name, namespace, port of ENDPOINT
NETNS_MARK = "STEPFLOW_VERIFY_TELEMETRY_NETNS"

USAGE = """telemetry.py [--core-venv DIR] [--receiver-venv DIR] [--workdir DIR] [--export-timeout S]
                    [--summary-file F] [--keep] [--prepare-only] [-h]"""

SYNTH_JS = r"""
const lib = require(process.argv[1] + '/lib/src');
const [, , outdir, variant] = process.argv;
const app = new lib.StepFlowApp({ outdir });
const telemetry = {
  telemetry: { otlpEndpoint: process.argv[4], logFormat: lib.LogFormat.JSON },
  'metrics-only': { otlpEndpoint: process.argv[4], logFormat: lib.LogFormat.JSON, tracing: false, metrics: true },
}[variant];
new lib.StepFlowChart(app, 'dev', { environment: lib.StepFlowEnvironment.DEV,
  generation: lib.StepFlowGeneration.GRPC_PULL, ...(telemetry ? { telemetry } : {}) });
app.synth();
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="telemetry.py", usage=USAGE, description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--core-venv", default=str(venvs.location(CORE_VENV, BASE_PYTHON)),
                    help="venv with stepflow-orchestrator 0.13.0 + stepflow-py 0.13.0 (default: run.sh's, %(default)s)")
    ap.add_argument("--receiver-venv", default="",
                    help="venv for otlp_receiver.py (default: made here with requirements/otlp-receiver.txt "
                         "when missing; "
                         "(needs PyPI, so before the private network namespace; default %(default)s)")
    ap.add_argument("--workdir", default=str(venvs.cache_root() / "stepflow-verify-runs"),
                    help="parent of the run directory (logs, volumes); not under /tmp (default %(default)s)")
    ap.add_argument("--export-timeout", type=float, default=45.0,
                    help="seconds to wait for the expected OTLP exports after the workflow (default %(default)s; "
                         "the core and the worker export metrics every 10 s, spans within 5 s)")
    ap.add_argument("--summary-file", default="", help="write 'PASSED FAILED' there (for run.sh)")
    ap.add_argument("--keep", action="store_true", help="keep the process logs (the directory is printed)")
    ap.add_argument("--prepare-only", action="store_true",
                    help="create the receiver venv when missing (needs PyPI), print its path and exit")
    return ap.parse_args(argv)


def reexec_if_needed(argv: list[str]) -> None:
    """PyYAML (pods.py and manifests.py need it) and a network namespace with nothing but lo."""
    try:
        import yaml  # noqa: F401,PLC0415
    except ImportError:
        tools = venvs.location(TOOLS_VENV, BASE_PYTHON) / "bin" / "python"
        if tools.exists() and Path(sys.executable) != tools:
            os.execv(str(tools), [str(tools), "-B", __file__, *argv])
        raise SystemExit(f"telemetry.py: PyYAML is missing and {tools} does not exist "
                         "(bash verify/stepflow/run.sh --help: run.sh makes it)") from None
    if os.geteuid() != 0:
        raise SystemExit("telemetry.py: must run as root (private network and mount namespaces)")
    ifaces = set(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else set()
    receiver_venv(parse_args(argv), online=bool(ifaces - {"lo"}))
    if ifaces - {"lo"} and os.environ.get(NETNS_MARK) != "1":
        env = {**os.environ, NETNS_MARK: "1"}
        os.execvpe("unshare", ["unshare", "-n", "--", "/bin/sh", "-ec", 'ip link set lo up; exec "$@"', "sh",
                               sys.executable, "-B", __file__, *argv], env)


def receiver_venv(args: argparse.Namespace, online: bool) -> Path:
    """The receiver's venv: --receiver-venv, or the one of requirements/otlp-receiver.txt,
    created here when missing (PyPI: only outside the private network namespace)."""
    if args.receiver_venv:
        return Path(args.receiver_venv)
    try:
        return venvs.ensure(RECEIVER_VENV, BASE_PYTHON, install=online)
    except venvs.VenvMissing as e:
        raise SystemExit(f"telemetry.py: {e}, and this network namespace reaches nothing: run "
                         "telemetry.py --prepare-only outside it first") from None
    except (RuntimeError, OSError) as e:
        raise SystemExit(f"telemetry.py: {e}") from None


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.prepare_only:
        print(receiver_venv(args, online=True), flush=True)
        return 0
    reexec_if_needed(argv)
    args.receiver_venv = str(receiver_venv(args, online=False))
    sys.path.insert(0, str(HERE))
    from manifests import Env, load_objects, role, workloads  # noqa: PLC0415
    from pods import Results, Runner, Scenario, ServicePlan, info, log  # noqa: PLC0415

    results = Results()
    t_start = time.time()

    class TelemetryRunner(Runner):
        """pods.py's Runner; the collector's Service name maps to the receiver's local port."""

        collector: ServicePlan | None = None

        def make_pod(self, env: Any, rep: Any, services: list[Any], port_rewrites: dict[int, int]) -> None:
            extra = [self.collector] if self.collector is not None else []
            super().make_pod(env, rep, list(services) + extra, port_rewrites)

    run_args = argparse.Namespace(
        generation="0.13", core_venv=args.core_venv, inference_venv="", inference_sdk013="", model_dir="",
        runs=1, init_timeout=60.0, keep=args.keep, workdir=args.workdir, only_resilience=False, summary_file="")
    tmp = Path(tempfile.mkdtemp(prefix="stepflow-telemetry-"))
    receiver: subprocess.Popen | None = None
    r: Runner | None = None
    try:
        with results.guard("telemetry"):
            r = TelemetryRunner(run_args, results)
            manifests = synthesize(tmp, results)
            if manifests is None:
                return finish(results, args, t_start)
            counts_file = r.work / "otlp-counts.json"
            receiver, port = start_receiver(Path(args.receiver_venv), counts_file, r.work / "otlp-receiver.log")
            if not results.check(port is not None, "OTLP/gRPC receiver listens on 127.0.0.1",
                                 f"port {port}" if port else (r.work / "otlp-receiver.log").read_text(errors="replace")[-500:]):
                return finish(results, args, t_start)
            r.collector = ServicePlan(obj={"spec": {}}, name=COLLECTOR[0], namespace=COLLECTOR[1], replicas=[],
                                      port_map={COLLECTOR[2]: port})
            info(f"the endpoint {ENDPOINT} is served by the receiver at 127.0.0.1:{port} (otlp_receiver.py)")

            @contextlib.contextmanager
            def installation(name: str, label: str, keep_roles: tuple[str, ...], about: str = "") -> Iterator[tuple[Any, dict[str, Any]]]:
                """The pods of one synthesized installation, stopped at the end; then its export figures."""
                t0 = time.time()
                env = Env(manifests[name], load_objects(manifests[name]))
                log(f"===== {label} {env.path}{about}")
                before = read_counts(counts_file)
                # the roles kept, one replica each
                overrides = {role(wl): (1 if role(wl) in keep_roles else 0) for wl in workloads(env)}
                with Scenario(r, env, label, replicas_override=overrides) as sc:
                    for rep in sc.reps:  # the same pod names (and logs) as an earlier scenario: read only this one's lines
                        for p in rep.containers.values():
                            p.log_offset = p.log_path.stat().st_size if p.log_path.exists() else 0
                    sc.start(core_first=False)  # workers first
                    yield sc, before
                figures(label, before, read_counts(counts_file), time.time() - t0)

            def python_flows(sc: Any, up: bool) -> Any:
                """The components the core serves, and the python flows to run through them (none if the pods are not up)."""
                cfg = sc.config()
                served = check_components(sc, cfg, Results)
                return sc.python_flows(cfg, served) if up else None

            # ---- 1 + 2: JSON logs and OTLP export ------------------------------------------------
            label = "[telemetry dev gen 0.13]"
            with installation("telemetry", label, ("core", "python-sdk")) as (sc, before):
                up = r.check_probes(label, sc.reps, sc.services)
                sc.core_log_clean()
                flows = python_flows(sc, up)
                t_flow = time.time()
                if flows:
                    run_add_flow(results, sc, flows, label)
                info(f"{label} workflow took {time.time() - t_flow:.1f}s")
                core_svc, sdk_svc = expected_services(sc, role)
                got = wait_exports(counts_file, core_svc, sdk_svc, args.export_timeout, receiver)
                report_exports(results, label, got, core_svc, sdk_svc)
                check_core_json_log(results, label, proc_of(sc, role, "core"))
                check_worker_log(results, label, proc_of(sc, role, "python-sdk"))
                sc.check_no_restarts()

            # ---- 2b: tracing false, metrics true -----------------------------------------------------
            label = "[metrics-only dev gen 0.13]"
            with installation("metrics-only", label, ("core", "python-sdk"), " (telemetry.tracing false, metrics true)") as (sc, before):
                up = r.check_probes(label, sc.reps, sc.services)
                flows = python_flows(sc, up)
                if flows:
                    run_add_flow(results, sc, flows, label)
                core_svc, sdk_svc = expected_services(sc, role)
                core_env = proc_of(sc, role, "core").env
                sdk_env = proc_of(sc, role, "python-sdk").env
                # one metrics interval (10 s) after the run, so spans (batched, 5 s) would have arrived too
                t_run = time.time()
                end = t_run + args.export_timeout
                d: dict[str, Any] = {}
                while time.time() < end and receiver.poll() is None:
                    d = delta(before, read_counts(counts_file))
                    if items(d, core_svc, "metrics") > 0 and time.time() - t_run >= 11:
                        break
                    time.sleep(0.5)
                results.check(items(d, core_svc, "metrics") > 0,
                              f"{label} the core sends metrics (STEPFLOW_METRICS_ENABLED={core_env.get('STEPFLOW_METRICS_ENABLED')})",
                              f"{items(d, core_svc, 'metrics')} data points")
                results.check(items(d, core_svc, "traces") == 0 and bool(flows),
                              f"{label} the core sends no spans (STEPFLOW_TRACE_ENABLED={core_env.get('STEPFLOW_TRACE_ENABLED')})",
                              f"{items(d, core_svc, 'traces')} spans in the {time.time() - t_run:.0f}s after a workflow run")
                print(f"INFO: {label} the worker has one switch for spans, metrics and OTLP logs "
                      f"(STEPFLOW_TRACE_ENABLED={sdk_env.get('STEPFLOW_TRACE_ENABLED')}): it sent "
                      f"{items(d, sdk_svc, 'traces')} spans, {items(d, sdk_svc, 'metrics')} metric data points, "
                      f"{items(d, sdk_svc, 'logs')} log records", flush=True)
                check_core_json_log(results, label, proc_of(sc, role, "core"))
                sc.check_no_restarts()

            # ---- 3: no endpoint -> text logs ------------------------------------------------------
            label = "[plain dev gen 0.13]"
            with installation("plain", label, ("core",)) as (sc, before):
                r.check_probes(label, sc.reps, sc.services)
                sc.core_log_clean()
                time.sleep(2)
                check_core_text_log(results, label, proc_of(sc, role, "core"))
                sc.check_no_restarts()
            after = read_counts(counts_file)
            results.check(summary(after) == summary(before), f"{label} nothing reaches the receiver without an endpoint",
                          f"exports before {summary(before)}, after {summary(after)}")
    finally:
        if r is not None:
            r.cleanup()
        stop_receiver(receiver)
        shutil.rmtree(tmp, ignore_errors=True)
    return finish(results, args, t_start)


ITEM = {"traces": "spans", "metrics": "data points", "logs": "log records"}


def finish(results: Any, args: argparse.Namespace, t_start: float) -> int:
    print(f"telemetry: took {time.time() - t_start:.0f} s", flush=True)
    return results.summary("", args.summary_file)


# --------------------------------------------------------------------------- manifests


def synthesize(tmp: Path, results: Any) -> dict[str, Path] | None:
    """The two installations, from the compiled library (lib/src)."""
    if not (REPO / "lib" / "src" / "index.js").exists():
        r = subprocess.run(["npx", "--no-install", "tsc", "-p", "."], cwd=REPO, capture_output=True, timeout=300)
        if r.returncode != 0:
            results.check(False, "compile the library (tsc -p .)", r.stdout.decode(errors="replace")[-800:])
            return None
    out = {}
    for variant in ("telemetry", "metrics-only", "plain"):
        d = tmp / variant
        r = subprocess.run(["node", "-e", SYNTH_JS, str(REPO), str(d), variant, ENDPOINT],
                           capture_output=True, timeout=120)
        files = sorted(d.glob("*.yaml"))
        if not results.check(r.returncode == 0 and len(files) == 1, f"synthesize the {variant} installation",
                             f"{[f.name for f in files]} {r.stderr.decode(errors='replace')[-600:]}"):
            return None
        out[variant] = files[0]
        print(f"telemetry: synthesized {variant}: {files[0]}", flush=True)
    return out


def check_components(sc: Any, cfg: dict[str, Any], results_cls: Any) -> dict[str, list[str]]:
    """The Scenario's component check (pods.py), counted for the plugins whose workers run here only."""
    class Quiet(results_cls):
        def check(self, ok: bool, name: str, detail: str = "") -> bool:
            self.lines.append((ok, name, detail))
            return ok

    quiet = Quiet()
    quiet.lines = []
    saved = sc.res
    sc.res = quiet
    try:
        served = sc.check_components(cfg)
    finally:
        sc.res = saved
    absent = [p for p in cfg.get("plugins", {}) if cfg["plugins"][p].get("type") == "grpc" and sc.plugin_workload(cfg, p) is None]
    for ok, name, detail in quiet.lines:
        if any(f"plugin {p!r}" in name for p in absent):
            print(f"INFO: not started here: {name} -- {detail}", flush=True)
        else:
            saved.check(ok, name, detail)
    return served


def run_add_flow(results: Any, sc: Any, flows: dict[str, Any], label: str) -> None:
    """One run of the scenarios' a+b flow (a /python/udf step). The inference plugin of the config
    has no worker here, so the core waits its plugin-readiness timeout (30 s) before the step."""
    a, b = random.randint(1, 10**6), random.randint(1, 10**6)
    ok, out, detail = sc.run_flow(flows["add"], {"a": a, "b": b}, timeout=90)
    results.check(ok and out == a + b, f"{label} workflow {flows['path']} a+b through the core REST API",
                  f"input a={a} b={b}, expected {a + b}, got {out!r} ({detail})")


def proc_of(sc: Any, role: Any, which: str) -> Any:
    rep = next(x for x in sc.reps if role(x.workload) == which)
    return next(v for k, v in rep.containers.items() if k.startswith("main:"))


# stepflow-server 0.13.0 reports this service.name, fixed in the program: it reads neither
# STEPFLOW_SERVICE_NAME nor OTEL_SERVICE_NAME (it does add OTEL_RESOURCE_ATTRIBUTES' other keys).
CORE_SERVICE_NAME = "stepflow-server"


def expected_services(sc: Any, role: Any) -> tuple[str, str]:
    """service.name of the core and of the worker (stepflow-py: STEPFLOW_SERVICE_NAME, default stepflow-python)."""
    sdk = proc_of(sc, role, "python-sdk")
    return CORE_SERVICE_NAME, sdk.env.get("STEPFLOW_SERVICE_NAME", "stepflow-python")


# --------------------------------------------------------------------------- receiver


def start_receiver(venv: Path, out: Path, log_path: Path) -> tuple[subprocess.Popen, int | None]:
    py = venv / "bin" / "python"
    if not py.exists():
        raise SystemExit(f"{py} not found (the receiver venv, see --receiver-venv)")
    fh = log_path.open("wb")
    p = subprocess.Popen([str(py), "-B", str(HERE / "otlp_receiver.py"), "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=fh, stdin=subprocess.DEVNULL, start_new_session=True)
    assert p.stdout is not None
    ready, _, _ = select.select([p.stdout], [], [], 20)
    line = p.stdout.readline().decode(errors="replace") if ready else ""
    try:
        port = int(json.loads(line)["port"])
    except (ValueError, KeyError, TypeError):
        port = None
    return p, port


def stop_receiver(p: subprocess.Popen | None) -> None:
    if p is None or p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(5)
    except ProcessLookupError:
        pass


def read_counts(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def summary(c: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {s: {k: v["exports"] for k, v in sig.items()} for s, sig in c.items()}


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What arrived between two snapshots of the counts: items and exports per service and signal."""
    out: dict[str, Any] = {}
    for svc, sigs in after.items():
        for sig, rec in sigs.items():
            b = before.get(svc, {}).get(sig, {})
            n, e = rec["items"] - b.get("items", 0), rec["exports"] - b.get("exports", 0)
            if e:
                out.setdefault(svc, {})[sig] = {"items": n, "exports": e}
    return out


def figures(label: str, before: dict[str, Any], after: dict[str, Any], took: float) -> None:
    d = delta(before, after)
    for svc, sigs in sorted(d.items()):
        for sig, rec in sorted(sigs.items()):
            print(f"FIGURE: {label} {svc} {sig}: {rec['items']} {ITEM[sig]} in {rec['exports']} exports", flush=True)
    if not d:
        print(f"FIGURE: {label} nothing received", flush=True)
    print(f"INFO: {label} took {took:.0f}s", flush=True)


def items(c: dict[str, Any], svc: str, sig: str) -> int:
    return int(c.get(svc, {}).get(sig, {}).get("items", 0))


def wait_exports(path: Path, core_svc: str, sdk_svc: str, timeout: float, receiver: subprocess.Popen) -> dict[str, Any]:
    """Wait (bounded) until the core's spans and metrics and the worker's spans, metrics and
    logs have arrived; return the counts."""
    want = [(core_svc, "traces"), (core_svc, "metrics"), (sdk_svc, "traces"), (sdk_svc, "metrics"), (sdk_svc, "logs")]
    end = time.time() + timeout
    c = read_counts(path)
    while time.time() < end and receiver.poll() is None:
        c = read_counts(path)
        if all(items(c, s, k) > 0 for s, k in want):
            break
        time.sleep(0.5)
    return c


def report_exports(results: Any, label: str, c: dict[str, Any], core_svc: str, sdk_svc: str) -> None:
    def detail(svc: str, sig: str) -> str:
        rec = c.get(svc, {}).get(sig)
        if not rec:
            return f"nothing for service.name={svc!r}; received: {summary(c)}"
        names = sorted(rec["names"].items(), key=lambda kv: -kv[1])[:8]
        return (f"{rec['items']} {ITEM[sig]} in {rec['exports']} exports, service.name={svc!r}, "
                f"grpc-encoding {rec.get('encodings')}" + (f"; names {dict(names)}" if names else ""))

    results.check(items(c, core_svc, "traces") > 0, f"{label} the core sends trace spans over OTLP/gRPC", detail(core_svc, "traces"))
    results.check(items(c, core_svc, "metrics") > 0, f"{label} the core sends metrics over OTLP/gRPC", detail(core_svc, "metrics"))
    results.check(items(c, sdk_svc, "traces") > 0, f"{label} the python-sdk worker sends trace spans after a workflow run",
                  detail(sdk_svc, "traces"))
    results.check(items(c, sdk_svc, "logs") > 0, f"{label} the python-sdk worker sends its logs over OTLP (STEPFLOW_LOG_DESTINATION)",
                  detail(sdk_svc, "logs"))
    # the worker's metrics and the core's logs: reported, not required
    for svc, sig in ((sdk_svc, "metrics"), (core_svc, "logs")):
        print(f"INFO: {label} {sig} of {svc}: {detail(svc, sig)}", flush=True)
    others = sorted(set(c) - {core_svc, sdk_svc})
    results.check(not others, f"{label} every export names the service.name of its component",
                  f"other service.name values: {others}" if others else f"only {core_svc!r} and {sdk_svc!r}")


# --------------------------------------------------------------------------- logs


def log_lines(p: Any) -> list[str]:
    """The container's output (stdout and stderr), without the stand-in's own start markers."""
    text = ""
    if p.log_path.exists():
        with p.log_path.open("rb") as fh:
            fh.seek(getattr(p, "log_offset", 0))
            text = fh.read().decode(errors="replace")
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("===== start ")]


def as_object(line: str) -> dict[str, Any] | None:
    try:
        v = json.loads(line)
    except json.JSONDecodeError:
        return None
    return v if isinstance(v, dict) else None


def is_port_line(obj: dict[str, Any] | None) -> bool:
    """stepflow-server's `{"port":N}` line once it listens (its readiness line, always JSON)."""
    return obj is not None and set(obj) == {"port"}


def check_core_json_log(results: Any, label: str, p: Any) -> None:
    lines = log_lines(p)
    bad, port_lines, levels = [], 0, {}
    for ln in lines:
        obj = as_object(ln)
        if is_port_line(obj):
            port_lines += 1
            continue
        if obj is None or not all(k in obj for k in ("timestamp", "level", "message")):
            bad.append(ln)
            continue
        levels[obj["level"]] = levels.get(obj["level"], 0) + 1
    results.check(bool(lines) and not bad and bool(levels),
                  f"{label} every core log line is a JSON object with timestamp, level, message (STEPFLOW_LOG_FORMAT=json)",
                  f"{len(lines)} lines, levels {levels}, {port_lines} {{\"port\":N}} line(s)"
                  + (f"; {len(bad)} not: {bad[0][:300]!r}" if bad else ""))


def check_core_text_log(results: Any, label: str, p: Any) -> None:
    lines = log_lines(p)
    objs = [ln for ln in lines if (o := as_object(ln)) is not None and not is_port_line(o)]
    results.check(bool(lines) and not objs and any("Starting Stepflow server" in ln for ln in lines),
                  f"{label} the core logs text lines without a log format set (STEPFLOW_LOG_FORMAT={p.env.get('STEPFLOW_LOG_FORMAT')})",
                  f"{len(lines)} lines, {len(objs)} JSON; first: {lines[0][:200]!r}" if lines else "no output")


def check_worker_log(results: Any, label: str, p: Any) -> None:
    """With STEPFLOW_LOG_DESTINATION=stderr,otlp the worker keeps logging to stderr (kubectl logs)."""
    lines = log_lines(p)
    objs = [o for ln in lines if (o := as_object(ln)) is not None]
    bad = [ln for ln in lines if as_object(ln) is None]
    results.check(bool(objs), f"{label} the python-sdk worker still logs to stderr with OTLP logging on",
                  f"{len(lines)} lines, {len(objs)} JSON objects" + (f"; not JSON: {bad[0][:200]!r}" if bad else ""))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
