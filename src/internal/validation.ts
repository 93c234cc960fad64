import { Construct } from 'constructs';

/** RFC 1123 label: namespaces, label values of names. */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** RFC 1035 label: Service names must start with a letter. */
export const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** RFC 1123 subdomain: host names. */
export const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const MAX_LABEL_LENGTH = 63;
export const MAX_PORT = 65535;
/** Length of the longest name the kit appends to a prefix (`stepflow-inference-headless`). */
export const LONGEST_BASE_NAME = 'stepflow-inference-headless'.length;

/** Messages already reported in each app (keyed by the construct tree's root). */
const REPORTED = new WeakMap<object, Set<string>>();

/**
 * Collects every invalid prop of one construct and reports them through the construct's
 * validation hook, so that `app.synth()` lists all of them at once, each tagged with the
 * construct path by cdk8s (`[prod/core] ...`).
 */
export class PropValidator {
  private readonly errors: string[] = [];
  private readonly reported: Set<string>;

  constructor(scope: Construct) {
    scope.node.addValidation({ validate: () => [...this.errors] });
    const root = scope.node.root;
    this.reported = REPORTED.get(root) ?? new Set();
    REPORTED.set(root, this.reported);
  }

  /** Record one failure: which prop, the value received, what would be accepted. */
  public fail(prop: string, value: unknown, expected: string): void {
    this.errors.push(`prop '${prop}' is ${JSON.stringify(value)}: ${expected}`);
  }

  /**
   * The same, for a value that every construct of one installation takes from one place
   * (its namespace, its name prefix): reported once, by the first construct that takes it.
   */
  public failShared(prop: string, value: unknown, expected: string): void {
    const message = `prop '${prop}' is ${JSON.stringify(value)}: ${expected}`;
    if (this.reported.has(message)) return;
    this.reported.add(message);
    this.errors.push(message);
  }

  public get count(): number {
    return this.errors.length;
  }

  /** An integer within [min, max]. Returns whether it passed. */
  public integer(prop: string, value: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): boolean {
    if (value === undefined) return true;
    if (!Number.isInteger(value) || value < min || value > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
      this.fail(prop, value, `expected ${range}`);
      return false;
    }
    return true;
  }

  public port(prop: string, value: number | undefined): boolean {
    return this.integer(prop, value, 1, MAX_PORT);
  }

  /** A name that Kubernetes accepts as an object name of the strictest kind we create (a Service). */
  public resourceName(prop: string, value: string): boolean {
    if (value.length > MAX_LABEL_LENGTH || !DNS1035_LABEL.test(value)) {
      this.fail(prop, value, `expected a DNS-1035 label (lower-case letters, digits and '-', starting with a letter, at most ${MAX_LABEL_LENGTH} characters)`);
      return false;
    }
    return true;
  }

  /** A prefix that keeps every generated name a DNS-1035 label. */
  public namePrefix(value: string): boolean {
    if (value !== '' && (!/^[a-z][-a-z0-9]*$/.test(value) || value.length + LONGEST_BASE_NAME > MAX_LABEL_LENGTH)) {
      this.failShared('namePrefix', value, `expected '' or lower-case letters, digits and '-' starting with a letter, at most ${MAX_LABEL_LENGTH - LONGEST_BASE_NAME} characters (e.g. 'dev-')`);
      return false;
    }
    return true;
  }

  /** A DNS-1123 label; `shared` for values that every construct of an installation takes. */
  public dnsLabel(prop: string, value: string, shared = false): boolean {
    if (value.length > MAX_LABEL_LENGTH || !DNS1123_LABEL.test(value)) {
      const expected = `expected a DNS-1123 label (lower-case letters, digits and '-', at most ${MAX_LABEL_LENGTH} characters)`;
      if (shared) this.failShared(prop, value, expected);
      else this.fail(prop, value, expected);
      return false;
    }
    return true;
  }

  public hostName(prop: string, value: string): boolean {
    if (value.length > 253 || !DNS1123_SUBDOMAIN.test(value)) {
      this.fail(prop, value, 'expected a DNS-1123 host name such as stepflow.example.com');
      return false;
    }
    return true;
  }
}
