import { CONTRACT, ComponentId, DEFAULT_GENERATION } from '../contract';
import { AutoscalingOptions, ComputeResources, DisruptionBudgetOptions, ImagePullPolicy, LogLevel, StepFlowComponentProps, StepFlowGeneration } from '../types';
import { Placement } from './metadata';
import { validateResources, validateScaling } from './scaling';
import { PropValidator } from './validation';

/** The props every component takes, resolved against their defaults. */
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

/** The defaults of the placement props, shared by every construct that takes them. */
export const PLACEMENT_DEFAULTS: Placement = { namespace: 'stepflow', namePrefix: '', environmentName: 'prod' };

/** Placement props resolved against their defaults. */
export function resolvePlacement(props: Partial<Placement>): Placement {
  return {
    namespace: props.namespace ?? PLACEMENT_DEFAULTS.namespace,
    namePrefix: props.namePrefix ?? PLACEMENT_DEFAULTS.namePrefix,
    environmentName: props.environmentName ?? PLACEMENT_DEFAULTS.environmentName,
  };
}

/** The tag of an image reference, or undefined when it has none (digests count as pinned). */
export function imageTagOf(image: string): string | undefined {
  if (image.includes('@sha256:')) return '@digest';
  const lastSlash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > lastSlash ? image.slice(colon + 1) : undefined;
}

/** Resolve the shared props of one component once, and validate them. */
export function resolveCommon(v: PropValidator, component: ComponentId, props: StepFlowComponentProps, defaultResources: ComputeResources): ResolvedCommon {
  const placement = resolvePlacement(props);
  const image = props.image ?? `${props.imageRegistry ?? CONTRACT.images.defaultRegistry}/${CONTRACT.components[component].image}:${props.imageTag ?? CONTRACT.images.defaultTag}`;
  const resolved: ResolvedCommon = {
    placement,
    generation: props.generation ?? DEFAULT_GENERATION,
    image,
    imagePullPolicy: props.imagePullPolicy ?? ImagePullPolicy.ALWAYS,
    replicas: props.replicas ?? 1,
    autoscaling: props.autoscaling,
    disruptionBudget: props.disruptionBudget,
    resources: { ...defaultResources, ...props.resources },
    logLevel: props.logLevel ?? LogLevel.INFO,
    env: { ...props.env },
  };

  v.dnsLabel('namespace', placement.namespace, true);
  v.dnsLabel('environmentName', placement.environmentName, true);
  v.namePrefix(placement.namePrefix);
  validateScaling(v, resolved.replicas, resolved.autoscaling, resolved.disruptionBudget);
  validateResources(v, resolved.resources);
  for (const name of Object.keys(resolved.env)) v.envName('env', name);
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
