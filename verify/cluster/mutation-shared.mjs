#!/usr/bin/env node
// Synthesizes the input of the mutation test's `shared` cases: two production
// installations in ONE namespace (`stepflow-shared`), the second with the name
// prefix `team-b-` and without a Namespace of its own, into OUTDIR/shared.yaml.
// Only their app.kubernetes.io/instance label tells their pods apart, so the
// cluster tier's isolation check (every selector selects its own installation's
// pods only) has something to catch when a selector loses that label.
// Usage: node verify/cluster/mutation-shared.mjs OUTDIR   (needs the compiled library: npx tsc -p .)
import { readFileSync, rmSync, writeFileSync } from 'fs';
import { createRequire } from 'module';
import * as path from 'path';
import { fileURLToPath } from 'url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
if (args.length !== 1 || args[0].startsWith('-')) {
  process.stderr.write('usage: node verify/cluster/mutation-shared.mjs OUTDIR\n');
  process.exit(2);
}
const lib = require(path.join(root, 'lib', 'src'));
const { prod } = require(path.join(root, 'lib', 'charts', 'prod'));

const base = { ...prod(lib.StepFlowGeneration.GRPC_PULL), namespace: 'stepflow-shared', ingress: false };
const app = new lib.StepFlowApp({ outdir: args[0] });
new lib.StepFlowChart(app, 'shared', base);
new lib.StepFlowChart(app, 'team-b', { ...base, namePrefix: 'team-b-', createNamespace: false });
app.synth();
// one file per chart; the mutation cases work on one file: team-b's objects follow
// the first installation's (and its Namespace)
const second = path.join(args[0], 'team-b.yaml');
writeFileSync(path.join(args[0], 'shared.yaml'), `${readFileSync(path.join(args[0], 'shared.yaml'), 'utf8').trimEnd()}\n---\n${readFileSync(second, 'utf8')}`);
rmSync(second);
process.stdout.write(`shared.yaml (two installations in namespace ${base.namespace}) in ${args[0]}\n`);
