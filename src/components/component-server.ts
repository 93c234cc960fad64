import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import * as k8s from '../../imports/k8s';
import { CONTRACT, ComponentIdentity, HealthPaths } from '../contract';
import { PluginConfig, PluginRegistration } from '../config/stepflow-config';
import { LogFormat } from '../config/telemetry';
import { serviceHost } from '../internal/metadata';
import { replicaRange } from '../internal/scaling';
import { LIMITS } from '../internal/validation';
import { ProbeAction, ProbeSet, ProbeTiming, ProbeTimings, scratchVolume } from '../internal/workload';
import { ComputeResources, LogLevel, StepFlowComponentProps, StepFlowGeneration } from '../types';
import { IComponentServer, ICoreEndpoint } from './common';
import { StepFlowComponent, envVars } from './component';

/** The components that are StepFlow component servers (workers). */
export type PythonComponent = 'python-sdk' | 'inference';

/** Props every component server takes. */
export interface StepFlowComponentServerProps extends StepFlowComponentProps {
  /**
   * The core server that gRPC-pull workers dial. Required for StepFlowGeneration.GRPC_PULL.
   * @default - none (HTTP push: the core server calls this server)
   */
  readonly core?: ICoreEndpoint;
  /**
   * Tasks one worker runs at once (gRPC pull only, `STEPFLOW_MAX_CONCURRENT`).
   * @default 4
   */
  readonly maxConcurrentTasks?: number;
  /**
   * How long a stopping worker lets its in-flight tasks finish (gRPC pull only,
   * `STEPFLOW_SHUTDOWN_GRACE_SECS`); must stay below terminationGracePeriodSeconds.
   * @default 10
   */
  readonly shutdownGraceSeconds?: number;
  /**
   * How long the kubelet waits after SIGTERM before it kills the container.
   * @default - 30 for python-sdk, 60 for inference
   */
  readonly terminationGracePeriodSeconds?: number;
}

/** One probe of a component server, replacing the kit's: an HTTP path (servers that listen) or a command; timings in part. */
export interface WorkerProbe {
  /**
   * GET on the server's port (StepFlow 0.11 servers, which listen). Give at most one of httpPath, command.
   * @default - the kit's check
   */
  readonly httpPath?: string;
  /**
   * A command run in the container (exit 0 = healthy).
   * @default - the kit's check
   */
  readonly command?: string[];
  /** @default - the kit's */
  readonly periodSeconds?: number;
  /** @default - the kit's */
  readonly failureThreshold?: number;
  /** @default - the kit's */
  readonly timeoutSeconds?: number;
}

/** The probes of a component server, kind by kind over the kit's. */
export interface WorkerProbes {
  /** @default - the kit's startup check (0.13: the core answers; 0.11: GET /health) */
  readonly startup?: WorkerProbe;
  /**
   * `false`: no liveness probe (an image without the kit's reconnect loop writes no heartbeat).
   * @default - 0.13: the reconnect loop's heartbeat file is fresh; 0.11: GET /health
   */
  readonly liveness?: WorkerProbe | false;
  /**
   * @default - the kit's readiness check: 0.13: the reconnect loop's ready file is fresh (the
   * worker is connected to the core, or reconnecting for less than its grace, 60 s); with
   * `liveness: false` (an image without the kit's loop, which writes no ready file) the core
   * answers; 0.11: GET /health
   */
  readonly readiness?: WorkerProbe;
}

/** How the core routes to a component server and how its process runs. */
export interface ServerDefinition {
  /** Route prefix and plugin name in the core's config (`/<prefix>/{*component}`). */
  readonly routePrefix: string;
  /** The queue a gRPC-pull worker takes tasks from. */
  readonly queueName: string;
  /** The command, per generation. */
  readonly command: (generation: StepFlowGeneration) => string[];
  /** @default - 0.11: `--host 0.0.0.0 --port <port>`; 0.13: none */
  readonly args?: string[];
  /** HTTP paths of a server that listens (0.11). */
  readonly health: HealthPaths;
  /** @default - the kit's probes */
  readonly probes?: WorkerProbes;
}

/** How stale the worker loop's heartbeat file may get before the liveness probe restarts the container. */
export const HEARTBEAT_MAX_AGE_SECONDS = 30;

/**
 * How stale the worker loop's ready file may get before the readiness check fails: the loop
 * refreshes it every second while the worker is ready and removes it when it no longer is.
 */
export const READY_MAX_AGE_SECONDS = 15;

