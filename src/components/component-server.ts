import { Construct } from 'constructs';
import * as k8s from '../../imports/k8s';
import { CONTRACT } from '../contract';
import { PluginConfig, PluginRegistration } from '../config/stepflow-config';
import { serviceHost } from '../internal/metadata';
import { ProbeSet, ProbeTiming, ProbeTimings } from '../internal/workload';
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
}

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

/**
 * A gRPC-pull worker has no port: it is ready when it can reach the core server it dials.
 * Distroless images have no shell, so the check is a Python one-liner.
 */
export function coreReachableCommand(): string[] {
  return ['python3', '-c', `import os, urllib.request; urllib.request.urlopen("http://" + os.environ["${CONTRACT.env.tasksUrl}"] + "${CONTRACT.components.core.health.readiness}", timeout=${CORE_CHECK_TIMEOUT_SECONDS})`];
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
  declare public readonly component: PythonComponent;
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

  protected constructor(scope: Construct, id: string, component: PythonComponent, props: StepFlowComponentServerProps, defaultResources: ComputeResources, timing: ProbeTimings) {
    super(scope, id, component, props, defaultResources);
    const contract = CONTRACT.components[component];
    if (this.generation === StepFlowGeneration.GRPC_PULL && !props.core) {
      this.validator.fail('core', props.core, 'gRPC-pull workers dial the core server: pass core (e.g. StepFlowCore.endpoint({ namespace, namePrefix }))');
    }
    this.host = serviceHost(this.name, this.namespace);
    this.runtime = this.serverRuntime(props.core, timing);
    if (this.runtime.listens) {
      this.listenPort = contract.port;
      this.url = `http://${this.host}:${contract.port}`;
      this.healthUrl = `${this.url}${contract.health.liveness}`;
    }
    this.registration = { pluginName: contract.routePrefix, routePrefix: contract.routePrefix, plugin: this.runtime.plugin };
  }

  /** The command that runs the server: its module under the image's python3. */
  protected get command(): string[] {
    return ['python3', '-m', CONTRACT.components[this.component].module];
  }

  /** The env the generation sets, as variables in order. */
  protected get runtimeEnv(): k8s.EnvVar[] {
    return envVars(this.runtime.env);
  }

  private serverRuntime(core: ICoreEndpoint | undefined, timing: ProbeTimings): ServerRuntime {
    const contract = CONTRACT.components[this.component];
    const env: Record<string, string> = {
      [CONTRACT.env.logLevel]: pythonLogLevel(this.common.logLevel),
      [CONTRACT.env.serviceName]: this.name,
      [CONTRACT.env.home]: CONTRACT.paths.tmp,
      [CONTRACT.env.cacheHome]: CONTRACT.paths.cache,
      [CONTRACT.env.noBytecode]: '1',
    };
    if (this.generation === StepFlowGeneration.GRPC_PULL) {
      // The check's own HTTP timeout is 3 s; give the kubelet's more, so the check fails by itself.
      const check = { command: coreReachableCommand() };
      const withTimeout = (t: ProbeTiming) => ({ ...t, timeoutSeconds: Math.max(t.timeoutSeconds, CORE_CHECK_TIMEOUT_SECONDS + 2) });
      return {
        args: [],
        env: {
          ...env,
          [CONTRACT.env.transport]: 'grpc',
          [CONTRACT.env.tasksUrl]: core?.address ?? '',
          [CONTRACT.env.queueName]: contract.routePrefix,
          [CONTRACT.env.blobUrl]: core?.address ?? '',
        },
        listens: false,
        probes: { startup: { ...check, ...withTimeout(timing.startup) }, readiness: { ...check, ...withTimeout(timing.readiness) } },
        plugin: { type: 'grpc', queueName: contract.routePrefix },
      };
    }
    return {
      sessionAffinitySeconds: SESSION_AFFINITY_SECONDS,
      args: ['--host', '0.0.0.0', '--port', String(contract.port)],
      env,
      listens: true,
      probes: {
        startup: { httpPath: contract.health.startup, ...timing.startup },
        liveness: { httpPath: contract.health.liveness, ...timing.liveness },
        readiness: { httpPath: contract.health.readiness, ...timing.readiness },
      },
      plugin: { type: 'stepflow', url: `http://${this.host}:${contract.port}` },
    };
  }
}
