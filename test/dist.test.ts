import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { App, YamlOutputType } from 'cdk8s';
import { buildApp } from '../main';
import { StepFlowChart } from '../src';
import { DEV_PROPS, PROD_PROPS } from './helpers';

const ROOT = path.resolve(__dirname, '..');

/** Every file under dir (relative paths, sorted) and its bytes. */
function filesUnder(dir: string): Record<string, Buffer> {
  const walk = (d: string): string[] => fs.readdirSync(path.join(dir, d), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
  return Object.fromEntries(walk('').sort().map((f) => [f, fs.readFileSync(path.join(dir, f))]));
}

function synthTo(dir: string): Record<string, Buffer> {
  buildApp(dir).synth();
  return filesUnder(dir);
}

describe('dist/', () => {
  const a = synthTo(fs.mkdtempSync(path.join(os.tmpdir(), 'synth-a-')));
  const b = synthTo(fs.mkdtempSync(path.join(os.tmpdir(), 'synth-b-')));

  test('one file per environment at the top (what `kubectl apply -f dist/` reads), a Helm chart per environment below helm/', () => {
    expect(Object.keys(a).filter((f) => !f.includes(path.sep))).toEqual(['dev.yaml', 'prod.yaml']);
    expect([...new Set(Object.keys(a).filter((f) => f.includes(path.sep)).map((f) => f.split(path.sep).slice(0, 2).join('/')))]).toEqual(['helm/dev', 'helm/prod']);
  });

  test('two synths give identical bytes', () => {
    expect(Object.keys(b)).toEqual(Object.keys(a));
    for (const f of Object.keys(a)) expect([f, a[f].equals(b[f])]).toEqual([f, true]);
  });

  test('the committed dist/ is what a fresh synth gives (run `npm run synth` and commit)', () => {
    const committed = filesUnder(path.join(ROOT, 'dist'));
    expect(Object.keys(committed)).toEqual(Object.keys(a));
    for (const f of Object.keys(committed)) {
      expect([f, committed[f].toString('utf8')]).toEqual([f, a[f].toString('utf8')]);
    }
  });

  test.each(['dev.yaml', 'prod.yaml'])('%s: the Namespace is first, every other object is in it', (f) => {
    const docs = parseAllDocuments(a[f].toString('utf8')).map((d) => d.toJS());
    expect(docs[0].kind).toBe('Namespace');
    const ns = docs[0].metadata.name;
    for (const d of docs.slice(1)) expect(d.metadata.namespace).toBe(ns);
    // kubectl applies the files of a directory in name order; both files hold their own Namespace.
    const names = docs.map((d) => `${d.kind}/${d.metadata.name}`);
    expect(new Set(names).size).toBe(names.length);
  });

  test('the design document\'s commands, as the README gives them for a StatefulSet core, find their objects', () => {
    const prod = parseAllDocuments(a['prod.yaml'].toString('utf8')).map((d) => d.toJS());
    const dev = parseAllDocuments(a['dev.yaml'].toString('utf8')).map((d) => d.toJS());
    const statefulSet = (docs: any[], ns: string, name: string) => docs.find((o) => o.kind === 'StatefulSet' && o.metadata.name === name && o.metadata.namespace === ns);
    // kubectl -n stepflow rollout status statefulset/stepflow-core
    expect(statefulSet(prod, 'stepflow', 'stepflow-core')).toBeDefined();
    // kubectl -n stepflow logs -l component=core -f
    expect(prod.filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind) && o.spec.template.metadata.labels.component === 'core')).toHaveLength(1);
    // kubectl -n stepflow-dev exec -it dev-stepflow-core-0 -- sh   (the StatefulSet's one pod: <name>-0)
    expect(statefulSet(dev, 'stepflow-dev', 'dev-stepflow-core').spec.replicas).toBe(1);
    // the old `deploy/dev-stepflow-core` finds nothing any more
    expect(dev.filter((o) => o.kind === 'Deployment' && o.metadata.name === 'dev-stepflow-core')).toEqual([]);
  });

  test('StepFlowApp writes the same bytes as cdk8s App, validating once', () => {
    const dirs = [fs.mkdtempSync(path.join(os.tmpdir(), 'cdk8s-app-')), fs.mkdtempSync(path.join(os.tmpdir(), 'cdk8s-app-'))];
    const plain = new App({ outdir: dirs[0], outputFileExtension: '.yaml', yamlOutputType: YamlOutputType.FILE_PER_CHART });
    for (const [id, props] of Object.entries({ dev: DEV_PROPS, prod: PROD_PROPS })) new StepFlowChart(plain, id, props);
    plain.synth();
    const ours = buildApp(dirs[1]);
    ours.synth();
    for (const f of ['dev.yaml', 'prod.yaml']) {
      expect(fs.readFileSync(path.join(dirs[1], f), 'utf8')).toBe(fs.readFileSync(path.join(dirs[0], f), 'utf8'));
    }
  });

  test('cdk8s.yaml runs the compiled app, not ts-node', () => {
    const config = fs.readFileSync(path.join(ROOT, 'cdk8s.yaml'), 'utf8');
    expect(config).toMatch(/^app: node lib\/main\.js$/m);
    expect(execFileSync('git', ['check-ignore', 'lib/main.js'], { cwd: ROOT }).toString().trim()).toBe('lib/main.js');
  });
});
