// The app `cdk8s synth` runs (compiled to lib/main.js, see cdk8s.yaml): one chart per
// environment, one file per chart in dist/. Edit the prod registry, tag and host here.
import { App, YamlOutputType } from 'cdk8s';
import { StepFlowChart, StepFlowEnvironment } from './src';

export function buildApp(outdir = process.env.CDK8S_OUTDIR ?? 'dist'): App {
  const app = new App({ outdir, outputFileExtension: '.yaml', yamlOutputType: YamlOutputType.FILE_PER_CHART });
  new StepFlowChart(app, 'dev', { environment: StepFlowEnvironment.DEV });
  new StepFlowChart(app, 'prod', {
    environment: StepFlowEnvironment.PROD,
    imageRegistry: 'registry.example.com/stepflow',
    imageTag: '0.11.1',
    ingress: { host: 'stepflow.example.com', clusterIssuer: 'letsencrypt-prod' },
  });
  return app;
}

if (require.main === module) {
  buildApp().synth();
}
