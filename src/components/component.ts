import { ApiObject } from 'cdk8s';
import { INetworkPolicyPeer, IPodSelector, LabelSelector, NetworkPolicyPeerConfig, PodSelectorConfig } from 'cdk8s-plus-30';
import { Construct } from 'constructs';
import * as k8s from '../../imports/k8s';
import { CONTRACT, ComponentIdentity } from '../contract';
import { resourceName, selectorLabels } from '../internal/metadata';
import { envVar } from '../internal/pod-settings';
import { ResolvedCommon, resolveCommon } from '../internal/resolve';
import { PropValidator } from '../internal/validation';
import { ComponentWorkload, WorkloadSpec } from '../internal/workload';
import { ComputeResources, EnvVariableValue, StepFlowComponentProps, StepFlowGeneration } from '../types';
import { LogFormat, TelemetryOptions } from '../config/telemetry';
import { NetworkAccessRule } from '../platform/network-access';

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
 * A component is a cdk8s-plus pod selector and network-policy peer: a team's own
 * `kplus.NetworkPolicy`, or `scheduling.separate(component)`, selects its pods.
 */
export abstract class StepFlowComponent extends Construct implements IPodSelector, INetworkPolicyPeer {
  /** Value of its `component` label (`core`, `python-sdk`, a team's worker name). */
  public readonly component: string;
  /** Base name of its objects, with the prefix (`dev-stepflow-core`). */
  public readonly name: string;
  public readonly namespace: string;
  public readonly generation: StepFlowGeneration;
  /** Labels that select its pods. */
  public readonly selector: Record<string, string>;

  /** The telemetry props as given. */
  public readonly telemetry: TelemetryOptions;

  protected readonly validator: PropValidator;
  protected readonly common: ResolvedCommon;
  private workload?: ComponentWorkload;

  /**
   * @param identity its label, names, container, port and user
   * @param imageRepository the image of a built-in component; undefined when `image` is required
   */
  protected constructor(scope: Construct, id: string, protected readonly identity: ComponentIdentity, imageRepository: string | undefined, props: StepFlowComponentProps, defaultResources: ComputeResources) {
    super(scope, id);
    this.validator = new PropValidator(this);
    this.common = resolveCommon(this.validator, imageRepository, props, defaultResources);
    this.generation = this.common.generation;
    this.namespace = this.common.placement.namespace;
    this.component = identity.component;
    this.name = resourceName(this.common.placement, identity.name);
    this.selector = selectorLabels(this.common.placement, identity.component);
    this.telemetry = props.telemetry ?? {};
    this.validateTelemetry();
  }

  /**
   * The egress rule to the OTLP collector, when telemetry exports: the namespace named in
   * the endpoint's host (`<service>.<namespace>.svc`) or the `collector` peer, on its port.
   */
  public get telemetryEgress(): NetworkAccessRule | undefined {
    const endpoint = this.telemetry.otlpEndpoint;
    if (endpoint === undefined) return undefined;
    const target = parseEndpoint(endpoint);
    if (!target) return undefined;
    const peer = this.telemetry.collector ?? (target.namespace !== undefined ? { namespace: target.namespace } : undefined);
    return peer ? { peers: [peer], ports: [{ port: target.port }] } : undefined;
  }

  /**
   * Which installation an export comes from (`OTEL_RESOURCE_ATTRIBUTES`, read by the core and
   * the workers alike), so that installations sharing a collector stay apart.
   */
  protected resourceAttributes(extra: Record<string, string> = {}): Record<string, string> {
    if (this.telemetry.otlpEndpoint === undefined) return {};
    const attributes = { 'service.namespace': this.namespace, 'deployment.environment': this.common.placement.environmentName, ...extra };
    return { [CONTRACT.env.otelResourceAttributes]: Object.entries(attributes).map(([k, v]) => `${k}=${v}`).join(',') };
  }

  /**
   * Telemetry env of a StepFlow worker (stepflow-py): one switch exports its traces, metrics
   * and OTLP logs together, and it always logs JSON lines.
   */
  protected workerTelemetryEnv(): Record<string, string> {
    const t = this.telemetry;
    if (t.otlpEndpoint === undefined) return {};
    return {
      ...this.resourceAttributes(),
      [CONTRACT.env.otlpEndpoint]: t.otlpEndpoint,
      [CONTRACT.env.traceEnabled]: String((t.tracing ?? true) || (t.metrics ?? true)),
      // With an endpoint, stepflow-py would send its logs only there: keep them on stderr too (kubectl logs).
      [CONTRACT.env.logDestination]: 'stderr,otlp',
    };
  }

