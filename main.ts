// The app `cdk8s synth` runs (compiled to lib/main.js, see cdk8s.yaml): one chart per
// environment, one file per chart in dist/. Edit the prod registry, tag and host here.
//
//   node lib/main.js [--outdir DIR] [--generation 0.11|0.13]
//
// `--generation 0.13` synthesizes the gRPC-pull generation elsewhere (the verification
// tiers use it); dist/ holds the default generation.
import { StepFlowApp, StepFlowChart, StepFlowChartProps, StepFlowEnvironment, StepFlowGeneration } from './src';

/** The environments in dist/: chart id (= file name) → props. */
export const ENVIRONMENTS: Record<string, StepFlowChartProps> = {
  dev: { environment: StepFlowEnvironment.DEV },
  prod: {
    environment: StepFlowEnvironment.PROD,
    imageRegistry: 'registry.example.com/stepflow',
    imageTag: '0.11.1',
    ingress: { host: 'stepflow.example.com', clusterIssuer: 'letsencrypt-prod' },
  },
};

export function buildApp(outdir = process.env.CDK8S_OUTDIR ?? 'dist', generation = StepFlowGeneration.HTTP_PUSH): StepFlowApp {
  const app = new StepFlowApp({ outdir });
  for (const [id, props] of Object.entries(ENVIRONMENTS)) new StepFlowChart(app, id, { ...props, generation });
  return app;
}

const USAGE = 'usage: node lib/main.js [--outdir DIR] [--generation 0.11|0.13]';

function parseArgs(argv: string[]): { outdir?: string; generation: StepFlowGeneration } {
  let outdir: string | undefined;
  let generation = StepFlowGeneration.HTTP_PUSH;
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const generations = Object.values(StepFlowGeneration) as string[];
    if (flag === '--outdir' && value) outdir = value;
    else if (flag === '--generation' && generations.includes(value)) generation = value as StepFlowGeneration;
    else {
      process.stderr.write(`unknown or incomplete argument: ${flag ?? ''} ${value ?? ''}\n${USAGE}\n`);
      process.exit(2);
    }
  }
  return { outdir, generation };
}

if (require.main === module) {
  const args = parseArgs(process.argv.slice(2));
  buildApp(args.outdir, args.generation).synth();
}
