import { Chart, Testing } from 'cdk8s';
import {
  IngressAuthentication, InferenceDevice, ModelCacheAccessMode, StateStore, StepFlowChartProps, StepFlowCore, StepFlowGeneration,
  StepFlowInference, StepFlowNetworkPolicies, StepFlowPythonSdk,
} from '../src';
import { DEV_PROPS, PROD_PROPS, synth, synthError } from './helpers';

// Every prop of the public API against what Kubernetes and StepFlow accept. Each case:
// GIVEN one invalid value, WHEN synthesized, THEN the kit's message names the construct
// path, the prop, the value and what is allowed (never a TypeError, never emitted YAML).
const KIT_MESSAGE = /^Validation failed with the following errors:\n( {2}\[[^\]]+\] prop '[^']+' is .+: .+\n?)+$/;
const prodIngress = (extra: object) => ({ ...PROD_PROPS, ingress: { host: 'stepflow.example.com', authentication: IngressAuthentication.basic({ secretName: 'users' }), ...extra } });

const CHART_CASES: [string, StepFlowChartProps, RegExp][] = [
  // namespaces and names
  ['reserved namespace kube-system', { ...DEV_PROPS, namespace: 'kube-system' }, /\[test\/Namespace\] prop 'namespace' is "kube-system": is reserved for the cluster itself/],
  ['reserved namespace default', { ...DEV_PROPS, namespace: 'default' }, /prop 'namespace' is "default": is reserved/],
  ['namespace longer than 63', { ...DEV_PROPS, namespace: 'a'.repeat(64) }, /prop 'namespace' is "a{64}": expected a DNS-1123 label/],
  ['a prefix that makes StatefulSet pods uncreatable (35 characters)', { ...DEV_PROPS, namePrefix: `a${'b'.repeat(33)}-` },
    /prop 'namePrefix' is "ab{33}-": expected '' or .* at most 34 characters .*controller-revision-hash/],
  ['a prefix with upper case', { ...DEV_PROPS, namePrefix: 'Dev-' }, /prop 'namePrefix' is "Dev-"/],
  // images
  ['a registry with a scheme', { ...DEV_PROPS, imageRegistry: 'https://registry.example.com' }, /prop 'imageRegistry' is "https:\/\/registry.example.com": expected host\[:port\]\[\/path\] with no scheme/],
  ['a registry with a trailing slash', { ...DEV_PROPS, imageRegistry: 'registry.example.com/stepflow/' }, /prop 'imageRegistry' is "registry.example.com\/stepflow\/"/],
  ['a registry with upper-case path', { ...DEV_PROPS, imageRegistry: 'registry.example.com/StepFlow' }, /prop 'imageRegistry' is "registry.example.com\/StepFlow"/],
  ['an empty tag in production', { ...PROD_PROPS, imageTag: '' }, /\[test\/Core\] prop 'imageTag' is "": expected an image tag/],
  ['a tag with a space', { ...DEV_PROPS, imageTag: 'v1 2' }, /prop 'imageTag' is "v1 2": expected an image tag/],
  ['a tag longer than 128', { ...DEV_PROPS, imageTag: 'a'.repeat(129) }, /prop 'imageTag' is "a{129}"/],
  ['an image reference with an empty tag', { ...PROD_PROPS, pythonSdk: { image: 'registry.example.com/stepflow/stepflow-python-sdk:' } },
    /\[test\/PythonSdk\] prop 'image' is "registry.example.com\/stepflow\/stepflow-python-sdk:": expected an image reference/],
  ['a digest that is too short', { ...DEV_PROPS, core: { image: 'r.example.com/core@sha256:abc' } }, /\[test\/Core\] prop 'image' is "r.example.com\/core@sha256:abc"/],
  // numbers beyond what the API takes
  ['1e12 replicas', { ...DEV_PROPS, pythonSdk: { replicas: 1e12 } }, /\[test\/PythonSdk\] prop 'replicas' is 1000000000000: expected an integer from 1 to 1000/],
  ['a fractional replica count', { ...DEV_PROPS, pythonSdk: { replicas: 1.5 } }, /prop 'replicas' is 1.5/],
  ['an autoscaler ceiling of 1e6', { ...PROD_PROPS, pythonSdk: { autoscaling: { maxReplicas: 1e6 } } }, /prop 'autoscaling.maxReplicas' is 1000000: expected an integer from 1 to 1000/],
  ['1e12 GiB of model cache', { ...PROD_PROPS, inference: { modelCache: { sizeGiB: 1e12 } } }, /\[test\/Inference\] prop 'modelCache.sizeGiB' is 1000000000000: expected an integer from 1 to 65536/],
  ['1e12 GiB of state', { ...DEV_PROPS, core: { stateStore: StateStore.sqlite({ sizeGiB: 1e12 }) } }, /\[test\/Core\] prop 'stateStore.sizeGiB' is 1000000000000/],
  ['a memory limit of 1e12 MiB', { ...DEV_PROPS, core: { resources: { memoryLimitMiB: 1e12 } } }, /\[test\/Core\] prop 'resources.memoryLimitMiB' is 1000000000000/],
  ['a CPU limit of NaN', { ...DEV_PROPS, core: { resources: { cpuLimitMillis: NaN } } }, /prop 'resources.cpuLimitMillis' is NaN: expected an integer/],
  ['an emptyDir of 1e9 MiB', { ...DEV_PROPS, pythonSdk: { tmpSizeMiB: 1e9 } }, /\[test\/PythonSdk\] prop 'tmpSizeMiB' is 1000000000/],
  ['a termination grace of a day', { ...DEV_PROPS, pythonSdk: { terminationGracePeriodSeconds: 86400 } }, /prop 'terminationGracePeriodSeconds' is 86400: expected an integer from 1 to 3600/],
  ['zero concurrent tasks', { ...DEV_PROPS, pythonSdk: { maxConcurrentTasks: 0 } }, /prop 'maxConcurrentTasks' is 0: expected an integer from 1 to 1024/],
  // environment variables
  ['an env name with "="', { ...DEV_PROPS, core: { env: { 'A=B': '1' } } }, /\[test\/Core\] prop 'env' is "A=B": expected an environment variable name/],
  ['an env name starting with a digit', { ...DEV_PROPS, pythonSdk: { env: { '9LIVES': '1' } } }, /prop 'env' is "9LIVES"/],
  // names of other objects
  ['an empty Ingress class', prodIngress({ className: '' }), /\[test\/Ingress\] prop 'ingress.className' is "": expected the name of an IngressClass/],
  ['an empty ClusterIssuer', prodIngress({ clusterIssuer: '' }), /prop 'ingress.clusterIssuer' is "": expected the name of a cert-manager ClusterIssuer/],
  ['an empty TLS Secret', prodIngress({ tlsSecretName: '' }), /prop 'ingress.tlsSecretName' is ""/],
  ['an empty StorageClass', { ...PROD_PROPS, inference: { modelCache: { storageClassName: '' } } }, /prop 'modelCache.storageClassName' is "": expected the name of a StorageClass/],
  ['an empty RuntimeClass', { ...PROD_PROPS, inference: { gpu: { runtimeClassName: '' } } }, /prop 'gpu.runtimeClassName' is "": expected the name of a RuntimeClass/],
  ['a GPU node selector with a bad key', { ...PROD_PROPS, inference: { gpu: { nodeSelector: { 'bad key': 'x' } } } }, /prop 'gpu.nodeSelector' is "bad key": expected a label key/],
  ['a GPU node selector with a bad value', { ...PROD_PROPS, inference: { gpu: { nodeSelector: { accelerator: 'nvidia gpu' } } } }, /prop 'gpu.nodeSelector.accelerator' is "nvidia gpu": expected a label value/],
  ['an empty service name', { ...DEV_PROPS, pythonSdk: { telemetry: { serviceName: ' ' } } }, /prop 'telemetry.serviceName' is " ": expected a non-empty single-line string/],
  // enum values that are not members (JavaScript callers)
  ['a log level that is not a member', { ...DEV_PROPS, logLevel: 'verbose' as any }, /prop 'logLevel' is "verbose": expected one of 'debug', 'info', 'warn', 'error' \(LogLevel\)/],
  ['a pull policy that is not a member', { ...DEV_PROPS, imagePullPolicy: 'Sometimes' as any }, /prop 'imagePullPolicy' is "Sometimes": expected one of 'Always', 'IfNotPresent', 'Never'/],
  ['a device that is not a member', { ...DEV_PROPS, inference: { device: 'tpu' as any } }, /\[test\/Inference\] prop 'device' is "tpu": expected one of 'auto', 'cpu', 'cuda' \(InferenceDevice\)/],
  ['an access mode that is not a member', { ...DEV_PROPS, inference: { modelCache: { accessMode: 'ReadWriteSometimes' as any } } }, /prop 'modelCache.accessMode' is "ReadWriteSometimes": expected one of 'ReadWriteOnce', 'ReadWriteMany'/],
  ['a sharing mode that is not a member', { ...DEV_PROPS, inference: { modelCache: { sharing: 'pooled' as any } } }, /prop 'modelCache.sharing' is "pooled"/],
  // generations and presets
  ['an unknown generation', { ...DEV_PROPS, generation: '0.12' as any }, /\[test\] prop 'generation' is "0.12": expected one of '0.11', '0.13' \(StepFlowGeneration\)/],
  ['no preset', { environment: undefined as any }, /\[test\] prop 'environment' is undefined: expected a preset: StepFlowEnvironment.DEV, .PROD/],
  ['a preset that is a plain object', { environment: { settings: {} } as any }, /\[test\] prop 'environment' is \{"settings":\{\}\}/],
  // the edges
  ['an ingress controller namespace that is no DNS label', prodIngress({ controllerNamespace: 'Ingress_NGINX' }), /\[test\/NetworkPolicies\] prop 'ingressControllerNamespace' is "Ingress_NGINX"/],
  ['a CIDR with a bad prefix length', { ...DEV_PROPS, clusterNetworks: { apiServerCidrs: ['10.0.0.0/33'] } }, /prop 'clusterNetworks' is "10.0.0.0\/33"/],
  ['a peer label that is not one', { ...DEV_PROPS, core: { networkAccess: { ingress: [{ peers: [{ podLabels: { app: 'a b' } }] }] } } }, /prop 'networkAccess.ingress\[0\].peers\[0\].podLabels.app' is "a b"/],
];

