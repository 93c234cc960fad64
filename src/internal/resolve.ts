import { ImagePullPolicy } from 'cdk8s-plus-30';
import { CONTRACT, DEFAULT_GENERATION } from '../contract';
import { IServiceAccount } from 'cdk8s-plus-30';
import { AutoscalingOptions, ComputeResources, DisruptionBudgetOptions, EnvVariableValue, LogLevel, PodSettings, StepFlowComponentProps, StepFlowGeneration } from '../types';
import { plain, podSettingsOf, validateEnv, validatePodSettings } from './pod-settings';
import { Placement } from './metadata';
import { validateResources, validateScaling } from './scaling';
import { IMAGE_REFERENCE, IMAGE_REGISTRY, IMAGE_TAG, PropValidator } from './validation';
import { ImageLock } from '../release/image-lock';

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
  readonly env: Record<string, EnvVariableValue>;
  /** Pull secrets, placement, labels, annotations, envFrom and volumes, as given. */
  readonly pod: PodSettings;
  /** A team's own ServiceAccount; the component then creates none. */
  readonly serviceAccount?: IServiceAccount;
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

/**
 * Resolve the shared props of one component once, and validate them. `imageRepository` is
 * the built-in component's image, or undefined when `image` is required (a team's own worker).
 */
export function resolveCommon(v: PropValidator, imageRepository: string | undefined, props: StepFlowComponentProps, defaultResources: ComputeResources): ResolvedCommon {
  const placement = resolvePlacement(props);
  const registry = props.imageRegistry ?? CONTRACT.images.defaultRegistry;
  const tag = props.imageTag ?? CONTRACT.images.defaultTag;
  const tagged = props.image ?? `${registry}/${imageRepository}:${tag}`;
  const image = pinnedImage(v, tagged, props.imageLock, imageRepository === undefined ? undefined : { registry, tag, imageRepository });
  const generationOk = v.member('generation', props.generation, StepFlowGeneration, 'StepFlowGeneration');
  const resolved: ResolvedCommon = {
    placement,
    // An unknown generation is reported; the rest is rendered as the default's, so every other error shows too.
    generation: (generationOk ? props.generation : undefined) ?? DEFAULT_GENERATION,
    image,
    imagePullPolicy: props.imagePullPolicy ?? ImagePullPolicy.ALWAYS,
    replicas: props.replicas ?? 1,
    autoscaling: props.autoscaling,
    disruptionBudget: props.disruptionBudget,
    resources: { ...defaultResources, ...props.resources },
    logLevel: props.logLevel ?? LogLevel.INFO,
    env: plain({ ...props.env }),
    pod: podSettingsOf(props),
    serviceAccount: props.serviceAccount,
  };

  v.namespace('namespace', placement.namespace);
  v.dnsLabel('environmentName', placement.environmentName, true);
  v.namePrefix(placement.namePrefix);
  if (props.imageRegistry !== undefined && (typeof props.imageRegistry !== 'string' || !IMAGE_REGISTRY.test(props.imageRegistry))) {
    v.fail('imageRegistry', props.imageRegistry, "expected host[:port][/path] with no scheme and no trailing slash, e.g. 'registry.example.com/stepflow' or 'localhost:5000'");
  }
  if (props.imageTag !== undefined && (typeof props.imageTag !== 'string' || !IMAGE_TAG.test(props.imageTag))) {
    v.fail('imageTag', props.imageTag, "expected an image tag: a letter, digit or '_', then up to 127 letters, digits, '_', '.' or '-' (e.g. '0.13.0')");
  }
  if (imageRepository === undefined && props.image === undefined) {
    v.fail('image', undefined, "a team's own worker names its image: e.g. 'registry.example.com/team/tools:1.0.0'");
  } else if (props.image !== undefined && (typeof props.image !== 'string' || !IMAGE_REFERENCE.test(props.image))) {
    v.fail('image', props.image, "expected an image reference [host[:port]/]path[:tag][@sha256:digest], e.g. 'registry.example.com/stepflow/stepflow-core:0.13.0'");
  }
  v.member('imagePullPolicy', props.imagePullPolicy, ImagePullPolicy, 'ImagePullPolicy');
  v.member('logLevel', props.logLevel, LogLevel, 'LogLevel');
  validateScaling(v, resolved.replicas, resolved.autoscaling, resolved.disruptionBudget);
  validateResources(v, resolved.resources);
  validateEnv(v, 'env', resolved.env);
  validatePodSettings(v, resolved.pod);
  if (props.serviceAccount !== undefined) v.objectName('serviceAccount', (props.serviceAccount as { name?: string })?.name, 'a ServiceAccount (a cdk8s-plus IServiceAccount, e.g. ServiceAccount.fromServiceAccountName(...))');
  if (resolved.autoscaling && props.replicas !== undefined
    && (props.replicas < resolved.autoscaling.minReplicas || props.replicas > resolved.autoscaling.maxReplicas)) {
    v.fail('replicas', props.replicas, `is outside the autoscaler's range ${resolved.autoscaling.minReplicas}–${resolved.autoscaling.maxReplicas}`);
  }
  if (props.requirePinnedImage) {
    const imageTag = imageTagOf(image);
    if (imageTag === undefined || imageTag === 'latest') {
      v.fail('image', image, 'production images must carry an explicit version tag or digest, not `latest` or no tag (set imageTag)');
    }
  }
  return resolved;
}

/**
 * The image to pull: with a lock, `repository@digest` for the tagged reference (one that
 * carries a digest already stays as it is); an image the lock lacks is reported, never
 * pulled by its tag instead. `builtin` names the built-in image, for the build command to suggest.
 */
function pinnedImage(v: PropValidator, tagged: string, lock: ImageLock | undefined,
  builtin: { registry: string; tag: string; imageRepository: string } | undefined): string {
  if (lock === undefined) return tagged;
  if (!(lock instanceof ImageLock)) {
    v.fail('imageLock', lock, "expected an ImageLock, e.g. ImageLock.fromFile('images.lock.json')");
    return tagged;
  }
  const pinned = lock.pin(tagged);
  if (pinned !== undefined) return pinned;
  const held = lock.references;
  const component = builtin && Object.entries(CONTRACT.components).find(([, c]) => c.image === builtin.imageRepository)?.[0];
  const fix = component
    ? `push it with scripts/build.sh ${component} --registry ${builtin!.registry} --tag ${builtin!.tag} --push (that records its digest in the lock)`
    : 'record it in the lock, or give the image with its digest (image: \'<repository>@sha256:<digest>\')';
  v.fail('imageLock', lock, `has no digest for ${tagged} (it holds ${held.length === 0 ? 'no image' : held.join(', ')}); `
    + `every image of a chart given a lock is pulled by digest: ${fix}`);
  return tagged;
}
