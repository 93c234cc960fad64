import { ImagePullPolicy } from 'cdk8s-plus-30';
import { ApiObject, Lazy, Yaml } from 'cdk8s';
import { Construct } from 'constructs';
import { createHash } from 'crypto';
import * as k8s from '../../imports/k8s';
import { CONFIG_FILE_PATH, CONTRACT, builtinIdentity } from '../contract';
import { StateStore, StateStoreKind } from '../config/state-store';
import { LogFormat } from '../config/telemetry';
import { StepFlowConfigDocument, StorageConfig, renderConfig } from '../config/stepflow-config';
import { installationLabels, resourceName, serviceHost } from '../internal/metadata';
import { PLACEMENT_DEFAULTS } from '../internal/resolve';
import { LIMITS } from '../internal/validation';
import { restrictedContainerSecurityContext } from '../internal/security';
import { replicaRange } from '../internal/scaling';
import { DEFAULT_PROBE_TIMINGS, HELPER_RESOURCES, gibibytes, scratchVolume } from '../internal/workload';
import { LogLevel, StepFlowComponentProps, StepFlowGeneration } from '../types';
import { ICoreEndpoint, IComponentServer } from './common';
import { StepFlowComponent, envVars } from './component';

/** Props of {@link StepFlowCore}. */
export interface StepFlowCoreProps extends StepFlowComponentProps {
  /**
   * The component servers the core server routes components to, in route order. More
   * can be added later with `addComponentServer`.
   * @default [] - only the builtin components
   */
  readonly componentServers?: IComponentServer[];
  /**
   * Size limit of the writable `/tmp` emptyDir.
   * @default 64
   */
  readonly tmpSizeMiB?: number;
  /**
   * Where the core keeps flows, runs and blobs. With sqlite the core is a StatefulSet of
   * one pod whose claim holds the database; the pod name is the orchestrator id, so a
   * restarted core recovers the runs it owned.
   * @default StateStore.sqlite() - 1 GiB on the default StorageClass
   */
  readonly stateStore?: StateStore;
  /**
   * Reject state that does not survive a restart (in-memory): production presets set it.
   * @default false
   */
  readonly requireDurableState?: boolean;
}

/** Where a core server answers, from the props that name it; see {@link StepFlowCore.endpoint}. */
export interface CoreEndpointProps {
  /** @default 'stepflow' */
  readonly namespace?: string;
  /** @default '' */
  readonly namePrefix?: string;
}

/** Annotation on the pod template that changes whenever the StepFlow config changes. */
export const CONFIG_CHECKSUM_ANNOTATION = 'stepflow.io/config-sha256';

const DEFAULT_RESOURCES = { cpuRequestMillis: 250, cpuLimitMillis: 1000, memoryRequestMiB: 256, memoryLimitMiB: 512 };
const CORE = CONTRACT.components.core;

/** Why one core is all the kit runs, and what several would need. */
export const CORE_HA_REQUIREMENTS = 'no StepFlow core that can be had here shares state between orchestrators: several need a core built with the cargo feature '
  + '`postgres` and a PostgreSQL store, etcd leases (leaseManager: etcd), every worker connected to every orchestrator, and the database URL kept out of the manifests (a Secret)';

/**
 * The StepFlow core server (`stepflow-server`): ServiceAccount, a StatefulSet of one pod
 * whose claim holds its sqlite state, a Service on 8080, a headless Service that gives the
 * pod its own DNS name (workers call the orchestrator that owns their task back on it), and
 * the ConfigMap with its StepFlow config, rendered at synth time from the component
 * servers it routes to. The config's checksum annotates the pod template, so a
 * config change rolls the pods. In the HTTP-push generation an init container waits for
 * every component server, because StepFlow 0.11 exits at start-up when a plugin URL does
 * not answer.
 */
