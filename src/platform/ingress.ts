import { Construct } from 'constructs';
import * as k8s from '../../imports/k8s';
import { CONTRACT } from '../contract';
import { Placement, installationLabels, resourceName } from '../internal/metadata';
import { PropValidator } from '../internal/validation';
import { HTTP_PORT_NAME } from '../internal/workload';
import { IngressOptions } from '../types';

/** Props of {@link StepFlowIngress}. */
export interface StepFlowIngressProps extends IngressOptions {
  readonly namespace: string;
  readonly namePrefix: string;
  readonly environmentName: string;
  /** Name of the core Service the Ingress routes to. */
  readonly coreServiceName: string;
}

/** cert-manager's annotation that names the ClusterIssuer. */
export const CLUSTER_ISSUER_ANNOTATION = 'cert-manager.io/cluster-issuer';

/** TLS Ingress in front of the core server; cert-manager issues the certificate. */
export class StepFlowIngress extends Construct {
  public readonly apiObject: k8s.KubeIngress;
  public readonly host: string;

  constructor(scope: Construct, id: string, props: StepFlowIngressProps) {
    super(scope, id);
    const v = new PropValidator(this);
    const placement: Placement = props;
    this.host = props.host;
    v.hostName('ingress.host', props.host);
    const tlsSecretName = props.tlsSecretName ?? resourceName(placement, 'stepflow-tls');
    v.dnsLabel('ingress.tlsSecretName', tlsSecretName);
    this.apiObject = new k8s.KubeIngress(this, 'Resource', {
      metadata: {
        name: resourceName(placement, 'stepflow'),
        namespace: props.namespace,
        labels: { ...installationLabels(placement), [CONTRACT.labels.component]: 'core' },
        annotations: { [CLUSTER_ISSUER_ANNOTATION]: props.clusterIssuer ?? 'letsencrypt-prod' },
      },
      spec: {
        ingressClassName: props.className ?? 'nginx',
        tls: [{ hosts: [props.host], secretName: tlsSecretName }],
        rules: [{
          host: props.host,
          http: {
            paths: [{
              path: '/',
              pathType: 'Prefix',
              backend: { service: { name: props.coreServiceName, port: { name: HTTP_PORT_NAME } } },
            }],
          },
        }],
      },
    });
  }
}
