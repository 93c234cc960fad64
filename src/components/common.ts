import { CONTRACT, ComponentId } from '../contract';
import { Placement } from '../internal/metadata';
import { PropValidator } from '../internal/validation';
import { validateResources, validateScaling } from '../internal/workload';
import { AutoscalingOptions, ComputeResources, DisruptionBudgetOptions, LogLevel, StepFlowGeneration } from '../types';
import { PluginRegistration } from '../config/stepflow-config';

/** When the kubelet pulls the image. */
export enum ImagePullPolicy {
  ALWAYS = 'Always',
  IF_NOT_PRESENT = 'IfNotPresent',
  NEVER = 'Never',
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
  /** @default StepFlowGeneration.HTTP_PUSH */
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
  /** @default - the component's own defaults */
  readonly resources?: ComputeResources;
  /** @default LogLevel.INFO */
  readonly logLevel?: LogLevel;
  /**
   * Extra environment variables, added after the ones the construct sets.
   * @default {}
   */
  readonly env?: { readonly [name: string]: string };
}

/** A component server that the core server routes components to (python-sdk, inference). */
export interface IComponentServer {
  readonly component: ComponentId;
  /** Labels that select its pods. */
  readonly selector: Record<string, string>;
  /** Port its process listens on (0.11), or undefined for pull workers (0.13). */
  readonly listenPort?: number;
  /** URL of its health endpoint, when it listens. */
  readonly healthUrl?: string;
  /** How the core server's config refers to it. */
  readonly registration: PluginRegistration;
  /** The StepFlow generation it speaks. */
  readonly generation: StepFlowGeneration;
}

/** Where the core server can be reached from inside the cluster. */
export interface ICoreEndpoint {
  /** `<name>.<namespace>.svc` */
  readonly host: string;
  readonly port: number;
  /** `host:port`, the form StepFlow workers take for gRPC. */
  readonly address: string;
  /** `http://host:port` */
  readonly url: string;
  /** Base URL of the blob API that component servers read blobs from. */
  readonly blobApiUrl: string;
}

/** Props resolved against their defaults, shared by the three components. */
export interface ResolvedCommon {
  readonly placement: Placement;
  readonly generation: StepFlowGeneration;
  readonly image: string;
  readonly imagePullPolicy: ImagePullPolicy;
  readonly replicas: number;
  readonly autoscaling?: AutoscalingOptions;
  readonly disruptionBudget?: DisruptionBudgetOptions;
  readonly resources: ComputeResources;
  readonly logLevel: LogLevel;
  readonly env: Record<string, string>;
}

/** The tag of an image reference, or undefined when it has none (digests count as pinned). */
export function imageTagOf(image: string): string | undefined {
  if (image.includes('@sha256:')) return '@digest';
  const lastSlash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > lastSlash ? image.slice(colon + 1) : undefined;
}

/** Resolve the shared props once and validate them. */
export function resolveCommon(v: PropValidator, component: ComponentId, props: StepFlowComponentProps, defaultResources: ComputeResources): ResolvedCommon {
  const placement: Placement = {
    namespace: props.namespace ?? 'stepflow',
    namePrefix: props.namePrefix ?? '',
    environmentName: props.environmentName ?? 'prod',
  };
  const image = props.image ?? `${props.imageRegistry ?? CONTRACT.images.defaultRegistry}/${CONTRACT.components[component].image}:${props.imageTag ?? CONTRACT.images.defaultTag}`;
  const resolved: ResolvedCommon = {
    placement,
    generation: props.generation ?? StepFlowGeneration.HTTP_PUSH,
    image,
    imagePullPolicy: props.imagePullPolicy ?? ImagePullPolicy.ALWAYS,
    replicas: props.replicas ?? 1,
    autoscaling: props.autoscaling,
    disruptionBudget: props.disruptionBudget,
    resources: props.resources ?? defaultResources,
    logLevel: props.logLevel ?? LogLevel.INFO,
    env: { ...props.env },
  };

  v.dnsLabel('namespace', placement.namespace, true);
  v.dnsLabel('environmentName', placement.environmentName, true);
  v.namePrefix(placement.namePrefix);
  validateScaling(v, resolved.replicas, resolved.autoscaling, resolved.disruptionBudget);
  validateResources(v, resolved.resources);
  if (resolved.autoscaling && props.replicas !== undefined
    && (props.replicas < resolved.autoscaling.minReplicas || props.replicas > resolved.autoscaling.maxReplicas)) {
    v.fail('replicas', props.replicas, `is outside the autoscaler's range ${resolved.autoscaling.minReplicas}–${resolved.autoscaling.maxReplicas}`);
  }
  if (props.requirePinnedImage) {
    const tag = imageTagOf(image);
    if (tag === undefined || tag === 'latest') {
      v.fail('image', image, 'production images must carry an explicit version tag or digest, not `latest` or no tag (set imageTag)');
    }
  }
  return resolved;
}

/** Map our log level to the Python SDK's (logging module names). */
export function pythonLogLevel(level: LogLevel): string {
  return level === LogLevel.WARN ? 'WARNING' : level.toUpperCase();
}

/** `host.namespace.svc` — resolvable in any cluster, whatever its cluster domain. */
export function serviceHost(name: string, namespace: string): string {
  return `${name}.${namespace}.svc`;
}
