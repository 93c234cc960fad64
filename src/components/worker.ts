import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { CONTRACT } from '../contract';
import { imageTagOf } from '../internal/resolve';
import { DEFAULT_PROBE_TIMINGS } from '../internal/workload';
import { StepFlowComponentServer, StepFlowComponentServerProps, WorkerProbes } from './component-server';

/** Props of {@link StepFlowWorker}: a team's own StepFlow component server. */
export interface StepFlowWorkerProps extends StepFlowComponentServerProps {
  /**
   * Base name of its objects (`<prefix><name>`) and the value of its `component` label,
   * e.g. `team-tools`: a DNS-1035 label.
   */
  readonly name: string;
  /** The image, e.g. `registry.example.com/team/tools:1.0.0`. */
  readonly image: string;
  /**
   * The core routes `/<routePrefix>/{*component}` to it; also its plugin name.
   */
  readonly routePrefix: string;
  /**
   * The queue a gRPC-pull worker takes its tasks from (StepFlow 0.13).
   * @default - the route prefix
   */
  readonly queueName?: string;
  /**
   * The command that runs it; e.g. `['python3', '-m', 'stepflow_kit_worker']` with
   * `STEPFLOW_KIT_SERVER=<module>:<attribute>` in env, in an image built on the kit's
   * python-sdk image, for the reconnect loop and its heartbeat.
   */
  readonly command: string[];
  /**
   * @default - StepFlow 0.11: `--host 0.0.0.0 --port <port>`; 0.13: none
   */
  readonly args?: string[];
  /**
   * The port a StepFlow 0.11 server listens on (0.13 workers listen on none).
   * @default 8081
   */
  readonly port?: number;
  /** @default 65532 */
  readonly runAsUser?: number;
  /** @default - the same as runAsUser */
  readonly runAsGroup?: number;
  /**
   * Probes over the kit's, kind by kind: 0.13 checks that the core answers (startup), that
   * the reconnect loop's ready file is fresh (readiness: connected to the core, or reconnecting
   * for less than 60 s) and its heartbeat file (liveness; `false` for images without the kit's
   * loop, whose readiness then checks that the core answers); 0.11 GETs `healthPath`.
   * @default - the kit's probes
   */
  readonly probes?: WorkerProbes;
  /**
   * Health endpoint of a StepFlow 0.11 server.
   * @default '/health'
   */
  readonly healthPath?: string;
  /**
   * Value of the `app.kubernetes.io/version` label.
   * @default - the image's tag (none for a digest)
   */
  readonly version?: string;
  /**
   * Size limit of the writable `/tmp` emptyDir (also `HOME`).
   * @default 256
   */
  readonly tmpSizeMiB?: number;
  /**
   * Size limit of the writable cache emptyDir (`XDG_CACHE_HOME`).
   * @default 512
   */
  readonly cacheSizeMiB?: number;
}

const SDK = CONTRACT.components['python-sdk'];
const DEFAULT_RESOURCES = { cpuRequestMillis: 250, cpuLimitMillis: 1000, memoryRequestMiB: 256, memoryLimitMiB: 1024 };
/** What a route prefix or queue name may be: one path segment. */
const ROUTE_SEGMENT = /^[a-z][a-z0-9_-]{0,62}$/;
/** A DNS-1035 label: Service names. */
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const BUILTIN_NAMES: readonly string[] = Object.entries(CONTRACT.components).flatMap(([id, c]) => [id, c.name]);

/**
 * A team's own StepFlow component server, deployed like the built-in ones: ServiceAccount,
 * Deployment, the same security context, environment, probes and (in a StepFlowChart)
 * NetworkPolicies, and in StepFlow 0.11 a Service the core calls. Register it with the
 * core: `chart.addWorker(props)` builds and registers one; a worker built apart is
 * registered with `chart.addComponentServer(worker)` or the core's `componentServers`.
 */
