/** Options merged field by field when a preset and an override both give them. */
const MERGED = new Set(['resources', 'autoscaling', 'gpu', 'modelCache', 'telemetry']);
/** Options an override can remove with `false`. */
export const REMOVABLE = new Set(['autoscaling', 'disruptionBudget', 'gpu']);

/**
 * A component block of a preset with an override on top: plain fields are replaced,
 * nested options (resources, autoscaling, GPU, model cache, telemetry) are merged field by
 * field, and `false` removes an option the preset sets (e.g. `autoscaling: false`).
 */
export function mergeOptions<T extends object>(base: T | undefined, override: object | undefined): T {
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override ?? {})) {
    if (value === undefined) continue;
    const current = result[key];
    if (value === false && REMOVABLE.has(key)) result[key] = undefined;
    else if (MERGED.has(key) && isPlainObject(value) && isPlainObject(current)) result[key] = { ...current, ...value };
    else result[key] = value;
  }
  return result as T;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && Object.getPrototypeOf(x) === Object.prototype;
}
