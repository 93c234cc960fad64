import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { DEFAULT_GENERATION } from './contract';
import { IComponentServer } from './components/common';
import { StepFlowCore, StepFlowCoreProps } from './components/core';
import { StepFlowInference, StepFlowInferenceProps } from './components/inference';
import { StepFlowPythonSdk, StepFlowPythonSdkProps } from './components/python-sdk';
import { StepFlowEnvironment } from './environments';
import { PropValidator } from './internal/validation';
import { StepFlowIngress } from './platform/ingress';
import { StepFlowNamespace } from './platform/namespace';
import { StepFlowNetworkPolicies } from './platform/network-policies';
import { AutoscalingOptions, DisruptionBudgetOptions, GpuOptions, ImagePullPolicy, IngressOptions, LogLevel, StepFlowComponentProps, StepFlowGeneration } from './types';
import { TelemetryOptions } from './config/telemetry';
import { EnvironmentSettings, Removable } from './environments';
import { mergeOptions } from './internal/merge';
import { ClusterNetworks, NetworkAccess } from './platform/network-access';

/** Props the chart sets itself on every component; not overridable per component. */
type Placed = 'namespace' | 'namePrefix' | 'environmentName' | 'generation' | 'requirePinnedImage' | 'core' | 'requireDurableState';

/** What every per-component override adds to the component's own props. */
export interface ChartComponentOverrides {
  /**
   * Extra traffic this component may receive or send (monitoring in, a database out).
   * @default - only what StepFlow itself needs
   */
  readonly networkAccess?: NetworkAccess;
}

/**
 * Overrides of the preset for the core. Nested options merge field by field with the
 * preset's (`resources`, `telemetry`).
 */
export interface CoreOverrides extends Omit<StepFlowCoreProps, Placed | 'componentServers'>, ChartComponentOverrides {}

/** Overrides of the preset for a component server: nested options in part, `false` removes one. */
export interface PythonSdkOverrides extends Omit<StepFlowPythonSdkProps, Placed | 'autoscaling' | 'disruptionBudget'>, ChartComponentOverrides {
  /** @default - the preset's autoscaler; `false` removes it, a partial one merges with it */
  readonly autoscaling?: Removable<AutoscalingOptions>;
  /** @default - the preset's budget; `false` removes it */
  readonly disruptionBudget?: DisruptionBudgetOptions | false;
}

/** Overrides of the preset for inference: nested options in part, `false` removes one. */
export interface InferenceOverrides extends Omit<StepFlowInferenceProps, Placed | 'autoscaling' | 'disruptionBudget' | 'gpu'>, ChartComponentOverrides {
  /** @default - the preset's autoscaler; `false` removes it */
  readonly autoscaling?: Removable<AutoscalingOptions>;
  /** @default - the preset's budget; `false` removes it */
  readonly disruptionBudget?: DisruptionBudgetOptions | false;
  /** @default - the preset's GPUs; `false` runs inference on CPU, a partial one merges with the preset's */
  readonly gpu?: GpuOptions | false;
}

/** Props of {@link StepFlowChart}. Everything but `environment` defaults to the preset. */
export interface StepFlowChartProps {
  /** The preset: StepFlowEnvironment.DEV, .PROD, or one derived with `extend`. */
  readonly environment: StepFlowEnvironment;
  /** @default - the preset's namespace */
  readonly namespace?: string;
  /** @default - the preset's name prefix */
  readonly namePrefix?: string;
  /** @default - the preset's log level */
  readonly logLevel?: LogLevel;
  /** @default - the preset's registry (prod has none: required) */
  readonly imageRegistry?: string;
  /** @default - the preset's tag (prod has none: required) */
  readonly imageTag?: string;
  /** @default - the preset's pull policy */
  readonly imagePullPolicy?: ImagePullPolicy;
  /** @default StepFlowGeneration.GRPC_PULL - StepFlow's current release */
  readonly generation?: StepFlowGeneration;
  /**
   * How the core is reached from outside the cluster: a TLS Ingress with its
   * authentication, or `false` for none (internal only, or a route the team owns).
   * Production presets need an explicit choice.
   * @default - no Ingress (production presets: required)
   */
  readonly ingress?: IngressOptions | false;
  /**
   * Telemetry of every component (log format, OTLP export); a component's own
   * `telemetry` wins field by field.
   * @default - the preset's telemetry
   */
  readonly telemetry?: TelemetryOptions;
  /**
   * The cluster's own address ranges, excluded from the workers' HTTPS egress.
   * @default - the private and link-local ranges
   */
  readonly clusterNetworks?: ClusterNetworks;
  /** @default - the preset's core settings */
  readonly core?: CoreOverrides;
  /** @default - the preset's python-sdk settings */
  readonly pythonSdk?: PythonSdkOverrides;
  /** @default - the preset's inference settings */
  readonly inference?: InferenceOverrides;
}