/** Command, args, env, probes and plugin of a Python component server, in one generation. */
interface ServerRuntime {
  /**
   * StepFlow 0.11 keeps a session per component server: the core server initializes a
   * server once and answers its callbacks on the same connection, so a Service must keep
   * each core pod on one server pod (measured: 0–11 of 40 runs succeed round-robin, 40 of
   * 40 with ClientIP affinity).
   */
  readonly sessionAffinitySeconds?: number;
  readonly args: string[];
  readonly env: Record<string, string>;
  readonly listens: boolean;
  readonly probes: ProbeSet;
  readonly plugin: PluginConfig;
}

/** How long a core pod stays pinned to one component-server pod: Kubernetes' maximum, one day. */
const SESSION_AFFINITY_SECONDS = 86400;

/** HTTP timeout of the worker's core-reachable check. */
const CORE_CHECK_TIMEOUT_SECONDS = 3;

const WORKER_DEFAULTS = { maxConcurrentTasks: 4, shutdownGraceSeconds: 10 };

/**
 * A gRPC-pull worker has no port: it is ready when it can reach the core server it dials.
 * Distroless images have no shell, so the check is a Python one-liner.
 */
export function coreReachableCommand(): string[] {
  return ['python3', '-c', `import os, urllib.request; urllib.request.urlopen("http://" + os.environ["${CONTRACT.env.tasksUrl}"] + "${CONTRACT.components.core.health.readiness}", timeout=${CORE_CHECK_TIMEOUT_SECONDS})`];
}

/**
 * A hung worker stops refreshing its heartbeat file (the reconnect loop touches it from the
 * worker's event loop): the liveness check fails once the file is older than the limit.
 */
export function heartbeatFreshCommand(): string[] {
  return ['python3', '-c', `import os, sys, time; sys.exit(0 if time.time() - os.stat(os.environ['${CONTRACT.env.heartbeatFile}']).st_mtime < ${HEARTBEAT_MAX_AGE_SECONDS} else 1)`];
}

/**
 * A gRPC-pull worker is ready on its own state, not on the core's: the reconnect loop keeps
 * its ready file fresh while it is connected to the core and for a grace period while it
 * reconnects (`STEPFLOW_KIT_READY_GRACE_SECS`, 60 s). A core restart therefore leaves every
 * worker Ready, where a check that asks the core's health turns all of them NotReady at once
 * (disruption budgets then block drains, rollouts stall); a worker that cannot reach its core
 * for longer than the grace is reported.
 */
export function readyFreshCommand(): string[] {
  return ['python3', '-c', `import os, sys, time; sys.exit(0 if time.time() - os.stat(os.environ['${CONTRACT.env.readyFile}']).st_mtime < ${READY_MAX_AGE_SECONDS} else 1)`];
}

/** The action of a probe, without its timing. */
function actionOf(p: ProbeAction): ProbeAction {
  return 'httpPath' in p ? { httpPath: p.httpPath } : { command: p.command };
}

/** Map our log level to the Python SDK's (logging module names). */
export function pythonLogLevel(level: LogLevel): string {
  return level === LogLevel.WARN ? 'WARNING' : level.toUpperCase();
}

/**
 * What python-sdk and inference share: resolving the common props, the generation's
 * command/env/probes, and the connection facts the core server's config is built from.
 */
export abstract class StepFlowComponentServer extends StepFlowComponent implements IComponentServer {
  /** `<name>.<namespace>.svc` */
  public readonly host: string;
  /** The port the server listens on; undefined for gRPC-pull workers, which listen on nothing. */
  public readonly listenPort?: number;
  /** `http://host:port`, when it listens. */
  public readonly url?: string;
  /** URL of its liveness endpoint, when it listens. */
  public readonly healthUrl?: string;
  public readonly registration: PluginRegistration;

  /** The generation's args, env, probes and plugin, for the subclass to build its workload from. */
  protected readonly runtime: ServerRuntime;

  /** How long the kubelet waits after SIGTERM before it kills the container. */
  protected readonly terminationGracePeriodSeconds: number;

  /** The command that runs the server, in its generation. */
  protected readonly command: string[];

  protected constructor(scope: Construct, id: string, identity: ComponentIdentity, imageRepository: string | undefined, private readonly server: ServerDefinition,
    props: StepFlowComponentServerProps, defaultResources: ComputeResources, timing: ProbeTimings, defaultTerminationGraceSeconds: number) {
    super(scope, id, identity, imageRepository, props, defaultResources);
    this.terminationGracePeriodSeconds = props.terminationGracePeriodSeconds ?? defaultTerminationGraceSeconds;
    this.validateWorker(props);
    this.host = serviceHost(this.name, this.namespace);
    this.command = server.command(this.generation);
    this.runtime = this.serverRuntime(props, timing);
    if (this.runtime.listens) {
      this.listenPort = identity.port;
      this.url = `http://${this.host}:${identity.port}`;
      this.healthUrl = `${this.url}${server.health.liveness}`;
    }
    this.registration = { pluginName: server.routePrefix, routePrefix: server.routePrefix, plugin: this.runtime.plugin };
  }

