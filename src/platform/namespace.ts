import { Construct } from 'constructs';
import * as k8s from '../../imports/k8s';
import { CONTRACT } from '../contract';
import { INSTANCE_LABEL, Placement, installationLabels } from '../internal/metadata';
import { PropValidator } from '../internal/validation';

/** Props of {@link StepFlowNamespace}. */
export interface StepFlowNamespaceProps {
  /** @default 'stepflow' */
  readonly namespace?: string;
  /** @default 'prod' */
  readonly environmentName?: string;
  /**
   * Kubernetes version whose Pod Security "restricted" rules are enforced; pinned so that
   * a cluster upgrade does not change what is admitted.
   * @default 'v1.30'
   */
  readonly podSecurityVersion?: string;
}

/**
 * The namespace, with Pod Security "restricted" enforced, audited and warned on. Several
 * installations may share it: one chart creates it, the others set `createNamespace: false`.
 */
export class StepFlowNamespace extends Construct {
  public readonly name: string;
  public readonly apiObject: k8s.KubeNamespace;

  constructor(scope: Construct, id: string, props: StepFlowNamespaceProps = {}) {
    super(scope, id);
    const v = new PropValidator(this);
    const placement: Placement = { namespace: props.namespace ?? 'stepflow', namePrefix: '', environmentName: props.environmentName ?? 'prod' };
    const version = props.podSecurityVersion ?? CONTRACT.podSecurityVersion;
    v.namespace('namespace', placement.namespace);
    if (!/^(latest|v1\.\d+)$/.test(version)) v.fail('podSecurityVersion', version, "expected 'v1.<minor>' (e.g. 'v1.30') or 'latest'");
    this.name = placement.namespace;
    const pss: Record<string, string> = {};
    for (const mode of ['enforce', 'audit', 'warn']) {
      pss[`pod-security.kubernetes.io/${mode}`] = 'restricted';
      pss[`pod-security.kubernetes.io/${mode}-version`] = version;
    }
    // Installations may share the namespace: it carries no one installation's instance label.
    const { [INSTANCE_LABEL]: _instance, ...labels } = installationLabels(placement);
    this.apiObject = new k8s.KubeNamespace(this, 'Resource', {
      metadata: { name: this.name, labels: { ...labels, ...pss } },
    });
  }
}
