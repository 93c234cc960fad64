import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parse, parseAllDocuments } from 'yaml';
import { ApiObject, Chart, Yaml } from 'cdk8s';
import { buildApp } from '../main';
import { StepFlowApp, StepFlowChart, StepFlowEnvironment, escapeHelmTemplate, helmChartFiles } from '../src';
import { DEV_PROPS, PROD_PROPS } from './helpers';

// The Helm chart StepFlowApp writes per chart (dist/helm/<env>/). Helm itself renders them in
// verify/helm (helm lint, template, install, upgrade, rollback, uninstall on a real API server);
// here: what the files hold, exactly.

const ROOT = path.resolve(__dirname, '..');
const KIT_VERSION = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
const ESCAPED = '{{ "{{" }}';

/** What Helm renders a template of object YAML to: the only actions in it are the escapes. */
function render(template: string): string {
  const rest = template.split(ESCAPED).join('');
  if (rest.includes('{{')) throw new Error(`a template action besides the escape: ${rest.slice(rest.indexOf('{{'), rest.indexOf('{{') + 40)}`);
  return template.split(ESCAPED).join('{{');
}

function synthDir(app: (dir: string) => StepFlowApp): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'helm-'));
  app(dir).synth();
  return dir;
}

function chartFiles(dir: string): Record<string, string> {
  const walk = (d: string): string[] => fs.readdirSync(path.join(dir, d), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
  return Object.fromEntries(walk('').sort().map((f) => [f, fs.readFileSync(path.join(dir, f), 'utf8')]));
}

const objectTemplates = (files: Record<string, string>) => Object.entries(files)
  .filter(([f]) => f.startsWith('templates/') && f.endsWith('.yaml') && f !== 'templates/namespace-check.yaml');

const docs = (text: string) => parseAllDocuments(text).map((d) => d.toJS());

describe('the Helm chart of each environment', () => {
  const dir = synthDir((d) => buildApp(d));

  test.each([['dev', 'stepflow-dev'], ['prod', 'stepflow']])('%s: renders exactly the objects of the plain file but its Namespace %s', (env, ns) => {
    const plain = docs(fs.readFileSync(path.join(dir, `${env}.yaml`), 'utf8'));
    const files = chartFiles(path.join(dir, 'helm', env));
    const rendered = objectTemplates(files).map(([, t]) => parse(render(t)));
    const key = (o: any) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
    const sorted = (os: any[]) => [...os].sort((x, y) => key(x).localeCompare(key(y)));
    expect(plain.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name)).toEqual([ns]);
    expect(rendered.filter((o) => o.kind === 'Namespace')).toEqual([]);
    expect(sorted(rendered)).toEqual(sorted(plain.filter((o) => o.kind !== 'Namespace')));
    // byte for byte: each template is the object's YAML as the plain file writes it
    for (const [, t] of objectTemplates(files)) expect(fs.readFileSync(path.join(dir, `${env}.yaml`), 'utf8')).toContain(render(t));
  });

  test.each([['dev', 'stepflow-dev', 'dev-stepflow'], ['prod', 'stepflow', 'stepflow']])('%s (namespace %s): the kit\'s own labels on every object (instance %s), nothing of Helm\'s templated in', (env, _ns, instance) => {
    const files = chartFiles(path.join(dir, 'helm', env));
    for (const [file, t] of objectTemplates(files)) {
      const o = parse(render(t));
      // what scripts/deploy.sh selects, and what Helm's own labels would have replaced
      expect([file, o.metadata.labels['app.kubernetes.io/managed-by'], o.metadata.labels['app.kubernetes.io/instance']]).toEqual([file, 'stepflow-kit', instance]);
      expect([file, Object.keys(o.metadata.labels).filter((k) => k.startsWith('helm.sh/'))]).toEqual([file, []]);
      expect(t).not.toContain('.Release');
    }
  });

  test('dev: the chart\'s files, Chart.yaml and the namespace check exactly', () => {
    const files = chartFiles(path.join(dir, 'helm', 'dev'));
    expect(Object.keys(files).filter((f) => !f.startsWith('templates/'))).toEqual(['Chart.yaml', 'README.md', 'values.schema.json', 'values.yaml']);
    expect(parse(files['Chart.yaml'])).toEqual({
      apiVersion: 'v2',
      name: 'stepflow-dev',
      description: 'StepFlow 0.13.0, installation dev-stepflow (environment dev) in namespace stepflow-dev: the objects of dev.yaml but the Namespace',
      type: 'application',
      version: KIT_VERSION,
      appVersion: '0.13.0',
      kubeVersion: '>=1.30.0-0',
    });
    expect(files['templates/namespace-check.yaml'].split('\n').slice(1, 4)).toEqual([
      '{{- if ne .Release.Namespace "stepflow-dev" }}',
      '{{- fail (printf "this chart\'s objects live in namespace %s, not %s: install the release there (helm install <release> <chart> --namespace %s)" "stepflow-dev" .Release.Namespace "stepflow-dev") }}',
      '{{- end }}',
    ]);
    expect(JSON.parse(files['values.schema.json'])).toMatchObject({ type: 'object', additionalProperties: false });
    expect(parse(files['values.yaml'])).toEqual({});
    expect(files['templates/NOTES.txt']).toContain('kubectl -n stepflow-dev delete pvc -l app.kubernetes.io/instance=dev-stepflow');
    // the README's commands: the Namespace from the plain file beside the chart, then the release in it
    expect(files['README.md']).toContain("kubectl apply -f ../../dev.yaml -l 'app.kubernetes.io/managed-by=stepflow-kit,!app.kubernetes.io/instance'");
    expect(files['README.md']).toContain('helm install dev-stepflow . --namespace stepflow-dev');
    expect(fs.existsSync(path.resolve(dir, 'helm', 'dev', '../../dev.yaml'))).toBe(true);
  });

  test('one template per object, named <kind>-<name>.yaml', () => {
    const files = chartFiles(path.join(dir, 'helm', 'prod'));
    for (const [file, t] of objectTemplates(files)) {
      const o = parse(render(t));
      expect(file).toBe(`templates/${o.kind.toLowerCase()}-${o.metadata.name}.yaml`);
    }
    expect(objectTemplates(files).map(([f]) => f)).toContain('templates/statefulset-stepflow-core.yaml');
  });
});

