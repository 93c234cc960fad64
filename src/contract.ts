/**
 * Typed view of `contract.json`, the single source of truth for every name, port, UID,
 * command and path that the constructs, the Containerfiles, the scripts and the tests
 * share. Nothing else in the library spells these values out.
 */
import contract from './contract.json';
import { StepFlowGeneration } from './types';

/** The three StepFlow components this kit deploys. */
export type ComponentId = 'core' | 'python-sdk' | 'inference';

/**
 * What names and runs one component's pods: the built-in components take it from the
 * contract, a team's own worker from its props.
 */
export interface ComponentIdentity {
  /** Value of the `component` label. */
  readonly component: string;
  /** Base resource name, before any prefix. */
  readonly name: string;
  /** Container name inside the pod. */
  readonly container: string;
  /** The port the process listens on, when it listens. */
  readonly port: number;
  readonly uid: number;
  readonly gid: number;
}

/** Paths probed by the kubelet, per probe kind. */
export interface HealthPaths {
  readonly liveness: string;
  readonly readiness: string;
  readonly startup: string;
}

/** What every component shares in the contract. */
export interface ComponentContract {
  /** Base resource name (Deployment, Service, ServiceAccount), before any prefix. */
  readonly name: string;
  /** Container name inside the pod. */
  readonly container: string;
  /** Image repository name, appended to the registry. */
  readonly image: string;
  /** The port the process listens on. */
  readonly port: number;
  readonly uid: number;
  readonly gid: number;
  readonly health: HealthPaths;
}

export interface CoreContract extends ComponentContract {
  /** Absolute path of the stepflow-server binary in the image. */
  readonly binary: string;
  readonly state: StateContract;
}

export interface PythonComponentContract extends ComponentContract {
  /** Python module run with `python3 -m`. */
  readonly module: string;
  /** Route prefix in the StepFlow config (`/<prefix>/{*component}`). */
  readonly routePrefix: string;
  /** Module of the reconnecting gRPC-pull worker, where the image has one apart from `module`. */
  readonly workerModule?: string;
}

/** Pinned StepFlow releases of one generation. */
export interface GenerationVersions {
  readonly orchestrator: string;
  readonly sdk: string;
  readonly sdkExtras: string;
  /** The tag the kit's three images of this generation carry. */
  readonly imageTag: string;
}

/** Where the core keeps its state (the claim's mount) and the sqlite file in it. */
export interface StateContract {
  readonly volume: string;
  readonly mountPath: string;
  readonly file: string;
}

export const CONTRACT = {
  app: contract.app,
  partOf: contract.partOf,
  managedBy: contract.managedBy,
  labels: contract.labels,
  podSecurityVersion: contract.podSecurityVersion,
  configMap: contract.configMap,
  paths: contract.paths,
  images: contract.images,
  gpu: contract.gpu,
  env: contract.env,
  apiPaths: contract.apiPaths,
  generations: contract.generations as Record<StepFlowGeneration, GenerationVersions>,
  components: {
    'core': contract.components.core as CoreContract,
    'python-sdk': contract.components['python-sdk'] as PythonComponentContract,
    'inference': contract.components.inference as PythonComponentContract,
  },
} as const;

/** The identity of a built-in component, from the contract. */
export function builtinIdentity(id: ComponentId): ComponentIdentity {
  const c = CONTRACT.components[id];
  return { component: id, name: c.name, container: c.container, port: c.port, uid: c.uid, gid: c.gid };
}

/** Path of the StepFlow config file inside the core container. */
export const CONFIG_FILE_PATH = `${CONTRACT.configMap.mountPath}/${CONTRACT.configMap.key}`;

/** The generation the kit deploys when none is named: StepFlow's current release. */
export const DEFAULT_GENERATION = contract.defaultGeneration as StepFlowGeneration;