export class StepFlowWorker extends StepFlowComponentServer {
  /** The worker's Deployment. */
  public readonly deployment: ApiObject;
  /** Its route prefix in the core's config. */
  public readonly routePrefix: string;

  constructor(scope: Construct, id: string, props: StepFlowWorkerProps) {
    // Invalid props are reported by validateOwn; the strings below only keep the rendering going.
    const name = typeof props?.name === 'string' ? props.name : 'worker';
    const uid = props?.runAsUser ?? SDK.uid;
    const healthPath = props?.healthPath ?? SDK.health.liveness;
    super(scope, id, { component: name, name, container: name, port: props?.port ?? SDK.port, uid, gid: props?.runAsGroup ?? uid }, undefined, {
      routePrefix: String(props?.routePrefix),
      queueName: String(props?.queueName ?? props?.routePrefix),
      command: () => (Array.isArray(props?.command) ? [...props.command] : []),
      args: props?.args,
      health: { startup: healthPath, liveness: healthPath, readiness: healthPath },
      probes: props?.probes,
    }, props, DEFAULT_RESOURCES, DEFAULT_PROBE_TIMINGS, 30);
    this.routePrefix = props.routePrefix;
    const version = props.version ?? workerVersion(typeof props.image === 'string' ? props.image : this.common.image);
    this.validateOwn(props, version);
    this.deployment = this.buildScratchDeployment(version, props);
  }

  private validateOwn(props: StepFlowWorkerProps, version: string | undefined): void {
    const v = this.validator;
    const fullName = `${this.common.placement.namePrefix}${props.name}`;
    if (typeof props.name !== 'string' || !DNS1035_LABEL.test(props.name) || fullName.length > 63) {
      v.fail('name', props.name, `expected a DNS-1035 label (a lower-case letter, then letters, digits and '-'), at most 63 characters with the name prefix (e.g. 'team-tools')`);
    } else if (BUILTIN_NAMES.includes(props.name)) {
      v.fail('name', props.name, `is a built-in component's (${BUILTIN_NAMES.join(', ')}); choose the team's own name`);
    }
    if (typeof props.routePrefix !== 'string' || !ROUTE_SEGMENT.test(props.routePrefix)) {
      v.fail('routePrefix', props.routePrefix, "expected one path segment: a lower-case letter, then up to 62 lower-case letters, digits, '_' or '-' (e.g. 'team')");
    }
    if (props.queueName !== undefined && (typeof props.queueName !== 'string' || !ROUTE_SEGMENT.test(props.queueName))) {
      v.fail('queueName', props.queueName, "expected a lower-case letter, then up to 62 lower-case letters, digits, '_' or '-'");
    }
    if (!Array.isArray(props.command) || props.command.length === 0 || props.command.some((c) => typeof c !== 'string' || c === '')) {
      v.fail('command', props.command, "expected a non-empty list of non-empty strings, e.g. ['python3', '-m', 'stepflow_kit_worker']");
    }
    if (props.args !== undefined && (!Array.isArray(props.args) || props.args.some((a) => typeof a !== 'string'))) {
      v.fail('args', props.args, 'expected a list of strings');
    }
    v.integer('port', props.port, 1024, 65535);
    v.integer('runAsUser', props.runAsUser, 1, 2 ** 31 - 1);
    v.integer('runAsGroup', props.runAsGroup, 1, 2 ** 31 - 1);
    if (props.healthPath !== undefined && (typeof props.healthPath !== 'string' || !props.healthPath.startsWith('/'))) {
      v.fail('healthPath', props.healthPath, "expected an absolute path, e.g. '/health'");
    }
    if (version !== undefined && !/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(version)) {
      v.fail('version', version, "expected a label value: up to 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit");
    }
  }
}

/** The image's tag as the version label, when it has one (a digest has none). */
function workerVersion(image: string): string | undefined {
  const tag = imageTagOf(image);
  return tag === undefined || tag.startsWith('@') ? undefined : tag;
}