export class StepFlowCore extends StepFlowComponent implements ICoreEndpoint {
  /**
   * The address of the core server that a {@link StepFlowCore} with these props serves,
   * for workers that are built before it (gRPC-pull workers dial the core server).
   */
  public static endpoint(props: CoreEndpointProps = {}): ICoreEndpoint {
    const host = serviceHost(`${props.namePrefix ?? PLACEMENT_DEFAULTS.namePrefix}${CORE.name}`, props.namespace ?? PLACEMENT_DEFAULTS.namespace);
    const url = `http://${host}:${CORE.port}`;
    return { host, port: CORE.port, address: `${host}:${CORE.port}`, url, blobApiUrl: `${url}${CONTRACT.apiPaths.blobs}` };
  }

  public readonly host: string;
  public readonly port: number;
  public readonly url: string;
  public readonly address: string;
  public readonly blobApiUrl: string;
  /**
   * `host:port` of the core pod itself (`<pod>.<headless service>.<namespace>.svc:8080`),
   * the address workers call back on; never a load-balanced Service.
   */
  public readonly orchestratorAddress: string;
  public readonly stateStore: StateStore;
  public readonly configMap: k8s.KubeConfigMap;
  /** The core's workload: a StatefulSet of one pod. */
  public readonly statefulSet: ApiObject;
  public readonly service: k8s.KubeService;
  /** The headless Service the StatefulSet's pod DNS names come from. */
  public readonly headlessService: k8s.KubeService;

  private readonly servers: IComponentServer[] = [];

