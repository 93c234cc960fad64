import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import * as k8s from '../../imports/k8s';
import { CONTRACT, ComponentId } from '../contract';
import { AutoscalingOptions, ComputeResources, DisruptionBudgetOptions } from '../types';
import type { ResolvedCommon } from '../components/common';
import { componentLabels, resourceName, selectorLabels } from './metadata';
import { restrictedContainerSecurityContext, restrictedPodSecurityContext } from './security';
import { PropValidator } from './validation';

/** Defaults of the autoscaler, used when the caller leaves a target out. */
export const HPA_DEFAULTS = { cpuUtilizationPercent: 70, memoryUtilizationPercent: 80, scaleDownStabilizationSeconds: 300 };

/** Name of the container port every component exposes. */
export const HTTP_PORT_NAME = 'http';

/** Timing of the kubelet probes of one container. */
export interface ProbeTiming {
  readonly periodSeconds: number;
  readonly failureThreshold: number;
  readonly timeoutSeconds: number;
}

/** One probe: an HTTP GET on the container's port, or a command (for workers with no port). */
export type ProbeAction = { readonly httpPath: string } | { readonly command: string[] };

export interface ProbeSet {
  readonly startup: ProbeAction & ProbeTiming;
  /** Left out for workers that exit by themselves when they lose the core server. */
  readonly liveness?: ProbeAction & ProbeTiming;
  readonly readiness: ProbeAction & ProbeTiming;
}

/** Everything one component workload needs, resolved (no optional defaults left). */
export interface WorkloadSpec {
  readonly component: ComponentId;
  /** Placement, image, scaling and resources, resolved from the component's props. */
  readonly common: ResolvedCommon;
  readonly version: string;
  readonly kind: 'Deployment' | 'StatefulSet';
  /** Extended resources with requests = limits (e.g. `nvidia.com/gpu`). */
  readonly extendedResources?: Record<string, number>;
  readonly command: string[];
  readonly args: string[];
  readonly env: Record<string, string>;
  /** Whether the process listens on the contract port (false for gRPC-pull workers). */
  readonly listens: boolean;
  /**
   * Keep each client on one pod (Service `sessionAffinity: ClientIP`) for this long.
   * @default - no affinity
   */
  readonly sessionAffinitySeconds?: number;
  readonly probes: ProbeSet;
  readonly volumes: k8s.Volume[];
  readonly volumeMounts: k8s.VolumeMount[];
  readonly volumeClaimTemplates?: { readonly name: string; readonly spec: k8s.PersistentVolumeClaimSpec }[];
  readonly podAnnotations?: Record<string, string>;
  readonly initContainers?: k8s.Container[];
  readonly runtimeClassName?: string;
  readonly nodeSelector?: Record<string, string>;
  readonly tolerations?: k8s.Toleration[];
  readonly terminationGracePeriodSeconds: number;
}

/** Quantity helpers, so that numbers never end up where the API expects a Quantity. */
export const cpu = (millis: number) => k8s.Quantity.fromString(`${millis}m`);
export const mebibytes = (mib: number) => k8s.Quantity.fromString(`${mib}Mi`);
export const gibibytes = (gib: number) => k8s.Quantity.fromString(`${gib}Gi`);

/** The fewest and the most replicas a workload runs: the autoscaler's range, or its fixed count. */
export function replicaRange(replicas: number, autoscaling?: AutoscalingOptions): { min: number; max: number } {
  return autoscaling ? { min: autoscaling.minReplicas, max: autoscaling.maxReplicas } : { min: replicas, max: replicas };
}

