import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';
import { parseAllDocuments } from 'yaml';

// GIVEN the TypeScript examples of the README's "Using the constructs from npm", WHEN they
// are type-checked (strict) against the library and run, THEN they synthesize, and the
// fields they promise are in the output.
const ROOT = path.resolve(__dirname, '..');
const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## Using the constructs from npm'), readme.indexOf('### What is validated'));
const examples = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
// Beside node_modules, so that the examples resolve cdk8s and cdk8s-plus-30 as a user's project does.
const workDir = path.join(ROOT, 'node_modules', '.cache', 'readme-examples');

function compile(source: string, name: string): string {
  fs.mkdirSync(workDir, { recursive: true });
  const file = path.join(workDir, `${name}.ts`);
  fs.writeFileSync(file, source.replace(/from '@stepflow\/deploy-kit'/g, `from ${JSON.stringify(path.join(ROOT, 'src'))}`));
  const options: ts.CompilerOptions = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2020, module: ts.ModuleKind.CommonJS, esModuleInterop: true, resolveJsonModule: true, skipLibCheck: true };
  const program = ts.createProgram([file], options);
  const problems = ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === file)
    .map((d) => `${name}:${d.file!.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
  expect(problems).toEqual([]);
  return ts.transpileModule(fs.readFileSync(file, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020, esModuleInterop: true } }).outputText;
}

/** Run an example with its App writing into a fresh directory; the objects it wrote. */
function run(js: string): any[] {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'readme-example-'));
  const previous = process.env.CDK8S_OUTDIR;
  process.env.CDK8S_OUTDIR = outdir;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    new Function('require', 'exports', js)((id: string) => require(id.startsWith(ROOT) ? id : require.resolve(id, { paths: [workDir] })), {});
  } finally {
    if (previous === undefined) delete process.env.CDK8S_OUTDIR;
    else process.env.CDK8S_OUTDIR = previous;
  }
  return fs.readdirSync(outdir).flatMap((f) => parseAllDocuments(fs.readFileSync(path.join(outdir, f), 'utf8')).map((d) => d.toJS()));
}

describe('README examples', () => {
  test('there are examples to check', () => {
    expect(examples.length).toBeGreaterThanOrEqual(3);
  });

  test.each(examples.map((source, i) => [i, source] as const))('example %d type-checks and synthesizes', (i, source) => {
    const objects = run(compile(source, `example-${i}`));
    expect(objects.length).toBeGreaterThan(10);
    for (const o of objects) expect(JSON.stringify(o)).not.toMatch(/"(password|token)"\s*:\s*"/i);
  });

  test("the team's own worker example gives a registered worker, a Secret reference and the pod settings", () => {
    const source = examples.find((e) => e.includes('StepFlowWorker') || e.includes('workers: ['));
    expect(source).toBeDefined();
    const objects = run(compile(source!, 'example-worker'));
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
});
