import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { CONTRACT } from '../contract';
import { ComponentObjects, scratchVolume } from '../internal/workload';
import { StepFlowGeneration } from '../types';
import { ICoreEndpoint, StepFlowComponentProps } from './common';
import { StepFlowComponentServer } from './component-server';

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

const DEFAULT_RESOURCES = { cpuRequestMillis: 250, cpuLimitMillis: 1000, memoryRequestMiB: 256, memoryLimitMiB: 1024 };

/**
 * The stepflow-py component server (`/python/...` components): ServiceAccount, Deployment
 * and, in the HTTP-push generation, a Service on 8081 that the core server calls.
 */
export class StepFlowPythonSdk extends StepFlowComponentServer {
  public readonly selector: Record<string, string>;
  public readonly deployment: ApiObject;
  public readonly objects: ApiObject[];

  constructor(scope: Construct, id: string, props: StepFlowPythonSdkProps = {}) {
    super(scope, id, 'python-sdk', props, DEFAULT_RESOURCES, {
      startup: { periodSeconds: 2, failureThreshold: 30, timeoutSeconds: 2 },
      liveness: { periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
      readiness: { periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 2 },
    });
    const v = this.validator;
    const tmpSizeMiB = props.tmpSizeMiB ?? 256;
    const cacheSizeMiB = props.cacheSizeMiB ?? 512;
    v.integer('tmpSizeMiB', tmpSizeMiB, 1);
    v.integer('cacheSizeMiB', cacheSizeMiB, 1);

    const tmp = scratchVolume('tmp', CONTRACT.paths.tmp, tmpSizeMiB);
    const cache = scratchVolume('cache', CONTRACT.paths.cache, cacheSizeMiB);
    const objects = new ComponentObjects(this, {
      component: 'python-sdk',
      common: this.common,
      version: CONTRACT.generations[this.generation].sdk,
      kind: 'Deployment',
      command: this.runtime.command,
      args: this.runtime.args,
      env: { ...this.runtime.env, ...this.common.env },
      listens: this.runtime.listens,
      sessionAffinitySeconds: this.runtime.sessionAffinitySeconds,
      probes: this.runtime.probes,
      volumes: [tmp.volume, cache.volume],
      volumeMounts: [tmp.mount, cache.mount],
      // stepflow-py 0.13's stock worker ignores SIGTERM while idle (it acts on it only when
      // the next task arrives), so every stop runs into SIGKILL: keep that wait short.
      terminationGracePeriodSeconds: this.generation === StepFlowGeneration.GRPC_PULL ? 15 : 30,
    });
    this.selector = objects.selector;
    this.deployment = objects.workload;
    this.objects = objects.objects;
  }
}
