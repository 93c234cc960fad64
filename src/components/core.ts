import { ApiObject, Yaml } from 'cdk8s';
import { Construct } from 'constructs';
import { createHash } from 'crypto';
import * as k8s from '../../imports/k8s';
import { CONFIG_FILE_PATH, CONTRACT } from '../contract';
import { StepFlowConfigDocument, renderConfig } from '../config/stepflow-config';
import { installationLabels, resourceName } from '../internal/metadata';
import { restrictedContainerSecurityContext } from '../internal/security';
import { PropValidator } from '../internal/validation';
import { ComponentObjects, scratchVolume } from '../internal/workload';
import { LogLevel, StepFlowGeneration } from '../types';
import { ICoreEndpoint, IComponentServer, StepFlowComponentProps, resolveCommon, serviceHost } from './common';

/** Props of {@link StepFlowCore}. */
export interface StepFlowCoreProps extends StepFlowComponentProps {
  /**
   * The component servers the core server routes components to, in route order.
   * @default [] - only the builtin components
   */
  readonly componentServers?: IComponentServer[];
  /**
   * Size limit of the writable `/tmp` emptyDir.
   * @default 64
   */
  readonly tmpSizeMiB?: number;
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

/**
 * The StepFlow core server (`stepflow-server`): ServiceAccount, Deployment, Service on
 * 8080 and the ConfigMap with its StepFlow config, rendered from the component servers it
 * routes to. The config's checksum annotates the pod template, so a config change rolls
 * the pods. In the HTTP-push generation an init container waits for every component
 * server, because StepFlow 0.11 exits at start-up when a plugin URL does not answer.
 */
export class StepFlowCore extends Construct implements ICoreEndpoint {
  /**
   * The address of the core server that a {@link StepFlowCore} with these props serves,
   * for workers that are built before it (gRPC-pull workers dial the core server).
   */
  public static endpoint(props: CoreEndpointProps = {}): ICoreEndpoint {
    const host = serviceHost(`${props.namePrefix ?? ''}${CORE.name}`, props.namespace ?? 'stepflow');
    const url = `http://${host}:${CORE.port}`;
    return { host, port: CORE.port, address: `${host}:${CORE.port}`, url, blobApiUrl: `${url}${CONTRACT.apiPaths.blobs}` };
  }

  public readonly name: string;
  public readonly namespace: string;
  public readonly host: string;
  public readonly port: number;
  public readonly url: string;
  public readonly address: string;
  public readonly blobApiUrl: string;
  public readonly selector: Record<string, string>;
  public readonly generation: StepFlowGeneration;
  /** The StepFlow config document this core server loads. */
  public readonly config: StepFlowConfigDocument;
  /** The config as the YAML text in the ConfigMap. */
  public readonly configText: string;
  public readonly configMap: k8s.KubeConfigMap;
  public readonly deployment: ApiObject;
  public readonly service: k8s.KubeService;
  /** Every object this construct creates. */
  public readonly objects: ApiObject[];

