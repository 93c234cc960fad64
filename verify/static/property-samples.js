#!/usr/bin/env node
// Writes the installations that synthesize out of N generated prop combinations (the
// generator of test/property.test.ts, same seed) as one YAML file each, for the static
// tier's strict schema check. Usage: node verify/static/property-samples.js OUTDIR [N] [SEED]
'use strict';
const fs = require('fs');
const path = require('path');

const [outdir, runs = '40', seed = '20261201', ...rest] = process.argv.slice(2);
if (!outdir || rest.length > 0 || !/^[1-9][0-9]*$/.test(runs) || !/^[0-9]+$/.test(seed)) {
  process.stderr.write('usage: node verify/static/property-samples.js OUTDIR [N] [SEED]\n');
  process.exit(2);
}
const root = path.resolve(__dirname, '..', '..');
const fc = require(path.join(root, 'node_modules', 'fast-check'));
const { Testing, Yaml } = require(path.join(root, 'node_modules', 'cdk8s'));
const lib = require(path.join(root, 'lib', 'src'));
const { chartProps, KIT_MESSAGE } = require(path.join(root, 'test', 'property', 'chart-props.js'));

fs.mkdirSync(outdir, { recursive: true });
let written = 0;
let rejected = 0;
for (const [i, props] of fc.sample(chartProps(fc, lib), { numRuns: Number(runs), seed: Number(seed) }).entries()) {
  let objects;
  try {
    objects = Testing.synth(new lib.StepFlowChart(Testing.app(), `sample-${i}`, props));
  } catch (e) {
    if (e.constructor !== Error || !KIT_MESSAGE.test(e.message)) throw e;
    rejected += 1;
    continue;
  }
  fs.writeFileSync(path.join(outdir, `sample-${String(i).padStart(3, '0')}.yaml`), Yaml.stringify(...objects));
  written += 1;
}
process.stdout.write(`${written} synthesized, ${rejected} rejected by the kit\n`);
