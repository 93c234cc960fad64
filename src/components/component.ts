import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import * as k8s from '../../imports/k8s';
import { CONTRACT, ComponentId } from '../contract';
import { resourceName, selectorLabels } from '../internal/metadata';
import { ResolvedCommon, resolveCommon } from '../internal/resolve';
import { PropValidator } from '../internal/validation';
import { ComponentWorkload, WorkloadSpec } from '../internal/workload';
import { ComputeResources, StepFlowComponentProps, StepFlowGeneration } from '../types';

/** Where a volume added with {@link StepFlowComponent.addVolume} is mounted. */
export interface VolumeMountOptions {
  readonly mountPath: string;
  /** @default false */
  readonly readOnly?: boolean;
  /** @default - the volume's root */
  readonly subPath?: string;
}

/**
 * What every StepFlow component construct shares: its resolved props, its name and
 * selector, and the calls that change its pod after construction (`addEnv`, `addVolume`).
 */
export abstract class StepFlowComponent extends Construct {
  /** Base name of its objects, with the prefix (`dev-stepflow-core`). */
  public readonly name: string;
  public readonly namespace: string;
  public readonly generation: StepFlowGeneration;
  /** Labels that select its pods. */
  public readonly selector: Record<string, string>;

  protected readonly validator: PropValidator;
  protected readonly common: ResolvedCommon;
  private workload?: ComponentWorkload;

  protected constructor(scope: Construct, id: string, public readonly component: ComponentId, props: StepFlowComponentProps, defaultResources: ComputeResources) {
    super(scope, id);
    this.validator = new PropValidator(this);
    this.common = resolveCommon(this.validator, component, props, defaultResources);
    this.generation = this.common.generation;
    this.namespace = this.common.placement.namespace;
    this.name = resourceName(this.common.placement, CONTRACT.components[component].name);
    this.selector = selectorLabels(this.common.placement, component);
  }

  /** Every Kubernetes object this component creates. */
  public get objects(): ApiObject[] {
    return this.built.objects;
  }

  /**
   * Set an environment variable of the component's container, also after construction.
   * A name the construct or the `env` prop set keeps its place and takes the new value.
   */
  public addEnv(name: string, value: string): void {
    if (this.validator.envName('env', name)) this.built.setEnv({ name, value });
  }

  /** Add a volume to the component's pods and mount it into its container, also after construction. */
  public addVolume(volume: k8s.Volume, mount: VolumeMountOptions): void {
    this.built.addVolume(volume, mount);
  }

  /** Create the component's objects from its resolved spec, with the `env` prop applied last. */
  protected build(spec: WorkloadSpec, env: k8s.EnvVar[], volumes: { volume: k8s.Volume; mountPath: string; readOnly?: boolean }[]): ComponentWorkload {
    const workload = this.workload = new ComponentWorkload(this, 'Workload', spec);
    for (const variable of env) workload.setEnv(variable);
    for (const [name, value] of Object.entries(this.common.env)) workload.setEnv({ name, value });
    for (const v of volumes) workload.addVolume(v.volume, { mountPath: v.mountPath, ...(v.readOnly ? { readOnly: true } : {}) });
    return workload;
  }

  private get built(): ComponentWorkload {
    if (!this.workload) throw new Error(`${this.node.path}: the component's objects are not built yet`);
    return this.workload;
  }
}

/** `{ name, value }` pairs from a record, in its order. */
export function envVars(values: Record<string, string>): k8s.EnvVar[] {
  return Object.entries(values).map(([name, value]) => ({ name, value }));
}