describe('every public prop is validated', () => {
  test.each(CHART_CASES)('%s', (_name, props, message) => {
    const error = synthError(props);
    expect(error).toMatch(message);
    expect(error).toMatch(KIT_MESSAGE);
  });

  test('the standalone constructs validate too, with their own paths', () => {
    const cases: [(c: Chart) => void, RegExp][] = [
      [(c) => new StepFlowCore(c, 'core', { namespace: 'kube-public' }), /\[c\/core\] prop 'namespace' is "kube-public": is reserved/],
      [(c) => new StepFlowPythonSdk(c, 'py', { generation: 'next' as any }), /\[c\/py\] prop 'generation' is "next"/],
      [(c) => new StepFlowInference(c, 'inf', { device: InferenceDevice.CUDA }), /\[c\/inf\] prop 'device' is "cuda": CUDA needs a GPU/],
      [(c) => new StepFlowInference(c, 'inf', { generation: StepFlowGeneration.HTTP_PUSH, modelCache: { accessMode: ModelCacheAccessMode.READ_WRITE_MANY, sizeGiB: 0 } }), /prop 'modelCache.sizeGiB' is 0/],
      [(c) => new StepFlowNetworkPolicies(c, 'np', { namespace: 'stepflow', namePrefix: '', environmentName: 'prod', generation: StepFlowGeneration.GRPC_PULL, core: { name: 'stepflow-core', selector: {}, port: 8080 }, dnsPodLabels: { '': 'x' } }),
        /\[c\/np\] prop 'dnsPodLabels' is "": expected a label key/],
    ];
    for (const [build, message] of cases) {
      const app = Testing.app();
      build(new Chart(app, 'c'));
      expect(() => app.synth()).toThrow(message);
    }
  });

  test('the count of invalid cases covered here', () => {
    expect(CHART_CASES.length).toBeGreaterThanOrEqual(44);
  });

  test('the longest allowed prefix still gives names the API accepts', () => {
    const prefix = `a${'b'.repeat(32)}-`; // 34 characters
    const objects = synth({ ...DEV_PROPS, namePrefix: prefix });
    for (const o of objects.filter((x) => x.kind === 'StatefulSet')) expect(`${o.metadata.name}-0123456789`.length).toBeLessThanOrEqual(63);
    for (const o of objects.filter((x) => x.kind === 'Service')) expect(o.metadata.name.length).toBeLessThanOrEqual(63);
  });
});