  private validateTelemetry(): void {
    const v = this.validator;
    const t = this.telemetry;
    v.member('telemetry.logFormat', t.logFormat, LogFormat, 'LogFormat');
    v.text('telemetry.serviceName', t.serviceName);
    if (t.otlpEndpoint === undefined) {
      for (const key of ['tracing', 'metrics'] as const) {
        if (t[key] === true) v.fail(`telemetry.${key}`, true, 'exporting needs telemetry.otlpEndpoint (e.g. http://otel-collector.observability.svc:4317)');
      }
      return;
    }
    const target = parseEndpoint(t.otlpEndpoint);
    if (!target) {
      v.fail('telemetry.otlpEndpoint', t.otlpEndpoint, 'expected an http(s) URL with a host and an optional port, e.g. http://otel-collector.observability.svc:4317');
    } else if (target.namespace === undefined && t.collector === undefined) {
      v.fail('telemetry.collector', undefined, `the NetworkPolicies cannot tell where '${target.host}' runs: set telemetry.collector (its namespace and pod labels, or a cidr), or use an in-cluster Service name <service>.<namespace>.svc`);
    }
  }

  /** Its pods, in its namespace (cdk8s-plus `IPodSelector`). */
  public toPodSelectorConfig(): PodSelectorConfig {
    return { labelSelector: LabelSelector.of({ labels: { ...this.selector } }), namespaces: { names: [this.namespace] } };
  }

  /** Its pods as a NetworkPolicy peer (cdk8s-plus `INetworkPolicyPeer`). */
  public toNetworkPolicyPeerConfig(): NetworkPolicyPeerConfig {
    return { podSelector: this.toPodSelectorConfig() };
  }

  public toPodSelector(): IPodSelector {
    return this;
  }

  /** Every Kubernetes object this component creates. */
  public get objects(): ApiObject[] {
    return this.built.objects;
  }

  /**
   * Set an environment variable of the component's container, also after construction: a
   * literal, or a reference (`kplus.EnvValue.fromSecretValue(...)`). A name the construct or
   * the `env` prop set keeps its place and takes the new value.
   */
  public addEnv(name: string, value: EnvVariableValue): void {
    if (this.validator.envName('env', name)) this.built.setEnv(envVar(name, value));
  }

  /** Add a volume to the component's pods and mount it into its container, also after construction. */
  public addVolume(volume: k8s.Volume, mount: VolumeMountOptions): void {
    this.built.addVolume(volume, mount);
  }

  /** Create the component's objects from its resolved spec, with the `env` prop applied last. */
  protected build(spec: WorkloadSpec, env: k8s.EnvVar[], volumes: { volume: k8s.Volume; mountPath: string; readOnly?: boolean }[]): ComponentWorkload {
    const workload = this.workload = new ComponentWorkload(this, 'Workload', spec);
    for (const variable of env) workload.setEnv(variable);
    for (const [name, value] of Object.entries(this.common.env)) workload.setEnv(envVar(name, value));
    for (const v of volumes) workload.addVolume(v.volume, { mountPath: v.mountPath, ...(v.readOnly ? { readOnly: true } : {}) });
    for (const v of this.common.pod.volumes ?? []) {
      workload.addVolume(v.volume, { mountPath: v.mountPath, ...(v.readOnly ? { readOnly: true } : {}), ...(v.subPath ? { subPath: v.subPath } : {}) });
    }
    return workload;
  }

  private get built(): ComponentWorkload {
    if (!this.workload) throw new Error(`${this.node.path}: the component's objects are not built yet`);
    return this.workload;
  }
}

/** Host, port and (for `<service>.<namespace>.svc[.<domain>]`) namespace of an http(s) endpoint. */
function parseEndpoint(endpoint: string): { host: string; port: number; namespace?: string } | undefined {
  const m = endpoint.match(/^(https?):\/\/([a-z0-9.-]+)(?::(\d{1,5}))?\/?$/i);
  if (!m) return undefined;
  const port = m[3] !== undefined ? Number(m[3]) : m[1].toLowerCase() === 'https' ? 443 : 80;
  if (port < 1 || port > 65535) return undefined;
  const service = m[2].toLowerCase().match(/^[a-z0-9-]+\.([a-z0-9-]+)\.svc(\..+)?$/);
  return { host: m[2], port, namespace: service?.[1] };
}

/** `{ name, value }` pairs from a record, in its order. */
export function envVars(values: Record<string, string>): k8s.EnvVar[] {
  return Object.entries(values).map(([name, value]) => ({ name, value }));
}
