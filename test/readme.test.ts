import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { codeBlocks, documentationFiles, ROOT } from './markdown';

// GIVEN every TypeScript example of README.md and the guides under docs/ (wherever an
// example moves, it is found), WHEN it is type-checked (strict) against the library and
// run, THEN it synthesizes, and the fields it promises are in the output.
//
// Two kinds of example: a whole program (it imports what it uses) runs as written; a props
// fragment (`core: { stateStore: ... }`, one or more alternatives, each starting at column
// 0) is one set of props of a dev StepFlowChart, with the library's exports and a `host` in
// scope, and must change what that chart synthesizes.
interface Example { readonly name: string; readonly source: string; readonly program: boolean }
const examples: Example[] = documentationFiles().flatMap((file) => codeBlocks(fs.readFileSync(path.join(ROOT, file), 'utf8'), ['ts', 'typescript'])
  .map((b) => ({ name: `${file}:${b.line}`, source: b.source, program: /^import /m.test(b.source) })));

/** The alternatives of a props fragment: a line at column 0 (not a closing bracket) starts the next one. */
function alternatives(fragment: string): string[] {
  const out: string[] = [];
  for (const line of fragment.split('\n')) {
    if (line.trim() === '') continue;
    if (out.length === 0 || /^[^\s})\]]/.test(line)) out.push(line);
    else out[out.length - 1] += `\n${line}`;
  }
  return out;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const KIT_VALUES = Object.keys(require(path.join(ROOT, 'src')));

/** A props fragment as a module: `baseline` synthesizes the dev chart alone, `alternatives[i]` with the fragment's i-th alternative. */
function fragmentModule(fragment: string): string {
  const used = KIT_VALUES.filter((n) => n !== 'StepFlowChart' && n !== 'StepFlowEnvironment' && new RegExp(`\\b${n}\\b`).test(fragment));
  const chart = (props: string) => `() => {\n  const app = new App();\n  new StepFlowChart(app, 'example', {\n    environment: StepFlowEnvironment.DEV,\n${props}\n  });\n  app.synth();\n}`;
  return [
    "import { App } from 'cdk8s';",
    `import { ${['StepFlowChart', 'StepFlowEnvironment', ...used].join(', ')} } from '@stepflow/deploy-kit';`,
    "const host = 'stepflow.example.com';",
    'void host;',
    `export const baseline = ${chart('')};`,
    `export const alternatives: Array<() => void> = [\n${alternatives(fragment).map((a) => chart(a)).join(',\n')},\n];`,
  ].join('\n');
}

// Beside node_modules, so that the examples resolve cdk8s and cdk8s-plus-30 as a user's project does.
const workDir = path.join(ROOT, 'node_modules', '.cache', 'readme-examples');
const fileOf = (i: number) => path.join(workDir, `example-${i}.ts`);
const COMPILER: ts.CompilerOptions = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2020, module: ts.ModuleKind.CommonJS, esModuleInterop: true, resolveJsonModule: true, skipLibCheck: true };

/** Every example written as a file (the package name pointing at src/) and type-checked in one program: its problems, per example. */
let problems: string[][] = [];
beforeAll(() => {
  fs.rmSync(workDir, { recursive: true, force: true });
  fs.mkdirSync(workDir, { recursive: true });
  examples.forEach((e, i) => {
    const source = e.program ? e.source : fragmentModule(e.source);
    fs.writeFileSync(fileOf(i), source.replace(/from '@stepflow\/deploy-kit'/g, `from ${JSON.stringify(path.join(ROOT, 'src'))}`));
  });
  const program = ts.createProgram(examples.map((_, i) => fileOf(i)), COMPILER);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  problems = examples.map((e, i) => diagnostics.filter((d) => d.file?.fileName === fileOf(i))
    .map((d) => `${e.name} (${fileOf(i)}:${d.file!.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}): ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`));
});

/** Load an example's module; `require` resolves packages from the examples' folder, the library from src/. */
function load(i: number | string): any {
  const js = ts.transpileModule(fs.readFileSync(typeof i === 'number' ? fileOf(i) : i, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020, esModuleInterop: true } }).outputText;
  const exports: any = {};
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  new Function('require', 'exports', js)((id: string) => require(id.startsWith(ROOT) ? id : require.resolve(id, { paths: [workDir] })), exports);
  return exports;
}

/** Run `synthesize` with its Apps writing into a fresh directory; the objects they wrote. */
function objectsOf(synthesize: () => void): any[] {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'readme-example-'));
  const previous = process.env.CDK8S_OUTDIR;
  process.env.CDK8S_OUTDIR = outdir;
  try {
    synthesize();
  } finally {
    if (previous === undefined) delete process.env.CDK8S_OUTDIR;
    else process.env.CDK8S_OUTDIR = previous;
  }
  return fs.readdirSync(outdir).flatMap((f) => parseAllDocuments(fs.readFileSync(path.join(outdir, f), 'utf8')).map((d) => d.toJS()));
}

