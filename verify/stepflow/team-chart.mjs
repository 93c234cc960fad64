// A team's installation built with the library (lib/src, compiled by `npx tsc -p .`): the
// StepFlow core with the team's own component server `team-tools`
// (verify/stepflow/team_worker/team_tools.py), a StepFlowWorker routed at /team. Two
// files per generation, both DEV, no inference server:
//
//   team-with-sdk.yaml  the built-in python-sdk kept; the worker added with chart.addWorker()
//   team-only.yaml      `pythonSdk: false`: the core and the team's worker alone (`workers: [...]`)
//
//   node verify/stepflow/team-chart.mjs --generation 0.11|0.13 --outdir DIR
//
// The worker's process, as a team's image runs it:
//   0.13  python3 -m stepflow_kit_worker, STEPFLOW_KIT_SERVER=team_tools:server (the
//         python-sdk image's reconnect loop serving the team's StepflowServer)
//   0.11  python3 -m team_tools (the module's own HTTP entry point; StepFlowWorker adds
//         --host 0.0.0.0 --port 8081)
// verify/stepflow/run.sh runs both files with the real StepFlow programs (docs/library.md,
// "A team's own workers, Secrets and pod settings").
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const USAGE = 'usage: node verify/stepflow/team-chart.mjs --generation 0.11|0.13 --outdir DIR';
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');

function usageError(message) {
  process.stderr.write(`team-chart.mjs: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '-h' || flag === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    if (flag !== '--generation' && flag !== '--outdir') usageError(`unknown argument: ${flag}`);
    const value = argv[i + 1];
    if (value === undefined || value.startsWith('--')) usageError(`${flag} needs a value`);
    out[flag.slice(2)] = value;
    i++;
  }
  if (out.generation !== '0.11' && out.generation !== '0.13') usageError(`--generation must be 0.11 or 0.13, not ${out.generation ?? '(missing)'}`);
  if (!out.outdir) usageError('--outdir is required');
  return out;
}

/** The team's worker: the same image and module in both generations, the process per generation. */
export function teamWorker(generation) {
  const common = {
    name: 'team-tools',
    image: 'registry.example.com/team/tools:1.0.0',
    routePrefix: 'team',
  };
  return generation === '0.13'
    ? { ...common, command: ['python3', '-m', 'stepflow_kit_worker'], env: { STEPFLOW_KIT_SERVER: 'team_tools:server' } }
    : { ...common, command: ['python3', '-m', 'team_tools'] };
}

const args = parseArgs(process.argv.slice(2));
const require = createRequire(import.meta.url);
const lib = require(path.join(repo, 'lib', 'src', 'index.js'));
const generation = args.generation === '0.13' ? lib.StepFlowGeneration.GRPC_PULL : lib.StepFlowGeneration.HTTP_PUSH;
const base = { environment: lib.StepFlowEnvironment.DEV, generation, inference: false };

// One app per installation: both are DEV, with the same namespace and names.
const withSdk = new lib.StepFlowApp({ outdir: args.outdir });
const chart = new lib.StepFlowChart(withSdk, 'team-with-sdk', base);
chart.addWorker(teamWorker(args.generation));
if (!chart.pythonSdk || chart.inference) throw new Error('team-with-sdk: expected the python-sdk and no inference');
withSdk.synth();

const alone = new lib.StepFlowApp({ outdir: args.outdir });
const only = new lib.StepFlowChart(alone, 'team-only', { ...base, pythonSdk: false, workers: [teamWorker(args.generation)] });
if (only.pythonSdk || only.inference || only.workers.length !== 1) throw new Error('team-only: expected the team worker alone');
alone.synth();
process.stdout.write(`team-chart.mjs: gen ${args.generation}: ${path.join(args.outdir, 'team-with-sdk.yaml')} ${path.join(args.outdir, 'team-only.yaml')}\n`);
