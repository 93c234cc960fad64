import { Testing } from 'cdk8s';
import { ModelCacheAccessMode, ModelCacheSharing, StepFlowCore, StepFlowGeneration, StepFlowNamespace } from '../src';
import { DEV_PROPS, PROD_PROPS, synth, synthError } from './helpers';

// Each case: GIVEN one invalid input, WHEN synthesized, THEN the error names the construct
// path, the prop and the value.
const CASES: [string, Parameters<typeof synthError>[0], RegExp][] = [
  ['zero replicas', { ...DEV_PROPS, core: { replicas: 0 } }, /\[test\/Core\] prop 'replicas' is 0: expected an integer >= 1/],
  ['negative replicas', { ...DEV_PROPS, pythonSdk: { replicas: -2 } }, /\[test\/PythonSdk\] prop 'replicas' is -2/],
  ['HPA min > max', { ...PROD_PROPS, core: { autoscaling: { minReplicas: 8, maxReplicas: 4 }, replicas: undefined } },
    /\[test\/Core\] prop 'autoscaling.minReplicas' is 8: must not exceed autoscaling.maxReplicas \(4\)/],
  ['PDB that blocks every eviction (maxUnavailable 0)', { ...PROD_PROPS, core: { disruptionBudget: { maxUnavailable: 0 } } },
    /\[test\/Core\] prop 'disruptionBudget.maxUnavailable' is 0: a budget of 0 blocks every voluntary eviction/],
  ['PDB minAvailable >= replicas', { ...PROD_PROPS, inference: { disruptionBudget: { minAvailable: 2 } } },
    /\[test\/Inference\] prop 'disruptionBudget.minAvailable' is 2: must be below the replica floor \(2\)/],
  ['GPU in an environment without GPUs', { ...DEV_PROPS, inference: { gpu: { count: 1 } } },
    /\[test\] prop 'inference.gpu' is \{"count":1\}: the 'dev' environment has no GPUs/],
  ['namespace that is not DNS-1123', { ...DEV_PROPS, namespace: 'Stepflow_Dev' }, /\[test\/Namespace\] prop 'namespace' is "Stepflow_Dev": expected a DNS-1123 label/],
  ['name prefix that breaks DNS names', { ...DEV_PROPS, namePrefix: 'Dev_' }, /\[test\/PythonSdk\] prop 'namePrefix' is "Dev_": expected '' or lower-case letters/],
  ['shm larger than the memory limit allows', { ...DEV_PROPS, inference: { shmSizeMiB: 4096 } },
    /\[test\/Inference\] prop 'shmSizeMiB' is 4096: \/dev\/shm counts against the container's memory limit \(resources.memoryLimitMiB = 3072\); use at most 1536/],
  ['several replicas on one ReadWriteOnce claim', { ...PROD_PROPS, inference: { modelCache: { sharing: ModelCacheSharing.SHARED, accessMode: ModelCacheAccessMode.READ_WRITE_ONCE } } },
    /\[test\/Inference\] prop 'modelCache' is .*: 2 replicas cannot share one ReadWriteOnce claim/],
  ['prod Ingress without a host', { ...PROD_PROPS, ingress: undefined }, /\[test\] prop 'ingress.host' is undefined: the 'prod' environment publishes core through a TLS Ingress/],
  ['prod image tagged latest', { ...PROD_PROPS, imageTag: 'latest' }, /\[test\/Core\] prop 'image' is "registry.example.com\/stepflow\/stepflow-core:latest": production images must carry an explicit version tag/],
  ['prod image untagged', { ...PROD_PROPS, inference: { image: 'registry.example.com/stepflow/inference' } }, /\[test\/Inference\] prop 'image' is "registry.example.com\/stepflow\/inference": production images must carry/],
  ['prod without a registry', { ...PROD_PROPS, imageRegistry: undefined }, /\[test\] prop 'imageRegistry' is undefined: the 'prod' environment has no default registry/],
  ['invalid Ingress host', { ...PROD_PROPS, ingress: { host: 'https://stepflow.example.com/' } }, /\[test\/Ingress\] prop 'ingress.host' is "https:\/\/stepflow.example.com\/": expected a DNS-1123 host name/],
  ['memory request above limit', { ...DEV_PROPS, core: { resources: { cpuRequestMillis: 100, cpuLimitMillis: 200, memoryRequestMiB: 512, memoryLimitMiB: 256 } } },
    /\[test\/Core\] prop 'resources.memoryRequestMiB' is 512: must not exceed resources.memoryLimitMiB \(256\)/],
  ['HPA target out of range', { ...PROD_PROPS, pythonSdk: { autoscaling: { minReplicas: 5, maxReplicas: 20, cpuUtilizationPercent: 150 } } },
    /\[test\/PythonSdk\] prop 'autoscaling.cpuUtilizationPercent' is 150: expected an integer from 1 to 100/],
  ['replicas outside the HPA range', { ...PROD_PROPS, core: { replicas: 12 } }, /\[test\/Core\] prop 'replicas' is 12: is outside the autoscaler's range 3–10/],
  ['startup timeout too short for the probe period', { ...DEV_PROPS, inference: { startupTimeoutSeconds: 5 } }, /\[test\/Inference\] prop 'startupTimeoutSeconds' is 5: expected an integer from 10 to 3600/],
];

describe('bad input is rejected at synth time', () => {
  test.each(CASES)('%s', (_name, props, message) => {
    expect(synthError(props)).toMatch(message);
  });

  test('several errors are reported together, one line each', () => {
    const message = synthError({ ...PROD_PROPS, imageTag: 'latest', ingress: undefined, core: { replicas: 0, autoscaling: undefined } });
    expect(message).toMatch(/^Validation failed with the following errors:/);
    expect(message).toMatch(/\[test\] prop 'ingress.host'/);
    expect(message).toMatch(/\[test\/Core\] prop 'replicas' is 0/);
    expect(message).toMatch(/\[test\/PythonSdk\] prop 'image' is ".*:latest"/);
    expect(message).toMatch(/\[test\/Inference\] prop 'image' is ".*:latest"/);
  });

  test('a value every component takes is reported once, where it is first used', () => {
    const message = synthError({ ...DEV_PROPS, namespace: 'Bad_NS' });
    expect(message.match(/prop 'namespace' is "Bad_NS"/g)).toHaveLength(1);
    expect(message).toMatch(/\[test\/Namespace\] prop 'namespace'/);
  });

  test('the same bad value in two components is reported for each', () => {
    const message = synthError({ ...DEV_PROPS, core: { replicas: 0 }, pythonSdk: { replicas: 0 } });
    expect(message).toMatch(/\[test\/Core\] prop 'replicas' is 0/);
    expect(message).toMatch(/\[test\/PythonSdk\] prop 'replicas' is 0/);
  });

  test('an autoscaler override alone is enough: the preset has no fixed replicas to clash with it', () => {
    expect(() => synth({ ...PROD_PROPS, core: { autoscaling: { minReplicas: 5, maxReplicas: 8 } } })).not.toThrow();
  });

  test('two component servers on one route are rejected', () => {
    const app = Testing.app();
    const chart = new (require('cdk8s').Chart)(app, 'c');
    const server = { component: 'python-sdk' as const, name: 'stepflow-python-sdk', selector: {}, generation: StepFlowGeneration.HTTP_PUSH, registration: { pluginName: 'python', routePrefix: 'python', plugin: { type: 'builtin' as const } } };
    new StepFlowCore(chart, 'core', { componentServers: [server, { ...server, component: 'inference' }] });
    expect(() => app.synth()).toThrow(/\[c\/core\] prop 'componentServers' is "inference": route prefix '\/python' is already served by python-sdk/);
  });

  test('an invalid Pod Security version is rejected', () => {
    const app = Testing.app();
    const chart = new (require('cdk8s').Chart)(app, 'c');
    new StepFlowNamespace(chart, 'ns', { podSecurityVersion: '1.30' });
    expect(() => app.synth()).toThrow(/\[c\/ns\] prop 'podSecurityVersion' is "1.30": expected 'v1.<minor>'/);
  });
});
