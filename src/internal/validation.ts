import { Chart } from 'cdk8s';
import { Construct, IConstruct } from 'constructs';

/** RFC 1123 label: namespaces, label values of names. */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** RFC 1123 subdomain: host names. */
export const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** What the API server accepts as an environment variable name (`IsEnvVarName`). */
export const ENV_VAR_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
export const MAX_LABEL_LENGTH = 63;
export const MAX_SUBDOMAIN_LENGTH = 253;
/**
 * The longest prefix that keeps every generated name valid. Two rules bind: a Service name
 * is a DNS-1035 label (≤ 63; the longest is `stepflow-inference-headless`), and a
 * StatefulSet's pods carry `controller-revision-hash: <name>-<hash of up to 10>`, a label
 * value (≤ 63), so a StatefulSet name may take at most 52 (the longest is `stepflow-inference`).
 */
export const MAX_PREFIX_LENGTH = Math.min(MAX_LABEL_LENGTH - 'stepflow-inference-headless'.length, MAX_LABEL_LENGTH - 11 - 'stepflow-inference'.length);
/** Upper bounds of plain numbers, far above any real installation and within the API's int32 fields. */
export const LIMITS = {
  replicas: 1000,
  cpuMillis: 1_000_000,
  memoryMiB: 16 * 1024 * 1024,
  volumeMiB: 1024 * 1024,
  claimGiB: 65_536,
  seconds: 3600,
};
/** Namespaces the kit never installs into: the cluster's own. */
export const RESERVED_NAMESPACE = /^(kube-.*|default)$/;
/** A registry host with an optional port (`registry.example.com`, `localhost:5000`, `10.0.0.1:5000`). */
const REGISTRY_HOST = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]{1,5})?';
/** One path component of an image repository (lower case, separators `.`, `_`, `__`, `-`). */
const PATH_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
/** `host[:port][/path]`: what imageRegistry takes (no scheme, no trailing slash). */
export const IMAGE_REGISTRY = new RegExp(`^${REGISTRY_HOST}(?:/${PATH_COMPONENT})*$`);
/** An image tag: a word character, then up to 127 word characters, `.` or `-`. */
export const IMAGE_TAG = /^[\w][\w.-]{0,127}$/;
/** A registry as the first part of a reference: it has a `.` or a port, or is `localhost` (else it is a path). */
const REFERENCE_HOST = '(?:(?:localhost|[a-zA-Z0-9-]+(?:\\.[a-zA-Z0-9-]+)+)(?::[0-9]{1,5})?|[a-zA-Z0-9-]+:[0-9]{1,5})';
/** A full image reference: `[host[:port]/]path[:tag][@algorithm:hex]`. */
export const IMAGE_REFERENCE = new RegExp(`^(?:${REFERENCE_HOST}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::[\\w][\\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`);
/** A label value (or the name part of a key): up to 63 alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric. */
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Where a chart keeps the messages of values its constructs share (namespace, name prefix). */
const SHARED_MESSAGES = Symbol.for('stepflow-kit.shared-messages');

/** The set of shared-value messages already reported in the chart that holds `scope`. */
function sharedMessages(scope: IConstruct): Set<string> {
  let owner: IConstruct;
  try {
    owner = Chart.of(scope);
  } catch {
    owner = scope.node.root;
  }
  const holder = owner as unknown as Record<symbol, Set<string> | undefined>;
  return holder[SHARED_MESSAGES] ??= new Set<string>();
}

/**
 * Collects every invalid prop of one construct and reports them through the construct's
 * validation hook, so that `app.synth()` lists all of them at once, each tagged with the
 * construct path by cdk8s (`[prod/core] ...`).
 */
export class PropValidator {
  private readonly errors: string[] = [];

  constructor(private readonly scope: Construct) {
    scope.node.addValidation({ validate: () => [...this.errors] });
  }

  /** Record one failure: which prop, the value received, what would be accepted. */
  public fail(prop: string, value: unknown, expected: string): void {
    this.errors.push(message(prop, value, expected));
  }

  /**
   * The same, for a value that every construct of one chart takes from one place (its
   * namespace, its name prefix): reported once per chart, by the first construct that takes it.
   */
  public failShared(prop: string, value: unknown, expected: string): void {
    const text = message(prop, value, expected);
    const seen = sharedMessages(this.scope);
    if (seen.has(text)) return;
    seen.add(text);
    this.errors.push(text);
  }

