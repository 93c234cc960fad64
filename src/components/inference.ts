import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import * as k8s from '../../imports/k8s';
import { CONTRACT, builtinIdentity } from '../contract';
import { componentLabels } from '../internal/metadata';
import { replicaRange } from '../internal/scaling';
import { LIMITS } from '../internal/validation';
import { gibibytes, memoryVolume, scratchVolume } from '../internal/workload';
import { GpuOptions, ModelCacheAccessMode, ModelCacheOptions, ModelCacheSharing } from '../types';
import { StepFlowComponentServer, StepFlowComponentServerProps } from './component-server';
import { envVars } from './component';

/** Which device the inference server runs its models on. */
export enum InferenceDevice {
  /** CUDA when a GPU is visible, CPU otherwise. */
  AUTO = 'auto',
  CPU = 'cpu',
  CUDA = 'cuda',
}

/** Props of {@link StepFlowInference}. */
export interface StepFlowInferenceProps extends StepFlowComponentServerProps {
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
/** `<domain>/<name>` of an extended resource (a device plugin's). */
const EXTENDED_RESOURCE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const INFERENCE = CONTRACT.components.inference;

const DEFAULTS = {
  shmSizeMiB: 1024,
  startupTimeoutSeconds: 600,
  embedModel: 'all-MiniLM-L6-v2',
  maxBatchSize: 32,
  tmpSizeMiB: 1024,
  cacheSizeMiB: 2048,
  gpuCount: 1,
  modelCache: { sizeGiB: 20, accessMode: ModelCacheAccessMode.READ_WRITE_ONCE, sharing: ModelCacheSharing.PER_REPLICA },
};

/** The inference props resolved against their defaults. */
interface ResolvedInference {
  readonly gpu?: GpuOptions & { readonly count: number };
  readonly device: InferenceDevice;
  readonly shmSizeMiB: number;
  readonly modelCache: Required<Omit<ModelCacheOptions, 'storageClassName'>> & Pick<ModelCacheOptions, 'storageClassName'>;
  readonly startupTimeoutSeconds: number;
  readonly embedModel: string;
  readonly allowModelDownload: boolean;
  readonly maxBatchSize: number;
  readonly tmpSizeMiB: number;
  readonly cacheSizeMiB: number;
}

function resolveInference(props: StepFlowInferenceProps): ResolvedInference {
  return {
    gpu: props.gpu ? { ...props.gpu, count: props.gpu.count ?? DEFAULTS.gpuCount } : undefined,
    device: props.device ?? (props.gpu ? InferenceDevice.CUDA : InferenceDevice.CPU),
    shmSizeMiB: props.shmSizeMiB ?? DEFAULTS.shmSizeMiB,
    modelCache: {
      sizeGiB: props.modelCache?.sizeGiB ?? DEFAULTS.modelCache.sizeGiB,
      storageClassName: props.modelCache?.storageClassName,
      accessMode: props.modelCache?.accessMode ?? DEFAULTS.modelCache.accessMode,
      sharing: props.modelCache?.sharing ?? DEFAULTS.modelCache.sharing,
    },
    startupTimeoutSeconds: props.startupTimeoutSeconds ?? DEFAULTS.startupTimeoutSeconds,
    embedModel: props.embedModel ?? DEFAULTS.embedModel,
    allowModelDownload: props.allowModelDownload ?? false,
    maxBatchSize: props.maxBatchSize ?? DEFAULTS.maxBatchSize,
    tmpSizeMiB: props.tmpSizeMiB ?? DEFAULTS.tmpSizeMiB,
    cacheSizeMiB: props.cacheSizeMiB ?? DEFAULTS.cacheSizeMiB,
  };
}

/**
 * The inference component server (`/inference/...` components): a StatefulSet, so that
 * every replica gets its own ReadWriteOnce model-cache claim, a Service on 8082, and a
 * ServiceAccount. With `gpu` it requests NVIDIA GPUs through the `nvidia` RuntimeClass.
 */
export class StepFlowInference extends StepFlowComponentServer {
  /** The inference workload (a StatefulSet). */
  public readonly statefulSet: ApiObject;
  /** The claim every replica shares, with ModelCacheSharing.SHARED. */
  public readonly sharedModelCache?: k8s.KubePersistentVolumeClaim;

