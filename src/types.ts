import { TelemetryOptions } from './config/telemetry';
import { IngressAuthentication } from './platform/ingress-auth';

/**
 * Public option types shared by the component constructs. Units live in the names of
 * plain numbers (`cpuMillis`, `memoryMiB`, `sizeGiB`, `...Seconds`).
 */

/** Log verbosity of a component. Each component maps it to its own variables. */
export enum LogLevel {
  DEBUG = 'debug',
  INFO = 'info',
  WARN = 'warn',
  ERROR = 'error',
}

/**
 * The two generations of StepFlow, which differ in who connects to whom.
 */
export enum StepFlowGeneration {
  /** StepFlow 0.10–0.11: the core server calls component servers over HTTP (JSON-RPC). */
  HTTP_PUSH = '0.11',
  /** StepFlow 0.12–0.13: workers dial the core server and pull tasks from a named queue. */
  GRPC_PULL = '0.13',
}

/** When the kubelet pulls the image. */
export enum ImagePullPolicy {
  ALWAYS = 'Always',
  IF_NOT_PRESENT = 'IfNotPresent',
  NEVER = 'Never',
}

/** CPU, memory and ephemeral-storage requests and limits of one container. */
export interface ComputeResources {
  readonly cpuRequestMillis: number;
  readonly cpuLimitMillis: number;
  readonly memoryRequestMiB: number;
  readonly memoryLimitMiB: number;
  /**
   * Node disk the container may count on: what it writes outside its volumes (its log).
   * @default 64
   */
  readonly ephemeralStorageRequestMiB?: number;
  /**
   * Node disk at which the kubelet evicts the pod: its log plus its disk-backed emptyDirs.
   * @default - 64 plus the size limits of the pod's disk-backed emptyDir volumes
   */
  readonly ephemeralStorageLimitMiB?: number;
}

/** A HorizontalPodAutoscaler (autoscaling/v2) for a Deployment. */
export interface AutoscalingOptions {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /**
   * Target average CPU utilisation, in percent of the CPU request.
   * @default 70
   */
  readonly cpuUtilizationPercent?: number;
  /**
   * Target average memory utilisation, in percent of the memory request.
   * @default 80
   */
  readonly memoryUtilizationPercent?: number;
  /**
   * How long the HPA waits before it scales down, so that a short dip does not
   * remove replicas that are needed again a minute later.
   * @default 300
   */
  readonly scaleDownStabilizationSeconds?: number;
}

/** A PodDisruptionBudget. Give exactly one of the two fields. */
export interface DisruptionBudgetOptions {
  /** @default - not set */
  readonly maxUnavailable?: number;
  /** @default - not set */
  readonly minAvailable?: number;
}

/** Access mode of the inference model-cache volume. */
export enum ModelCacheAccessMode {
  READ_WRITE_ONCE = 'ReadWriteOnce',
  READ_WRITE_MANY = 'ReadWriteMany',
}

/** How the inference replicas get their model cache. */
export enum ModelCacheSharing {
  /** One claim per replica (StatefulSet volumeClaimTemplate): works with ReadWriteOnce. */
  PER_REPLICA = 'per-replica',
  /** One claim shared by every replica: needs ReadWriteMany once there are several replicas. */
  SHARED = 'shared',
}

/** The persistent model cache of the inference component, mounted at `/models`. */
export interface ModelCacheOptions {
  /**
   * Size of each claim.
   * @default 20
   */
  readonly sizeGiB?: number;
  /**
   * StorageClass of the claim.
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;
  /** @default ModelCacheAccessMode.READ_WRITE_ONCE */
  readonly accessMode?: ModelCacheAccessMode;
  /** @default ModelCacheSharing.PER_REPLICA */
  readonly sharing?: ModelCacheSharing;
}