  /**
   * The command of a built-in Python component: its module under the image's python3; in
   * gRPC pull the image's reconnecting worker, where it has one apart from the server module.
   */
  protected static pythonModuleCommand(module: string, workerModule?: string): (generation: StepFlowGeneration) => string[] {
    return (generation) => ['python3', '-m', generation === StepFlowGeneration.GRPC_PULL && workerModule ? workerModule : module];
  }

  /**
   * The Deployment of a Python server with a writable `/tmp` (also `HOME`) and cache, sized
   * by the props (defaults 256 and 512 MiB), as python-sdk and a team's workers run.
   */
  protected buildScratchDeployment(version: string | undefined, sizes: { readonly tmpSizeMiB?: number; readonly cacheSizeMiB?: number }): ApiObject {
    const tmpSizeMiB = sizes.tmpSizeMiB ?? 256;
    const cacheSizeMiB = sizes.cacheSizeMiB ?? 512;
    this.validator.integer('tmpSizeMiB', tmpSizeMiB, 1, LIMITS.volumeMiB);
    this.validator.integer('cacheSizeMiB', cacheSizeMiB, 1, LIMITS.volumeMiB);
    return this.build({
      identity: this.identity,
      common: this.common,
      version,
      kind: 'Deployment',
      command: this.command,
      args: this.runtime.args,
      listens: this.runtime.listens,
      sessionAffinitySeconds: this.runtime.sessionAffinitySeconds,
      probes: this.runtime.probes,
      terminationGracePeriodSeconds: this.terminationGracePeriodSeconds,
    }, this.runtimeEnv, [
      { volume: scratchVolume('tmp', tmpSizeMiB), mountPath: CONTRACT.paths.tmp },
      { volume: scratchVolume('cache', cacheSizeMiB), mountPath: CONTRACT.paths.cache },
    ]).workload;
  }

  /** The env the generation sets, as variables in order. */
  protected get runtimeEnv(): k8s.EnvVar[] {
    return envVars(this.runtime.env);
  }

  private validateWorker(props: StepFlowComponentServerProps): void {
    const v = this.validator;
    v.integer('terminationGracePeriodSeconds', this.terminationGracePeriodSeconds, 1, 3600);
    if (this.telemetry.logFormat === LogFormat.TEXT) {
      v.fail('telemetry.logFormat', LogFormat.TEXT, 'stepflow-py workers always write JSON log lines; leave logFormat unset or LogFormat.JSON');
    }
    if (this.generation === StepFlowGeneration.GRPC_PULL) {
      if (!props.core) v.fail('core', props.core, 'gRPC-pull workers dial the core server: pass core (e.g. StepFlowCore.endpoint({ namespace, namePrefix }))');
      const grace = props.shutdownGraceSeconds ?? WORKER_DEFAULTS.shutdownGraceSeconds;
      v.integer('maxConcurrentTasks', props.maxConcurrentTasks, 1, 1024);
      if (v.integer('shutdownGraceSeconds', grace, 0, 3600) && grace >= this.terminationGracePeriodSeconds) {
        v.fail('shutdownGraceSeconds', grace, `must stay below terminationGracePeriodSeconds (${this.terminationGracePeriodSeconds}), or the kubelet kills tasks still draining; lower it or raise terminationGracePeriodSeconds`);
      }
      return;
    }
    for (const prop of ['maxConcurrentTasks', 'shutdownGraceSeconds'] as const) {
      if (props[prop] !== undefined) v.fail(prop, props[prop], 'only gRPC-pull workers (StepFlowGeneration.GRPC_PULL) take it; StepFlow 0.11 servers have no such setting');
    }
    const { max } = replicaRange(this.common.replicas, this.common.autoscaling);
    if (max > 1) {
      const prop = this.common.autoscaling ? 'autoscaling.maxReplicas' : 'replicas';
      v.fail(prop, max, 'StepFlow 0.11 pins the one core to one component-server pod (a session per server, ClientIP affinity), so replicas above one take no work; '
        + 'run 1 replica, or use StepFlowGeneration.GRPC_PULL, where every replica pulls tasks');
    }
  }

