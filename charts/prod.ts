// This repository's production installation (dist/prod.yaml). The registry, the host and
// the auth service are placeholders: edit them for your cluster.
import { IngressAuthentication, StepFlowChartProps, StepFlowEnvironment, StepFlowGeneration } from '../src';
import { CONTRACT } from '../src/contract';

/** Production props for one StepFlow generation: images tagged with that generation's release. */
export function prod(generation: StepFlowGeneration): StepFlowChartProps {
  return {
    environment: StepFlowEnvironment.PROD,
    generation,
    imageRegistry: 'registry.example.com/stepflow',
    imageTag: CONTRACT.generations[generation].imageTag,
    ingress: {
      host: 'stepflow.example.com',
      clusterIssuer: 'letsencrypt-prod',
      // Every request is checked by an OAuth2 Proxy first; browsers without a session sign in there.
      authentication: IngressAuthentication.external({
        url: 'https://auth.example.com/oauth2/auth',
        signinUrl: 'https://auth.example.com/oauth2/start?rd=$escaped_request_uri',
        responseHeaders: ['X-Auth-Request-User', 'X-Auth-Request-Email'],
      }),
    },
  };
}