  constructor(scope: Construct, id: string, props: StepFlowCoreProps = {}) {
    super(scope, id, builtinIdentity('core'), CORE.image, props, DEFAULT_RESOURCES);
    const v = this.validator;
    const common = this.common;
    const tmpSizeMiB = props.tmpSizeMiB ?? 64;
    this.stateStore = props.stateStore ?? StateStore.sqlite();
    v.integer('tmpSizeMiB', tmpSizeMiB, 1, LIMITS.volumeMiB);
    this.validateState(props);
    if (this.telemetry.serviceName !== undefined) {
      v.fail('telemetry.serviceName', this.telemetry.serviceName, "the core always reports service.name 'stepflow-server'; set serviceName on the workers (the exports carry service.namespace and deployment.environment)");
    }
    this.node.addValidation({ validate: () => this.validateServers() });

    const endpoint = StepFlowCore.endpoint(common.placement);
    this.host = endpoint.host;
    this.port = endpoint.port;
    this.url = endpoint.url;
    this.address = endpoint.address;
    this.blobApiUrl = endpoint.blobApiUrl;
    const headlessName = `${this.name}-headless`;
    this.orchestratorAddress = `$(${CONTRACT.env.orchestratorId}).${serviceHost(headlessName, this.namespace)}:${CORE.port}`;
    for (const s of props.componentServers ?? []) this.addComponentServer(s);

    this.configMap = new k8s.KubeConfigMap(this, 'ConfigMap', {
      metadata: {
        name: resourceName(common.placement, CONTRACT.configMap.name),
        namespace: this.namespace,
        labels: { ...common.pod.labels, ...installationLabels(common.placement), [CONTRACT.labels.component]: 'core' },
        ...(common.pod.annotations ? { annotations: { ...common.pod.annotations } } : {}),
      },
      data: Lazy.any({ produce: () => ({ [CONTRACT.configMap.key]: this.configText }) }),
    });

    const workload = this.build({
      identity: this.identity,
      common,
      version: CONTRACT.generations[common.generation].orchestrator,
      kind: 'StatefulSet',
      volumeClaimTemplates: this.stateStore.kind === StateStoreKind.SQLITE ? [{
        name: CORE.state.volume,
        spec: {
          accessModes: ['ReadWriteOnce'],
          storageClassName: this.stateStore.sqliteOptions.storageClassName,
          resources: { requests: { storage: gibibytes(this.stateStore.sqliteOptions.sizeGiB!) } },
        },
      }] : undefined,
      command: [CORE.binary],
      args: ['--port', String(CORE.port), '--config', CONFIG_FILE_PATH],
      listens: true,
      probes: {
        startup: { httpPath: CORE.health.startup, ...DEFAULT_PROBE_TIMINGS.startup },
        liveness: { httpPath: CORE.health.liveness, ...DEFAULT_PROBE_TIMINGS.liveness },
        readiness: { httpPath: CORE.health.readiness, ...DEFAULT_PROBE_TIMINGS.readiness },
      },
      podAnnotations: () => ({ [CONFIG_CHECKSUM_ANNOTATION]: createHash('sha256').update(this.configText).digest('hex') }),
      initContainers: () => this.initContainers(),
      // stepflow-server 0.13 does not exit on SIGTERM while workers hold a stream open, and
      // stops answering meanwhile: the wait is downtime. Its state is on the claim and
      // survives the SIGKILL (runs resume at start), so the wait is kept short.
      terminationGracePeriodSeconds: common.generation === StepFlowGeneration.GRPC_PULL ? 5 : 15,
    }, [
      ...envVars({
        [CONTRACT.env.logLevel]: common.logLevel,
        [CONTRACT.env.rustLog]: common.logLevel,
        ...(common.logLevel === LogLevel.DEBUG ? { [CONTRACT.env.rustBacktrace]: '1' } : {}),
      }),
      // The pod name: stable across restarts, so a restarted core recovers the runs it owned.
      // The variables after it may expand it (Kubernetes expands only those defined before).
      { name: CONTRACT.env.orchestratorId, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
      ...(common.generation === StepFlowGeneration.GRPC_PULL ? envVars({ [CONTRACT.env.orchestratorUrl]: this.orchestratorAddress }) : []),
      ...envVars(this.telemetryEnv()),
    ], [
      { volume: { name: 'config', configMap: { name: this.configMap.name, defaultMode: 0o444 } }, mountPath: CONTRACT.configMap.mountPath, readOnly: true },
      { volume: scratchVolume('tmp', tmpSizeMiB), mountPath: CONTRACT.paths.tmp },
    ]);
    if (this.stateStore.kind === StateStoreKind.SQLITE) workload.addMount({ name: CORE.state.volume, mountPath: CORE.state.mountPath });
    this.statefulSet = workload.workload;
    this.service = workload.service!;
    this.headlessService = workload.headlessService!;
  }

  /** The component servers the core routes to, in route order. */
  public get componentServers(): readonly IComponentServer[] {
    return [...this.servers];
  }

  /** Route components to one more component server; its plugin and route join the config. */
  public addComponentServer(server: IComponentServer): void {
    this.servers.push(server);
  }

  /** The StepFlow config document this core server loads, from the servers added so far. */
  public get config(): StepFlowConfigDocument {
    return renderConfig(this.generation, this.blobApiUrl, this.servers.map((s) => s.registration), this.storageConfig);
  }

  /** The config as the YAML text in the ConfigMap. */
  public get configText(): string {
    return Yaml.stringify(this.config);
  }

  /** The core's telemetry flags: log format always, OTLP export when an endpoint is set. */
  private telemetryEnv(): Record<string, string> {
    const t = this.telemetry;
    return {
      [CONTRACT.env.logFormat]: t.logFormat ?? LogFormat.TEXT,
      ...(t.otlpEndpoint !== undefined ? {
        ...this.resourceAttributes({ 'k8s.pod.name': `$(${CONTRACT.env.orchestratorId})` }),
        [CONTRACT.env.otlpEndpoint]: t.otlpEndpoint,
        [CONTRACT.env.traceEnabled]: String(t.tracing ?? true),
        [CONTRACT.env.metricsEnabled]: String(t.metrics ?? true),
      } : {}),
    };
  }

  private get storageConfig(): StorageConfig {
    return this.stateStore.kind === StateStoreKind.SQLITE
      ? { type: 'sqlite', databaseUrl: `sqlite:${this.stateStore.sqliteOptions.databasePath}?mode=rwc` }
      : { type: 'inMemory' };
  }

  private validateState(props: StepFlowCoreProps): void {
    const v = this.validator;
    const store = this.stateStore;
    if (!(store instanceof StateStore)) {
      v.fail('stateStore', store, 'expected StateStore.sqlite({ ... }) or StateStore.inMemory()');
      return;
    }
    const { max } = replicaRange(this.common.replicas, this.common.autoscaling);
    if (this.common.autoscaling) {
      v.fail('autoscaling', this.common.autoscaling, `the core runs as one pod and cannot be autoscaled: ${CORE_HA_REQUIREMENTS}`);
    } else if (max > 1) {
      v.fail('replicas', this.common.replicas, `the core runs as exactly one pod: ${CORE_HA_REQUIREMENTS}`);
    }
    if (store.kind === StateStoreKind.IN_MEMORY && props.requireDurableState) {
      v.fail('stateStore', 'inMemory', 'production keeps its state: in-memory state loses every flow, run and blob at each restart, rollout or eviction; use StateStore.sqlite()');
    }
    if (store.kind === StateStoreKind.SQLITE) {
      const path = store.sqliteOptions.databasePath ?? '';
      const claim = `${CORE.state.mountPath}/`;
      if (!path.startsWith(claim) || path.length === claim.length || path.includes('/../') || path.includes('?') || /\s/.test(path)) {
        v.fail('stateStore.databasePath', path, `the database must lie on the state claim: a file under ${claim} (e.g. '${claim}${CORE.state.file}')`);
      }
      v.integer('stateStore.sizeGiB', store.sqliteOptions.sizeGiB, 1, LIMITS.claimGiB);
      v.objectName('stateStore.storageClassName', store.sqliteOptions.storageClassName, 'a StorageClass');
    }
  }

  /** The init container that waits for the component servers that listen (HTTP push). */
  private initContainers(): k8s.Container[] | undefined {
    const urls = this.servers.map((s) => s.healthUrl).filter((u): u is string => u !== undefined);
    return urls.length > 0 ? [waitForServersContainer(this.common.image, this.common.imagePullPolicy, urls)] : undefined;
  }

  private validateServers(): string[] {
    const errors: string[] = [];
    const seen = new Map<string, string>();
    for (const s of this.servers) {
      const queue = s.registration.plugin.type === 'grpc' ? [`queue '${s.registration.plugin.queueName}'`] : [];
      for (const key of [`route prefix '/${s.registration.routePrefix}'`, `plugin name '${s.registration.pluginName}'`, `pod selector ${JSON.stringify(Object.fromEntries(Object.entries(s.selector).sort()))}`, ...queue]) {
        const owner = seen.get(key);
        if (owner) errors.push(`prop 'componentServers' is ${JSON.stringify(s.component)}: ${key} is already served by ${owner}`);
        seen.set(key, s.component);
      }
      if (s.generation !== this.generation) {
        errors.push(`prop 'componentServers' is ${JSON.stringify(s.component)}: speaks StepFlow ${s.generation} but the core server is configured for ${this.generation}`);
      }
    }
    return errors;
  }
}

/** Busybox in the Alpine core image polls each component server until it answers. */
function waitForServersContainer(image: string, imagePullPolicy: ImagePullPolicy, urls: string[]): k8s.Container {
  return {
    name: 'wait-for-component-servers',
    image,
    imagePullPolicy,
    command: ['/bin/sh', '-c', 'for url in "$@"; do until wget -q -T 2 -O /dev/null "$url"; do echo "waiting for $url"; sleep 2; done; done', 'wait-for-component-servers'],
    args: urls,
    resources: HELPER_RESOURCES,
    securityContext: restrictedContainerSecurityContext(CORE.uid, CORE.gid),
  };
}

