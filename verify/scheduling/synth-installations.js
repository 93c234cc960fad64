#!/usr/bin/env node
// Synthesizes N production installations of StepFlow with the compiled library
// (lib/src), each in its own namespace stepflow-<i>, one file per installation:
//
//   node synth-installations.js --count 20 --outdir DIR [--generation 0.13]
//
// Used by the scale scenario of run.sh. Needs `tsc -p .` to have run (lib/).
'use strict';
const path = require('node:path');

const ROOT = path.resolve(__dirname, '../..');
const USAGE = 'usage: node synth-installations.js --count N --outdir DIR [--generation G]';
const opts = { count: 0, outdir: '', generation: undefined };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [flag, value] = [argv[i], argv[i + 1]];
  if (flag === '--count' && /^[1-9][0-9]*$/.test(value ?? '')) opts.count = Number(value);
  else if (flag === '--outdir' && value) opts.outdir = path.resolve(value);
  else if (flag === '--generation' && value) opts.generation = value;
  else {
    process.stderr.write(`synth-installations.js: bad argument ${flag ?? ''} ${value ?? ''}\n${USAGE}\n`);
    process.exit(2);
  }
}
if (!opts.count || !opts.outdir) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}

const kit = require(path.join(ROOT, 'lib/src'));
const { CONTRACT, DEFAULT_GENERATION } = require(path.join(ROOT, 'lib/src/contract'));
const generation = opts.generation ?? DEFAULT_GENERATION;
if (!CONTRACT.generations[generation]) {
  process.stderr.write(`synth-installations.js: unknown generation ${generation}\n`);
  process.exit(2);
}
// The repository's own production props (charts/prod.ts), one namespace each.
const { prod } = require(path.join(ROOT, 'lib/charts/prod'));
const app = new kit.StepFlowApp({ outdir: opts.outdir });
for (let i = 1; i <= opts.count; i++) {
  const base = prod(generation);
  new kit.StepFlowChart(app, `prod-${String(i).padStart(2, '0')}`, {
    ...base,
    namespace: `stepflow-${String(i).padStart(2, '0')}`,
    ...(base.ingress ? { ingress: { ...base.ingress, host: `stepflow-${i}.example.com` } } : {}),
  });
}
app.synth();
process.stdout.write(`${opts.count} installations (generation ${generation}) in ${opts.outdir}\n`);
