// Extra NetworkPolicy rules a team adds to an installation (monitoring in, a database out).

/** A peer a NetworkPolicy rule names: pods by labels (in a namespace), or an address range. */
export interface NetworkPeer {
  /**
   * Labels of the namespaces the peer pods run in; with `namespace`, both must hold.
   * @default - no namespace labels
   */
  readonly namespaceLabels?: Record<string, string>;
  /**
   * Name of the namespace the peer pods run in.
   * @default - the installation's own namespace, unless namespaceLabels is set
   */
  readonly namespace?: string;
  /**
   * Labels of the peer pods.
   * @default - every pod of the selected namespaces
   */
  readonly podLabels?: Record<string, string>;
  /**
   * An address range instead of pods, e.g. `10.20.0.0/16` (pods and namespaces must then be unset).
   * @default - pods, not addresses
   */
  readonly cidr?: string;
  /**
   * Ranges inside `cidr` that stay excluded.
   * @default []
   */
  readonly except?: string[];
}

/** One port of a NetworkPolicy rule. */
export interface NetworkPort {
  readonly port: number;
  /** @default 'TCP' */
  readonly protocol?: 'TCP' | 'UDP' | 'SCTP';
}

/** One extra NetworkPolicy rule: these peers, on these ports. */
export interface NetworkAccessRule {
  readonly peers: NetworkPeer[];
  /**
   * @default - every port
   */
  readonly ports?: NetworkPort[];
}

/** Extra traffic one component may receive and send, beyond what StepFlow itself needs. */
export interface NetworkAccess {
  /**
   * Sources that may reach the component (e.g. a monitoring namespace).
   * @default []
   */
  readonly ingress?: NetworkAccessRule[];
  /**
   * Destinations the component may reach (e.g. a database, an internal API).
   * @default []
   */
  readonly egress?: NetworkAccessRule[];
}

/**
 * The cluster's own address ranges, which the workers' HTTPS egress excludes so that it
 * reaches the internet but not the API server, other tenants' pods or Services, or the
 * cloud's metadata endpoint.
 */
export interface ClusterNetworks {
  /**
   * Pod address ranges.
   * @default ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fd00::/8'] - the private ranges, which hold the default pod CIDRs of kubeadm (10.244.0.0/16), k3s (10.42.0.0/16), EKS, GKE and AKS
   */
  readonly podCidrs?: string[];
  /**
   * Service address ranges.
   * @default ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fd00::/8'] - holds kubeadm's 10.96.0.0/12 and k3s's 10.43.0.0/16
   */
  readonly serviceCidrs?: string[];
  /**
   * Addresses of the API server and the node-local endpoints.
   * @default ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', 'fe80::/10'] - private control planes and link-local (cloud metadata); add a public API server endpoint here
   */
  readonly apiServerCidrs?: string[];
}

export const CLUSTER_NETWORK_DEFAULTS: Required<ClusterNetworks> = {
  podCidrs: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fd00::/8'],
  serviceCidrs: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fd00::/8'],
  apiServerCidrs: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', 'fe80::/10'],
};
