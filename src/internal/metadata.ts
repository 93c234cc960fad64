import { CONTRACT } from '../contract';

/** Where a set of StepFlow objects lives and how it is named. */
export interface Placement {
  readonly namespace: string;
  readonly namePrefix: string;
  readonly environmentName: string;
}

/** The recommended label that names one installation; part of every selector. */
export const INSTANCE_LABEL = 'app.kubernetes.io/instance';

/** `<prefix><base>`, e.g. `dev-stepflow-core`. */
export function resourceName(placement: Placement, base: string): string {
  return `${placement.namePrefix}${base}`;
}

/**
 * The installation's name, `<prefix>stepflow` (`dev-stepflow`): unique within a namespace,
 * since two installations there must differ in their name prefix.
 */
export function instanceName(placement: Placement): string {
  return resourceName(placement, CONTRACT.app);
}

/** The labels every pod of the installation carries; they select the pods of no other installation. */
export function instanceSelector(placement: Placement): Record<string, string> {
  return { [CONTRACT.labels.app]: CONTRACT.app, [INSTANCE_LABEL]: instanceName(placement) };
}

/** The labels that select a component's pods: stable, they are part of immutable selectors. */
export function selectorLabels(placement: Placement, component: string): Record<string, string> {
  return {
    [CONTRACT.labels.app]: CONTRACT.app,
    [CONTRACT.labels.component]: component,
    [CONTRACT.labels.environment]: placement.environmentName,
    [INSTANCE_LABEL]: instanceName(placement),
  };
}

/** Labels for objects that belong to the whole installation rather than one component. */
export function installationLabels(placement: Placement): Record<string, string> {
  return {
    [CONTRACT.labels.app]: CONTRACT.app,
    [CONTRACT.labels.environment]: placement.environmentName,
    'app.kubernetes.io/name': CONTRACT.app,
    [INSTANCE_LABEL]: instanceName(placement),
    'app.kubernetes.io/part-of': CONTRACT.partOf,
    'app.kubernetes.io/managed-by': CONTRACT.managedBy,
  };
}

/** Selector labels plus the `app.kubernetes.io/*` recommended labels. */
export function componentLabels(placement: Placement, component: string, baseName: string, version: string | undefined): Record<string, string> {
  return {
    ...installationLabels(placement),
    ...selectorLabels(placement, component),
    'app.kubernetes.io/name': baseName,
    'app.kubernetes.io/component': component,
    ...(version !== undefined ? { 'app.kubernetes.io/version': version } : {}),
  };
}

/** Every label key the kit sets itself; a team's own labels may not replace them. */
export const RESERVED_LABEL_KEYS: readonly string[] = [
  CONTRACT.labels.app, CONTRACT.labels.component, CONTRACT.labels.environment,
  'app.kubernetes.io/name', INSTANCE_LABEL, 'app.kubernetes.io/part-of', 'app.kubernetes.io/managed-by',
  'app.kubernetes.io/component', 'app.kubernetes.io/version',
];

/** `name.namespace.svc`: resolvable in any cluster, whatever its cluster domain. */
export function serviceHost(name: string, namespace: string): string {
  return `${name}.${namespace}.svc`;
}

/** The labels that stay the same from release to release, for immutable fields (claim templates). */
export function stableLabels(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([key]) => key !== 'app.kubernetes.io/version'));
}
