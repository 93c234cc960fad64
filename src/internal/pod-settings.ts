import { EnvValue } from 'cdk8s-plus-30';
import * as k8s from '../../imports/k8s';
import { EnvFromSource, EnvVariableValue, ExtraVolume, PodSettings } from '../types';
import { RESERVED_LABEL_KEYS } from './metadata';
import { DNS1123_LABEL, ENV_VAR_NAME, PropValidator } from './validation';

/**
 * A deep copy of the plain records and lists in a value (class instances such as a
 * Quantity or an EnvValue are kept): a caller's record may have no prototype
 * (`Object.create(null)`), which the renderer cannot walk.
 */
export function plain<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => plain(v)) as T;
  if (typeof value !== 'object' || value === null) return value;
  const proto = Object.getPrototypeOf(value);
  if (proto !== null && proto !== Object.prototype) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)])) as T;
}

/** A reference's name: a cdk8s-plus resource or a plain name. */
export function nameOf(ref: { readonly name: string } | string): string {
  return typeof ref === 'string' ? ref : ref.name;
}

/** Every field of PodSettings, in one list: what a chart passes down and a component resolves. */
const POD_SETTING_KEYS = ['imagePullSecrets', 'nodeSelector', 'tolerations', 'affinity', 'topologySpreadConstraints', 'priorityClassName',
  'labels', 'annotations', 'envFrom', 'volumes'] as const satisfies readonly (keyof PodSettings)[];

/** The pod settings among some props (a chart's, a component's), deep-copied (see {@link plain}). */
export function podSettingsOf(props: PodSettings): PodSettings {
  return plain(Object.fromEntries(POD_SETTING_KEYS.filter((k) => props[k] !== undefined).map((k) => [k, props[k]])));
}

/**
 * Chart-wide settings under a component's own: maps merge key by key, lists are joined (a
 * volume or pull secret of the same name is the component's), the rest is replaced.
 */
export function mergePodSettings(chart: PodSettings, own: PodSettings): PodSettings {
  const ownVolumes = new Set((own.volumes ?? []).map((v) => v.volume?.name));
  const ownSecrets = new Set((own.imagePullSecrets ?? []).map(nameOf));
  const join = <T>(a: T[] | undefined, b: T[] | undefined) => (a || b ? [...a ?? [], ...b ?? []] : undefined);
  const map = <T>(a: T | undefined, b: T | undefined) => (a || b ? { ...a, ...b } : undefined);
  const merged: PodSettings = {
    imagePullSecrets: join(chart.imagePullSecrets?.filter((s) => !ownSecrets.has(nameOf(s))), own.imagePullSecrets),
    nodeSelector: map(chart.nodeSelector, own.nodeSelector),
    tolerations: join(chart.tolerations, own.tolerations),
    affinity: own.affinity ?? chart.affinity,
    topologySpreadConstraints: join(chart.topologySpreadConstraints, own.topologySpreadConstraints),
    priorityClassName: own.priorityClassName ?? chart.priorityClassName,
    labels: map(chart.labels, own.labels),
    annotations: map(chart.annotations, own.annotations),
    envFrom: join(chart.envFrom, own.envFrom),
    volumes: join(chart.volumes?.filter((v) => !ownVolumes.has(v.volume?.name)), own.volumes),
  };
  return Object.fromEntries(Object.entries(merged).filter(([, value]) => value !== undefined));
}

const TOLERATION_OPERATORS = ['Exists', 'Equal'];
const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];
const SPREAD_WHEN = ['DoNotSchedule', 'ScheduleAnyway'];

