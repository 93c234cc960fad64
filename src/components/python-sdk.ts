import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { CONTRACT } from '../contract';
import { PluginRegistration } from '../config/stepflow-config';
import { resourceName } from '../internal/metadata';
import { PropValidator } from '../internal/validation';
import { ComponentObjects, scratchVolume } from '../internal/workload';
import { StepFlowGeneration } from '../types';
import { ICoreEndpoint, IComponentServer, StepFlowComponentProps, resolveCommon, serviceHost } from './common';
import { pythonServerRuntime } from './component-server';

/** Props of {@link StepFlowPythonSdk}. */
export interface StepFlowPythonSdkProps extends StepFlowComponentProps {
  /**
   * The core server that gRPC-pull workers dial. Required for StepFlowGeneration.GRPC_PULL.
   * @default - none (HTTP push: the core server calls this server)
   */
  readonly core?: ICoreEndpoint;
  /**
   * Size limit of the writable `/tmp` emptyDir.
   * @default 256
   */
  readonly tmpSizeMiB?: number;
  /**
   * Size limit of the writable cache emptyDir (`XDG_CACHE_HOME`).
   * @default 512
   */
  readonly cacheSizeMiB?: number;
}

const PY = CONTRACT.components['python-sdk'];
const DEFAULT_RESOURCES = { cpuRequestMillis: 250, cpuLimitMillis: 1000, memoryRequestMiB: 256, memoryLimitMiB: 1024 };

/**
 * The stepflow-py component server (`/python/...` components): ServiceAccount, Deployment
 * and, in the HTTP-push generation, a Service on 8081 that the core server calls.
 */
export class StepFlowPythonSdk extends Construct implements IComponentServer {
  public readonly component = 'python-sdk' as const;
  public readonly name: string;
  public readonly generation: StepFlowGeneration;
  public readonly host: string;
  public readonly listenPort?: number;
  public readonly url?: string;
  public readonly healthUrl?: string;
  public readonly selector: Record<string, string>;
  public readonly registration: PluginRegistration;
  public readonly deployment: ApiObject;
  public readonly objects: ApiObject[];

  constructor(scope: Construct, id: string, props: StepFlowPythonSdkProps = {}) {
    super(scope, id);
    const v = new PropValidator(this);
    const c = resolveCommon(v, 'python-sdk', props, DEFAULT_RESOURCES);
    const tmpSizeMiB = props.tmpSizeMiB ?? 256;
    const cacheSizeMiB = props.cacheSizeMiB ?? 512;
    v.integer('tmpSizeMiB', tmpSizeMiB, 1);
    v.integer('cacheSizeMiB', cacheSizeMiB, 1);
    if (c.generation === StepFlowGeneration.GRPC_PULL && !props.core) {
      v.fail('core', props.core, 'gRPC-pull workers dial the core server: pass core (e.g. StepFlowCore.endpoint({ namespace, namePrefix }))');
    }

    this.generation = c.generation;
    this.name = resourceName(c.placement, PY.name);
    this.host = serviceHost(this.name, c.placement.namespace);
    const runtime = pythonServerRuntime('python-sdk', this.name, this.host, c, props.core, {
      startup: { periodSeconds: 2, failureThreshold: 30, timeoutSeconds: 2 },
      liveness: { periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
      readiness: { periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 2 },
    });
    if (runtime.listens) {
      this.listenPort = PY.port;
      this.url = `http://${this.host}:${PY.port}`;
      this.healthUrl = `${this.url}${PY.health.readiness}`;
    }
    this.registration = { pluginName: PY.routePrefix, routePrefix: PY.routePrefix, plugin: runtime.plugin };

    const tmp = scratchVolume('tmp', CONTRACT.paths.tmp, tmpSizeMiB);
    const cache = scratchVolume('cache', CONTRACT.paths.cache, cacheSizeMiB);
    const objects = new ComponentObjects(this, {
      component: 'python-sdk',
      placement: c.placement,
      version: CONTRACT.generations[c.generation].sdk,
      kind: 'Deployment',
      image: c.image,
      imagePullPolicy: c.imagePullPolicy,
      replicas: c.replicas,
      autoscaling: c.autoscaling,
      disruptionBudget: c.disruptionBudget,
      resources: c.resources,
      command: runtime.command,
      args: runtime.args,
      env: { ...runtime.env, ...c.env },
      listens: runtime.listens,
      probes: runtime.probes,
      volumes: [tmp.volume, cache.volume],
      volumeMounts: [tmp.mount, cache.mount],
      terminationGracePeriodSeconds: 30,
    });
    this.selector = objects.selector;
    this.deployment = objects.workload;
    this.objects = objects.objects;
  }
}
