// This repository's production installation (dist/prod.yaml). The registry, the host and
// the auth service are placeholders: edit them for your cluster.
//
// Images are pulled by tag here: registry.example.com is a placeholder no build has pushed
// to, so there is no digest to pin. Once `scripts/build.sh all --registry <yours> --push`
// has written images.lock.json, pin every image by digest with
//   imageLock: ImageLock.fromFile('images.lock.json'),
// (an image missing from the lock then fails the synth). See docs/deploying.md, "Releasing".
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
