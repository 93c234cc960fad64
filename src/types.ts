import * as kplus from 'cdk8s-plus-30';
import * as k8s from '../imports/k8s';
import { TelemetryOptions } from './config/telemetry';
import { IngressAuthentication } from './platform/ingress-auth';
import { ImageLock } from './release/image-lock';

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
   * Node labels that GPU nodes carry; merged with the component's own `nodeSelector`.
   * @default { accelerator: 'nvidia-gpu' }
   */
  readonly nodeSelector?: { readonly [key: string]: string };
  /**
   * The extended resource the device plugin advertises: `nvidia.com/gpu` for whole GPUs, a MIG
   * profile such as `nvidia.com/mig-1g.10gb` for slices. Its taint is tolerated beside the
   * component's own `tolerations`.
   * @default 'nvidia.com/gpu'
   */
  readonly resourceName?: string;
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

/**
 * The value of an environment variable: a literal, or a reference the kubelet resolves
 * (`kplus.EnvValue.fromSecretValue({ secret, key })`, `.fromConfigMap(...)`, `.fromFieldRef(...)`):
 * a secret's value never appears in the manifests.
 */
export type EnvVariableValue = string | kplus.EnvValue;

/** Every key of a Secret or a ConfigMap as environment variables (`envFrom`). Give exactly one of `secret`, `configMap`. */
export interface EnvFromSource {
  /** @default - not a Secret */
  readonly secret?: kplus.ISecret | string;
  /** @default - not a ConfigMap */
  readonly configMap?: kplus.IConfigMap | string;
  /**
   * Prepended to every key.
   * @default ''
   */
  readonly prefix?: string;
  /**
   * Start the pod even when the Secret or ConfigMap does not exist.
   * @default false
   */
  readonly optional?: boolean;
}

/** One more volume of the pods, mounted into the component's container (e.g. a Secret as files). */
export interface ExtraVolume {
  /** The volume, e.g. `{ name: 'tls', secret: { secretName: 'team-tls' } }`. */
  readonly volume: k8s.Volume;
  readonly mountPath: string;
  /** @default false */
  readonly readOnly?: boolean;
  /** @default - the volume's root */
  readonly subPath?: string;
}

/**
 * How the pods fit a team's cluster: pull secrets, placement, priority, their own labels
 * and annotations, variables and volumes. A chart takes them for every component, and
 * each component's own settings win: maps merge key by key, lists are joined (a volume or a
 * pull secret of the same name is the component's), and `affinity` and
 * `priorityClassName` are replaced.
 */
export interface PodSettings {
  /**
   * Secrets of type `kubernetes.io/dockerconfigjson` the kubelet pulls the image with.
   * @default - none
   */
  readonly imagePullSecrets?: (kplus.ISecret | string)[];
  /**
   * Node labels the pods require (merged with the GPU node selector).
   * @default - none
   */
  readonly nodeSelector?: { readonly [key: string]: string };
  /**
   * Taints the pods tolerate (beside the GPU taint).
   * @default - none
   */
  readonly tolerations?: k8s.Toleration[];
  /** @default - none */
  readonly affinity?: k8s.Affinity;
  /**
   * More topology spread constraints; one without a labelSelector selects the component's
   * own pods. One on `kubernetes.io/hostname` replaces the kit's default spread of
   * several replicas over nodes.
   * @default - several replicas spread over nodes (ScheduleAnyway)
   */
  readonly topologySpreadConstraints?: k8s.TopologySpreadConstraint[];
  /** @default - the cluster's default priority */
  readonly priorityClassName?: string;
  /**
   * Labels of every object and every pod template (never of selectors). The kit's own
   * keys (`app`, `component`, `environment`, `app.kubernetes.io/*`) are reserved.
   * @default - none
   */
  readonly labels?: { readonly [key: string]: string };
  /**
   * Annotations of every object and every pod template.
   * @default - none
   */
  readonly annotations?: { readonly [key: string]: string };
  /**
   * Variables from every key of Secrets or ConfigMaps, before `env`.
   * @default - none
   */
  readonly envFrom?: EnvFromSource[];
  /**
   * More volumes, each mounted into the component's container.
   * @default - none
   */
  readonly volumes?: ExtraVolume[];
}

/** Props every StepFlow component construct takes. */
export interface StepFlowComponentProps extends PodSettings {
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
   * @default kplus.ImagePullPolicy.ALWAYS
   */
  readonly imagePullPolicy?: kplus.ImagePullPolicy;
  /**
   * Reject images tagged `latest` or untagged (production).
   * @default false
   */
  readonly requirePinnedImage?: boolean;
  /**
   * Pull the image by the digest this lock records for its tagged reference
   * (`registry/name@sha256:…`); an image the lock lacks is a synth error. `scripts/build.sh
   * --push` writes the lock (`ImageLock.fromFile('images.lock.json')`).
   * @default - by tag
   */
  readonly imageLock?: ImageLock;
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
   * construct sets is replaced): literals, or references to Secrets and ConfigMaps
   * (`kplus.EnvValue.fromSecretValue(...)`). More can be added later with `addEnv`.
   * @default {}
   */
  readonly env?: { readonly [name: string]: EnvVariableValue };
  /**
   * A ServiceAccount of the team's own for the pods (e.g. one bound to a cloud identity);
   * the component then creates none. Its token stays unmounted.
   * @default - a ServiceAccount of the component's own, without a token
   */
  readonly serviceAccount?: kplus.IServiceAccount;
}