/** Check the options that every component shares; returns nothing, records failures. */
export function validateScaling(v: PropValidator, replicas: number, autoscaling?: AutoscalingOptions, pdb?: DisruptionBudgetOptions): void {
  v.integer('replicas', replicas, 1);
  if (autoscaling) {
    const okMin = v.integer('autoscaling.minReplicas', autoscaling.minReplicas, 1);
    const okMax = v.integer('autoscaling.maxReplicas', autoscaling.maxReplicas, 1);
    if (okMin && okMax && autoscaling.minReplicas > autoscaling.maxReplicas) {
      v.fail('autoscaling.minReplicas', autoscaling.minReplicas, `must not exceed autoscaling.maxReplicas (${autoscaling.maxReplicas})`);
    }
    v.integer('autoscaling.cpuUtilizationPercent', autoscaling.cpuUtilizationPercent, 1, 100);
    v.integer('autoscaling.memoryUtilizationPercent', autoscaling.memoryUtilizationPercent, 1, 100);
    v.integer('autoscaling.scaleDownStabilizationSeconds', autoscaling.scaleDownStabilizationSeconds, 0, 3600);
  }
  if (pdb) {
    const floor = replicaRange(replicas, autoscaling).min;
    const given = [pdb.maxUnavailable, pdb.minAvailable].filter((x) => x !== undefined).length;
    if (given !== 1) {
      v.fail('disruptionBudget', pdb, 'give exactly one of maxUnavailable or minAvailable');
    } else if (pdb.maxUnavailable !== undefined) {
      if (v.integer('disruptionBudget.maxUnavailable', pdb.maxUnavailable, 0) && pdb.maxUnavailable === 0) {
        v.fail('disruptionBudget.maxUnavailable', 0, 'a budget of 0 blocks every voluntary eviction (node drains hang); use 1 or more');
      }
    } else if (pdb.minAvailable !== undefined && v.integer('disruptionBudget.minAvailable', pdb.minAvailable, 0) && pdb.minAvailable >= floor) {
      v.fail('disruptionBudget.minAvailable', pdb.minAvailable, `must be below the replica floor (${floor}), otherwise no pod can ever be evicted`);
    }
  }
}

export function validateResources(v: PropValidator, r: ComputeResources): void {
  const ok = [
    v.integer('resources.cpuRequestMillis', r.cpuRequestMillis, 1),
    v.integer('resources.cpuLimitMillis', r.cpuLimitMillis, 1),
    v.integer('resources.memoryRequestMiB', r.memoryRequestMiB, 1),
    v.integer('resources.memoryLimitMiB', r.memoryLimitMiB, 1),
  ];
  if (ok.every(Boolean)) {
    if (r.cpuRequestMillis > r.cpuLimitMillis) v.fail('resources.cpuRequestMillis', r.cpuRequestMillis, `must not exceed resources.cpuLimitMillis (${r.cpuLimitMillis})`);
    if (r.memoryRequestMiB > r.memoryLimitMiB) v.fail('resources.memoryRequestMiB', r.memoryRequestMiB, `must not exceed resources.memoryLimitMiB (${r.memoryLimitMiB})`);
  }
}

function probe(action: ProbeAction & ProbeTiming): k8s.Probe {
  const handler = 'httpPath' in action
    ? { httpGet: { path: action.httpPath, port: k8s.IntOrString.fromString(HTTP_PORT_NAME), scheme: 'HTTP' } }
    : { exec: { command: action.command } };
  return {
    ...handler,
    periodSeconds: action.periodSeconds,
    failureThreshold: action.failureThreshold,
    timeoutSeconds: action.timeoutSeconds,
    successThreshold: 1,
  };
}

/** An emptyDir volume with a size limit and its mount. */
export function scratchVolume(name: string, mountPath: string, sizeMiB: number, medium?: 'Memory'): { volume: k8s.Volume; mount: k8s.VolumeMount } {
  return {
    volume: { name, emptyDir: { sizeLimit: mebibytes(sizeMiB), ...(medium ? { medium } : {}) } },
    mount: { name, mountPath },
  };
}

/**
 * The Kubernetes objects of one component: ServiceAccount, workload, Service and, when
 * asked for, HorizontalPodAutoscaler and PodDisruptionBudget. Built in one place so that
 * the three components cannot drift apart in their security settings or labels.
 */