  private serverRuntime(props: StepFlowComponentServerProps, timing: ProbeTimings): ServerRuntime {
    const core = props.core;
    const server = this.server;
    const port = this.identity.port;
    const env: Record<string, string> = {
      [CONTRACT.env.logLevel]: pythonLogLevel(this.common.logLevel),
      [CONTRACT.env.serviceName]: this.telemetry.serviceName ?? this.name,
      ...this.workerTelemetryEnv(),
      [CONTRACT.env.home]: CONTRACT.paths.tmp,
      [CONTRACT.env.cacheHome]: CONTRACT.paths.cache,
      [CONTRACT.env.noBytecode]: '1',
    };
    if (this.generation === StepFlowGeneration.GRPC_PULL) {
      // The check's own HTTP timeout is 3 s; give the kubelet's more, so the check fails by itself.
      const check = { command: coreReachableCommand() };
      // An image without the kit's reconnect loop (liveness: false) writes no ready file.
      const kitLoop = this.server.probes?.liveness !== false;
      const withTimeout = (t: ProbeTiming) => ({ ...t, timeoutSeconds: Math.max(t.timeoutSeconds, CORE_CHECK_TIMEOUT_SECONDS + 2) });
      return {
        args: server.args ?? [],
        env: {
          ...env,
          [CONTRACT.env.transport]: 'grpc',
          [CONTRACT.env.tasksUrl]: core?.address ?? '',
          [CONTRACT.env.queueName]: server.queueName,
          [CONTRACT.env.blobUrl]: core?.address ?? '',
          [CONTRACT.env.maxConcurrent]: String(props.maxConcurrentTasks ?? WORKER_DEFAULTS.maxConcurrentTasks),
          [CONTRACT.env.shutdownGrace]: String(props.shutdownGraceSeconds ?? WORKER_DEFAULTS.shutdownGraceSeconds),
          [CONTRACT.env.heartbeatFile]: CONTRACT.paths.heartbeat,
          [CONTRACT.env.readyFile]: CONTRACT.paths.ready,
        },
        listens: false,
        probes: this.probes(false, {
          startup: { ...check, ...withTimeout(timing.startup) },
          liveness: { command: heartbeatFreshCommand(), ...withTimeout(timing.liveness) },
          readiness: { ...(kitLoop ? { command: readyFreshCommand() } : check), ...withTimeout(timing.readiness) },
        }),
        plugin: { type: 'grpc', queueName: server.queueName },
      };
    }
    return {
      sessionAffinitySeconds: SESSION_AFFINITY_SECONDS,
      args: server.args ?? ['--host', '0.0.0.0', '--port', String(port)],
      env,
      listens: true,
      probes: this.probes(true, {
        startup: { httpPath: server.health.startup, ...timing.startup },
        liveness: { httpPath: server.health.liveness, ...timing.liveness },
        readiness: { httpPath: server.health.readiness, ...timing.readiness },
      }),
      plugin: { type: 'stepflow', url: `http://${this.host}:${port}` },
    };
  }

  /** The kit's probes with the props' on top, kind by kind. */
  private probes(listens: boolean, kit: Required<ProbeSet>): ProbeSet {
    const given = this.server.probes ?? {};
    const v = this.validator;
    const one = (kind: keyof ProbeSet, base: ProbeAction & ProbeTiming): (ProbeAction & ProbeTiming) => {
      const p = given[kind];
      if (p === undefined || p === false) return base;
      const at = `probes.${kind}`;
      if (p.httpPath !== undefined && p.command !== undefined) v.fail(at, p, 'give at most one of httpPath, command');
      if (p.httpPath !== undefined && (!listens || typeof p.httpPath !== 'string' || !p.httpPath.startsWith('/'))) {
        v.fail(`${at}.httpPath`, p.httpPath, listens ? "expected an absolute path, e.g. '/health'" : 'a gRPC-pull worker listens on no port: use command');
      }
      if (p.command !== undefined && (!Array.isArray(p.command) || p.command.length === 0 || p.command.some((c) => typeof c !== 'string'))) {
        v.fail(`${at}.command`, p.command, "expected a non-empty list of strings, e.g. ['python3', '-c', '...']");
      }
      v.integer(`${at}.periodSeconds`, p.periodSeconds, 1, LIMITS.seconds);
      v.integer(`${at}.failureThreshold`, p.failureThreshold, 1, 1000);
      v.integer(`${at}.timeoutSeconds`, p.timeoutSeconds, 1, LIMITS.seconds);
      const action: ProbeAction = p.command !== undefined ? { command: p.command } : p.httpPath !== undefined ? { httpPath: p.httpPath } : actionOf(base);
      return {
        ...action,
        periodSeconds: p.periodSeconds ?? base.periodSeconds,
        failureThreshold: p.failureThreshold ?? base.failureThreshold,
        timeoutSeconds: p.timeoutSeconds ?? base.timeoutSeconds,
      };
    };
    return {
      startup: one('startup', kit.startup),
      liveness: given.liveness === false ? undefined : one('liveness', kit.liveness),
      readiness: one('readiness', kit.readiness),
    };
  }
}
