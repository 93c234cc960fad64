#!/usr/bin/env node
// Synth benchmark: prints the median wall time of
//   (a) the app's own synth of all environments (node lib/main.js)
//   (b) `cdk8s synth` end to end
//   (c) `cdk8s synth` of an empty cdk8s App (the CLI's floor)
//   (d) one StepFlowApp with 100 environment charts
//   (e) the same with cdk8s's own App (for comparison: it re-validates once per chart)
// Usage: npm run bench [-- --runs N]   (runs `tsc` first)
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const USAGE = 'usage: node scripts/bench.js [--runs N]';
let runs = 7;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  if (argv[i] === '--runs' && /^[1-9][0-9]*$/.test(argv[i + 1] ?? '')) runs = Number(argv[i + 1]);
  else { process.stderr.write(`unknown or incomplete argument: ${argv[i]}\n${USAGE}\n`); process.exit(2); }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stepflow-bench-'));
const cdk8s = path.join(ROOT, 'node_modules', '.bin', 'cdk8s');

function median(cmd, args, options = {}) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    execFileSync(cmd, args, { stdio: 'ignore', ...options });
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  times.sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)];
}

// (c) an empty App, synthesized by the same CLI
const empty = path.join(tmp, 'empty');
fs.mkdirSync(empty);
fs.writeFileSync(path.join(empty, 'app.js'), `const { App } = require(${JSON.stringify(require.resolve('cdk8s', { paths: [ROOT] }))}); new App().synth();\n`);
fs.writeFileSync(path.join(empty, 'cdk8s.yaml'), 'language: typescript\napp: node app.js\noutput: dist\n');

// (d), (e) 100 environment charts in one App: ours, then cdk8s's own
const many = path.join(tmp, 'many.js');
fs.writeFileSync(many, `
const { App, YamlOutputType } = require(${JSON.stringify(require.resolve('cdk8s', { paths: [ROOT] }))});
const { StepFlowApp, StepFlowChart, StepFlowEnvironment } = require(${JSON.stringify(path.join(ROOT, 'lib', 'src'))});
const app = process.argv[3] === 'cdk8s'
  ? new App({ outdir: process.argv[2], outputFileExtension: '.yaml', yamlOutputType: YamlOutputType.FILE_PER_CHART })
  : new StepFlowApp({ outdir: process.argv[2] });
for (let i = 0; i < 100; i++) {
  const env = StepFlowEnvironment.DEV.extend({ name: 'env' + i, namespace: 'stepflow-env' + i, namePrefix: 'e' + i + '-' });
  new StepFlowChart(app, 'env' + i, { environment: env });
}
app.synth();
`);

const results = [
  ['(a) app synth, all environments', median('node', [path.join(ROOT, 'lib', 'main.js'), '--outdir', path.join(tmp, 'a')], { cwd: ROOT }), null],
  ['(b) cdk8s synth, end to end', median(cdk8s, ['synth', '--no-check-upgrade', '--output', path.join(tmp, 'b')], { cwd: ROOT }), null],
  ['(c) cdk8s synth, empty App', median(cdk8s, ['synth', '--no-check-upgrade'], { cwd: empty }), null],
  ['(d) 100 environment charts', median('node', [many, path.join(tmp, 'd')]), null],
  ['(e) the same, cdk8s App', median('node', [many, path.join(tmp, 'e'), 'cdk8s']), null],
];
const [a, b, c, d] = results.map((r) => r[1]);
const targets = [
  ['(a) <= 0.6 s', a <= 0.6],
  ['(b) <= (c) + 0.5 s', b <= c + 0.5],
  ['(d) <= 2 s', d <= 2],
];
console.log(`median of ${runs} runs on ${os.cpus().length} cores, node ${process.version}`);
for (const [name, t] of results) console.log(`${name.padEnd(36)} ${t.toFixed(3)} s`);
for (const [name, ok] of targets) console.log(`${ok ? 'met   ' : 'MISSED'} ${name}`);
fs.rmSync(tmp, { recursive: true, force: true });
process.exit(targets.every(([, ok]) => ok) ? 0 : 1);