function expectNoSecretValues(objects: any[]) {
  for (const o of objects) expect(JSON.stringify(o)).not.toMatch(/"(password|token)"\s*:\s*"/i);
}

const indexed = examples.map((e, i) => [e.name, i] as const);

describe('the TypeScript examples of README.md and docs/', () => {
  test('there are examples to check: at least as many as before the guides moved to docs/', () => {
    // d2dfa1f's README: 3 programs ("Using the constructs from npm" and its sections) and 4 props fragments.
    expect(examples.filter((e) => e.program).length).toBeGreaterThanOrEqual(3);
    expect(examples.length).toBeGreaterThanOrEqual(7);
    expect(examples.filter((e) => !e.program).flatMap((e) => alternatives(e.source)).length).toBeGreaterThanOrEqual(11);
    expect(examples.some((e) => e.name.startsWith('README.md:') && e.program)).toBe(true);
  });

  test.each(indexed.filter(([, i]) => examples[i].program))('program %s type-checks and synthesizes', (_name, i) => {
    expect(problems[i]).toEqual([]);
    const objects = objectsOf(() => load(i));
    expect(objects.length).toBeGreaterThan(10);
    expectNoSecretValues(objects);
  });

  test.each(indexed.filter(([, i]) => !examples[i].program))('props fragment %s type-checks, synthesizes and changes the chart', (_name, i) => {
    expect(problems[i]).toEqual([]);
    const module = load(i);
    const baseline = JSON.stringify(objectsOf(module.baseline));
    const texts = alternatives(examples[i].source);
    const unchanged = (module.alternatives as Array<() => void>).flatMap((alternative, k) => {
      const objects = objectsOf(alternative);
      expect(objects.length).toBeGreaterThan(10);
      expectNoSecretValues(objects);
      // `x: false` removes an option, which the dev preset may not set at all.
      return JSON.stringify(objects) === baseline && !/^\w+: false\b/.test(texts[k]) ? [texts[k]] : [];
    });
    expect(unchanged).toEqual([]);
  });

  test("the team's own worker example gives a registered worker, a Secret reference and the pod settings", () => {
    const i = examples.findIndex((e) => e.program && e.source.includes('workers: ['));
    expect(i).toBeGreaterThanOrEqual(0);
    expect(problems[i]).toEqual([]);
    const objects = objectsOf(() => load(i));
    const worker = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'team-tools');
    const c = worker.spec.template.spec.containers[0];
    expect(c.env).toContainEqual({ name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'team-db', key: 'password' } } });
    expect(worker.spec.template.spec.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(worker.spec.template.metadata.labels.team).toBe('ml');
    const config = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'stepflow-config').data['stepflow-config.yml'];
    expect(config).toContain('queueName: team');
    expect(objects.filter((o) => o.kind === 'Deployment' && o.metadata.name === 'stepflow-python-sdk')).toEqual([]);
    const metrics = objects.find((o) => o.kind === 'NetworkPolicy' && o.spec.podSelector.matchLabels?.component === 'team-tools' && o.spec.ingress?.[0]?.ports?.[0]?.port === 9090);
    expect(metrics.spec.ingress[0].from).toEqual([{ podSelector: { matchLabels: { app: 'prometheus' } }, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    const inference = objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'stepflow-inference');
    expect(inference.spec.template.spec.containers[0].resources.limits['nvidia.com/mig-1g.10gb']).toBe(1);
  });

  test('control: a misspelt prop in a fragment is a type error, and a fragment that changes nothing is caught', () => {
    const write = (name: string, fragment: string) => {
      const file = path.join(workDir, `${name}.ts`);
      fs.writeFileSync(file, fragmentModule(fragment).replace(/from '@stepflow\/deploy-kit'/g, `from ${JSON.stringify(path.join(ROOT, 'src'))}`));
      return file;
    };
    const misspelt = write('control-misspelt', 'core: { stateStor: StateStore.inMemory() },\n');
    const diagnostics = ts.getPreEmitDiagnostics(ts.createProgram([misspelt], COMPILER)).filter((d) => d.file?.fileName === misspelt);
    expect(diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([expect.stringMatching(/'stateStor' does not exist/)]);
    const noop = load(write('control-noop', 'inference: {},\n'));
    expect(JSON.stringify(objectsOf(noop.alternatives[0]))).toBe(JSON.stringify(objectsOf(noop.baseline)));
    expect(alternatives('a: 1,\nb: { c({\n  d: 2,\n}) },\n')).toEqual(['a: 1,', 'b: { c({\n  d: 2,\n}) },']);
  });
});