describe('escaping: a {{ in any value survives the chart', () => {
  const tricky = '{{ .Values.x }} {{- trimmed -}} {{{triple}}} }} "{{" `{{`\n---\nnext: {{/* comment */}}';

  test('escapeHelmTemplate turns every {{ into an action that prints it, and nothing else', () => {
    expect(escapeHelmTemplate('a {{ b }} c')).toBe('a {{ "{{" }} b }} c');
    expect(escapeHelmTemplate('{{{')).toBe('{{ "{{" }}{');
    expect(escapeHelmTemplate('{{-')).toBe('{{ "{{" }}-');
    expect(escapeHelmTemplate('no braces }}')).toBe('no braces }}');
    expect(render(escapeHelmTemplate(tricky))).toBe(tricky);
  });

  test('values with {{ in annotations and env vars render back exactly', () => {
    const dir = synthDir((d) => {
      const app = new StepFlowApp({ outdir: d, helmCharts: {} });
      new StepFlowChart(app, 'dev', {
        ...DEV_PROPS,
        annotations: { 'example.com/template': tricky },
        pythonSdk: { env: { GREETING: 'Hello {{ name }}', PROMPT: tricky } },
      });
      return app;
    });
    const plain = docs(fs.readFileSync(path.join(dir, 'dev.yaml'), 'utf8')).filter((o) => o.kind !== 'Namespace');
    const files = chartFiles(path.join(dir, 'helm', 'dev'));
    const rendered = objectTemplates(files).map(([, t]) => parse(render(t)));
    expect(rendered).toHaveLength(plain.length);
    const sdk = rendered.find((o) => o.kind === 'Deployment');
    expect(sdk.metadata.annotations['example.com/template']).toBe(tricky);
    const env = Object.fromEntries(sdk.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
    expect(env.GREETING).toBe('Hello {{ name }}');
    expect(env.PROMPT).toBe(tricky);
    const template = files[`templates/deployment-dev-stepflow-python-sdk.yaml`];
    expect(template).toContain('value: Hello {{ "{{" }} name }}');
    expect(template.split(ESCAPED).join('')).not.toContain('{{');
  });
});

describe('helmChartFiles', () => {
  const objects = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'team' }, data: { a: '{{ b }}' } },
  ];

  test('leaves Namespaces out and checks the release namespace when all objects share one', () => {
    const files = helmChartFiles({ name: 'team', version: '1.2.3', description: 'd', objects });
    expect(Object.keys(files)).toEqual(['Chart.yaml', 'values.yaml', 'values.schema.json', 'templates/configmap-settings.yaml', 'templates/namespace-check.yaml']);
    expect(files['templates/configmap-settings.yaml']).toBe(escapeHelmTemplate(Yaml.stringify(objects[1])));
    expect(files['templates/namespace-check.yaml']).toContain('{{- if ne .Release.Namespace "team" }}');
  });

  test('no namespace check for objects in several namespaces', () => {
    const files = helmChartFiles({ name: 'team', version: '1.2.3', description: 'd', objects: [...objects, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other', namespace: 'elsewhere' } }] });
    expect(files['templates/namespace-check.yaml']).toBeUndefined();
  });

  test('the same input gives the same bytes', () => {
    expect(helmChartFiles({ name: 'team', version: '1.2.3', description: 'd', objects })).toEqual(helmChartFiles({ name: 'team', version: '1.2.3', description: 'd', objects }));
  });

  test('rejects what Helm would reject, naming it', () => {
    expect(() => helmChartFiles({ name: 'team', version: '1.2', description: 'd', objects })).toThrow('Helm chart team: version "1.2" is not SemVer 2 (e.g. \'1.4.2\'), which Helm requires');
    expect(() => helmChartFiles({ name: 'Team_A', version: '1.2.3', description: 'd', objects })).toThrow('Helm chart name "Team_A": expected lower-case letters, digits and \'-\', at most 53 characters');
    const twice = [objects[1], { ...objects[1], metadata: { name: 'settings', namespace: 'elsewhere' } }];
    expect(() => helmChartFiles({ name: 'team', version: '1.2.3', description: 'd', objects: twice })).toThrow('Helm chart team: two objects would share templates/configmap-settings.yaml');
  });
});

describe('StepFlowApp helmCharts', () => {
  test('a chart of another kind: its objects but the Namespace, a description of its own', () => {
    const dir = synthDir((d) => {
      const app = new StepFlowApp({ outdir: d, helmCharts: { outdir: path.join(d, 'charts'), version: '2.0.0-rc.1' } });
      const chart = new Chart(app, 'extras');
      new ApiObject(chart, 'ns', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'extras' } });
      new ApiObject(chart, 'cm', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'extra', namespace: 'extras' } });
      return app;
    });
    const files = chartFiles(path.join(dir, 'charts', 'extras'));
    expect(parse(files['Chart.yaml'])).toMatchObject({ name: 'stepflow-extras', version: '2.0.0-rc.1', description: 'The objects of the cdk8s chart extras but its Namespaces (extras.yaml)' });
    expect(parse(files['Chart.yaml']).appVersion).toBeUndefined();
    expect(objectTemplates(files).map(([f]) => f)).toEqual(['templates/configmap-extra.yaml']);
  });

  test('a new synth removes the templates of objects that are gone', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'helm-stale-'));
    const synth = (props: any) => {
      const app = new StepFlowApp({ outdir: dir, helmCharts: {} });
      new StepFlowChart(app, 'prod', props);
      app.synth();
    };
    synth(PROD_PROPS);
    expect(fs.existsSync(path.join(dir, 'helm/prod/templates/poddisruptionbudget-stepflow-python-sdk.yaml'))).toBe(true);
    synth({ ...PROD_PROPS, pythonSdk: { disruptionBudget: false } });
    expect(fs.existsSync(path.join(dir, 'helm/prod/templates/poddisruptionbudget-stepflow-python-sdk.yaml'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'helm/prod/templates/poddisruptionbudget-stepflow-inference.yaml'))).toBe(true);
  });

  test('without helmCharts no chart is written', () => {
    const dir = synthDir((d) => {
      const app = new StepFlowApp({ outdir: d });
      new StepFlowChart(app, 'dev', { environment: StepFlowEnvironment.DEV });
      return app;
    });
    expect(fs.readdirSync(dir)).toEqual(['dev.yaml']);
  });

  test('cdk8s\'s own App synthesis (cross-chart dependencies) writes the charts too', () => {
    const dir = synthDir((d) => {
      const app = new StepFlowApp({ outdir: d, helmCharts: {} });
      const a = new StepFlowChart(app, 'a', { ...DEV_PROPS, namespace: 'shared', namePrefix: 'a-' });
      const b = new StepFlowChart(app, 'b', { ...DEV_PROPS, namespace: 'shared', namePrefix: 'b-', createNamespace: false });
      b.node.addDependency(a);
      return app;
    });
    expect(fs.readdirSync(dir).sort()).toEqual(['0000-a.yaml', '0001-b.yaml', 'helm']);
    const files = chartFiles(path.join(dir, 'helm', 'b'));
    expect(parse(files['Chart.yaml']).name).toBe('stepflow-b');
    expect(files['README.md']).toContain('kubectl apply -f ../../0001-b.yaml');
    const plain = docs(fs.readFileSync(path.join(dir, '0001-b.yaml'), 'utf8'));
    expect(objectTemplates(files).map(([, t]) => parse(render(t)))).toHaveLength(plain.length);
  });
});
