import { CONTRACT } from '../contract';
import { PluginConfig } from '../config/stepflow-config';
import { ProbeSet, ProbeTiming } from '../internal/workload';
import { StepFlowGeneration } from '../types';
import { ICoreEndpoint, ResolvedCommon, pythonLogLevel } from './common';

type PythonComponent = 'python-sdk' | 'inference';

/** Command, args, env, probes and plugin of a Python component server, per generation. */
export interface PythonServerRuntime {
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
  return ['python3', '-c', `import os, urllib.request; urllib.request.urlopen("http://" + os.environ["${CONTRACT.env.tasksUrl}"] + "${CONTRACT.components.core.health.readiness}", timeout=3)`];
}

export function pythonServerRuntime(
  component: PythonComponent,
  name: string,
  host: string,
  c: ResolvedCommon,
  core: ICoreEndpoint | undefined,
  timing: { startup: ProbeTiming; liveness: ProbeTiming; readiness: ProbeTiming },
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
    const check = { command: coreReachableCommand() };
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
      probes: { startup: { ...check, ...timing.startup }, readiness: { ...check, ...timing.readiness } },
      plugin: { type: 'grpc', queueName: contract.routePrefix },
    };
  }
  return {
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
