import { PluginRegistration } from '../config/stepflow-config';
import { StepFlowGeneration } from '../types';

/** A component server that the core server routes components to (python-sdk, inference, a team's own worker). */
export interface IComponentServer {
  /** Value of its `component` label. */
  readonly component: string;
  /** Base name of its objects, with the prefix (`dev-stepflow-python-sdk`); names its NetworkPolicy. */
  readonly name: string;
  /** Labels that select its pods. */
  readonly selector: Record<string, string>;
  /** Port its process listens on (0.11), or undefined for pull workers (0.13). */
  readonly listenPort?: number;
  /** URL of its health endpoint, when it listens. */
  readonly healthUrl?: string;
  /** How the core server's config refers to it. */
  readonly registration: PluginRegistration;
  /** The StepFlow generation it speaks. */
  readonly generation: StepFlowGeneration;
}

/** Where the core server can be reached from inside the cluster. */
export interface ICoreEndpoint {
  /** `<name>.<namespace>.svc` */
  readonly host: string;
  readonly port: number;
  /** `host:port`, the form StepFlow workers take for gRPC. */
  readonly address: string;
  /** `http://host:port` */
  readonly url: string;
  /** Base URL of the blob API that component servers read blobs from. */
  readonly blobApiUrl: string;
}
