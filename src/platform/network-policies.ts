import { Lazy } from 'cdk8s';
import { Construct } from 'constructs';
import * as k8s from '../../imports/k8s';
import { CONTRACT } from '../contract';
import { IComponentServer } from '../components/common';
import { Placement, installationLabels, instanceSelector, resourceName } from '../internal/metadata';
import { PropValidator } from '../internal/validation';
import { StepFlowGeneration } from '../types';
import { cidrFamily } from '../internal/cidr';
import { CLUSTER_NETWORK_DEFAULTS, ClusterNetworks, NetworkAccess, NetworkAccessRule, NetworkPeer } from './network-access';

/** Props of {@link StepFlowNetworkPolicies}. */
export interface StepFlowNetworkPoliciesProps {
  readonly namespace: string;
  readonly namePrefix: string;
  readonly environmentName: string;
  readonly generation: StepFlowGeneration;
  /** The core server's pod labels and port. */
  readonly core: { readonly selector: Record<string, string>; readonly port: number };
  /**
   * The component servers the core server routes to. More can be added later with
   * `addComponentServer`.
   * @default []
   */
  readonly componentServers?: IComponentServer[];
  /**
   * Namespace of the ingress controller allowed to reach the core server.
   * @default - no ingress traffic is allowed (reach core with `kubectl port-forward`)
   */
  readonly ingressControllerNamespace?: string;
  /**
   * The cluster's own address ranges, excluded from the workers' HTTPS egress.
   * @default - the private and link-local ranges (see ClusterNetworks)
   */
  readonly clusterNetworks?: ClusterNetworks;
  /**
   * Namespace of the cluster DNS pods.
   * @default 'kube-system'
   */
  readonly dnsNamespace?: string;
  /**
   * Labels of the cluster DNS pods (CoreDNS in kubeadm, k3s, EKS, GKE).
   * @default { 'k8s-app': 'kube-dns' }
   */
  readonly dnsPodLabels?: Record<string, string>;
}

/** Namespaces are selected by the label the API server sets on every namespace. */
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
const HTTPS_PORT = 443;
const DNS_PORT = 53;

const tcp = (port: number): k8s.NetworkPolicyPort => ({ protocol: 'TCP', port: k8s.IntOrString.fromNumber(port) });
const inNamespace = (ns: string): k8s.LabelSelector => ({ matchLabels: { [NAMESPACE_NAME_LABEL]: ns } });

/**
 * Default deny for every pod of the namespace, then one policy per workload that allows
 * exactly the traffic StepFlow sends: DNS; the ingress controller → core; core →
 * component servers (HTTP push) or component servers → core (gRPC pull, and the blob API
 * in both generations); HTTPS egress for the component servers (model and package hubs,
 * external APIs).
 */
export class StepFlowNetworkPolicies extends Construct {
  public readonly policies: k8s.KubeNetworkPolicy[] = [];
  private readonly placement: Placement;
  private readonly push: boolean;
  private readonly core: StepFlowNetworkPoliciesProps['core'];
  private readonly servers: IComponentServer[] = [];
  private readonly extra = new Map<string, { ingress: k8s.NetworkPolicyIngressRule[]; egress: k8s.NetworkPolicyEgressRule[] }>();
  private readonly validator: PropValidator;
  private readonly outside: k8s.NetworkPolicyPeer[];

