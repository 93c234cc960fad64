import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import * as k8s from '../../imports/k8s';
import { CONTRACT } from '../contract';
import { componentLabels } from '../internal/metadata';
import { ComponentObjects, gibibytes, replicaRange, scratchVolume } from '../internal/workload';
import { GpuOptions, ModelCacheAccessMode, ModelCacheOptions, ModelCacheSharing } from '../types';
import { ICoreEndpoint, StepFlowComponentProps } from './common';
import { StepFlowComponentServer } from './component-server';

/** Which device the inference server runs its models on. */
export enum InferenceDevice {
  /** CUDA when a GPU is visible, CPU otherwise. */
  AUTO = 'auto',
  CPU = 'cpu',
  CUDA = 'cuda',
}

/** Props of {@link StepFlowInference}. */
export interface StepFlowInferenceProps extends StepFlowComponentProps {
  /**
   * The core server that gRPC-pull workers dial. Required for StepFlowGeneration.GRPC_PULL.
   * @default - none (HTTP push: the core server calls this server)
   */
  readonly core?: ICoreEndpoint;
  /**
   * GPU scheduling: RuntimeClass, `nvidia.com/gpu` requests = limits, toleration of the
   * `nvidia.com/gpu` taint and the GPU node selector.
   * @default - none: CPU-only inference that schedules on any node
   */
  readonly gpu?: GpuOptions;
  /**
   * @default - InferenceDevice.CUDA with a GPU (the pod fails fast on a node without one), InferenceDevice.CPU without
   */
  readonly device?: InferenceDevice;
  /**
   * Size of `/dev/shm` (memory-backed emptyDir, used by PyTorch to share tensors). Its
   * pages count against the container's memory limit, so it may take at most half of it.
   * @default 1024
   */
  readonly shmSizeMiB?: number;
  /** @default - 20 GiB per replica, ReadWriteOnce, default StorageClass */
  readonly modelCache?: ModelCacheOptions;
  /**
   * How long the startup probe lets the server load its models before the kubelet
   * restarts it.
   * @default 600
   */
  readonly startupTimeoutSeconds?: number;
  /**
   * Embedding model: a directory under the model cache (`/models/<name>`).
   * @default 'all-MiniLM-L6-v2'
   */
  readonly embedModel?: string;
  /**
   * Let the server download a model missing from the cache (needs egress to the hub).
   * @default false
   */
  readonly allowModelDownload?: boolean;
  /**
   * Texts per forward pass.
   * @default 32
   */
  readonly maxBatchSize?: number;
  /** @default 1024 */
  readonly tmpSizeMiB?: number;
  /** @default 2048 */
  readonly cacheSizeMiB?: number;
}

const DEFAULT_RESOURCES = { cpuRequestMillis: 1000, cpuLimitMillis: 4000, memoryRequestMiB: 4096, memoryLimitMiB: 8192 };
/** Name of the model-cache volume and of its claim template. */
export const MODEL_CACHE_VOLUME = 'model-cache';
const PROBE_PERIOD_SECONDS = 10;

/**
 * The inference component server (`/inference/...` components): a StatefulSet, so that
 * every replica gets its own ReadWriteOnce model-cache claim, a Service on 8082, and a
 * ServiceAccount. With `gpu` it requests NVIDIA GPUs through the `nvidia` RuntimeClass.
 */
export class StepFlowInference extends StepFlowComponentServer {
  public readonly selector: Record<string, string>;
  public readonly statefulSet: ApiObject;
  public readonly objects: ApiObject[];

