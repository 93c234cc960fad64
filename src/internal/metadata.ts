import { CONTRACT, ComponentId } from '../contract';

/** Where a set of StepFlow objects lives and how it is named. */
export interface Placement {
  readonly namespace: string;
  readonly namePrefix: string;
  readonly environmentName: string;
}

/** `<prefix><base>`, e.g. `dev-stepflow-core`. */
export function resourceName(placement: Placement, base: string): string {
  return `${placement.namePrefix}${base}`;
}

/** The labels that select a component's pods: stable, they are part of immutable selectors. */
export function selectorLabels(placement: Placement, component: ComponentId): Record<string, string> {
  return {
    [CONTRACT.labels.app]: CONTRACT.app,
    [CONTRACT.labels.component]: component,
    [CONTRACT.labels.environment]: placement.environmentName,
  };
}

/** Labels for objects that belong to the whole installation rather than one component. */
export function installationLabels(placement: Placement): Record<string, string> {
  return {
    [CONTRACT.labels.app]: CONTRACT.app,
    [CONTRACT.labels.environment]: placement.environmentName,
    'app.kubernetes.io/name': CONTRACT.app,
    'app.kubernetes.io/instance': `${CONTRACT.app}-${placement.environmentName}`,
    'app.kubernetes.io/part-of': CONTRACT.partOf,
    'app.kubernetes.io/managed-by': CONTRACT.managedBy,
  };
}

/** Selector labels plus the `app.kubernetes.io/*` recommended labels. */
export function componentLabels(placement: Placement, component: ComponentId, version: string): Record<string, string> {
  return {
    ...installationLabels(placement),
    ...selectorLabels(placement, component),
    'app.kubernetes.io/name': CONTRACT.components[component].name,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/version': version,
  };
}

/** `name.namespace.svc`: resolvable in any cluster, whatever its cluster domain. */
export function serviceHost(name: string, namespace: string): string {
  return `${name}.${namespace}.svc`;
}

/** The labels that stay the same from release to release, for immutable fields (claim templates). */
export function stableLabels(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([key]) => key !== 'app.kubernetes.io/version'));
}
