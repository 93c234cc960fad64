import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

// The repository's Python, one way as layers.test.ts keeps src/ one way: no import cycle
// anywhere, the tier's shared infrastructure (verify/stepflow/pods.py, manifests.py) imports
// no scenario, the StepFlow fixtures (verify/fixtures) import nothing of the tiers or tests,
// and what the images ship imports nothing but itself. The graph comes from python3's ast
// (test/python_imports.py: every import, late ones in functions too).
const ROOT = path.resolve(__dirname, '..');

interface Imports { graph: Record<string, string[]>; ambiguous: string[] }

function imports(dir: string): Imports {
  return JSON.parse(execFileSync('python3', [path.join(__dirname, 'python_imports.py'), dir], { encoding: 'utf8' }));
}

function cycles(graph: Record<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (f: string, trail: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      found.push([...trail.slice(trail.indexOf(f)), f].join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const d of graph[f] ?? []) visit(d, [...trail, f]);
    state.set(f, 'done');
  };
  for (const f of Object.keys(graph)) visit(f, []);
  return found;
}

/** Edges from the files under `from` to files outside every folder of `allowed`. */
function reaching(graph: Record<string, string[]>, from: string, allowed: string[]): string[] {
  return Object.entries(graph).filter(([f]) => f.startsWith(from))
    .flatMap(([f, deps]) => deps.filter((d) => !allowed.some((a) => d.startsWith(a))).map((d) => `${f} -> ${d}`));
}

const repo = imports(ROOT);

test('the graph covers the repository\'s Python and resolves every name', () => {
  for (const f of ['verify/stepflow/verify.py', 'verify/stepflow/pods.py', 'containers/python-sdk/stepflow_kit_worker/loop.py',
    'containers/inference/src/stepflow_inference/config.py', 'verify/fixtures/stepflow_fixtures/core.py']) {
    expect(Object.keys(repo.graph)).toContain(f);
  }
  expect(repo.graph['verify/stepflow/scenarios.py']).toContain('verify/stepflow/pods.py');
  expect(repo.graph['containers/inference/src/stepflow_inference/config.py']).toContain('containers/python-sdk/stepflow_kit_worker/env.py');
  expect(Object.keys(repo.graph).some((f) => f.startsWith('node_modules') || f.startsWith('lib/'))).toBe(false);
  expect(repo.ambiguous).toEqual([]);
});

test('no import cycle in the repository\'s Python', () => {
  expect(cycles(repo.graph)).toEqual([]);
});

test('verify/stepflow: the shared infrastructure imports no scenario', () => {
  const scenarios = ['verify.py', 'scenarios.py', 'resilience.py', 'team.py', 'telemetry.py'].map((f) => `verify/stepflow/${f}`);
  const up = ['pods.py', 'manifests.py'].flatMap((f) => (repo.graph[`verify/stepflow/${f}`] ?? [])
    .filter((d) => scenarios.includes(d)).map((d) => `verify/stepflow/${f} -> ${d}`));
  expect(up).toEqual([]);
});

test('the StepFlow fixtures import nothing of the tiers or tests; the images\' code nothing but itself', () => {
  expect(reaching(repo.graph, 'verify/fixtures/', ['verify/fixtures/'])).toEqual([]);
  const shipped = ['containers/python-sdk/stepflow_kit_worker/', 'containers/inference/src/'];
  expect(reaching(repo.graph, 'containers/python-sdk/stepflow_kit_worker/', shipped.slice(0, 1))).toEqual([]);
  expect(reaching(repo.graph, 'containers/inference/src/', shipped)).toEqual([]);
});

describe('controls: the checks find what they look for', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'python-imports-'));
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(tmp, file)), { recursive: true });
    fs.writeFileSync(path.join(tmp, file), text);
  };
  // a late import (in a function) closing a cycle of flat modules, as verify.py <-> scenarios.py did
  write('tier/a.py', 'import b\n');
  write('tier/b.py', 'def f():\n    from a import x\n    return x\n');
  // a cycle through relative imports inside a package
  write('pkg/p/__init__.py', '');
  write('pkg/p/m.py', 'from . import n\n');
  write('pkg/p/n.py', 'from .m import y\n');
  // one way: no cycle
  write('ok/c.py', 'import d\nimport json\n');
  write('ok/d.py', 'import os\n');
  // a name two other roots hold
  write('one/shared.py', '');
  write('two/shared.py', '');
  write('three/user.py', 'import shared\n');
  const control = imports(tmp);
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('a cycle is reported, a one-way graph is not', () => {
    expect(cycles(control.graph).sort()).toEqual([
      'pkg/p/m.py -> pkg/p/n.py -> pkg/p/m.py',
      'tier/a.py -> tier/b.py -> tier/a.py',
    ]);
    expect(control.graph['ok/c.py']).toEqual(['ok/d.py']);
  });

  test('an import that could be either of two files is reported', () => {
    expect(control.ambiguous).toEqual([expect.stringMatching(/^three\/user\.py: shared/)]);
  });

  test('an edge out of an allowed folder is reported', () => {
    expect(reaching(control.graph, 'tier/', ['ok/'])).toEqual(['tier/a.py -> tier/b.py', 'tier/b.py -> tier/a.py']);
  });
});
