import { ApiObject, Lazy } from 'cdk8s';
import { Construct } from 'constructs';
import * as k8s from '../../imports/k8s';
import { ComponentIdentity } from '../contract';
import { componentLabels, resourceName, selectorLabels, stableLabels } from './metadata';
import { envFromSources, nameOf } from './pod-settings';
import { AutoscalingOptions, DisruptionBudgetOptions } from '../types';
import { ResolvedCommon } from './resolve';
import { HPA_DEFAULTS, replicaRange } from './scaling';
import { restrictedContainerSecurityContext, restrictedPodSecurityContext } from './security';

/** Name of the container port every component exposes. */
export const HTTP_PORT_NAME = 'http';

/** The node label the kit's default spread uses. */
const HOSTNAME_TOPOLOGY = 'kubernetes.io/hostname';

/** Timing of the kubelet probes of one container. */
export interface ProbeTiming {
  readonly periodSeconds: number;
  readonly failureThreshold: number;
  readonly timeoutSeconds: number;
}

/** Probe timing of one container, per probe. */
export interface ProbeTimings {
  readonly startup: ProbeTiming;
  readonly liveness: ProbeTiming;
  readonly readiness: ProbeTiming;
}

/** The probe timing the core and python-sdk share: a minute to start, a restart after 30 s of silence. */
export const DEFAULT_PROBE_TIMINGS: ProbeTimings = {
  startup: { periodSeconds: 2, failureThreshold: 30, timeoutSeconds: 2 },
  liveness: { periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
  readiness: { periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 2 },
};

/** One probe: an HTTP GET on the container's port, or a command (for workers with no port). */
export type ProbeAction = { readonly httpPath: string } | { readonly command: string[] };

export interface ProbeSet {
  readonly startup: ProbeAction & ProbeTiming;
  readonly liveness?: ProbeAction & ProbeTiming;
  readonly readiness: ProbeAction & ProbeTiming;
}

/** Everything one component workload needs, resolved (no optional defaults left). */
export interface WorkloadSpec {
  /** Label, names, container, port and user of the component. */
  readonly identity: ComponentIdentity;
  /** Placement, image, scaling and resources, resolved from the component's props. */
  readonly common: ResolvedCommon;
  /** Value of the `app.kubernetes.io/version` label; none when undefined. */
  readonly version: string | undefined;
  readonly kind: 'Deployment' | 'StatefulSet';
  /** Extended resources with requests = limits (e.g. `nvidia.com/gpu`). */
  readonly extendedResources?: Record<string, number>;
  readonly command: string[];
  readonly args: string[];
  /** Whether the process listens on the contract port (false for gRPC-pull workers). */
  readonly listens: boolean;
  /**
   * Keep each client on one pod (Service `sessionAffinity: ClientIP`) for this long.
   * @default - no affinity
   */
  readonly sessionAffinitySeconds?: number;
  readonly probes: ProbeSet;
  readonly volumeClaimTemplates?: { readonly name: string; readonly spec: k8s.PersistentVolumeClaimSpec }[];
  /** Pod annotations, read when the manifest is rendered. */
  readonly podAnnotations?: () => Record<string, string> | undefined;
  /** Init containers, read when the manifest is rendered. */
  readonly initContainers?: () => k8s.Container[] | undefined;
  readonly runtimeClassName?: string;
  /** The component's own node selector (GPU nodes), merged with the pod settings'. */
  readonly nodeSelector?: Record<string, string>;
  /** The component's own tolerations (the GPU taint), before the pod settings'. */
  readonly tolerations?: k8s.Toleration[];
  readonly terminationGracePeriodSeconds: number;
}

/**
 * What a container writes to node disk outside its volumes: its log, which the kubelet
 * rotates at 10 MiB and keeps 5 of (50 MiB), with a margin.
 */
export const LOG_EPHEMERAL_MIB = 64;

/** Resources of a short helper container (an init container that only waits). */
export const HELPER_RESOURCES: k8s.ResourceRequirements = {
  requests: { 'cpu': k8s.Quantity.fromString('10m'), 'memory': k8s.Quantity.fromString('16Mi'), 'ephemeral-storage': k8s.Quantity.fromString('16Mi') },
  limits: { 'cpu': k8s.Quantity.fromString('100m'), 'memory': k8s.Quantity.fromString('32Mi'), 'ephemeral-storage': k8s.Quantity.fromString(`${LOG_EPHEMERAL_MIB}Mi`) },
};

/** Quantity helpers, so that numbers never end up where the API expects a Quantity. */
export const cpu = (millis: number) => k8s.Quantity.fromString(`${millis}m`);
export const mebibytes = (mib: number) => k8s.Quantity.fromString(`${mib}Mi`);
export const gibibytes = (gib: number) => k8s.Quantity.fromString(`${gib}Gi`);

/** A disk-backed emptyDir with a size limit. */
export function scratchVolume(name: string, sizeMiB: number): k8s.Volume {
  return { name, emptyDir: { sizeLimit: mebibytes(sizeMiB) } };
}

/** A memory-backed emptyDir (its pages count against the container's memory limit). */
export function memoryVolume(name: string, sizeMiB: number): k8s.Volume {
  return { name, emptyDir: { medium: 'Memory', sizeLimit: mebibytes(sizeMiB) } };
}

const BINARY_UNITS: Record<string, number> = { '': 1 / 2 ** 20, 'Ki': 1 / 1024, 'Mi': 1, 'Gi': 1024, 'Ti': 1024 ** 2, 'k': 1e3 / 2 ** 20, 'M': 1e6 / 2 ** 20, 'G': 1e9 / 2 ** 20, 'T': 1e12 / 2 ** 20 };

/** A storage Quantity in MiB, rounded up (0 when it is not a plain size such as `512Mi` or `2Gi`). */
export function quantityMiB(quantity: string): number {
  const m = quantity.match(/^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T|)$/);
  return m ? Math.ceil(Number(m[1]) * BINARY_UNITS[m[2]]) : 0;
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

/**
 * The Kubernetes objects of one component: ServiceAccount, workload, Service and, when
 * asked for, HorizontalPodAutoscaler and PodDisruptionBudget. One construct builds them
 * for every component, so the components cannot drift apart in security settings or
 * labels. The pod template is rendered at synth time, so environment variables and
 * volumes added after construction are part of it.
 */
export class ComponentWorkload extends Construct {
  public readonly name: string;
  public readonly selector: Record<string, string>;
  /** The team's labels and the kit's. */
  public readonly labels: Record<string, string>;
  /** The kit's own labels only, for immutable fields (claim templates). */
  private readonly kitLabels: Record<string, string>;
  /** The component's own ServiceAccount; undefined when the props name one of the team's. */
  public readonly serviceAccount?: k8s.KubeServiceAccount;
  /** Name of the ServiceAccount the pods run as. */
  public readonly serviceAccountName: string;
  public readonly workload: ApiObject;
  public readonly service?: k8s.KubeService;
  public readonly headlessService?: k8s.KubeService;
  public readonly autoscaler?: k8s.KubeHorizontalPodAutoscalerV2;
  public readonly disruptionBudget?: k8s.KubePodDisruptionBudget;

  private readonly env = new Map<string, k8s.EnvVar>();
  private readonly volumes: k8s.Volume[] = [];
  private readonly volumeMounts: k8s.VolumeMount[] = [];

  constructor(scope: Construct, id: string, private readonly spec: WorkloadSpec) {
    super(scope, id);
    const { placement } = spec.common;
    const identity = spec.identity;
    this.name = resourceName(placement, identity.name);
    this.selector = selectorLabels(placement, identity.component);
    // The team's labels first: the kit's own keys are reserved (and win).
    this.kitLabels = componentLabels(placement, identity.component, identity.name, spec.version);
    this.labels = { ...spec.common.pod.labels, ...this.kitLabels };
    if (spec.common.serviceAccount) {
      this.serviceAccountName = spec.common.serviceAccount.name;
    } else {
      this.serviceAccount = new k8s.KubeServiceAccount(this, 'ServiceAccount', { metadata: this.metadata, automountServiceAccountToken: false });
      this.serviceAccountName = this.name;
    }
    this.node.addValidation({ validate: () => this.validateMounts() });
    if (spec.listens) this.service = this.clusterService();
    if (spec.kind === 'StatefulSet') this.headlessService = this.headless();
    this.workload = spec.kind === 'Deployment' ? this.deployment() : this.statefulSet(this.headlessService!);
    if (spec.common.autoscaling) this.autoscaler = this.horizontalAutoscaler(spec.common.autoscaling);
    if (spec.common.disruptionBudget) this.disruptionBudget = this.budget(spec.common.disruptionBudget);
  }

  /** Metadata of every object of the component: its labels and the team's annotations. */
  public get metadata(): k8s.ObjectMeta {
    const annotations = this.spec.common.pod.annotations;
    return { name: this.name, namespace: this.spec.common.placement.namespace, labels: this.labels, ...(annotations ? { annotations: { ...annotations } } : {}) };
  }

  private httpPort(): k8s.ServicePort {
    return { name: HTTP_PORT_NAME, port: this.spec.identity.port, targetPort: k8s.IntOrString.fromString(HTTP_PORT_NAME), protocol: 'TCP' };
  }

  private clusterService(): k8s.KubeService {
    const affinity = this.spec.sessionAffinitySeconds;
    return new k8s.KubeService(this, 'Service', {
      metadata: this.metadata,
      spec: {
        type: 'ClusterIP',
        selector: this.selector,
        ...(affinity !== undefined ? { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIp: { timeoutSeconds: affinity } } } : {}),
        ports: [this.httpPort()],
      },
    });
  }

  /** The StatefulSet's governing Service: its pods' DNS names, ready or not. */
  private headless(): k8s.KubeService {
    return new k8s.KubeService(this, 'HeadlessService', {
      metadata: { ...this.metadata, name: `${this.name}-headless` },
      spec: {
        clusterIp: 'None',
        publishNotReadyAddresses: true,
        selector: this.selector,
        // Pull workers listen on nothing: their pods get DNS names but no port.
        ports: this.spec.listens ? [this.httpPort()] : undefined,
      },
    });
  }

  /** With an autoscaler the workload carries no replicas, so `kubectl apply` never fights it. */
  private get replicas(): number | undefined {
    return this.spec.common.autoscaling ? undefined : this.spec.common.replicas;
  }

  private deployment(): k8s.KubeDeployment {
    return new k8s.KubeDeployment(this, 'Deployment', {
      metadata: this.metadata,
      spec: {
        replicas: this.replicas,
        revisionHistoryLimit: 5,
        selector: { matchLabels: this.selector },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: k8s.IntOrString.fromString('25%'), maxUnavailable: k8s.IntOrString.fromNumber(0) } },
        template: Lazy.any({ produce: () => this.podTemplate() }),
      },
    });
  }

  private statefulSet(headless: k8s.KubeService): k8s.KubeStatefulSet {
    return new k8s.KubeStatefulSet(this, 'StatefulSet', {
      metadata: this.metadata,
      spec: {
        replicas: this.replicas,
        serviceName: headless.name,
        podManagementPolicy: 'Parallel',
        revisionHistoryLimit: 5,
        selector: { matchLabels: this.selector },
        updateStrategy: { type: 'RollingUpdate' },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        // Claim templates are immutable: only labels that never change between releases (no version).
        volumeClaimTemplates: this.spec.volumeClaimTemplates?.map((t) => ({ metadata: { name: t.name, labels: stableLabels(this.kitLabels) }, spec: t.spec })),
        template: Lazy.any({ produce: () => this.podTemplate() }),
      },
    });
  }

  private horizontalAutoscaler(a: AutoscalingOptions): k8s.KubeHorizontalPodAutoscalerV2 {
    const utilization = (name: string, percent: number): k8s.MetricSpecV2 => ({ type: 'Resource', resource: { name, target: { type: 'Utilization', averageUtilization: percent } } });
    return new k8s.KubeHorizontalPodAutoscalerV2(this, 'Autoscaler', {
      metadata: this.metadata,
      spec: {
        scaleTargetRef: { apiVersion: this.workload.apiVersion, kind: this.workload.kind, name: this.name },
        minReplicas: a.minReplicas,
        maxReplicas: a.maxReplicas,
        metrics: [
          utilization('cpu', a.cpuUtilizationPercent ?? HPA_DEFAULTS.cpuUtilizationPercent),
          utilization('memory', a.memoryUtilizationPercent ?? HPA_DEFAULTS.memoryUtilizationPercent),
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

  private budget(b: DisruptionBudgetOptions): k8s.KubePodDisruptionBudget {
    return new k8s.KubePodDisruptionBudget(this, 'DisruptionBudget', {
      metadata: this.metadata,
      spec: {
        selector: { matchLabels: this.selector },
        ...(b.maxUnavailable !== undefined ? { maxUnavailable: k8s.IntOrString.fromNumber(b.maxUnavailable) } : {}),
        ...(b.minAvailable !== undefined ? { minAvailable: k8s.IntOrString.fromNumber(b.minAvailable) } : {}),
        unhealthyPodEvictionPolicy: 'AlwaysAllow',
      },
    });
  }

  /** Every object of this component. */
  public get objects(): ApiObject[] {
    return [this.serviceAccount, this.service, this.headlessService, this.workload, this.autoscaler, this.disruptionBudget]
      .filter((o): o is ApiObject => o !== undefined);
  }

  /** Set an environment variable of the main container; a name set before keeps its place and takes the new value. */
  public setEnv(variable: k8s.EnvVar): void {
    this.env.set(variable.name, variable);
  }

  /** Add a volume to the pod and mount it into the main container. */
  public addVolume(volume: k8s.Volume, mount: Omit<k8s.VolumeMount, 'name'>): void {
    this.volumes.push(volume);
    this.volumeMounts.push({ name: volume.name, ...mount });
  }

  /** Mount a volume that the pod gets elsewhere (a StatefulSet's claim template) into the main container. */
  public addMount(mount: k8s.VolumeMount): void {
    this.volumeMounts.push(mount);
  }

  /** Disk-backed emptyDirs count against the pod's ephemeral storage; memory-backed ones against memory. */
  private ephemeralLimitMiB(): number {
    const onDisk = this.volumes
      .filter((v) => v.emptyDir && v.emptyDir.medium !== 'Memory')
      .map((v) => quantityMiB(String(v.emptyDir?.sizeLimit?.value ?? '0')));
    return LOG_EPHEMERAL_MIB + onDisk.reduce((a, b) => a + b, 0);
  }

  /**
   * Several replicas: prefer different nodes, so one node's loss leaves the others serving;
   * then the team's constraints (one on the host name replaces ours), selecting the
   * component's own pods unless they say otherwise.
   */
  private spread(): k8s.TopologySpreadConstraint[] | undefined {
    const own = (this.spec.common.pod.topologySpreadConstraints ?? []).map((c) => ({ ...c, labelSelector: c.labelSelector ?? { matchLabels: this.selector } }));
    const kit: k8s.TopologySpreadConstraint[] = replicaRange(this.spec.common.replicas, this.spec.common.autoscaling).min < 2
      || own.some((c) => c.topologyKey === HOSTNAME_TOPOLOGY) ? [] : [{
        maxSkew: 1,
        topologyKey: HOSTNAME_TOPOLOGY,
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: this.selector },
      }];
    const all = [...kit, ...own];
    return all.length > 0 ? all : undefined;
  }

  /** Two volumes of one name, or two mounts at one path, would be rejected by the API server. */
  private validateMounts(): string[] {
    const errors: string[] = [];
    const seen = (values: string[], what: string) => values
      .filter((value, i) => values.indexOf(value) !== i)
      .forEach((value) => errors.push(`prop 'volumes' is ${JSON.stringify(value)}: the pod already has a ${what} ${JSON.stringify(value)} (the component's own or another in volumes); choose another`));
    seen(this.volumes.map((v) => v.name), 'volume named');
    seen(this.volumeMounts.map((m) => m.mountPath), 'mount at');
    return errors;
  }

  private podTemplate(): k8s.PodTemplateSpec {
    const spec = this.spec;
    const identity = spec.identity;
    const pod = spec.common.pod;
    const r = spec.common.resources;
    const extended = Object.fromEntries(Object.entries(spec.extendedResources ?? {}).map(([k, n]) => [k, k8s.Quantity.fromNumber(n)]));
    const container: k8s.Container = {
      name: identity.container,
      image: spec.common.image,
      imagePullPolicy: spec.common.imagePullPolicy,
      command: spec.command,
      // Left out when empty: with `command` set, Kubernetes then ignores the image's CMD too.
      args: spec.args.length > 0 ? spec.args : undefined,
      envFrom: envFromSources(pod.envFrom),
      env: [...this.env.values()],
      ports: spec.listens ? [{ name: HTTP_PORT_NAME, containerPort: identity.port, protocol: 'TCP' }] : undefined,
      resources: {
        requests: { 'cpu': cpu(r.cpuRequestMillis), 'memory': mebibytes(r.memoryRequestMiB), 'ephemeral-storage': mebibytes(r.ephemeralStorageRequestMiB ?? LOG_EPHEMERAL_MIB), ...extended },
        limits: { 'cpu': cpu(r.cpuLimitMillis), 'memory': mebibytes(r.memoryLimitMiB), 'ephemeral-storage': mebibytes(r.ephemeralStorageLimitMiB ?? this.ephemeralLimitMiB()), ...extended },
      },
      securityContext: restrictedContainerSecurityContext(identity.uid, identity.gid),
      startupProbe: probe(spec.probes.startup),
      livenessProbe: spec.probes.liveness ? probe(spec.probes.liveness) : undefined,
      readinessProbe: probe(spec.probes.readiness),
      volumeMounts: [...this.volumeMounts],
      terminationMessagePolicy: 'FallbackToLogsOnError',
    };
    const annotations = { ...pod.annotations, ...spec.podAnnotations?.() };
    const nodeSelector = { ...pod.nodeSelector, ...spec.nodeSelector };
    const tolerations = [...spec.tolerations ?? [], ...pod.tolerations ?? []];
    return {
      metadata: { labels: this.labels, annotations: Object.keys(annotations).length > 0 ? annotations : undefined },
      spec: {
        serviceAccountName: this.serviceAccountName,
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        imagePullSecrets: pod.imagePullSecrets?.length ? pod.imagePullSecrets.map((s) => ({ name: nameOf(s) })) : undefined,
        securityContext: restrictedPodSecurityContext(identity.uid, identity.gid),
        terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds,
        runtimeClassName: spec.runtimeClassName,
        priorityClassName: pod.priorityClassName,
        affinity: pod.affinity,
        topologySpreadConstraints: this.spread(),
        nodeSelector: Object.keys(nodeSelector).length > 0 ? nodeSelector : undefined,
        tolerations: tolerations.length > 0 ? tolerations : undefined,
        initContainers: spec.initContainers?.(),
        containers: [container],
        volumes: [...this.volumes],
      },
    };
  }
}