export class ComponentObjects {
  public readonly name: string;
  public readonly selector: Record<string, string>;
  public readonly labels: Record<string, string>;
  public readonly serviceAccount: k8s.KubeServiceAccount;
  public readonly workload: ApiObject;
  public readonly service?: k8s.KubeService;
  public readonly headlessService?: k8s.KubeService;
  public readonly autoscaler?: k8s.KubeHorizontalPodAutoscalerV2;
  public readonly disruptionBudget?: k8s.KubePodDisruptionBudget;

  constructor(scope: Construct, spec: WorkloadSpec) {
    const c = CONTRACT.components[spec.component];
    const { placement, autoscaling, disruptionBudget } = spec.common;
    const ns = placement.namespace;
    this.name = resourceName(placement, c.name);
    this.selector = selectorLabels(placement, spec.component);
    this.labels = componentLabels(placement, spec.component, spec.version);
    const metadata = { name: this.name, namespace: ns, labels: this.labels };

    this.serviceAccount = new k8s.KubeServiceAccount(scope, 'ServiceAccount', {
      metadata,
      automountServiceAccountToken: false,
    });

    if (spec.listens) {
      this.service = new k8s.KubeService(scope, 'Service', {
        metadata,
        spec: {
          type: 'ClusterIP',
          selector: this.selector,
          ...(spec.sessionAffinitySeconds !== undefined
            ? { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIp: { timeoutSeconds: spec.sessionAffinitySeconds } } }
            : {}),
          ports: [{ name: HTTP_PORT_NAME, port: c.port, targetPort: k8s.IntOrString.fromString(HTTP_PORT_NAME), protocol: 'TCP' }],
        },
      });
    }

