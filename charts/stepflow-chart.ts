import { ApiObject, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { ImagePullPolicy, StepFlowComponentProps } from '../src/components/common';
import { StepFlowCore, StepFlowCoreProps } from '../src/components/core';
import { StepFlowInference, StepFlowInferenceProps } from '../src/components/inference';
import { StepFlowPythonSdk, StepFlowPythonSdkProps } from '../src/components/python-sdk';
import { StepFlowEnvironment } from '../src/environments';
import { PropValidator } from '../src/internal/validation';
import { StepFlowIngress } from '../src/platform/ingress';
import { StepFlowNamespace } from '../src/platform/namespace';
import { StepFlowNetworkPolicies } from '../src/platform/network-policies';
import { IngressOptions, LogLevel, StepFlowGeneration } from '../src/types';

/** Props the chart sets itself on every component; not overridable per component. */
type Placed = 'namespace' | 'namePrefix' | 'environmentName' | 'generation' | 'requirePinnedImage' | 'core';

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
  /** @default StepFlowGeneration.HTTP_PUSH */
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
 * python-sdk, inference, core with its config, and in production an Ingress. The
 * Namespace comes first in the output and every other object depends on it, so the file
 * applies in one pass on an empty cluster.
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
    const generation = props.generation ?? StepFlowGeneration.HTTP_PUSH;
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

    this.namespaceConstruct = new StepFlowNamespace(this, 'Namespace', { namespace: placement.namespace, environmentName: env.name });
    this.pythonSdk = new StepFlowPythonSdk(this, 'PythonSdk', { ...shared, ...env.pythonSdk, ...props.pythonSdk, core: coreEndpoint });
    this.inference = new StepFlowInference(this, 'Inference', {
      ...shared,
      ...env.inference,
      ...props.inference,
      gpu: env.gpuAvailable ? inferenceGpu : props.inference?.gpu,
      core: coreEndpoint,
    });
    const servers = [this.pythonSdk, this.inference];
    this.core = new StepFlowCore(this, 'Core', { ...shared, ...env.core, ...props.core, componentServers: servers });
    this.networkPolicies = new StepFlowNetworkPolicies(this, 'NetworkPolicies', {
      ...placement,
      generation,
      core: this.core,
      componentServers: servers,
      ingressControllerNamespace: props.ingress ? props.ingress.controllerNamespace ?? 'ingress-nginx' : undefined,
    });
    if (props.ingress) {
      this.ingress = new StepFlowIngress(this, 'Ingress', { ...props.ingress, ...placement, coreServiceName: this.core.service.name });
    }

    for (const obj of this.node.findAll()) {
      if (obj instanceof ApiObject && obj !== this.namespaceConstruct.apiObject) obj.node.addDependency(this.namespaceConstruct.apiObject);
    }
  }
}
