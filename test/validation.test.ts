import { Testing } from 'cdk8s';
import { parse } from 'yaml';
import { ModelCacheAccessMode, ModelCacheSharing, StateStore, StepFlowCore, StepFlowGeneration, StepFlowNamespace } from '../src';
import { prod } from '../charts/prod';
import { DEV_PROPS, PROD_PROPS, synth, synthError } from './helpers';

// Each case: GIVEN one invalid input, WHEN synthesized, THEN the error names the construct
// path, the prop and the value.
const CASES: [string, Parameters<typeof synthError>[0], RegExp][] = [
  ['zero replicas', { ...DEV_PROPS, core: { replicas: 0 } }, /\[test\/Core\] prop 'replicas' is 0: expected an integer from 1 to 1000/],
  ['an environment variable name the API rejects', { ...DEV_PROPS, inference: { env: { 'MY VAR': 'x' } } }, /\[test\/Inference\] prop 'env' is "MY VAR": expected an environment variable name/],
  ['negative replicas', { ...DEV_PROPS, pythonSdk: { replicas: -2 } }, /\[test\/PythonSdk\] prop 'replicas' is -2/],
  ['HPA min > max', { ...PROD_PROPS, pythonSdk: { autoscaling: { minReplicas: 8, maxReplicas: 4 }, replicas: undefined } },
    /\[test\/PythonSdk\] prop 'autoscaling.minReplicas' is 8: must not exceed autoscaling.maxReplicas \(4\)/],
  ['PDB that blocks every eviction (maxUnavailable 0)', { ...PROD_PROPS, pythonSdk: { disruptionBudget: { maxUnavailable: 0 } } },
    /\[test\/PythonSdk\] prop 'disruptionBudget.maxUnavailable' is 0: a budget of 0 blocks every voluntary eviction/],
  ['in-memory state in a production preset', { ...PROD_PROPS, core: { stateStore: StateStore.inMemory() } },
    /\[test\/Core\] prop 'stateStore' is "inMemory": production keeps its state: in-memory state loses every flow, run and blob .*; use StateStore.sqlite\(\)/],
  ['several core replicas', { ...DEV_PROPS, core: { replicas: 3 } },
    /\[test\/Core\] prop 'replicas' is 3: the core runs as exactly one pod: no StepFlow core that can be had here shares state .*`postgres`.*etcd leases.*every worker connected to every orchestrator.*database URL kept out of the manifests/],
  ['a core autoscaler', { ...PROD_PROPS, core: { autoscaling: { minReplicas: 1, maxReplicas: 3 } } },
    /\[test\/Core\] prop 'autoscaling' is \{"minReplicas":1,"maxReplicas":3\}: the core runs as one pod and cannot be autoscaled/],
  ['a sqlite path outside the claim', { ...DEV_PROPS, core: { stateStore: StateStore.sqlite({ databasePath: '/tmp/stepflow.db' }) } },
    /\[test\/Core\] prop 'stateStore.databasePath' is "\/tmp\/stepflow.db": the database must lie on the state claim: a file under \/var\/lib\/stepflow\//],
  ['a sqlite path escaping the claim', { ...DEV_PROPS, core: { stateStore: StateStore.sqlite({ databasePath: '/var/lib/stepflow/../x.db' }) } },
    /\[test\/Core\] prop 'stateStore.databasePath' is "\/var\/lib\/stepflow\/..\/x.db"/],
  ['a state store that is not a StateStore (JavaScript callers)', { ...DEV_PROPS, core: { stateStore: { kind: 'postgres' } as any } },
    /\[test\/Core\] prop 'stateStore' is \{"kind":"postgres"\}: expected StateStore.sqlite\(\{ ... \}\) or StateStore.inMemory\(\)/],
  ['a worker grace at the pod\'s termination grace', { ...DEV_PROPS, pythonSdk: { shutdownGraceSeconds: 30, terminationGracePeriodSeconds: 30 } },
    /\[test\/PythonSdk\] prop 'shutdownGraceSeconds' is 30: must stay below terminationGracePeriodSeconds \(30\), or the kubelet kills tasks still draining/],
  ['0.11 python-sdk replicas above one', { ...prod(StepFlowGeneration.HTTP_PUSH), pythonSdk: { replicas: 3 } },
    /\[test\/PythonSdk\] prop 'replicas' is 3: StepFlow 0.11 pins the one core to one component-server pod .* replicas above one take no work/],
  ['0.11 inference autoscaled above one', { ...prod(StepFlowGeneration.HTTP_PUSH), inference: { autoscaling: { minReplicas: 1, maxReplicas: 4 } } },
    /\[test\/Inference\] prop 'autoscaling.maxReplicas' is 4: StepFlow 0.11 pins the one core/],
  ['a gRPC-only worker setting in 0.11', { ...DEV_PROPS, generation: StepFlowGeneration.HTTP_PUSH, pythonSdk: { maxConcurrentTasks: 8 } },
    /\[test\/PythonSdk\] prop 'maxConcurrentTasks' is 8: only gRPC-pull workers \(StepFlowGeneration.GRPC_PULL\) take it/],
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
  ['prod with no choice of exposure', { ...PROD_PROPS, ingress: undefined }, /\[test\] prop 'ingress' is undefined: the 'prod' environment needs an explicit choice of exposure: ingress: \{ host: .*authentication.* or ingress: false/],
  ['prod image tagged latest', { ...PROD_PROPS, imageTag: 'latest' }, /\[test\/Core\] prop 'image' is "registry.example.com\/stepflow\/stepflow-core:latest": production images must carry an explicit version tag/],
  ['prod image untagged', { ...PROD_PROPS, inference: { image: 'registry.example.com/stepflow/inference' } }, /\[test\/Inference\] prop 'image' is "registry.example.com\/stepflow\/inference": production images must carry/],
  ['prod without a registry', { ...PROD_PROPS, imageRegistry: undefined }, /\[test\] prop 'imageRegistry' is undefined: the 'prod' environment has no default registry/],
  ['invalid Ingress host', { ...PROD_PROPS, ingress: { ...(PROD_PROPS.ingress as any), host: 'https://stepflow.example.com/' } }, /\[test\/Ingress\] prop 'ingress.host' is "https:\/\/stepflow.example.com\/": expected a DNS-1123 host name/],
  ['memory request above limit', { ...DEV_PROPS, core: { resources: { cpuRequestMillis: 100, cpuLimitMillis: 200, memoryRequestMiB: 512, memoryLimitMiB: 256 } } },
    /\[test\/Core\] prop 'resources.memoryRequestMiB' is 512: must not exceed resources.memoryLimitMiB \(256\)/],
  ['HPA target out of range', { ...PROD_PROPS, pythonSdk: { autoscaling: { minReplicas: 5, maxReplicas: 20, cpuUtilizationPercent: 150 } } },
    /\[test\/PythonSdk\] prop 'autoscaling.cpuUtilizationPercent' is 150: expected an integer from 1 to 100/],
  ['replicas outside the HPA range', { ...PROD_PROPS, pythonSdk: { replicas: 25 } }, /\[test\/PythonSdk\] prop 'replicas' is 25: is outside the autoscaler's range 5–20/],
  ['startup timeout too short for the probe period', { ...DEV_PROPS, inference: { startupTimeoutSeconds: 5 } }, /\[test\/Inference\] prop 'startupTimeoutSeconds' is 5: expected an integer from 10 to 3600/],
];

describe('bad input is rejected at synth time', () => {
  test.each(CASES)('%s', (_name, props, message) => {
    expect(synthError(props)).toMatch(message);
  });

  test('several errors are reported together, one line each', () => {
    const message = synthError({ ...PROD_PROPS, imageTag: 'latest', ingress: undefined, core: { replicas: 0 } });
    expect(message).toMatch(/^Validation failed with the following errors:/);
    expect(message).toMatch(/\[test\] prop 'ingress'/);
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
    expect(() => synth({ ...PROD_PROPS, pythonSdk: { autoscaling: { minReplicas: 2, maxReplicas: 8 } } })).not.toThrow();
  });

  test('in-memory state is accepted outside production when asked for explicitly, and then has no claim', () => {
    const objects = synth({ ...DEV_PROPS, core: { stateStore: StateStore.inMemory() } });
    const core = objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'dev-stepflow-core');
    expect(core.spec.volumeClaimTemplates).toBeUndefined();
    expect(parse(objects.find((o) => o.kind === 'ConfigMap').data['stepflow-config.yml']).storageConfig).toEqual({ type: 'inMemory' });
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