  constructor(scope: Construct, id: string, props: StepFlowInferenceProps = {}) {
    const startupTimeoutSeconds = props.startupTimeoutSeconds ?? 600;
    super(scope, id, 'inference', props, DEFAULT_RESOURCES, {
      startup: { periodSeconds: PROBE_PERIOD_SECONDS, failureThreshold: Math.ceil(startupTimeoutSeconds / PROBE_PERIOD_SECONDS), timeoutSeconds: 3 },
      liveness: { periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 3 },
      readiness: { periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 3 },
    });
    const v = this.validator;
    const c = this.common;
    const gpu = props.gpu;
    const gpuCount = gpu ? gpu.count ?? 1 : 0;
    const device = props.device ?? (gpu ? InferenceDevice.CUDA : InferenceDevice.CPU);
    const shmSizeMiB = props.shmSizeMiB ?? 1024;
    const cache = {
      sizeGiB: props.modelCache?.sizeGiB ?? 20,
      storageClassName: props.modelCache?.storageClassName,
      accessMode: props.modelCache?.accessMode ?? ModelCacheAccessMode.READ_WRITE_ONCE,
      sharing: props.modelCache?.sharing ?? ModelCacheSharing.PER_REPLICA,
    };
    const maxBatchSize = props.maxBatchSize ?? 32;
    const tmpSizeMiB = props.tmpSizeMiB ?? 1024;
    const cacheSizeMiB = props.cacheSizeMiB ?? 2048;
    const maxReplicas = replicaRange(c.replicas, c.autoscaling).max;

    if (gpu) v.integer('gpu.count', gpuCount, 1, 16);
    if (device === InferenceDevice.CUDA && !gpu) {
      v.fail('device', device, 'CUDA needs a GPU: set gpu, or use InferenceDevice.CPU / AUTO');
    }
    if (v.integer('shmSizeMiB', shmSizeMiB, 1) && shmSizeMiB * 2 > c.resources.memoryLimitMiB) {
      v.fail('shmSizeMiB', shmSizeMiB, `/dev/shm counts against the container's memory limit (resources.memoryLimitMiB = ${c.resources.memoryLimitMiB}); use at most ${Math.floor(c.resources.memoryLimitMiB / 2)}`);
    }
    v.integer('modelCache.sizeGiB', cache.sizeGiB, 1);
    if (cache.sharing === ModelCacheSharing.SHARED && cache.accessMode === ModelCacheAccessMode.READ_WRITE_ONCE && maxReplicas > 1) {
      v.fail('modelCache', props.modelCache, `${maxReplicas} replicas cannot share one ReadWriteOnce claim (pods on other nodes would never start); use ModelCacheSharing.PER_REPLICA or ModelCacheAccessMode.READ_WRITE_MANY`);
    }
    v.integer('startupTimeoutSeconds', startupTimeoutSeconds, PROBE_PERIOD_SECONDS, 3600);
    v.integer('maxBatchSize', maxBatchSize, 1, 4096);
    v.integer('tmpSizeMiB', tmpSizeMiB, 1);
    v.integer('cacheSizeMiB', cacheSizeMiB, 1);
    if (props.embedModel !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(props.embedModel)) {
      v.fail('embedModel', props.embedModel, 'expected a directory name under the model cache (letters, digits, ".", "_", "-")');
    }

    const claimSpec: k8s.PersistentVolumeClaimSpec = {
      accessModes: [cache.accessMode],
      storageClassName: cache.storageClassName,
      resources: { requests: { storage: gibibytes(cache.sizeGiB) } },
    };
    const version = CONTRACT.generations[c.generation].sdk;
    let sharedClaim: k8s.KubePersistentVolumeClaim | undefined;
    if (cache.sharing === ModelCacheSharing.SHARED) {
      sharedClaim = new k8s.KubePersistentVolumeClaim(this, 'ModelCache', {
        metadata: { name: `${this.name}-${MODEL_CACHE_VOLUME}`, namespace: c.placement.namespace, labels: componentLabels(c.placement, 'inference', version) },
        spec: claimSpec,
      });
    }

    const tmp = scratchVolume('tmp', CONTRACT.paths.tmp, tmpSizeMiB);
    const xdg = scratchVolume('cache', CONTRACT.paths.cache, cacheSizeMiB);
    const shm = scratchVolume('dshm', CONTRACT.paths.shm, shmSizeMiB, 'Memory');
    const gpuResource = CONTRACT.gpu.resource;
    const objects = new ComponentObjects(this, {
      component: 'inference',
      common: c,
      version,
      kind: 'StatefulSet',
      extendedResources: gpu ? { [gpuResource]: gpuCount } : undefined,
      command: this.runtime.command,
      args: this.runtime.args,
      env: {
        ...this.runtime.env,
        [CONTRACT.env.modelCacheDir]: CONTRACT.paths.models,
        [CONTRACT.env.device]: device,
        [CONTRACT.env.embedModel]: props.embedModel ?? 'all-MiniLM-L6-v2',
        [CONTRACT.env.allowDownload]: String(props.allowModelDownload ?? false),
        [CONTRACT.env.maxBatchSize]: String(maxBatchSize),
        [CONTRACT.env.hfHome]: `${CONTRACT.paths.cache}/huggingface`,
        // PyTorch would otherwise start one thread per node core, far beyond the CPU limit.
        [CONTRACT.env.ompThreads]: String(Math.max(1, Math.floor(c.resources.cpuLimitMillis / 1000))),
        ...c.env,
      },
      listens: this.runtime.listens,
      sessionAffinitySeconds: this.runtime.sessionAffinitySeconds,
      probes: this.runtime.probes,
      volumes: [
        tmp.volume, xdg.volume, shm.volume,
        ...(sharedClaim ? [{ name: MODEL_CACHE_VOLUME, persistentVolumeClaim: { claimName: sharedClaim.name } }] : []),
      ],
      volumeMounts: [tmp.mount, xdg.mount, shm.mount, { name: MODEL_CACHE_VOLUME, mountPath: CONTRACT.paths.models }],
      volumeClaimTemplates: sharedClaim ? undefined : [{ name: MODEL_CACHE_VOLUME, spec: claimSpec }],
      runtimeClassName: gpu ? gpu.runtimeClassName ?? CONTRACT.gpu.runtimeClass : undefined,
      nodeSelector: gpu ? { ...(gpu.nodeSelector ?? { [CONTRACT.gpu.nodeSelectorKey]: CONTRACT.gpu.nodeSelectorValue }) } : undefined,
      tolerations: gpu ? [{ key: gpuResource, operator: 'Exists', effect: 'NoSchedule' }] : undefined,
      terminationGracePeriodSeconds: 60,
    });
    this.selector = objects.selector;
    this.statefulSet = objects.workload;
    this.objects = [...(sharedClaim ? [sharedClaim] : []), ...objects.objects];
  }
}