  constructor(scope: Construct, id: string, props: StepFlowCoreProps = {}) {
    super(scope, id);
    const v = new PropValidator(this);
    const c = resolveCommon(v, 'core', props, DEFAULT_RESOURCES);
    const tmpSizeMiB = props.tmpSizeMiB ?? 64;
    const servers = props.componentServers ?? [];
    v.integer('tmpSizeMiB', tmpSizeMiB, 1);
    validateServers(v, servers, c.generation);

    const endpoint = StepFlowCore.endpoint(c.placement);
    this.generation = c.generation;
    this.namespace = c.placement.namespace;
    this.name = resourceName(c.placement, CORE.name);
    this.host = endpoint.host;
    this.port = endpoint.port;
    this.url = endpoint.url;
    this.address = endpoint.address;
    this.blobApiUrl = endpoint.blobApiUrl;
    this.config = renderConfig(c.generation, this.blobApiUrl, servers.map((s) => s.registration));
    this.configText = Yaml.stringify(this.config);

    this.configMap = new k8s.KubeConfigMap(this, 'ConfigMap', {
      metadata: {
        name: resourceName(c.placement, CONTRACT.configMap.name),
        namespace: this.namespace,
        labels: { ...installationLabels(c.placement), [CONTRACT.labels.component]: 'core' },
      },
      data: { [CONTRACT.configMap.key]: this.configText },
    });

    const env: Record<string, string> = {
      [CONTRACT.env.logLevel]: c.logLevel,
      [CONTRACT.env.rustLog]: c.logLevel,
      ...(c.logLevel === LogLevel.DEBUG ? { [CONTRACT.env.rustBacktrace]: '1' } : {}),
      ...(c.generation === StepFlowGeneration.GRPC_PULL ? { [CONTRACT.env.orchestratorUrl]: this.address } : {}),
      ...c.env,
    };
    const tmp = scratchVolume('tmp', CONTRACT.paths.tmp, tmpSizeMiB);
    const waitFor = servers.map((s) => s.healthUrl).filter((u): u is string => u !== undefined);
    const objects = new ComponentObjects(this, {
      component: 'core',
      common: c,
      version: CONTRACT.generations[c.generation].orchestrator,
      kind: 'Deployment',
      command: [CORE.binary],
      args: ['--port', String(CORE.port), '--config', CONFIG_FILE_PATH],
      env,
      listens: true,
      probes: {
        startup: { httpPath: CORE.health.startup, periodSeconds: 2, failureThreshold: 30, timeoutSeconds: 2 },
        liveness: { httpPath: CORE.health.liveness, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
        readiness: { httpPath: CORE.health.readiness, periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 2 },
      },
      volumes: [{ name: 'config', configMap: { name: this.configMap.name, defaultMode: 0o444 } }, tmp.volume],
      volumeMounts: [{ name: 'config', mountPath: CONTRACT.configMap.mountPath, readOnly: true }, tmp.mount],
      podAnnotations: { [CONFIG_CHECKSUM_ANNOTATION]: createHash('sha256').update(this.configText).digest('hex') },
      initContainers: waitFor.length > 0 ? [waitForServersContainer(c.image, c.imagePullPolicy, waitFor)] : undefined,
      terminationGracePeriodSeconds: 30,
    });
    this.selector = objects.selector;
    this.deployment = objects.workload;
    this.service = objects.service!;
    this.objects = [this.configMap, ...objects.objects];
  }
}

function validateServers(v: PropValidator, servers: IComponentServer[], generation: StepFlowGeneration): void {
  const seen = new Map<string, string>();
  for (const s of servers) {
    for (const key of [`route prefix '/${s.registration.routePrefix}'`, `plugin name '${s.registration.pluginName}'`]) {
      const owner = seen.get(key);
      if (owner) v.fail('componentServers', s.component, `${key} is already served by ${owner}`);
      seen.set(key, s.component);
    }
    if (s.generation !== generation) {
      v.fail('componentServers', s.component, `speaks StepFlow ${s.generation} but the core server is configured for ${generation}`);
    }
  }
}

/** Busybox in the Alpine core image polls each component server until it answers. */
function waitForServersContainer(image: string, imagePullPolicy: string, urls: string[]): k8s.Container {
  return {
    name: 'wait-for-component-servers',
    image,
    imagePullPolicy,
    command: ['/bin/sh', '-c', 'for url in "$@"; do until wget -q -T 2 -O /dev/null "$url"; do echo "waiting for $url"; sleep 2; done; done', 'wait-for-component-servers'],
    args: urls,
    resources: {
      requests: { cpu: k8s.Quantity.fromString('10m'), memory: k8s.Quantity.fromString('16Mi') },
      limits: { cpu: k8s.Quantity.fromString('100m'), memory: k8s.Quantity.fromString('32Mi') },
    },
    securityContext: restrictedContainerSecurityContext(CORE.uid, CORE.gid),
  };
}