  /** An integer within [min, max]. Returns whether it passed. */
  public integer(prop: string, value: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): boolean {
    if (value === undefined) return true;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
      this.fail(prop, value, `expected ${range}`);
      return false;
    }
    return true;
  }

  /** A prefix that keeps every generated name valid for its kind (see MAX_PREFIX_LENGTH). */
  public namePrefix(value: string): boolean {
    if (typeof value !== 'string' || (value !== '' && (!/^[a-z][-a-z0-9]*$/.test(value) || value.length > MAX_PREFIX_LENGTH))) {
      this.failShared('namePrefix', value, `expected '' or lower-case letters, digits and '-' starting with a letter, at most ${MAX_PREFIX_LENGTH} characters (e.g. 'dev-'): `
        + 'Service names are DNS-1035 labels and StatefulSet names leave room for the controller-revision-hash label');
      return false;
    }
    return true;
  }

  /** A namespace the kit may install into: a DNS-1123 label that is not one of the cluster's own. */
  public namespace(prop: string, value: string): boolean {
    if (!this.dnsLabel(prop, value, true)) return false;
    if (RESERVED_NAMESPACE.test(value)) {
      this.failShared(prop, value, "is reserved for the cluster itself (kube-*, default): choose a namespace of StepFlow's own, e.g. 'stepflow'");
      return false;
    }
    return true;
  }

  /** A value that must be one of an enum's members (JavaScript callers can pass anything). */
  public member<T extends string>(prop: string, value: T | undefined, members: Record<string, T>, enumName: string): boolean {
    if (value === undefined || Object.values(members).includes(value)) return true;
    this.fail(prop, value, `expected one of ${Object.values(members).map((m) => `'${m}'`).join(', ')} (${enumName})`);
    return false;
  }

  /** A name of another object (a StorageClass, a Secret, a RuntimeClass): a non-empty DNS-1123 subdomain. */
  public objectName(prop: string, value: string | undefined, what: string): boolean {
    if (value === undefined) return true;
    if (typeof value !== 'string' || value.length > MAX_SUBDOMAIN_LENGTH || !DNS1123_SUBDOMAIN.test(value)) {
      this.fail(prop, value, `expected the name of ${what}: a non-empty DNS-1123 subdomain (lower-case letters, digits, '-' and '.')`);
      return false;
    }
    return true;
  }

  /** Labels (keys `[prefix/]name`, values up to 63 characters) the API server accepts. */
  public labels(prop: string, labels: Record<string, string> | undefined): boolean {
    let ok = true;
    for (const [key, value] of Object.entries(labels ?? {})) {
      const slash = key.lastIndexOf('/');
      const [prefix, name] = slash >= 0 ? [key.slice(0, slash), key.slice(slash + 1)] : [undefined, key];
      const keyOk = name !== '' && LABEL_VALUE.test(name) && (prefix === undefined || (prefix.length <= MAX_SUBDOMAIN_LENGTH && DNS1123_SUBDOMAIN.test(prefix)));
      if (!keyOk) {
        this.fail(`${prop}`, key, "expected a label key: [a DNS subdomain prefix '/'] up to 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit");
        ok = false;
      } else if (typeof value !== 'string' || !LABEL_VALUE.test(value)) {
        this.fail(`${prop}.${key}`, value, "expected a label value: up to 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit");
        ok = false;
      }
    }
    return ok;
  }

  /** A non-empty single-line string (a realm, a service name). */
  public text(prop: string, value: string | undefined): boolean {
    if (value === undefined) return true;
    if (typeof value !== 'string' || value.trim() === '' || /[\r\n]/.test(value)) {
      this.fail(prop, value, 'expected a non-empty single-line string');
      return false;
    }
    return true;
  }

  /** A DNS-1123 label; `shared` for values that every construct of an installation takes. */
  public dnsLabel(prop: string, value: string, shared = false): boolean {
    if (typeof value !== 'string' || value.length > MAX_LABEL_LENGTH || !DNS1123_LABEL.test(value)) {
      const expected = `expected a DNS-1123 label (lower-case letters, digits and '-', at most ${MAX_LABEL_LENGTH} characters)`;
      if (shared) this.failShared(prop, value, expected);
      else this.fail(prop, value, expected);
      return false;
    }
    return true;
  }

  public hostName(prop: string, value: string): boolean {
    if (typeof value !== 'string' || value.length > MAX_SUBDOMAIN_LENGTH || !DNS1123_SUBDOMAIN.test(value)) {
      this.fail(prop, value, 'expected a DNS-1123 host name such as stepflow.example.com');
      return false;
    }
    return true;
  }

  /** An environment variable name the API server accepts. */
  public envName(prop: string, value: string): boolean {
    if (typeof value !== 'string' || !ENV_VAR_NAME.test(value)) {
      this.fail(prop, value, "expected an environment variable name: letters, digits, '_', '-' and '.', not starting with a digit");
      return false;
    }
    return true;
  }
}

function message(prop: string, value: unknown, expected: string): string {
  return `prop '${prop}' is ${show(value)}: ${expected}`;
}

/** The value as the caller wrote it: JSON, except for what JSON cannot show (NaN, Infinity, functions). */
function show(value: unknown): string {
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
