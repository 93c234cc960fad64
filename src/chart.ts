import { ImagePullPolicy } from 'cdk8s-plus-30';
import { ApiObject, Chart } from 'cdk8s';
import { Construct, IConstruct } from 'constructs';
import { DEFAULT_GENERATION } from './contract';
import { IComponentServer } from './components/common';
import { StepFlowComponent } from './components/component';
import { StepFlowCore, StepFlowCoreProps } from './components/core';
import { StepFlowInference, StepFlowInferenceProps } from './components/inference';
import { StepFlowPythonSdk, StepFlowPythonSdkProps } from './components/python-sdk';
import { StepFlowWorker, StepFlowWorkerProps } from './components/worker';
import { mergePodSettings, podSettingsOf, validateEnv, validatePodSettings } from './internal/pod-settings';
import { StepFlowEnvironment } from './environments';
import { PropValidator } from './internal/validation';
import { StepFlowIngress } from './platform/ingress';
import { StepFlowNamespace } from './platform/namespace';
import { StepFlowNetworkPolicies } from './platform/network-policies';
import { AutoscalingOptions, DisruptionBudgetOptions, EnvVariableValue, GpuOptions, IngressOptions, LogLevel, PodSettings, StepFlowComponentProps, StepFlowGeneration } from './types';
import { TelemetryOptions } from './config/telemetry';
import { EnvironmentSettings, Removable } from './environments';
import { mergeOptions } from './internal/merge';
import { ClusterNetworks, NetworkAccess } from './platform/network-access';
import { ImageLock } from './release/image-lock';

/** Props the chart sets itself on every component; not overridable per component. */
type Placed = 'namespace' | 'namePrefix' | 'environmentName' | 'generation' | 'requirePinnedImage' | 'imageLock' | 'core' | 'requireDurableState';

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

/**
 * A team's own worker in a chart: the worker's props without those the chart sets
 * (namespace, prefix, environment, generation, core). The chart-wide pod settings apply.
 */
export interface WorkerOverrides extends Omit<StepFlowWorkerProps, Placed>, ChartComponentOverrides {}

/**
 * Props of {@link StepFlowChart}. Everything but `environment` defaults to the preset. The
 * pod settings (`imagePullSecrets`, `tolerations`, `labels`, ...) apply to every component,
 * under each component's own.
 */
export interface StepFlowChartProps extends PodSettings {
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
  /**
   * The digests of a release's images (`scripts/build.sh --push` writes them to
   * `images.lock.json`): every image of the chart, a team's workers' included, is pulled by
   * digest (`registry/name@sha256:…`), and an image the lock lacks is a synth error.
   * @default - images by tag
   */
  readonly imageLock?: ImageLock;
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
  /** @default - the preset's python-sdk settings; `false`: no python-sdk server */
  readonly pythonSdk?: PythonSdkOverrides | false;
  /** @default - the preset's inference settings; `false`: no inference server */
  readonly inference?: InferenceOverrides | false;
  /**
   * A team's own component servers, routed by the core like the built-in ones; more with `addWorker`.
   * @default []
   */
  readonly workers?: WorkerOverrides[];
  /**
   * Environment variables of every component (literals or `kplus.EnvValue` references);
   * a component's own `env` wins by name.
   * @default {}
   */
  readonly env?: { readonly [name: string]: EnvVariableValue };
  /**
   * Create the Namespace (with Pod Security "restricted"). A second installation in a
   * namespace another chart creates sets `false`.
   * @default true
   */
  readonly createNamespace?: boolean;
}

/**
 * One StepFlow installation: Namespace (Pod Security "restricted"), NetworkPolicies,
 * python-sdk, inference, the core with its config and its durable state, and in
 * production an Ingress. The Namespace comes first in the output and everything else in
 * the chart depends on it, so the file applies in one pass on an empty cluster.
 */
export class StepFlowChart extends Chart {
  /** The Namespace; undefined with `createNamespace: false`. */
  public readonly namespaceConstruct?: StepFlowNamespace;
  public readonly core: StepFlowCore;
  /** The python-sdk server; undefined with `pythonSdk: false`. */
  public readonly pythonSdk?: StepFlowPythonSdk;
  /** The inference server; undefined with `inference: false`. */
  public readonly inference?: StepFlowInference;
  public readonly networkPolicies: StepFlowNetworkPolicies;
  public readonly ingress?: StepFlowIngress;

  private readonly ownWorkers: StepFlowWorker[] = [];
  private readonly validator: PropValidator;
  /** The chart-wide annotations, on every object and pod template. */
  private readonly chartAnnotations: Record<string, string>;
  /** What every component takes from the chart: placement, images, pod settings, env, telemetry. */
  private readonly componentProps: (block: Record<string, any>) => Record<string, any>;

