#!/usr/bin/env node
// The synth step of the release flow, with the kit's own library: this repository's dev
// installation (charts/dev.ts) with the images of TAG, given the lock `scripts/build.sh
// --push` wrote, into OUTDIR (OUTDIR/dev.yaml and its Helm chart OUTDIR/helm/dev/).
// Prints the synth error and exits 1 when the lock lacks an image.
// Usage: node verify/release/pinned.mjs LOCK TAG OUTDIR   (needs the compiled library: npm run synth)
import { createRequire } from 'module';
import * as path from 'path';
import { fileURLToPath } from 'url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
if (args.length !== 3 || args.some((a) => a.startsWith('-'))) {
  process.stderr.write('usage: node verify/release/pinned.mjs LOCK TAG OUTDIR\n');
  process.exit(2);
}
const [lockFile, imageTag, outdir] = args;
const lib = require(path.join(root, 'lib', 'src'));
const { DEV } = require(path.join(root, 'lib', 'charts', 'dev'));
try {
  const app = new lib.StepFlowApp({ outdir, helmCharts: {} });
  new lib.StepFlowChart(app, 'dev', { ...DEV, imageTag, imageLock: lib.ImageLock.fromFile(lockFile) });
  app.synth();
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
}
process.stdout.write(`dev.yaml and helm/dev/ with the images of ${imageTag} pinned by ${lockFile} in ${outdir}\n`);