  constructor(scope: Construct, id: string, props: StepFlowInferenceProps = {}) {
    const startupTimeoutSeconds = props.startupTimeoutSeconds ?? DEFAULTS.startupTimeoutSeconds;
    super(scope, id, builtinIdentity('inference'), INFERENCE.image, {
      routePrefix: INFERENCE.routePrefix,
      queueName: INFERENCE.routePrefix,
      command: StepFlowComponentServer.pythonModuleCommand(INFERENCE.module, INFERENCE.workerModule),
      health: INFERENCE.health,
    }, props, DEFAULT_RESOURCES, {
      startup: { periodSeconds: PROBE_PERIOD_SECONDS, failureThreshold: Math.ceil(startupTimeoutSeconds / PROBE_PERIOD_SECONDS), timeoutSeconds: 3 },
      liveness: { periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 3 },
      readiness: { periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 3 },
    }, 60);
    const r = resolveInference(props);
    this.validate(r, props);

    const claimSpec: k8s.PersistentVolumeClaimSpec = {
      accessModes: [r.modelCache.accessMode],
      storageClassName: r.modelCache.storageClassName,
      resources: { requests: { storage: gibibytes(r.modelCache.sizeGiB) } },
    };
    const version = CONTRACT.generations[this.generation].sdk;
    if (r.modelCache.sharing === ModelCacheSharing.SHARED) {
      this.sharedModelCache = new k8s.KubePersistentVolumeClaim(this, 'ModelCache', {
        metadata: { name: `${this.name}-${MODEL_CACHE_VOLUME}`, namespace: this.namespace, labels: { ...this.common.pod.labels, ...componentLabels(this.common.placement, this.component, INFERENCE.name, version) }, annotations: this.common.pod.annotations },
        spec: claimSpec,
      });
    }

    const gpuResource = r.gpu?.resourceName ?? CONTRACT.gpu.resource;
    const workload = this.build({
      identity: this.identity,
      common: this.common,
      version,
      kind: 'StatefulSet',
      extendedResources: r.gpu ? { [gpuResource]: r.gpu.count } : undefined,
      command: this.command,
      args: this.runtime.args,
      listens: this.runtime.listens,
      sessionAffinitySeconds: this.runtime.sessionAffinitySeconds,
      probes: this.runtime.probes,
      volumeClaimTemplates: this.sharedModelCache ? undefined : [{ name: MODEL_CACHE_VOLUME, spec: claimSpec }],
      runtimeClassName: r.gpu ? r.gpu.runtimeClassName ?? CONTRACT.gpu.runtimeClass : undefined,
      nodeSelector: r.gpu ? { ...(r.gpu.nodeSelector ?? { [CONTRACT.gpu.nodeSelectorKey]: CONTRACT.gpu.nodeSelectorValue }) } : undefined,
      // The GPU operator taints GPU nodes with nvidia.com/gpu, MIG or not.
      tolerations: r.gpu ? [{ key: CONTRACT.gpu.resource, operator: 'Exists', effect: 'NoSchedule' }] : undefined,
      terminationGracePeriodSeconds: this.terminationGracePeriodSeconds,
    }, [...this.runtimeEnv, ...envVars({
      [CONTRACT.env.modelCacheDir]: CONTRACT.paths.models,
      [CONTRACT.env.device]: r.device,
      [CONTRACT.env.embedModel]: r.embedModel,
      [CONTRACT.env.allowDownload]: String(r.allowModelDownload),
      [CONTRACT.env.maxBatchSize]: String(r.maxBatchSize),
      [CONTRACT.env.hfHome]: `${CONTRACT.paths.cache}/huggingface`,
      // PyTorch would otherwise start one thread per node core, far beyond the CPU limit.
      [CONTRACT.env.ompThreads]: String(Math.max(1, Math.floor(this.common.resources.cpuLimitMillis / 1000))),
    })], [
      { volume: scratchVolume('tmp', r.tmpSizeMiB), mountPath: CONTRACT.paths.tmp },
      { volume: scratchVolume('cache', r.cacheSizeMiB), mountPath: CONTRACT.paths.cache },
      { volume: memoryVolume('dshm', r.shmSizeMiB), mountPath: CONTRACT.paths.shm },
    ]);
    if (this.sharedModelCache) {
      workload.addVolume({ name: MODEL_CACHE_VOLUME, persistentVolumeClaim: { claimName: this.sharedModelCache.name } }, { mountPath: CONTRACT.paths.models });
    } else {
      workload.addMount({ name: MODEL_CACHE_VOLUME, mountPath: CONTRACT.paths.models });
    }
    this.statefulSet = workload.workload;
  }

