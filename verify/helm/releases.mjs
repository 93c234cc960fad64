#!/usr/bin/env node
// The changed release the Helm tier upgrades to: this repository's installations (charts/)
// with changes a team makes between two releases, synthesized with the kit's own
// StepFlowApp into OUTDIR (OUTDIR/<env>.yaml and the charts OUTDIR/helm/<env>/), and
// OUTDIR/release.json saying what changed:
//   every object and pod template carries the annotation example.com/release-note, and the
//   core the env var RELEASE_NOTE, both holding Go template syntax (`{{ ... }}`, `{{-`,
//   `}}`) and a YAML document separator on a line of its own: Helm must pass them through;
//   dev: python-sdk at 2 replicas, inference left out (its StatefulSet, Service,
//   ServiceAccount and NetworkPolicy go; its model-cache claim must stay);
//   prod: python-sdk's PodDisruptionBudget left out.
// Usage: node verify/helm/releases.mjs OUTDIR   (needs the compiled library: npm run synth)
import { writeFileSync } from 'fs';
import { createRequire } from 'module';
import * as path from 'path';
import { fileURLToPath } from 'url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
if (args.length !== 1 || args[0].startsWith('-')) {
  process.stderr.write('usage: node verify/helm/releases.mjs OUTDIR\n');
  process.exit(2);
}
const lib = require(path.join(root, 'lib', 'src'));
const { DEV } = require(path.join(root, 'lib', 'charts', 'dev'));
const { prod } = require(path.join(root, 'lib', 'charts', 'prod'));

const NOTE = 'release {{ .Release.Name }} {{- "x" -}} }} {{/* kept */}} {{{ triple }}}\n---\nkind: NotAnObject';
const generation = lib.StepFlowGeneration.GRPC_PULL;
const changes = {
  dev: { ...DEV, generation, annotations: { 'example.com/release-note': NOTE }, core: { env: { RELEASE_NOTE: NOTE } }, pythonSdk: { replicas: 2 }, inference: false },
  prod: { ...prod(generation), annotations: { 'example.com/release-note': NOTE }, core: { env: { RELEASE_NOTE: NOTE } }, pythonSdk: { disruptionBudget: false } },
};
const app = new lib.StepFlowApp({ outdir: args[0], helmCharts: {} });
for (const [id, props] of Object.entries(changes)) new lib.StepFlowChart(app, id, props);
app.synth();
writeFileSync(path.join(args[0], 'release.json'), `${JSON.stringify({
  note: NOTE,
  annotation: 'example.com/release-note',
  coreEnv: 'RELEASE_NOTE',
  replicas: { dev: { 'Deployment/dev-stepflow-python-sdk': 2 } },
}, null, 2)}\n`);
process.stdout.write(`the changed release (dev, prod and their charts) in ${args[0]}\n`);