/** GPU scheduling of the inference component (NVIDIA device plugin and runtime). */
export interface GpuOptions {
  /**
   * GPUs per pod (`nvidia.com/gpu`, requests = limits).
   * @default 1
   */
  readonly count?: number;
  /**
   * RuntimeClass created by the NVIDIA GPU operator.
   * @default 'nvidia'
   */
  readonly runtimeClassName?: string;
  /**
   * Node labels that GPU nodes carry.
   * @default { accelerator: 'nvidia-gpu' }
   */
  readonly nodeSelector?: { readonly [key: string]: string };
}

/** The public entry point: an Ingress in front of the core server. */
export interface IngressOptions {
  /** Public host name, e.g. `stepflow.example.com`. */
  readonly host: string;
  /**
   * Who may use the core's API, which runs users' code: `IngressAuthentication.external(...)`,
   * `.clientCertificate(...)`, `.basic(...)`, or `.unauthenticated(UNAUTHENTICATED_ACKNOWLEDGEMENT)`.
   * There is no default: an Ingress always names its choice.
   */
  readonly authentication: IngressAuthentication;
  /** @default 'nginx' */
  readonly className?: string;
  /**
   * cert-manager ClusterIssuer that signs the TLS certificate.
   * @default 'letsencrypt-prod'
   */
  readonly clusterIssuer?: string;
  /**
   * Secret that cert-manager writes the certificate into.
   * @default - `<prefix>stepflow-tls`
   */
  readonly tlsSecretName?: string;
  /**
   * Namespace of the ingress controller's pods, allowed to reach core by NetworkPolicy.
   * @default 'ingress-nginx'
   */
  readonly controllerNamespace?: string;
}

/** Props every StepFlow component construct takes. */
export interface StepFlowComponentProps {
  /** @default 'stepflow' */
  readonly namespace?: string;
  /**
   * Prefix of every resource name, e.g. `dev-` → `dev-stepflow-core`.
   * @default ''
   */
  readonly namePrefix?: string;
  /**
   * Value of the `environment` label.
   * @default 'prod'
   */
  readonly environmentName?: string;
  /** @default StepFlowGeneration.GRPC_PULL - StepFlow's current release (`defaultGeneration` in contract.json) */
  readonly generation?: StepFlowGeneration;
  /**
   * Registry (and optional path) the images are pulled from.
   * @default 'localhost:5000'
   */
  readonly imageRegistry?: string;
  /** @default 'latest' */
  readonly imageTag?: string;
  /**
   * Full image reference; overrides imageRegistry and imageTag.
   * @default - `<imageRegistry>/<component image>:<imageTag>`
   */
  readonly image?: string;
  /**
   * Always: a re-pushed tag is picked up, and the kubelet checks the node may still pull the image.
   * @default ImagePullPolicy.ALWAYS
   */
  readonly imagePullPolicy?: ImagePullPolicy;
  /**
   * Reject images tagged `latest` or untagged (production).
   * @default false
   */
  readonly requirePinnedImage?: boolean;
  /**
   * Replicas when no autoscaler owns the workload.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * A HorizontalPodAutoscaler; the workload then carries no `replicas` field.
   * @default - no autoscaler
   */
  readonly autoscaling?: AutoscalingOptions;
  /** @default - no PodDisruptionBudget */
  readonly disruptionBudget?: DisruptionBudgetOptions;
  /**
   * Requests and limits; the fields given replace the component's own defaults one by one.
   * @default - the component's own defaults
   */
  readonly resources?: Partial<ComputeResources>;
  /** @default LogLevel.INFO */
  readonly logLevel?: LogLevel;
  /**
   * StepFlow's own telemetry: log format, OTLP traces and metrics. The NetworkPolicies
   * of a StepFlowChart allow egress to the collector.
   * @default - text logs (production presets: JSON), no OTLP export
   */
  readonly telemetry?: TelemetryOptions;
  /**
   * Extra environment variables, added after the ones the construct sets (a name the
   * construct sets is replaced). More can be added later with `addEnv`.
   * @default {}
   */
  readonly env?: { readonly [name: string]: string };
}
