import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { CONTRACT } from '../contract';
import { PluginConfig, PluginRegistration } from '../config/stepflow-config';
import { resourceName } from '../internal/metadata';
import { PropValidator } from '../internal/validation';
import { ProbeSet, ProbeTiming } from '../internal/workload';
import { ComputeResources, StepFlowGeneration } from '../types';
import { IComponentServer, ICoreEndpoint, ResolvedCommon, StepFlowComponentProps, pythonLogLevel, resolveCommon, serviceHost } from './common';

/** The components that are StepFlow component servers (workers). */
export type PythonComponent = 'python-sdk' | 'inference';

/** Command, args, env, probes and plugin of a Python component server, per generation. */
export interface PythonServerRuntime {
  /**
   * StepFlow 0.11 keeps a session per component server: the core server initializes a
   * server once and answers its callbacks on the same connection, so a Service must keep
   * each core pod on one server pod (measured: 0–11 of 40 runs succeed round-robin, 40 of
   * 40 with ClientIP affinity).
   */
  readonly sessionAffinitySeconds?: number;
  readonly command: string[];
  readonly args: string[];
  readonly env: Record<string, string>;
  readonly listens: boolean;
  readonly probes: ProbeSet;
  readonly plugin: PluginConfig;
}

/**
 * A gRPC-pull worker has no port: it is ready when it can reach the core server it dials.
 * Distroless images have no shell, so the check is a Python one-liner.
 */
export function coreReachableCommand(): string[] {
  return ['python3', '-c', `import os, urllib.request; urllib.request.urlopen("http://" + os.environ["${CONTRACT.env.tasksUrl}"] + "${CONTRACT.components.core.health.readiness}", timeout=${CORE_CHECK_TIMEOUT_SECONDS})`];
}

/** How long a core pod stays pinned to one component-server pod: Kubernetes' maximum, one day. */
const SESSION_AFFINITY_SECONDS = 86400;

/** HTTP timeout of the worker's core-reachable check. */
const CORE_CHECK_TIMEOUT_SECONDS = 3;

function pythonServerRuntime(
  component: PythonComponent,
  name: string,
  host: string,
  c: ResolvedCommon,
  core: ICoreEndpoint | undefined,
  timing: ServerProbeTiming,
): PythonServerRuntime {
  const contract = CONTRACT.components[component];
  const env: Record<string, string> = {
    [CONTRACT.env.logLevel]: pythonLogLevel(c.logLevel),
    [CONTRACT.env.serviceName]: name,
    [CONTRACT.env.home]: CONTRACT.paths.tmp,
    [CONTRACT.env.cacheHome]: CONTRACT.paths.cache,
    [CONTRACT.env.noBytecode]: '1',
  };
  const command = ['python3', '-m', contract.module];
  if (c.generation === StepFlowGeneration.GRPC_PULL) {
    // The check's own HTTP timeout is 3 s; give the kubelet's more, so the check fails by itself.
    const check = { command: coreReachableCommand() };
    const withTimeout = (t: ProbeTiming) => ({ ...t, timeoutSeconds: Math.max(t.timeoutSeconds, CORE_CHECK_TIMEOUT_SECONDS + 2) });
    return {
      command,
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
    command,
    args: ['--host', '0.0.0.0', '--port', String(contract.port)],
    env,
    listens: true,
    probes: {
      startup: { httpPath: contract.health.startup, ...timing.startup },
      liveness: { httpPath: contract.health.liveness, ...timing.liveness },
      readiness: { httpPath: contract.health.readiness, ...timing.readiness },
    },
    plugin: { type: 'stepflow', url: `http://${host}:${contract.port}` },
  };
}

/** Probe timing of a component server, per probe. */
export interface ServerProbeTiming {
  readonly startup: ProbeTiming;
  readonly liveness: ProbeTiming;
  readonly readiness: ProbeTiming;
}

/**
 * What python-sdk and inference share: resolving the common props, the generation's
 * command/env/probes, and the connection facts the core server's config is built from.
 */
export abstract class StepFlowComponentServer extends Construct implements IComponentServer {
  public readonly name: string;
  public readonly generation: StepFlowGeneration;
  /** `<name>.<namespace>.svc` */
  public readonly host: string;
  /** The port the server listens on; undefined for gRPC-pull workers, which listen on nothing. */
  public readonly listenPort?: number;
  /** `http://host:port`, when it listens. */
  public readonly url?: string;
  /** URL of its liveness endpoint, when it listens. */
  public readonly healthUrl?: string;
  public readonly registration: PluginRegistration;
  public abstract readonly selector: Record<string, string>;
  public abstract readonly objects: ApiObject[];

  protected readonly validator: PropValidator;
  protected readonly common: ResolvedCommon;
  protected readonly runtime: PythonServerRuntime;

  protected constructor(
    scope: Construct, id: string,
    public readonly component: PythonComponent,
    props: StepFlowComponentProps & { readonly core?: ICoreEndpoint },
    defaultResources: ComputeResources,
    timing: ServerProbeTiming,
  ) {
    super(scope, id);
    const contract = CONTRACT.components[component];
    this.validator = new PropValidator(this);
    this.common = resolveCommon(this.validator, component, props, defaultResources);
    if (this.common.generation === StepFlowGeneration.GRPC_PULL && !props.core) {
      this.validator.fail('core', props.core, 'gRPC-pull workers dial the core server: pass core (e.g. StepFlowCore.endpoint({ namespace, namePrefix }))');
    }
    this.generation = this.common.generation;
    this.name = resourceName(this.common.placement, contract.name);
    this.host = serviceHost(this.name, this.common.placement.namespace);
    this.runtime = pythonServerRuntime(component, this.name, this.host, this.common, props.core, timing);
    if (this.runtime.listens) {
      this.listenPort = contract.port;
      this.url = `http://${this.host}:${contract.port}`;
      this.healthUrl = `${this.url}${contract.health.liveness}`;
    }
    this.registration = { pluginName: contract.routePrefix, routePrefix: contract.routePrefix, plugin: this.runtime.plugin };
  }
}
