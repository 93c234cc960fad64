/**
 * The StepFlow server configuration, as typed objects. Rendered into the ConfigMap that
 * the core server reads with `--config`. The shape follows the config format that the
 * pinned StepFlow releases accept (not the `plugins:`-list format of the original design
 * document, which StepFlow never read).
 */
import { StepFlowGeneration } from '../types';

/** Components implemented inside the core server (`/openai`, `/eval`, …). */
export interface BuiltinPlugin {
  readonly type: 'builtin';
}

/** 0.11: the core server calls a running component server over HTTP (JSON-RPC). */
export interface HttpPushPlugin {
  readonly type: 'stepflow';
  /** Base URL of the component server, e.g. `http://stepflow-python-sdk.stepflow.svc:8081`. */
  readonly url: string;
}

/** 0.13: workers dial the core server and pull tasks from this queue. */
export interface GrpcPullPlugin {
  readonly type: 'grpc';
  readonly queueName: string;
}

export type PluginConfig = BuiltinPlugin | HttpPushPlugin | GrpcPullPlugin;

/** One routing rule: which plugin serves the components under a route. */
export interface RouteRule {
  readonly plugin: string;
}

/** Where flows, runs, blobs and the execution journal are kept. */
export type StorageConfig =
  | { readonly type: 'inMemory' }
  /** `sqlite:/abs/path.db?mode=rwc`: `mode=rwc` creates the file on first start. */
  | { readonly type: 'sqlite'; readonly databaseUrl: string };

/** Recovery of interrupted runs: at start-up, runs this orchestrator owned are resumed. */
export interface RecoveryConfig {
  readonly enabled: boolean;
  /** How many interrupted runs are resumed at start-up (0 disables startup recovery). */
  readonly maxStartupRecovery: number;
}

/** The document the core server loads. Key order is fixed, so the rendering is stable. */
export interface StepFlowConfigDocument {
  readonly plugins: Record<string, PluginConfig>;
  readonly routes: Record<string, RouteRule[]>;
  readonly storageConfig: StorageConfig;
  /** @default - StepFlow's own (left out with in-memory state, which has nothing to recover) */
  readonly recovery?: RecoveryConfig;
  readonly blobApi: { readonly url: string };
}

/** The name the builtin plugin is registered under. */
export const BUILTIN_PLUGIN = 'builtin';

/**
 * Route key of a path prefix in each generation: 0.11 matches `/<prefix>/{*component}`,
 * 0.13 rejects that pattern and takes a single-segment prefix (`/<prefix>`).
 */
export function routeKey(generation: StepFlowGeneration, prefix: string): string {
  if (generation === StepFlowGeneration.GRPC_PULL) {
    return prefix === '' ? '/' : `/${prefix}`;
  }
  return prefix === '' ? '/{*component}' : `/${prefix}/{*component}`;
}

/** A component server registered with the core server. */
export interface PluginRegistration {
  /** Plugin name in the config, e.g. `python`. */
  readonly pluginName: string;
  /** Route prefix, e.g. `python` → components are called as `/python/<name>`. */
  readonly routePrefix: string;
  readonly plugin: PluginConfig;
}

/**
 * Builds the document: the builtin plugin as the catch-all route, then one plugin and one
 * route per registered component server, in registration order.
 */
export function renderConfig(generation: StepFlowGeneration, blobApiUrl: string, registrations: readonly PluginRegistration[], storage: StorageConfig): StepFlowConfigDocument {
  const plugins: Record<string, PluginConfig> = { [BUILTIN_PLUGIN]: { type: 'builtin' } };
  const routes: Record<string, RouteRule[]> = {};
  for (const r of registrations) {
    plugins[r.pluginName] = r.plugin;
    routes[routeKey(generation, r.routePrefix)] = [{ plugin: r.pluginName }];
  }
  routes[routeKey(generation, '')] = [{ plugin: BUILTIN_PLUGIN }];
  const recovery: RecoveryConfig | undefined = storage.type === 'inMemory' ? undefined : { enabled: true, maxStartupRecovery: 100 };
  return { plugins, routes, storageConfig: storage, ...(recovery ? { recovery } : {}), blobApi: { url: blobApiUrl } };
}
