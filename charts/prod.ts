// This repository's production installation (dist/prod.yaml). The registry and host are
// placeholders: edit them for your cluster.
import { StepFlowChartProps, StepFlowEnvironment, StepFlowGeneration } from '../src';
import { CONTRACT } from '../src/contract';

/** Production props for one StepFlow generation: images tagged with that generation's release. */
export function prod(generation: StepFlowGeneration): StepFlowChartProps {
  return {
    environment: StepFlowEnvironment.PROD,
    generation,
    imageRegistry: 'registry.example.com/stepflow',
    imageTag: CONTRACT.generations[generation].imageTag,
    ingress: { host: 'stepflow.example.com', clusterIssuer: 'letsencrypt-prod' },
  };
}
