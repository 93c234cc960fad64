#!/usr/bin/env node
// Synthesizes the input of the mutation test's `shared` cases: two production
// installations in ONE namespace (`stepflow-shared`), the second with the name
// prefix `team-b-` and without a Namespace of its own, into OUTDIR/shared.yaml.
// Only their app.kubernetes.io/instance label tells their pods apart, so the
// cluster tier's isolation check (every selector selects its own installation's
// pods only) has something to catch when a selector loses that label.
// --separate keeps one file per installation (shared.yaml, team-b.yaml), as the kit
// writes them: the upgrade tier's shared-namespace scenario deploys each on its own.
// Usage: node verify/cluster/mutation-shared.mjs OUTDIR [--separate]   (needs the compiled library: npx tsc -p .)
import { readFileSync, rmSync, writeFileSync } from 'fs';
import { createRequire } from 'module';
import * as path from 'path';
import { fileURLToPath } from 'url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const separate = process.argv.includes('--separate');
const args = process.argv.slice(2).filter((a) => a !== '--separate');
if (args.length !== 1 || args[0].startsWith('-')) {
  process.stderr.write('usage: node verify/cluster/mutation-shared.mjs OUTDIR [--separate]\n');
  process.exit(2);
}
const lib = require(path.join(root, 'lib', 'src'));
const { prod } = require(path.join(root, 'lib', 'charts', 'prod'));

const base = { ...prod(lib.StepFlowGeneration.GRPC_PULL), namespace: 'stepflow-shared', ingress: false };
const app = new lib.StepFlowApp({ outdir: args[0] });
new lib.StepFlowChart(app, 'shared', base);
new lib.StepFlowChart(app, 'team-b', { ...base, namePrefix: 'team-b-', createNamespace: false });
app.synth();
if (separate) {
  process.stdout.write(`shared.yaml and team-b.yaml (two installations in namespace ${base.namespace}) in ${args[0]}\n`);
  process.exit(0);
}
// one file per chart; the mutation cases work on one file: team-b's objects follow
// the first installation's (and its Namespace)
const second = path.join(args[0], 'team-b.yaml');
writeFileSync(path.join(args[0], 'shared.yaml'), `${readFileSync(path.join(args[0], 'shared.yaml'), 'utf8').trimEnd()}\n---\n${readFileSync(second, 'utf8')}`);
rmSync(second);
process.stdout.write(`shared.yaml (two installations in namespace ${base.namespace}) in ${args[0]}\n`);
