import { ImagePullPolicy } from 'cdk8s-plus-30';
import { StateStore } from './config/state-store';
import { LogFormat, TelemetryOptions } from './config/telemetry';
import { mergeOptions } from './internal/merge';
import { AutoscalingOptions, ComputeResources, DisruptionBudgetOptions, GpuOptions, LogLevel, ModelCacheOptions } from './types';

/** Defaults of one component in an environment. */
export interface ComponentDefaults {
  /**
   * Replicas when no autoscaler owns the workload (with one, its minReplicas is the floor).
   * @default 1
   */
  readonly replicas?: number;
  /** @default - no autoscaler */
  readonly autoscaling?: AutoscalingOptions;
  /** @default - no PodDisruptionBudget */
  readonly disruptionBudget?: DisruptionBudgetOptions;
  /** @default - the component's own defaults */
  readonly resources?: Partial<ComputeResources>;
  /** @default - the environment's telemetry */
  readonly telemetry?: TelemetryOptions;
}

/** Defaults of the core in an environment (one pod, always: no autoscaler). */
export interface CoreDefaults {
  /** @default - the core's own defaults */
  readonly resources?: Partial<ComputeResources>;
  /** @default StateStore.sqlite() */
  readonly stateStore?: StateStore;
  /** @default - the environment's telemetry */
  readonly telemetry?: TelemetryOptions;
}

/** Defaults of the inference component in an environment. */
export interface InferenceDefaults extends ComponentDefaults {
  /** @default - no GPU: CPU inference */
  readonly gpu?: GpuOptions;
  /** @default 1024 */
  readonly shmSizeMiB?: number;
  /** @default - 20 GiB per replica, ReadWriteOnce, default StorageClass */
  readonly modelCache?: ModelCacheOptions;
}

/**
 * What an environment preset supplies. Every field is only a default: chart props win. In
 * the HTTP-push generation (0.11) the chart runs one replica of each component server,
 * whatever the preset's scaling: there, replicas above one take no work.
 */
export interface EnvironmentSettings {
  /** Value of the `environment` label, e.g. `dev`. */
  readonly name: string;
  readonly namespace: string;
  /** Prefix of every resource name, e.g. `dev-`. */
  readonly namePrefix: string;
  readonly logLevel: LogLevel;
  /** @default - none: the chart must be given imageRegistry */
  readonly imageRegistry?: string;
  /** @default - none: the chart must be given imageTag */
  readonly imageTag?: string;
  readonly imagePullPolicy: ImagePullPolicy;
  /** Whether the cluster has NVIDIA GPUs; a GPU request in an environment without is an error. */
  readonly gpuAvailable: boolean;
  /**
   * Production rules: pinned image tags, durable core state, and an explicit choice of
   * exposure (an authenticated Ingress, or `ingress: false`).
   */
  readonly production: boolean;
  /**
   * Telemetry of every component; a component's own block wins field by field.
   * @default - text logs, no OTLP export
   */
  readonly telemetry?: TelemetryOptions;
  readonly core: CoreDefaults;
  readonly pythonSdk: ComponentDefaults;
  readonly inference: InferenceDefaults;
}

/** An option an override gives in part (the preset keeps its other fields), or `false` to remove it. */
export type Removable<T> = Partial<T> | false;

/** Overrides of one component block: nested options in part, removable ones with `false`. */
export interface ComponentDefaultsOverrides extends Omit<ComponentDefaults, 'autoscaling' | 'disruptionBudget'> {
  /** @default - the base preset's autoscaler; a partial one merges with it, `false` removes it */
  readonly autoscaling?: Removable<AutoscalingOptions>;
  /** @default - the base preset's budget; `false` removes it */
  readonly disruptionBudget?: DisruptionBudgetOptions | false;
}

/** Overrides of the inference block. */
export interface InferenceDefaultsOverrides extends ComponentDefaultsOverrides, Omit<InferenceDefaults, 'autoscaling' | 'disruptionBudget' | 'gpu'> {
  /** @default - the base preset's autoscaler; a partial one merges with it, `false` removes it */
  readonly autoscaling?: Removable<AutoscalingOptions>;
  /** @default - the base preset's budget; `false` removes it */
  readonly disruptionBudget?: DisruptionBudgetOptions | false;
  /** @default - the base preset's GPUs; a partial block merges with them, `false` runs inference on CPU */
  readonly gpu?: GpuOptions | false;
}

