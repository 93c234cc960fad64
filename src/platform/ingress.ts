import { Construct } from 'constructs';
import * as k8s from '../../imports/k8s';
import { CONTRACT } from '../contract';
import { Placement, installationLabels, resourceName } from '../internal/metadata';
import { PropValidator } from '../internal/validation';
import { HTTP_PORT_NAME } from '../internal/workload';
import { IngressOptions } from '../types';
import { IngressAuthKind, IngressAuthentication, UNAUTHENTICATED_ACKNOWLEDGEMENT } from './ingress-auth';

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

const URL_PATTERN = /^https?:\/\/[^\s/$.?#][^\s]*$/;

function validateAuthentication(v: PropValidator, auth: IngressAuthentication | undefined): void {
  if (!(auth instanceof IngressAuthentication)) {
    v.fail('ingress.authentication', auth, 'the core\'s API runs users\' code: choose IngressAuthentication.external({ url }), .clientCertificate({ caSecretName }), .basic({ secretName }), '
      + 'or .unauthenticated(UNAUTHENTICATED_ACKNOWLEDGEMENT); for no public entry point at all, set ingress: false');
    return;
  }
  const o = auth.options;
  switch (auth.kind) {
    case IngressAuthKind.EXTERNAL:
      for (const key of ['url', 'signinUrl']) {
        const value = o[key];
        if ((key === 'url' || value !== undefined) && (typeof value !== 'string' || !URL_PATTERN.test(value))) {
          v.fail(`ingress.authentication.${key}`, value, 'expected an absolute http(s) URL of the auth service, e.g. https://auth.example.com/oauth2/auth');
        }
      }
      break;
    case IngressAuthKind.CLIENT_CERTIFICATE:
      v.integer('ingress.authentication.verifyDepth', o.verifyDepth as number, 1, 10);
      v.objectName('ingress.authentication.caSecretName', (o.secretName ?? '') as string, 'a Secret of the installation\'s namespace holding ca.crt');
      break;
    case IngressAuthKind.BASIC:
      v.objectName('ingress.authentication.secretName', (o.secretName ?? '') as string, 'a Secret of the installation\'s namespace holding the htpasswd file under auth');
      if (v.text('ingress.authentication.realm', o.realm as string) && (o.realm as string).includes('"')) v.fail('ingress.authentication.realm', o.realm, 'expected a realm without double quotes');
      break;
    case IngressAuthKind.NONE:
      if (o.acknowledgement !== UNAUTHENTICATED_ACKNOWLEDGEMENT) {
        v.fail('ingress.authentication', o.acknowledgement, `publishing the core without authentication needs the exact acknowledgement '${UNAUTHENTICATED_ACKNOWLEDGEMENT}' (UNAUTHENTICATED_ACKNOWLEDGEMENT)`);
      }
      break;
  }
}

/** TLS Ingress in front of the core server; cert-manager issues the certificate; the authentication the props name. */
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
    v.objectName('ingress.tlsSecretName', tlsSecretName, 'the Secret cert-manager writes the certificate into');
    v.objectName('ingress.className', props.className, 'an IngressClass');
    v.objectName('ingress.clusterIssuer', props.clusterIssuer, 'a cert-manager ClusterIssuer');
    const auth = props.authentication;
    validateAuthentication(v, auth);
    this.apiObject = new k8s.KubeIngress(this, 'Resource', {
      metadata: {
        name: resourceName(placement, 'stepflow'),
        namespace: props.namespace,
        labels: { ...installationLabels(placement), [CONTRACT.labels.component]: 'core' },
        annotations: {
          [CLUSTER_ISSUER_ANNOTATION]: props.clusterIssuer ?? 'letsencrypt-prod',
          ...(auth instanceof IngressAuthentication ? auth.annotations(props.namespace) : {}),
        },
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