    const template = this.podTemplate(spec);
    const replicas = autoscaling ? undefined : spec.common.replicas;
    if (spec.kind === 'Deployment') {
      this.workload = new k8s.KubeDeployment(scope, 'Deployment', {
        metadata,
        spec: {
          replicas,
          revisionHistoryLimit: 5,
          selector: { matchLabels: this.selector },
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: k8s.IntOrString.fromString('25%'), maxUnavailable: k8s.IntOrString.fromNumber(0) } },
          template,
        },
      });
    } else {
      const headless = this.headlessService = new k8s.KubeService(scope, 'HeadlessService', {
        metadata: { ...metadata, name: `${this.name}-headless` },
        spec: {
          clusterIp: 'None',
          publishNotReadyAddresses: true,
          selector: this.selector,
          // Pull workers listen on nothing: their pods get DNS names but no port.
          ports: spec.listens ? [{ name: HTTP_PORT_NAME, port: c.port, targetPort: k8s.IntOrString.fromString(HTTP_PORT_NAME), protocol: 'TCP' }] : undefined,
        },
      });
      this.workload = new k8s.KubeStatefulSet(scope, 'StatefulSet', {
        metadata,
        spec: {
          replicas,
          serviceName: headless.name,
          podManagementPolicy: 'Parallel',
          revisionHistoryLimit: 5,
          selector: { matchLabels: this.selector },
          updateStrategy: { type: 'RollingUpdate' },
          persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
          volumeClaimTemplates: spec.volumeClaimTemplates?.map((t) => ({ metadata: { name: t.name, labels: this.labels }, spec: t.spec })),
          template,
        },
      });
    }

    if (autoscaling) {
      const a = autoscaling;
      this.autoscaler = new k8s.KubeHorizontalPodAutoscalerV2(scope, 'Autoscaler', {
        metadata,
        spec: {
          scaleTargetRef: { apiVersion: this.workload.apiVersion, kind: this.workload.kind, name: this.name },
          minReplicas: a.minReplicas,
          maxReplicas: a.maxReplicas,
          metrics: [
            { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: a.cpuUtilizationPercent ?? HPA_DEFAULTS.cpuUtilizationPercent } } },
            { type: 'Resource', resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: a.memoryUtilizationPercent ?? HPA_DEFAULTS.memoryUtilizationPercent } } },
          ],
          behavior: {
            scaleDown: {
              stabilizationWindowSeconds: a.scaleDownStabilizationSeconds ?? HPA_DEFAULTS.scaleDownStabilizationSeconds,
              selectPolicy: 'Max',
              policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }],
            },
          },
        },
      });
    }

    if (disruptionBudget) {
      const b = disruptionBudget;
      this.disruptionBudget = new k8s.KubePodDisruptionBudget(scope, 'DisruptionBudget', {
        metadata,
        spec: {
          selector: { matchLabels: this.selector },
          ...(b.maxUnavailable !== undefined ? { maxUnavailable: k8s.IntOrString.fromNumber(b.maxUnavailable) } : {}),
          ...(b.minAvailable !== undefined ? { minAvailable: k8s.IntOrString.fromNumber(b.minAvailable) } : {}),
          unhealthyPodEvictionPolicy: 'AlwaysAllow',
        },
      });
    }
  }

  /** Every object of this component, for dependency wiring. */
  public get objects(): ApiObject[] {
    return [this.serviceAccount, this.service, this.headlessService, this.workload, this.autoscaler, this.disruptionBudget]
      .filter((o): o is ApiObject => o !== undefined);
  }

  /** Several replicas: prefer different nodes, so one node's loss leaves the others serving. */
  private spread(spec: WorkloadSpec): k8s.TopologySpreadConstraint[] | undefined {
    if (replicaRange(spec.common.replicas, spec.common.autoscaling).min < 2) return undefined;
    return [{
      maxSkew: 1,
      topologyKey: 'kubernetes.io/hostname',
      whenUnsatisfiable: 'ScheduleAnyway',
      labelSelector: { matchLabels: this.selector },
    }];
  }

  private podTemplate(spec: WorkloadSpec): k8s.PodTemplateSpec {
    const c = CONTRACT.components[spec.component];
    const r = spec.common.resources;
    const extended = Object.fromEntries(Object.entries(spec.extendedResources ?? {}).map(([k, n]) => [k, k8s.Quantity.fromNumber(n)]));
    const container: k8s.Container = {
      name: c.container,
      image: spec.common.image,
      imagePullPolicy: spec.common.imagePullPolicy,
      command: spec.command,
      // Left out when empty: with `command` set, Kubernetes then ignores the image's CMD too.
      args: spec.args.length > 0 ? spec.args : undefined,
      env: Object.entries(spec.env).map(([name, value]) => ({ name, value })),
      ports: spec.listens ? [{ name: HTTP_PORT_NAME, containerPort: c.port, protocol: 'TCP' }] : undefined,
      resources: {
        requests: { cpu: cpu(r.cpuRequestMillis), memory: mebibytes(r.memoryRequestMiB), ...extended },
        limits: { cpu: cpu(r.cpuLimitMillis), memory: mebibytes(r.memoryLimitMiB), ...extended },
      },
      securityContext: restrictedContainerSecurityContext(c.uid, c.gid),
      startupProbe: probe(spec.probes.startup),
      livenessProbe: spec.probes.liveness ? probe(spec.probes.liveness) : undefined,
      readinessProbe: probe(spec.probes.readiness),
      volumeMounts: spec.volumeMounts,
      terminationMessagePolicy: 'FallbackToLogsOnError',
    };
    return {
      metadata: { labels: this.labels, annotations: spec.podAnnotations },
      spec: {
        serviceAccountName: this.name,
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        securityContext: restrictedPodSecurityContext(c.uid, c.gid),
        terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds,
        runtimeClassName: spec.runtimeClassName,
        topologySpreadConstraints: this.spread(spec),
        nodeSelector: spec.nodeSelector,
        tolerations: spec.tolerations,
        initContainers: spec.initContainers,
        containers: [container],
        volumes: spec.volumes,
      },
    };
  }
}