  constructor(scope: Construct, id: string, props: StepFlowChartProps) {
    super(scope, id, { disableResourceNameHashes: true, labels: { ...props?.labels } });
    const v = this.validator = new PropValidator(this);
    this.chartAnnotations = { ...props?.annotations };
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
      imageLock: props.imageLock,
    };
    const blocks = componentBlocks(env, props, generation);
    validateChoices(v, env, props, shared, blocks.inference);
    const chartPod = podSettingsOf(props);
    validatePodSettings(v, chartPod);
    validateEnv(v, 'env', { ...props.env });

    // Each component: the shared props, its merged block (without the chart's own fields), the
    // chart-wide pod settings, env and telemetry under its own.
    const telemetry = { ...env.telemetry, ...props.telemetry };
    const coreEndpoint = StepFlowCore.endpoint(placement);
    this.componentProps = ({ networkAccess: _access, ...block }: Record<string, any>) => ({
      ...shared,
      ...block,
      ...mergePodSettings(chartPod, block),
      env: { ...props.env, ...block.env },
      telemetry: { ...telemetry, ...block.telemetry },
      core: coreEndpoint,
    });
    const { core: _endpoint, ...coreProps } = this.componentProps(blocks.core);
    // A chart-wide service name is for the workers: the core always reports its own.
    if (props.core?.telemetry?.serviceName === undefined) coreProps.telemetry = { ...coreProps.telemetry, serviceName: undefined };

    if (props.createNamespace ?? true) {
      this.namespaceConstruct = new StepFlowNamespace(this, 'Namespace', { namespace: placement.namespace, environmentName: env.name });
    }
    if (blocks.pythonSdk) this.pythonSdk = new StepFlowPythonSdk(this, 'PythonSdk', this.componentProps(blocks.pythonSdk));
    if (blocks.inference) this.inference = new StepFlowInference(this, 'Inference', this.componentProps(blocks.inference));
    this.core = new StepFlowCore(this, 'Core', { ...coreProps, requireDurableState: env.production });
    this.networkPolicies = new StepFlowNetworkPolicies(this, 'NetworkPolicies', {
      ...placement,
      generation,
      core: this.core,
      clusterNetworks: props.clusterNetworks,
      ingressControllerNamespace: props.ingress ? props.ingress.controllerNamespace ?? 'ingress-nginx' : undefined,
    });
    this.allowTraffic(this.core, blocks.core);
    for (const [server, block] of [[this.pythonSdk, blocks.pythonSdk], [this.inference, blocks.inference]] as const) {
      if (!server) continue;
      this.addComponentServer(server);
      this.allowTraffic(server, block!);
    }
    if (props.ingress) {
      this.ingress = new StepFlowIngress(this, 'Ingress', { ...props.ingress, ...placement, coreServiceName: this.core.service.name });
    }
    if (props.workers !== undefined && !Array.isArray(props.workers)) v.fail('workers', props.workers, 'expected a list of worker props ({ name, image, routePrefix, command, ... })');
    for (const worker of Array.isArray(props.workers) ? props.workers : []) this.addWorker(worker);

    this.node.addValidation({ validate: () => duplicateObjects(this, placement.namePrefix) });
    this.settle();
  }

  /** The team's own workers added with `workers` or `addWorker`, in order. */
  public get workers(): readonly StepFlowWorker[] {
    return [...this.ownWorkers];
  }

  /**
   * Add a team's own component server, also after construction: built with the chart's
   * placement, generation and pod settings, registered in the core's config, and given the
   * same NetworkPolicies as the built-in servers.
   */
  public addWorker(props: WorkerOverrides): StepFlowWorker {
    const name = props?.name;
    const twice = this.ownWorkers.some((w) => w.component === name);
    const id = twice ? `Worker-${name}-${this.ownWorkers.length}` : `Worker-${name}`;
    const worker = new StepFlowWorker(this, id, this.componentProps(props) as StepFlowWorkerProps);
    this.ownWorkers.push(worker);
    if (twice) {
      // Reported, and left out of the config and the policies (its objects would collide anyway).
      this.validator.fail('workers', name, 'two workers have this name; each needs its own');
      return worker;
    }
    this.addComponentServer(worker);
    this.allowTraffic(worker, props);
    return worker;
  }

  /**
   * Route components to one more component server, also after construction: the core's
   * config registers it and the NetworkPolicies allow its traffic to and from the core.
   */
  public addComponentServer(server: IComponentServer): void {
    this.core.addComponentServer(server);
    this.networkPolicies.addComponentServer(server);
    this.settle();
  }

  /** The component's extra traffic (its `networkAccess`) and its telemetry collector. */
  private allowTraffic(component: StepFlowComponent, block: ChartComponentOverrides): void {
    if (block.networkAccess) this.networkPolicies.allow(component, block.networkAccess);
    const collector = component.telemetryEgress;
    if (collector) this.networkPolicies.allow(component, { egress: [collector] });
  }

  /**
   * Everything in the chart after the Namespace, so one file applies in one pass; the
   * chart-wide annotations on every object (the components carry theirs already).
   */
  private settle(): void {
    const ns = this.namespaceConstruct;
    if (ns) {
      for (const child of this.node.children) {
        if (child !== ns && !child.node.dependencies.includes(ns)) child.node.addDependency(ns);
      }
    }
    annotate(this, this.chartAnnotations);
  }
}

