import { NetworkPeer } from '../platform/network-access';

/** How a component writes its log lines to stdout/stderr. */
export enum LogFormat {
  /** One JSON object per line, for log collectors. */
  JSON = 'json',
  /** Human-readable lines. */
  TEXT = 'text',
}

/**
 * StepFlow's own telemetry: log format, and OTLP export of traces and metrics. StepFlow
 * pushes metrics over OTLP; it has no scrape endpoint.
 */
export interface TelemetryOptions {
  /**
   * Log line format (core: `STEPFLOW_LOG_FORMAT`; the Python workers log their own format).
   * @default LogFormat.TEXT (production presets: LogFormat.JSON)
   */
  readonly logFormat?: LogFormat;
  /**
   * OTLP/gRPC endpoint of a collector, e.g. `http://otel-collector.observability.svc:4317`
   * (`STEPFLOW_OTLP_ENDPOINT`). The NetworkPolicies allow egress to it.
   * @default - no export
   */
  readonly otlpEndpoint?: string;
  /**
   * Export traces (`STEPFLOW_TRACE_ENABLED`); needs otlpEndpoint.
   * @default - true with an otlpEndpoint, false without
   */
  readonly tracing?: boolean;
  /**
   * Export the core's metrics (`STEPFLOW_METRICS_ENABLED`; queue depth, connected workers); needs otlpEndpoint.
   * @default - true with an otlpEndpoint, false without
   */
  readonly metrics?: boolean;
  /**
   * Service name in the workers' traces and logs (`STEPFLOW_SERVICE_NAME`). The core
   * always reports `stepflow-server`; every component's exports carry the namespace and
   * environment as `service.namespace` and `deployment.environment`.
   * @default - the worker's object name, e.g. `stepflow-python-sdk`
   */
  readonly serviceName?: string;
  /**
   * Where the collector runs, for the NetworkPolicy egress rule. Needed when the endpoint's
   * host is not an in-cluster Service name (`<service>.<namespace>.svc`).
   * @default - the namespace named in the endpoint's host
   */
  readonly collector?: NetworkPeer;
}