  constructor(scope: Construct, id: string, props: StepFlowNetworkPoliciesProps) {
    super(scope, id);
    const v = this.validator = new PropValidator(this);
    if (props.ingressControllerNamespace !== undefined) v.dnsLabel('ingressControllerNamespace', props.ingressControllerNamespace);
    const dnsNamespace = props.dnsNamespace ?? 'kube-system';
    v.dnsLabel('dnsNamespace', dnsNamespace);
    v.labels('dnsPodLabels', props.dnsPodLabels);
    this.placement = props;
    this.push = props.generation === StepFlowGeneration.HTTP_PUSH;
    this.core = props.core;
    const core = props.core;
    this.outside = this.internetPeers(props.clusterNetworks ?? {});

    this.policy('DefaultDeny', resourceName(this.placement, 'stepflow-default-deny'), {}, ['Ingress', 'Egress'], {});
    this.policy('AllowDns', resourceName(this.placement, 'stepflow-allow-dns'), instanceSelector(this.placement), ['Egress'], {
      egress: () => [{
        to: [{ namespaceSelector: inNamespace(dnsNamespace), podSelector: { matchLabels: { ...props.dnsPodLabels ?? { 'k8s-app': 'kube-dns' } } } }],
        ports: [{ protocol: 'UDP', port: k8s.IntOrString.fromNumber(DNS_PORT) }, tcp(DNS_PORT)],
      }],
    });

    const fromController: k8s.NetworkPolicyIngressRule[] = props.ingressControllerNamespace === undefined ? []
      : [{ from: [{ namespaceSelector: inNamespace(props.ingressControllerNamespace) }], ports: [tcp(core.port)] }];
    this.policy('Core', resourceName(this.placement, CONTRACT.components.core.name), core.selector, ['Ingress', 'Egress'], {
      ingress: () => [
        ...fromController,
        ...(this.servers.length > 0 ? [{ from: this.servers.map((s) => ({ podSelector: { matchLabels: s.selector } })), ports: [tcp(core.port)] }] : []),
      ],
      egress: () => this.push
        ? this.servers.filter((s) => s.listenPort !== undefined).map((s) => ({ to: [{ podSelector: { matchLabels: s.selector } }], ports: [tcp(s.listenPort!)] }))
        : [],
    });
    for (const s of props.componentServers ?? []) this.addComponentServer(s);
  }

  /**
   * Allow one more component server: its own policy (core → server in HTTP push, server →
   * core, HTTPS out), and the core's rules toward it.
   */
  public addComponentServer(server: IComponentServer): void {
    this.servers.push(server);
    const core = this.core;
    const ingress: k8s.NetworkPolicyIngressRule[] = this.push && server.listenPort !== undefined
      ? [{ from: [{ podSelector: { matchLabels: core.selector } }], ports: [tcp(server.listenPort)] }]
      : [];
    this.policy(`Server-${server.name}`, server.name, server.selector, ['Ingress', 'Egress'], {
      ingress: () => ingress,
      egress: () => [
        { to: [{ podSelector: { matchLabels: core.selector } }], ports: [tcp(core.port)] },
        { to: this.outside, ports: [tcp(HTTPS_PORT)] },
      ],
    });
  }

  /**
   * Let more traffic reach or leave one component's pods (`core`, or a component server
   * by its name): a monitoring namespace in, a database or an internal API out.
   */
  public allow(target: { readonly name: string }, access: NetworkAccess): void {
    const rules = this.extra.get(target.name) ?? { ingress: [], egress: [] };
    this.extra.set(target.name, rules);
    (access.ingress ?? []).forEach((r, i) => rules.ingress.push({ from: this.peers(r, `ingress[${i}]`), ...this.ports(r, `ingress[${i}]`) }));
    (access.egress ?? []).forEach((r, i) => rules.egress.push({ to: this.peers(r, `egress[${i}]`), ...this.ports(r, `egress[${i}]`) }));
  }

  /** Anywhere but the cluster's own ranges, per address family. */
  private internetPeers(networks: ClusterNetworks): k8s.NetworkPolicyPeer[] {
    const excluded = [...new Set([
      ...(networks.podCidrs ?? CLUSTER_NETWORK_DEFAULTS.podCidrs),
      ...(networks.serviceCidrs ?? CLUSTER_NETWORK_DEFAULTS.serviceCidrs),
      ...(networks.apiServerCidrs ?? CLUSTER_NETWORK_DEFAULTS.apiServerCidrs),
    ])];
    for (const cidr of excluded) {
      if (cidrFamily(cidr) === undefined) this.validator.fail('clusterNetworks', cidr, 'expected an IPv4 or IPv6 CIDR such as 10.42.0.0/16 or fd00::/8');
    }
    const of = (family: 4 | 6) => excluded.filter((c) => cidrFamily(c) === family);
    return [
      { ipBlock: { cidr: '0.0.0.0/0', ...(of(4).length ? { except: of(4) } : {}) } },
      { ipBlock: { cidr: '::/0', ...(of(6).length ? { except: of(6) } : {}) } },
    ];
  }

  private peers(rule: NetworkAccessRule, where: string): k8s.NetworkPolicyPeer[] {
    if (!Array.isArray(rule.peers) || rule.peers.length === 0) {
      this.validator.fail(`networkAccess.${where}.peers`, rule.peers, 'name at least one peer (pods by labels, namespaces, or a cidr)');
      return [];
    }
    return rule.peers.map((p, i) => this.peer(p, `networkAccess.${where}.peers[${i}]`));
  }