/** Add the annotations every object of the scope lacks (an object's own win). */
function annotate(scope: IConstruct, annotations: Record<string, string>): void {
  if (Object.keys(annotations).length === 0) return;
  for (const o of scope.node.findAll()) {
    if (!ApiObject.isApiObject(o)) continue;
    const own = o.metadata.toJson().annotations ?? {};
    for (const [key, value] of Object.entries(annotations)) if (own[key] === undefined) o.metadata.addAnnotation(key, value);
  }
}

/** A duplicate object: the first of its kind, namespace and name, and one more. */
interface Duplicate {
  readonly key: string;
  readonly first: ApiObject;
  readonly again: ApiObject;
}

/**
 * One validation round's index of the App's duplicate objects: computed by the first chart
 * that validates and reused by the others; a chart validating again starts a new round
 * (so a chart changed between two synths is indexed anew).
 */
const DUPLICATE_ROUNDS = new WeakMap<IConstruct, { readonly duplicates: Duplicate[]; readonly validated: Set<Chart> }>();

function duplicatesOf(chart: Chart): Duplicate[] {
  const root = chart.node.root;
  let round = DUPLICATE_ROUNDS.get(root);
  if (!round || round.validated.has(chart)) {
    const seen = new Map<string, ApiObject>();
    const duplicates: Duplicate[] = [];
    for (const o of root.node.findAll()) {
      if (!ApiObject.isApiObject(o)) continue;
      const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : 'core';
      const key = `${o.kind}.${group} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.name}`;
      const first = seen.get(key);
      if (first) duplicates.push({ key, first, again: o });
      else seen.set(key, o);
    }
    round = { duplicates, validated: new Set() };
    DUPLICATE_ROUNDS.set(root, round);
  }
  round.validated.add(chart);
  return round.duplicates;
}

/**
 * Two objects of one kind, namespace and name in one App: the second would overwrite the
 * first when applied. Reported by the chart that holds the later one.
 */
function duplicateObjects(chart: Chart, namePrefix: string): string[] {
  return duplicatesOf(chart).filter((d) => Chart.of(d.again) === chart).map(({ key, first, again }) => {
    // The prop to change: the Namespace's creation, a name within this chart, or the installation's prefix.
    const [prop, value] = again.kind === 'Namespace' ? ['createNamespace', true] : Chart.of(first) === chart ? ['name', again.name] : ['namePrefix', namePrefix];
    return `prop '${prop}' is ${JSON.stringify(value)}: ${key} is emitted twice, by ${first.node.path} and ${again.node.path}; `
      + 'two installations in one namespace need different namePrefix values and createNamespace: false on all but one, and a worker needs a name of its own';
  });
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

/** Each component's preset block with the overrides on top, merged once; `false` leaves a server out. */
function componentBlocks(env: EnvironmentSettings, props: StepFlowChartProps, generation: StepFlowGeneration) {
  // StepFlow 0.11: one core pins to one component-server pod, so the preset's scale-out is dropped.
  const scale = generation === StepFlowGeneration.HTTP_PUSH ? { replicas: 1, autoscaling: false } : {};
  return {
    core: mergeOptions<CoreOverrides>(env.core, props.core),
    pythonSdk: props.pythonSdk === false ? undefined : mergeOptions<PythonSdkOverrides>(mergeOptions(env.pythonSdk, scale), props.pythonSdk),
    inference: props.inference === false ? undefined : mergeOptions<InferenceOverrides>(mergeOptions(env.inference, scale), props.inference),
  };
}

/** What the chart itself decides: a registry and tag, an explicit exposure in production, GPUs only where there are. */
function validateChoices(v: PropValidator, env: EnvironmentSettings, props: StepFlowChartProps, shared: StepFlowComponentProps, inference: InferenceOverrides | undefined): void {
  if (shared.imageRegistry === undefined) v.fail('imageRegistry', undefined, `the '${env.name}' environment has no default registry; set imageRegistry (e.g. 'registry.example.com/stepflow')`);
  if (shared.imageTag === undefined) v.fail('imageTag', undefined, `the '${env.name}' environment has no default tag; set imageTag to a release version (e.g. '1.4.2')`);
  if (env.production && props.ingress === undefined) {
    v.fail('ingress', undefined, `the '${env.name}' environment needs an explicit choice of exposure: ingress: { host: 'stepflow.example.com', authentication: IngressAuthentication.external({ url }) }, `
      + 'or ingress: false (internal only, or a route you own)');
  }
  if (inference?.gpu && !env.gpuAvailable) {
    v.fail('inference.gpu', inference.gpu, `the '${env.name}' environment has no GPUs (gpuAvailable: false); remove gpu to run inference on CPU`);
  }
}