/** Check the pod settings a component (or a chart, for every component) takes. */
export function validatePodSettings(v: PropValidator, s: PodSettings): void {
  list(v, 'imagePullSecrets', s.imagePullSecrets).forEach((ref, i) => v.objectName(`imagePullSecrets[${i}]`, refName(ref), 'a Secret'));
  v.labels('nodeSelector', s.nodeSelector);
  list(v, 'tolerations', s.tolerations).forEach((t, i) => {
    const at = `tolerations[${i}]`;
    if (t.operator !== undefined && !TOLERATION_OPERATORS.includes(t.operator)) v.fail(`${at}.operator`, t.operator, "expected 'Exists' or 'Equal'");
    if (t.effect !== undefined && !TAINT_EFFECTS.includes(t.effect)) v.fail(`${at}.effect`, t.effect, `expected one of ${TAINT_EFFECTS.map((e) => `'${e}'`).join(', ')}, or none for every effect`);
    if (t.operator === 'Exists' && t.value !== undefined && t.value !== '') v.fail(`${at}.value`, t.value, "operator 'Exists' takes no value");
    if (t.key === undefined && t.operator !== 'Exists') v.fail(`${at}.key`, t.key, "a toleration without a key must use operator 'Exists' (it tolerates every taint)");
    if (t.tolerationSeconds !== undefined && t.effect !== 'NoExecute') v.fail(`${at}.tolerationSeconds`, t.tolerationSeconds, "only applies to effect 'NoExecute'");
  });
  list(v, 'topologySpreadConstraints', s.topologySpreadConstraints).forEach((c, i) => {
    const at = `topologySpreadConstraints[${i}]`;
    v.integer(`${at}.maxSkew`, c.maxSkew, 1, 1000);
    if (typeof c.topologyKey !== 'string' || c.topologyKey === '') v.fail(`${at}.topologyKey`, c.topologyKey, "expected a node label key, e.g. 'topology.kubernetes.io/zone'");
    if (!SPREAD_WHEN.includes(c.whenUnsatisfiable)) v.fail(`${at}.whenUnsatisfiable`, c.whenUnsatisfiable, "expected 'DoNotSchedule' or 'ScheduleAnyway'");
  });
  if (s.affinity !== undefined && (typeof s.affinity !== 'object' || s.affinity === null)) v.fail('affinity', s.affinity, 'expected a k8s.Affinity object (nodeAffinity, podAffinity, podAntiAffinity)');
  v.objectName('priorityClassName', s.priorityClassName, 'a PriorityClass');
  if (v.labels('labels', s.labels)) {
    for (const key of Object.keys(s.labels ?? {})) {
      if (RESERVED_LABEL_KEYS.includes(key)) v.fail('labels', key, `is a label the kit sets itself (it selects the pods); reserved: ${RESERVED_LABEL_KEYS.join(', ')}`);
    }
  }
  v.labels('annotations', Object.fromEntries(Object.keys(s.annotations ?? {}).map((k) => [k, ''])));
  for (const [key, value] of Object.entries(s.annotations ?? {})) {
    if (typeof value !== 'string') v.fail(`annotations.${key}`, value, 'expected a string');
  }
  list(v, 'envFrom', s.envFrom).forEach((e, i) => validateEnvFrom(v, `envFrom[${i}]`, e));
  list(v, 'volumes', s.volumes).forEach((e, i) => validateVolume(v, `volumes[${i}]`, e));
}

/** The env prop: names the API server accepts, literal strings or cdk8s-plus EnvValues. */
export function validateEnv(v: PropValidator, prop: string, env: Record<string, EnvVariableValue>): void {
  for (const [name, value] of Object.entries(env)) {
    v.envName(prop, name);
    if (typeof value !== 'string' && !(value instanceof EnvValue)) {
      v.fail(`${prop}.${name}`, value, "expected a string or a cdk8s-plus EnvValue (EnvValue.fromSecretValue({ secret, key }), .fromConfigMap(configMap, key), ...)");
    }
  }
}

/** A variable as the container spec takes it: a literal value or a reference. */
export function envVar(name: string, value: EnvVariableValue): k8s.EnvVar {
  if (typeof value === 'string') return { name, value };
  return value.value !== undefined ? { name, value: String(value.value) } : { name, valueFrom: value.valueFrom };
}

/** `envFrom` entries of the container spec. */
export function envFromSources(sources: EnvFromSource[] | undefined): k8s.EnvFromSource[] | undefined {
  if (!sources || sources.length === 0) return undefined;
  return sources.map((e) => ({
    ...(e.prefix ? { prefix: e.prefix } : {}),
    ...(e.secret !== undefined ? { secretRef: { name: nameOf(e.secret), ...(e.optional ? { optional: true } : {}) } } : {}),
    ...(e.configMap !== undefined ? { configMapRef: { name: nameOf(e.configMap), ...(e.optional ? { optional: true } : {}) } } : {}),
  }));
}

function validateEnvFrom(v: PropValidator, at: string, e: EnvFromSource): void {
  if ((e.secret === undefined) === (e.configMap === undefined)) {
    v.fail(at, e, 'give exactly one of secret, configMap');
    return;
  }
  if (e.secret !== undefined) v.objectName(`${at}.secret`, refName(e.secret), 'a Secret');
  if (e.configMap !== undefined) v.objectName(`${at}.configMap`, refName(e.configMap), 'a ConfigMap');
  if (e.prefix !== undefined && e.prefix !== '' && !ENV_VAR_NAME.test(e.prefix)) {
    v.fail(`${at}.prefix`, e.prefix, "expected the start of an environment variable name: letters, digits, '_', '-' and '.', not starting with a digit");
  }
}

function validateVolume(v: PropValidator, at: string, e: ExtraVolume): void {
  const name = e.volume?.name;
  if (typeof name !== 'string' || name.length > 63 || !DNS1123_LABEL.test(name)) {
    v.fail(`${at}.volume.name`, name, 'expected a DNS-1123 label (lower-case letters, digits and -, at most 63 characters)');
  }
  if (typeof e.mountPath !== 'string' || !e.mountPath.startsWith('/') || e.mountPath.includes(':')) {
    v.fail(`${at}.mountPath`, e.mountPath, "expected an absolute path without ':', e.g. '/etc/team/tls'");
  }
}

function refName(ref: { readonly name: string } | string): string | undefined {
  return typeof ref === 'string' ? ref : ref?.name;
}

/** A list prop: undefined, or an array (JavaScript callers can pass anything). */
function list<T>(v: PropValidator, prop: string, value: T[] | undefined): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    v.fail(prop, value, 'expected a list');
    return [];
  }
  return value;
}