  private peer(p: NetworkPeer, prop: string): k8s.NetworkPolicyPeer {
    const v = this.validator;
    if (p.cidr !== undefined) {
      if (p.namespace !== undefined || p.namespaceLabels !== undefined || p.podLabels !== undefined) {
        v.fail(prop, p, 'a peer is either an address range (cidr) or pods (namespace, namespaceLabels, podLabels), not both');
      }
      const family = cidrFamily(p.cidr);
      if (family === undefined) v.fail(`${prop}.cidr`, p.cidr, 'expected an IPv4 or IPv6 CIDR such as 10.20.0.0/16');
      for (const e of p.except ?? []) {
        if (cidrFamily(e) !== family) v.fail(`${prop}.except`, e, `expected a CIDR of the same family inside ${p.cidr}`);
      }
      return { ipBlock: { cidr: p.cidr, ...(p.except?.length ? { except: p.except } : {}) } };
    }
    if (p.namespace === undefined && p.namespaceLabels === undefined && p.podLabels === undefined) {
      v.fail(prop, p, 'name pods (podLabels), namespaces (namespace, namespaceLabels) or an address range (cidr)');
    }
    if (p.namespace !== undefined) v.dnsLabel(`${prop}.namespace`, p.namespace);
    v.labels(`${prop}.namespaceLabels`, p.namespaceLabels);
    v.labels(`${prop}.podLabels`, p.podLabels);
    const namespaceLabels = { ...p.namespaceLabels, ...(p.namespace !== undefined ? { [NAMESPACE_NAME_LABEL]: p.namespace } : {}) };
    return {
      ...(Object.keys(namespaceLabels).length > 0 ? { namespaceSelector: { matchLabels: namespaceLabels } } : {}),
      // Copied: a caller's record may have no prototype (Object.create(null)), which the renderer cannot walk.
      ...(p.podLabels !== undefined ? { podSelector: { matchLabels: { ...p.podLabels } } } : {}),
    };
  }

  private ports(rule: NetworkAccessRule, where: string): { ports?: k8s.NetworkPolicyPort[] } {
    if (rule.ports === undefined) return {};
    return {
      ports: rule.ports.map((p, i) => {
        this.validator.integer(`networkAccess.${where}.ports[${i}].port`, p.port, 1, 65535);
        const protocol = p.protocol ?? 'TCP';
        if (!['TCP', 'UDP', 'SCTP'].includes(protocol)) this.validator.fail(`networkAccess.${where}.ports[${i}].protocol`, protocol, "expected 'TCP', 'UDP' or 'SCTP'");
        return { protocol, port: k8s.IntOrString.fromNumber(p.port) };
      }),
    };
  }

  /**
   * One policy, its rules rendered at synth time. Empty rule lists are left out (the API
   * server drops them, and a re-apply would then see a change): a policy type with no
   * rules denies that direction.
   */
  private policy(id: string, name: string, podLabels: Record<string, string>, policyTypes: ('Ingress' | 'Egress')[], rules: { ingress?: () => k8s.NetworkPolicyIngressRule[]; egress?: () => k8s.NetworkPolicyEgressRule[] }): void {
    const nonEmpty = <T>(list: T[] | undefined) => (list && list.length > 0 ? list : undefined);
    this.policies.push(new k8s.KubeNetworkPolicy(this, id, {
      metadata: {
        name,
        namespace: this.placement.namespace,
        labels: { ...installationLabels(this.placement), ...pick(podLabels, CONTRACT.labels.component) },
      },
      spec: {
        podSelector: Object.keys(podLabels).length > 0 ? { matchLabels: podLabels } : {},
        policyTypes,
        ingress: Lazy.any({ produce: () => nonEmpty([...rules.ingress?.() ?? [], ...this.extra.get(name)?.ingress ?? []]) }),
        egress: Lazy.any({ produce: () => nonEmpty([...rules.egress?.() ?? [], ...this.extra.get(name)?.egress ?? []]) }),
      },
    }));
  }
}

/** `{ key: value }` when the labels carry the key, `{}` otherwise. */
function pick(labels: Record<string, string>, key: string): Record<string, string> {
  return labels[key] === undefined ? {} : { [key]: labels[key] };
}
