import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ApiObject, App, Testing, YamlOutputType } from 'cdk8s';
import { parse, parseAllDocuments } from 'yaml';
import { CONFIG_CHECKSUM_ANNOTATION, StepFlowApp, StepFlowChart, StepFlowGeneration, StepFlowPythonSdk } from '../src';
import { DEV_PROPS, find, workloads } from './helpers';

// GIVEN a chart, WHEN something is added after construction, THEN the manifest has it:
// the components render their pod templates, config and policies at synth time.
describe('added after construction', () => {
  test('an environment variable and a volume reach the container', () => {
    const app = Testing.app();
    const chart = new StepFlowChart(app, 'test', DEV_PROPS);
    chart.pythonSdk.addEnv('TEAM_SETTING', 'on');
    chart.pythonSdk.addEnv('STEPFLOW_LOG_LEVEL', 'INFO'); // a name the construct set keeps its place
    chart.core.addVolume({ name: 'extra', emptyDir: {} }, { mountPath: '/extra', readOnly: true });
    const objects = Testing.synth(chart);
    const py = workloads(objects).find((w) => w.metadata.labels.component === 'python-sdk').spec.template.spec.containers[0];
    expect(py.env[py.env.length - 1]).toEqual({ name: 'TEAM_SETTING', value: 'on' });
    expect(py.env[0]).toEqual({ name: 'STEPFLOW_LOG_LEVEL', value: 'INFO' });
    const core = workloads(objects).find((w) => w.metadata.labels.component === 'core').spec.template.spec;
    expect(core.volumes).toContainEqual({ name: 'extra', emptyDir: {} });
    expect(core.containers[0].volumeMounts).toContainEqual({ name: 'extra', mountPath: '/extra', readOnly: true });
  });

  test('an invalid variable name is rejected at synth', () => {
    const app = Testing.app();
    const chart = new StepFlowChart(app, 'test', DEV_PROPS);
    chart.core.addEnv('1BAD=NAME', 'x');
    expect(() => app.synth()).toThrow(/\[test\/Core\] prop 'env' is "1BAD=NAME": expected an environment variable name/);
  });

  test('a component server added later joins the config, the checksum and the NetworkPolicies', () => {
    const app = Testing.app();
    const chart = new StepFlowChart(app, 'test', { ...DEV_PROPS, generation: StepFlowGeneration.HTTP_PUSH });
    const before = Testing.synth(chart);
    const checksumBefore = workloads(before).find((w) => w.metadata.labels.component === 'core').spec.template.metadata.annotations[CONFIG_CHECKSUM_ANNOTATION];
    // A second python-sdk-like server under another route (the registration is what the core reads).
    const extra = new StepFlowPythonSdk(chart, 'Extra', { namespace: 'stepflow-dev', namePrefix: 'team-', environmentName: 'dev', generation: StepFlowGeneration.HTTP_PUSH });
    chart.addComponentServer({
      component: extra.component, name: extra.name, selector: { ...extra.selector, team: 'a' }, generation: extra.generation, listenPort: extra.listenPort, healthUrl: extra.healthUrl,
      registration: { ...extra.registration, pluginName: 'team', routePrefix: 'team' },
    });
    const after = Testing.synth(chart);
    const config = parse(find(after, 'ConfigMap', 'dev-stepflow-config').data['stepflow-config.yml']);
    expect(config.plugins.team).toEqual({ type: 'stepflow', url: 'http://team-stepflow-python-sdk.stepflow-dev.svc:8081' });
    expect(Object.keys(config.routes)).toEqual(['/python/{*component}', '/inference/{*component}', '/team/{*component}', '/{*component}']);
    const core = workloads(after).find((w) => w.metadata.labels.component === 'core').spec.template;
    expect(core.metadata.annotations[CONFIG_CHECKSUM_ANNOTATION]).not.toBe(checksumBefore);
    expect(core.spec.initContainers[0].args).toContain('http://team-stepflow-python-sdk.stepflow-dev.svc:8081/health');
    const corePolicy = find(after, 'NetworkPolicy', 'dev-stepflow-core').spec;
    expect(corePolicy.egress).toHaveLength(3);
    expect(find(after, 'NetworkPolicy', 'team-stepflow-python-sdk').spec.podSelector.matchLabels.team).toBe('a');
  });
});

describe('StepFlowApp honours dependencies between constructs, as cdk8s App does', () => {
  /** Both apps with one chart where core must come before python-sdk, and a plain ApiObject after the namespace. */
  function build(app: App): void {
    const chart = new StepFlowChart(app, 'dev', DEV_PROPS);
    chart.pythonSdk.node.addDependency(chart.core);
    const own = new ApiObject(chart, 'Own', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'own', namespace: 'stepflow-dev' } });
    chart.networkPolicies.node.addDependency(own);
  }
  const order = (dir: string) => parseAllDocuments(fs.readFileSync(path.join(dir, 'dev.yaml'), 'utf8')).map((d) => `${d.get('kind')}/${(d.toJS() as any).metadata.name}`);

  test('the same order, with the dependencies obeyed', () => {
    const dirs = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), 'deps-')));
    const plain = new App({ outdir: dirs[0], outputFileExtension: '.yaml', yamlOutputType: YamlOutputType.FILE_PER_CHART });
    build(plain);
    plain.synth();
    const ours = new StepFlowApp({ outdir: dirs[1] });
    build(ours);
    ours.synth();
    const expected = order(dirs[0]);
    expect(order(dirs[1])).toEqual(expected);
    const at = (name: string) => expected.indexOf(name);
    expect(at('Deployment/dev-stepflow-python-sdk')).toBeGreaterThan(at('ConfigMap/dev-stepflow-config'));
    expect(at('NetworkPolicy/dev-stepflow-default-deny')).toBeGreaterThan(at('ConfigMap/own'));
    expect(expected[0]).toBe('Namespace/stepflow-dev');
  });
});
