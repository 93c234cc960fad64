import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { CONTRACT, builtinIdentity } from '../contract';
import { DEFAULT_PROBE_TIMINGS } from '../internal/workload';
import { StepFlowComponentServer, StepFlowComponentServerProps } from './component-server';

/** Props of {@link StepFlowPythonSdk}. */
export interface StepFlowPythonSdkProps extends StepFlowComponentServerProps {
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

const SDK = CONTRACT.components['python-sdk'];
const DEFAULT_RESOURCES = { cpuRequestMillis: 250, cpuLimitMillis: 1000, memoryRequestMiB: 256, memoryLimitMiB: 1024 };

/**
 * The stepflow-py component server (`/python/...` components): ServiceAccount, Deployment
 * and, in the HTTP-push generation, a Service on 8081 that the core server calls. In the
 * gRPC-pull generation every replica runs the image's reconnecting worker, which dials
 * the core and pulls tasks from the `python` queue.
 */
export class StepFlowPythonSdk extends StepFlowComponentServer {
  /** The python-sdk workload (a Deployment). */
  public readonly deployment: ApiObject;

  constructor(scope: Construct, id: string, props: StepFlowPythonSdkProps = {}) {
    super(scope, id, builtinIdentity('python-sdk'), SDK.image, {
      routePrefix: SDK.routePrefix,
      queueName: SDK.routePrefix,
      command: StepFlowComponentServer.pythonModuleCommand(SDK.module, SDK.workerModule),
      health: SDK.health,
    }, props, DEFAULT_RESOURCES, DEFAULT_PROBE_TIMINGS, 30);
    this.deployment = this.buildScratchDeployment(CONTRACT.generations[this.generation].sdk, props);
  }
}