/**
 * One StepFlow installation: Namespace (Pod Security "restricted"), NetworkPolicies,
 * python-sdk, inference, the core with its config and its durable state, and in
 * production an Ingress. The Namespace comes first in the output and everything else in
 * the chart depends on it, so the file applies in one pass on an empty cluster.
 */
export class StepFlowChart extends Chart {
  public readonly namespaceConstruct: StepFlowNamespace;
  public readonly core: StepFlowCore;
  public readonly pythonSdk: StepFlowPythonSdk;
  public readonly inference: StepFlowInference;
  public readonly networkPolicies: StepFlowNetworkPolicies;
  public readonly ingress?: StepFlowIngress;

  constructor(scope: Construct, id: string, props: StepFlowChartProps) {
    super(scope, id, { disableResourceNameHashes: true });
    const v = new PropValidator(this);
    const env = presetOf(v, props.environment);
    const generation = generationOf(v, props.generation);
    const placement = {
      namespace: props.namespace ?? env.namespace,
      namePrefix: props.namePrefix ?? env.namePrefix,
      environmentName: env.name,
    };
    const shared: StepFlowComponentProps & { generation: StepFlowGeneration; requirePinnedImage: boolean } = {
      ...placement,
      generation,
      imageRegistry: props.imageRegistry ?? env.imageRegistry,
      imageTag: props.imageTag ?? env.imageTag,
      imagePullPolicy: props.imagePullPolicy ?? env.imagePullPolicy,
      logLevel: props.logLevel ?? env.logLevel,
      requirePinnedImage: env.production,
    };
    const blocks = componentBlocks(env, props, generation);
    validateChoices(v, env, props, shared, blocks.inference);

    // Each component: the shared props, its merged block (without the chart's own fields), the chart-wide telemetry under its own.
    const telemetry = { ...env.telemetry, ...props.telemetry };
    const componentProps = ({ networkAccess: _access, ...block }: Record<string, any>) => ({ ...shared, ...block, telemetry: { ...telemetry, ...block.telemetry } });
    const coreEndpoint = StepFlowCore.endpoint(placement);
    const coreProps = componentProps(blocks.core);
    // A chart-wide service name is for the workers: the core always reports its own.
    if (props.core?.telemetry?.serviceName === undefined) coreProps.telemetry = { ...coreProps.telemetry, serviceName: undefined };

    this.namespaceConstruct = new StepFlowNamespace(this, 'Namespace', { namespace: placement.namespace, environmentName: env.name });
    this.pythonSdk = new StepFlowPythonSdk(this, 'PythonSdk', { ...componentProps(blocks.pythonSdk), core: coreEndpoint });
    this.inference = new StepFlowInference(this, 'Inference', { ...componentProps(blocks.inference), core: coreEndpoint });
    this.core = new StepFlowCore(this, 'Core', { ...coreProps, requireDurableState: env.production });
    this.networkPolicies = new StepFlowNetworkPolicies(this, 'NetworkPolicies', {
      ...placement,
      generation,
      core: this.core,
      clusterNetworks: props.clusterNetworks,
      ingressControllerNamespace: props.ingress ? props.ingress.controllerNamespace ?? 'ingress-nginx' : undefined,
    });
    for (const server of [this.pythonSdk, this.inference]) this.addComponentServer(server);
    for (const [component, block] of [[this.core, blocks.core], [this.pythonSdk, blocks.pythonSdk], [this.inference, blocks.inference]] as const) {
      if (block.networkAccess) this.networkPolicies.allow(component, block.networkAccess);
      const collector = component.telemetryEgress;
      if (collector) this.networkPolicies.allow(component, { egress: [collector] });
    }
    if (props.ingress) {
      this.ingress = new StepFlowIngress(this, 'Ingress', { ...props.ingress, ...placement, coreServiceName: this.core.service.name });
    }

    for (const child of this.node.children) {
      if (child !== this.namespaceConstruct) child.node.addDependency(this.namespaceConstruct);
    }
  }