/** What `extend` takes: any setting, component blocks in part. Every field defaults to the base preset's. */
export interface EnvironmentOverrides {
  /** @default - the base preset's */
  readonly name?: string;
  /** @default - the base preset's */
  readonly namespace?: string;
  /** @default - the base preset's */
  readonly namePrefix?: string;
  /** @default - the base preset's */
  readonly logLevel?: LogLevel;
  /** @default - the base preset's */
  readonly imageRegistry?: string;
  /** @default - the base preset's */
  readonly imageTag?: string;
  /** @default - the base preset's */
  readonly imagePullPolicy?: ImagePullPolicy;
  /** @default - the base preset's */
  readonly gpuAvailable?: boolean;
  /** @default - the base preset's */
  readonly production?: boolean;
  /** @default - the base preset's, merged field by field */
  readonly telemetry?: TelemetryOptions;
  /** @default - the base preset's core block, merged field by field */
  readonly core?: CoreDefaults;
  /** @default - the base preset's python-sdk block, merged field by field */
  readonly pythonSdk?: ComponentDefaultsOverrides;
  /** @default - the base preset's inference block, merged field by field */
  readonly inference?: InferenceDefaultsOverrides;
}

/**
 * A named, typed environment preset. `StepFlowEnvironment.DEV` and `.PROD` follow the
 * design document; `extend` derives another (staging, a second region) from one of them.
 */
export class StepFlowEnvironment {
  /** A laptop k3s: one replica each, debug logs, CPU-only inference, local registry. */
  public static readonly DEV = new StepFlowEnvironment({
    name: 'dev',
    namespace: 'stepflow-dev',
    namePrefix: 'dev-',
    logLevel: LogLevel.DEBUG,
    imageRegistry: 'localhost:5000',
    imageTag: 'dev',
    imagePullPolicy: ImagePullPolicy.ALWAYS,
    gpuAvailable: false,
    production: false,
    core: { resources: { cpuRequestMillis: 50, cpuLimitMillis: 500, memoryRequestMiB: 64, memoryLimitMiB: 256 }, stateStore: StateStore.sqlite({ sizeGiB: 1 }) },
    pythonSdk: { replicas: 1, resources: { cpuRequestMillis: 100, cpuLimitMillis: 500, memoryRequestMiB: 128, memoryLimitMiB: 512 } },
    inference: {
      replicas: 1,
      resources: { cpuRequestMillis: 250, cpuLimitMillis: 2000, memoryRequestMiB: 1024, memoryLimitMiB: 3072 },
      shmSizeMiB: 256,
      modelCache: { sizeGiB: 5 },
    },
  });

  /** Production: one durable core, autoscaled python-sdk workers, PDBs, GPU inference, TLS Ingress. */
  public static readonly PROD = new StepFlowEnvironment({
    name: 'prod',
    namespace: 'stepflow',
    namePrefix: '',
    logLevel: LogLevel.INFO,
    imagePullPolicy: ImagePullPolicy.ALWAYS,
    gpuAvailable: true,
    production: true,
    telemetry: { logFormat: LogFormat.JSON },
    core: {
      resources: { cpuRequestMillis: 250, cpuLimitMillis: 1000, memoryRequestMiB: 256, memoryLimitMiB: 1024 },
      stateStore: StateStore.sqlite({ sizeGiB: 10 }),
    },
    pythonSdk: {
      autoscaling: { minReplicas: 5, maxReplicas: 20, cpuUtilizationPercent: 70, memoryUtilizationPercent: 80, scaleDownStabilizationSeconds: 300 },
      disruptionBudget: { maxUnavailable: 1 },
      resources: { cpuRequestMillis: 250, cpuLimitMillis: 1000, memoryRequestMiB: 256, memoryLimitMiB: 1024 },
    },
    inference: {
      replicas: 2,
      disruptionBudget: { maxUnavailable: 1 },
      resources: { cpuRequestMillis: 2000, cpuLimitMillis: 4000, memoryRequestMiB: 8192, memoryLimitMiB: 16384 },
      gpu: { count: 1 },
      shmSizeMiB: 4096,
      modelCache: { sizeGiB: 50 },
    },
  });

  /** A preset of your own, from complete settings. */
  public static custom(settings: EnvironmentSettings): StepFlowEnvironment {
    return new StepFlowEnvironment(settings);
  }

  private constructor(public readonly settings: EnvironmentSettings) {}

  /**
   * A new preset: these settings with the given ones on top. Component blocks and their
   * nested options (resources, autoscaling, GPU, model cache, telemetry) merge field by
   * field; `false` removes an option (`autoscaling: false`, `gpu: false`, `disruptionBudget: false`).
   */
  public extend(overrides: EnvironmentOverrides): StepFlowEnvironment {
    const s = this.settings;
    return new StepFlowEnvironment({
      ...mergeOptions<EnvironmentSettings>(s, { ...overrides, core: undefined, pythonSdk: undefined, inference: undefined }),
      core: mergeOptions<CoreDefaults>(s.core, overrides.core),
      pythonSdk: mergeOptions<ComponentDefaults>(s.pythonSdk, overrides.pythonSdk),
      inference: mergeOptions<InferenceDefaults>(s.inference, overrides.inference),
    });
  }
}
