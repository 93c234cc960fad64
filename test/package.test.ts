import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';

// GIVEN the npm package this repo publishes, installed into a fresh project outside the
// repo, WHEN another team synthesizes its own environment with the public API only,
// THEN it gets its namespace, names and registry, and internals stay private.
const ROOT = path.resolve(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const run = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

const CONSUMER = `
import { App, YamlOutputType } from 'cdk8s';
import { IngressAuthentication, StepFlowChart, StepFlowEnvironment, LogLevel } from '${pkg.name}';

const staging = StepFlowEnvironment.PROD.extend({
  name: 'staging',
  namespace: 'stepflow-staging',
  namePrefix: 'staging-',
  imageRegistry: 'registry.staging.example.com/ml',
  imageTag: '2.3.0',
  logLevel: LogLevel.DEBUG,
});
const app = new App({ outdir: 'out', outputFileExtension: '.yaml', yamlOutputType: YamlOutputType.FILE_PER_CHART });
new StepFlowChart(app, 'staging', {
  environment: staging,
  ingress: { host: 'stepflow.staging.example.com', authentication: IngressAuthentication.basic({ secretName: 'stepflow-users' }) },
});
app.synth();
`;

describe('the packed npm package, used by another team', () => {
  let project: string;
  let files: string[];

  beforeAll(() => {
    project = fs.mkdtempSync(path.join(os.tmpdir(), 'stepflow-consumer-'));
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', project], ROOT));
    files = packed[0].files.map((f: any) => f.path);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
    const peers = Object.keys(pkg.peerDependencies).map((p) => `${p}@${pkg.devDependencies[p]}`);
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(project, packed[0].filename), ...peers,
      `typescript@${pkg.devDependencies.typescript}`, `@types/node@${pkg.devDependencies['@types/node']}`], project);
    fs.writeFileSync(path.join(project, 'main.ts'), CONSUMER);
    fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'commonjs', target: 'ES2022', esModuleInterop: true, skipLibCheck: false } }));
  });

  afterAll(() => fs.rmSync(project, { recursive: true, force: true }));

  test('ships compiled JS and declarations, no sources or tests', () => {
    expect(files).toEqual(expect.arrayContaining(['lib/src/index.js', 'lib/src/index.d.ts', 'lib/src/contract.json', 'lib/src/chart.d.ts', 'LICENSE']));
    // The app's own installations (charts/, main.ts) are not part of the library.
    expect(files.filter((f) => f.startsWith('lib/charts/') || f.startsWith('lib/main'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('dist/'))).toEqual([]);
  });

  test('a staging environment type-checks against the .d.ts and synthesizes', () => {
    run(path.join(project, 'node_modules', '.bin', 'tsc'), ['-p', '.'], project);
    run('node', ['main.js'], project);
    const docs = parseAllDocuments(fs.readFileSync(path.join(project, 'out', 'staging.yaml'), 'utf8')).map((d) => d.toJS());
    expect(docs[0]).toMatchObject({ kind: 'Namespace', metadata: { name: 'stepflow-staging' } });
    const core = docs.find((d) => d.kind === 'StatefulSet' && d.metadata.name === 'staging-stepflow-core');
    expect(core.metadata.labels.environment).toBe('staging');
    expect(core.spec.template.spec.containers[0].image).toBe('registry.staging.example.com/ml/stepflow-core:2.3.0');
    expect(core.spec.template.spec.containers[0].env).toContainEqual({ name: 'RUST_LOG', value: 'debug' });
    expect(docs.find((d) => d.kind === 'Ingress').spec.rules[0].host).toBe('stepflow.staging.example.com');
  });

  test('only the public API is reachable', () => {
    const probe = `try { require('${pkg.name}/lib/src/internal/validation'); console.log('reachable'); } catch (e) { console.log(e.code); }`;
    expect(run('node', ['-e', probe], project).trim()).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
    const api = Object.keys(require(path.join(project, 'node_modules', pkg.name)));
    expect(api).toEqual(expect.arrayContaining(['StepFlowChart', 'StepFlowEnvironment', 'StepFlowCore', 'StepFlowPythonSdk', 'StepFlowInference']));
    expect(api).not.toContain('PropValidator');
    expect(api).not.toContain('ComponentWorkload');
  });
});
