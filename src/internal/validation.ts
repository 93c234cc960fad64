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
/** Length of the longest name the kit appends to a prefix (`stepflow-inference-headless`). */
export const LONGEST_BASE_NAME = 'stepflow-inference-headless'.length;

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
    if (!Number.isInteger(value) || value < min || value > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
      this.fail(prop, value, `expected ${range}`);
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
    if (value.length > MAX_SUBDOMAIN_LENGTH || !DNS1123_SUBDOMAIN.test(value)) {
      this.fail(prop, value, 'expected a DNS-1123 host name such as stepflow.example.com');
      return false;
    }
    return true;
  }

  /** An environment variable name the API server accepts. */
  public envName(prop: string, value: string): boolean {
    if (!ENV_VAR_NAME.test(value)) {
      this.fail(prop, value, "expected an environment variable name: letters, digits, '_', '-' and '.', not starting with a digit");
      return false;
    }
    return true;
  }
}

function message(prop: string, value: unknown, expected: string): string {
  return `prop '${prop}' is ${JSON.stringify(value)}: ${expected}`;
}