  private validate(r: ResolvedInference, props: StepFlowInferenceProps): void {
    const v = this.validator;
    const memoryLimitMiB = this.common.resources.memoryLimitMiB;
    const maxReplicas = replicaRange(this.common.replicas, this.common.autoscaling).max;
    if (r.gpu) {
      v.integer('gpu.count', r.gpu.count, 1, 16);
      v.objectName('gpu.runtimeClassName', r.gpu.runtimeClassName, 'a RuntimeClass');
      v.labels('gpu.nodeSelector', r.gpu.nodeSelector);
      if (r.gpu.resourceName !== undefined && (typeof r.gpu.resourceName !== 'string' || !EXTENDED_RESOURCE.test(r.gpu.resourceName) || r.gpu.resourceName.split('/')[0].endsWith('kubernetes.io'))) {
        v.fail('gpu.resourceName', r.gpu.resourceName, "expected an extended resource name <domain>/<name> outside kubernetes.io, e.g. 'nvidia.com/gpu' or 'nvidia.com/mig-1g.10gb'");
      }
    }
    v.member('device', r.device, InferenceDevice, 'InferenceDevice');
    v.member('modelCache.accessMode', r.modelCache.accessMode, ModelCacheAccessMode, 'ModelCacheAccessMode');
    v.member('modelCache.sharing', r.modelCache.sharing, ModelCacheSharing, 'ModelCacheSharing');
    v.objectName('modelCache.storageClassName', r.modelCache.storageClassName, 'a StorageClass');
    if (r.device === InferenceDevice.CUDA && !r.gpu) {
      v.fail('device', r.device, 'CUDA needs a GPU: set gpu, or use InferenceDevice.CPU / AUTO');
    }
    if (v.integer('shmSizeMiB', r.shmSizeMiB, 1, LIMITS.volumeMiB) && r.shmSizeMiB * 2 > memoryLimitMiB) {
      v.fail('shmSizeMiB', r.shmSizeMiB, `/dev/shm counts against the container's memory limit (resources.memoryLimitMiB = ${memoryLimitMiB}); use at most ${Math.floor(memoryLimitMiB / 2)}`);
    }
    v.integer('modelCache.sizeGiB', r.modelCache.sizeGiB, 1, LIMITS.claimGiB);
    if (r.modelCache.sharing === ModelCacheSharing.SHARED && r.modelCache.accessMode === ModelCacheAccessMode.READ_WRITE_ONCE && maxReplicas > 1) {
      v.fail('modelCache', props.modelCache, `${maxReplicas} replicas cannot share one ReadWriteOnce claim (pods on other nodes would never start); use ModelCacheSharing.PER_REPLICA or ModelCacheAccessMode.READ_WRITE_MANY`);
    }
    v.integer('startupTimeoutSeconds', r.startupTimeoutSeconds, PROBE_PERIOD_SECONDS, 3600);
    v.integer('maxBatchSize', r.maxBatchSize, 1, 4096);
    v.integer('tmpSizeMiB', r.tmpSizeMiB, 1, LIMITS.volumeMiB);
    v.integer('cacheSizeMiB', r.cacheSizeMiB, 1, LIMITS.volumeMiB);
    if (props.embedModel !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(props.embedModel)) {
      v.fail('embedModel', props.embedModel, 'expected a directory name under the model cache (letters, digits, ".", "_", "-")');
    }
  }
}