  /**
   * Route components to one more component server, also after construction: the core's
   * config registers it and the NetworkPolicies allow its traffic to and from the core.
   */
  public addComponentServer(server: IComponentServer): void {
    this.core.addComponentServer(server);
    this.networkPolicies.addComponentServer(server);
  }
}

/** The preset's settings; a value that is no preset is reported, and DEV renders the rest so every other error shows too. */
function presetOf(v: PropValidator, environment: unknown): EnvironmentSettings {
  if (environment instanceof StepFlowEnvironment) return environment.settings;
  v.fail('environment', environment, 'expected a preset: StepFlowEnvironment.DEV, .PROD, or one made with extend() or custom()');
  return StepFlowEnvironment.DEV.settings;
}

/** The generation; an unknown one is reported here, once, and the default renders the rest. */
function generationOf(v: PropValidator, generation: StepFlowGeneration | undefined): StepFlowGeneration {
  return v.member('generation', generation, StepFlowGeneration, 'StepFlowGeneration') ? generation ?? DEFAULT_GENERATION : DEFAULT_GENERATION;
}

/** Each component's preset block with the overrides on top, merged once. */
function componentBlocks(env: EnvironmentSettings, props: StepFlowChartProps, generation: StepFlowGeneration) {
  // StepFlow 0.11: one core pins to one component-server pod, so the preset's scale-out is dropped.
  const scale = generation === StepFlowGeneration.HTTP_PUSH ? { replicas: 1, autoscaling: false } : {};
  return {
    core: mergeOptions<CoreOverrides>(env.core, props.core),
    pythonSdk: mergeOptions<PythonSdkOverrides>(mergeOptions(env.pythonSdk, scale), props.pythonSdk),
    inference: mergeOptions<InferenceOverrides>(mergeOptions(env.inference, scale), props.inference),
  };
}

/** What the chart itself decides: a registry and tag, an explicit exposure in production, GPUs only where there are. */
function validateChoices(v: PropValidator, env: EnvironmentSettings, props: StepFlowChartProps, shared: StepFlowComponentProps, inference: InferenceOverrides): void {
  if (shared.imageRegistry === undefined) v.fail('imageRegistry', undefined, `the '${env.name}' environment has no default registry; set imageRegistry (e.g. 'registry.example.com/stepflow')`);
  if (shared.imageTag === undefined) v.fail('imageTag', undefined, `the '${env.name}' environment has no default tag; set imageTag to a release version (e.g. '1.4.2')`);
  if (env.production && props.ingress === undefined) {
    v.fail('ingress', undefined, `the '${env.name}' environment needs an explicit choice of exposure: ingress: { host: 'stepflow.example.com', authentication: IngressAuthentication.external({ url }) }, `
      + 'or ingress: false (internal only, or a route you own)');
  }
  if (inference.gpu && !env.gpuAvailable) {
    v.fail('inference.gpu', inference.gpu, `the '${env.name}' environment has no GPUs (gpuAvailable: false); remove gpu to run inference on CPU`);
  }
}
