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
import { ImagePullPolicy, IngressOptions, LogLevel, StepFlowComponentProps, StepFlowGeneration } from './types';

/** Props the chart sets itself on every component; not overridable per component. */
type Placed = 'namespace' | 'namePrefix' | 'environmentName' | 'generation' | 'requirePinnedImage' | 'core' | 'requireDurableState';

/** Per-component overrides of the environment preset. */
export type CoreOverrides = Omit<StepFlowCoreProps, Placed | 'componentServers'>;
export type PythonSdkOverrides = Omit<StepFlowPythonSdkProps, Placed>;
export type InferenceOverrides = Omit<StepFlowInferenceProps, Placed>;

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
   * Publish the core server through a TLS Ingress. Required in production presets.
   * @default - no Ingress
   */
  readonly ingress?: IngressOptions;
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
 * production an Ingress. The
 * Namespace comes first in the output and everything else in the chart depends on it, so
 * the file applies in one pass on an empty cluster.
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
    const env = props.environment.settings;
    const v = new PropValidator(this);
    const generation = props.generation ?? DEFAULT_GENERATION;
    const placement = {
      namespace: props.namespace ?? env.namespace,
      namePrefix: props.namePrefix ?? env.namePrefix,
      environmentName: env.name,
    };
    const imageRegistry = props.imageRegistry ?? env.imageRegistry;
    const imageTag = props.imageTag ?? env.imageTag;
    if (imageRegistry === undefined) v.fail('imageRegistry', undefined, `the '${env.name}' environment has no default registry; set imageRegistry (e.g. 'registry.example.com/stepflow')`);
    if (imageTag === undefined) v.fail('imageTag', undefined, `the '${env.name}' environment has no default tag; set imageTag to a release version (e.g. '1.4.2')`);
    if (env.production && props.ingress === undefined) {
      v.fail('ingress.host', undefined, `the '${env.name}' environment publishes core through a TLS Ingress; set ingress: { host: 'stepflow.example.com' }`);
    }
    const inferenceGpu = props.inference?.gpu ?? env.inference.gpu;
    if (inferenceGpu && !env.gpuAvailable) {
      v.fail('inference.gpu', inferenceGpu, `the '${env.name}' environment has no GPUs (gpuAvailable: false); remove gpu to run inference on CPU`);
    }

    const shared: StepFlowComponentProps & { generation: StepFlowGeneration; requirePinnedImage: boolean } = {
      ...placement,
      generation,
      imageRegistry,
      imageTag,
      imagePullPolicy: props.imagePullPolicy ?? env.imagePullPolicy,
      logLevel: props.logLevel ?? env.logLevel,
      requirePinnedImage: env.production,
    };
    const coreEndpoint = StepFlowCore.endpoint(placement);
    // StepFlow 0.11: one core pins to one component-server pod, so the preset's scale-out is dropped.
    const workerScale = generation === StepFlowGeneration.HTTP_PUSH ? { replicas: 1, autoscaling: undefined } : {};

    this.namespaceConstruct = new StepFlowNamespace(this, 'Namespace', { namespace: placement.namespace, environmentName: env.name });
    this.pythonSdk = new StepFlowPythonSdk(this, 'PythonSdk', { ...shared, ...env.pythonSdk, ...workerScale, ...props.pythonSdk, core: coreEndpoint });
    this.inference = new StepFlowInference(this, 'Inference', {
      ...shared,
      ...env.inference,
      ...workerScale,
      ...props.inference,
      gpu: env.gpuAvailable ? inferenceGpu : props.inference?.gpu,
      core: coreEndpoint,
    });
    this.core = new StepFlowCore(this, 'Core', { ...shared, ...env.core, ...props.core, requireDurableState: env.production });
    this.networkPolicies = new StepFlowNetworkPolicies(this, 'NetworkPolicies', {
      ...placement,
      generation,
      core: this.core,
      ingressControllerNamespace: props.ingress ? props.ingress.controllerNamespace ?? 'ingress-nginx' : undefined,
    });
    for (const server of [this.pythonSdk, this.inference]) this.addComponentServer(server);
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
