// The app `cdk8s synth` runs (compiled to lib/main.js, see cdk8s.yaml): this repository's
// installations from charts/, one file per chart in dist/ and one Helm chart per chart in
// dist/helm/<chart>/ (the same objects but the Namespace).
//
//   node lib/main.js [--outdir DIR] [--generation 0.11|0.13]
//
// dist/ holds the default generation (StepFlow's current release); `--generation` writes
// the other one elsewhere (the verification tiers use it).
import { DEV } from './charts/dev';
import { prod } from './charts/prod';
import { StepFlowApp, StepFlowChart, StepFlowGeneration } from './src';
import { DEFAULT_GENERATION } from './src/contract';

/** The app with both installations of one generation. */
export function buildApp(outdir = process.env.CDK8S_OUTDIR ?? 'dist', generation = DEFAULT_GENERATION): StepFlowApp {
  const app = new StepFlowApp({ outdir, helmCharts: {} });
  new StepFlowChart(app, 'dev', { ...DEV, generation });
  new StepFlowChart(app, 'prod', prod(generation));
  return app;
}

const USAGE = 'usage: node lib/main.js [--outdir DIR] [--generation 0.11|0.13]';

function parseArgs(argv: string[]): { outdir?: string; generation: StepFlowGeneration } {
  let outdir: string | undefined;
  let generation = DEFAULT_GENERATION;
  const generations = Object.values(StepFlowGeneration) as string[];
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
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
