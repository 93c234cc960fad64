// fast-check arbitraries of StepFlowChart props: valid values mixed with the invalid ones
// a caller can write (from TypeScript or plain JavaScript). Shared by
// test/property.test.ts (synth never fails with anything but the kit's own message) and
// verify/static/property-samples.js (what synthesizes passes strict schema validation).
'use strict';

/** @param {typeof import('fast-check')} fc @param {any} lib the library (src/ or lib/src/) */
function chartProps(fc, lib) {
  const maybe = (arb) => fc.option(arb, { nil: undefined, freq: 2 });
  /** Mostly a valid value, now and then an invalid one: so that both outcomes are explored. */
  const mostly = (valid, invalid) => fc.oneof({ arbitrary: valid, weight: 24 }, { arbitrary: invalid, weight: 1 });
  const dnsLabel = fc.stringMatching(/^[a-z]([-a-z0-9]{0,20}[a-z0-9])?$/);
  const anyString = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('', ' ', 'kube-system', 'default', 'UPPER', 'a/b', 'x'.repeat(70)));
  const int = mostly(fc.integer({ min: 1, max: 3 }), fc.constantFrom(-2, 0, 1e12, 1.5, NaN));
  const smallPositive = fc.integer({ min: 1, max: 8 });
  const resources = fc.record({
    cpuRequestMillis: maybe(fc.integer({ min: 1, max: 1000 })),
    cpuLimitMillis: maybe(fc.integer({ min: 1, max: 8000 })),
    memoryRequestMiB: maybe(fc.integer({ min: 1, max: 8192 })),
    memoryLimitMiB: maybe(mostly(fc.integer({ min: 8192, max: 32768 }), int)),
    ephemeralStorageLimitMiB: maybe(fc.integer({ min: 1, max: 100000 })),
  }, { requiredKeys: [] });
  const autoscaling = fc.oneof(
    fc.constant(false),
    fc.record({ minReplicas: smallPositive, maxReplicas: mostly(fc.integer({ min: 8, max: 30 }), int), cpuUtilizationPercent: maybe(mostly(fc.integer({ min: 1, max: 100 }), fc.constant(120))) }, { requiredKeys: [] }),
  );
  const telemetry = fc.record({
    logFormat: maybe(mostly(fc.constant(lib.LogFormat.JSON), fc.oneof(fc.constant(lib.LogFormat.TEXT), anyString))),
    otlpEndpoint: maybe(mostly(fc.constantFrom('http://otel-collector.observability.svc:4317', 'https://c.o11y.svc'), fc.constantFrom('http://collector.example.com:4317', 'collector:4317'))),
    tracing: maybe(fc.constant(false)),
    metrics: maybe(mostly(fc.constant(false), fc.constant(true))),
    serviceName: maybe(mostly(dnsLabel, anyString)),
  }, { requiredKeys: [] });
  const peer = mostly(fc.oneof(
    fc.record({ namespace: dnsLabel, podLabels: maybe(fc.dictionary(dnsLabel, dnsLabel, { maxKeys: 2 })) }, { requiredKeys: ['namespace'] }),
    fc.record({ cidr: fc.constantFrom('10.20.0.0/16', '203.0.113.0/24', '2001:db8::/32') }),
  ), fc.constantFrom({}, { cidr: '10.0.0.0/33' }, { cidr: 'nonsense' }, { podLabels: { 'a b': 'c' } }));
  const networkAccess = fc.record({
    ingress: maybe(fc.array(fc.record({ peers: fc.array(peer, { minLength: 1, maxLength: 2 }), ports: maybe(fc.array(fc.record({ port: mostly(fc.integer({ min: 1, max: 65535 }), fc.constantFrom(0, 70000)) }), { maxLength: 2 })) }), { maxLength: 2 })),
    egress: maybe(fc.array(fc.record({ peers: fc.array(peer, { minLength: 1, maxLength: 2 }) }), { maxLength: 2 })),
  }, { requiredKeys: [] });
  const env = fc.dictionary(mostly(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,10}$/), anyString), fc.string({ maxLength: 8 }), { maxKeys: 2 });
  const labelMap = fc.dictionary(mostly(fc.constantFrom('team', 'example.com/cost', 'pool'), fc.constantFrom('component', 'a b', 'app.kubernetes.io/name')), mostly(dnsLabel, fc.constantFrom('', 'x'.repeat(70), 'a b')), { maxKeys: 2 });
  const toleration = mostly(fc.oneof(
    fc.record({ key: fc.constantFrom('dedicated', 'example.com/pool'), operator: fc.constant('Equal'), value: dnsLabel, effect: maybe(fc.constantFrom('NoSchedule', 'PreferNoSchedule')) }, { requiredKeys: ['key', 'operator', 'value'] }),
    fc.record({ key: fc.constant('spot'), operator: fc.constant('Exists'), effect: fc.constant('NoExecute'), tolerationSeconds: maybe(fc.integer({ min: 0, max: 600 })) }, { requiredKeys: ['key', 'operator', 'effect'] }),
  ), fc.constantFrom({ key: 'a', operator: 'Exists', value: 'v' }, { key: 'a', operator: 'Equal', effect: 'NoRun' }, { operator: 'Equal' }));
  const podSettings = {
    imagePullSecrets: maybe(fc.array(mostly(fc.constantFrom('regcred', 'team-pull'), fc.constantFrom('Reg_Cred', '')), { maxLength: 2 })),
    nodeSelector: maybe(labelMap.map((m) => Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'component' && !k.startsWith('app.kubernetes.io'))))),
    tolerations: maybe(fc.array(toleration, { maxLength: 2 })),
    priorityClassName: maybe(mostly(fc.constant('stepflow-high'), fc.constant('High Priority'))),
    labels: maybe(labelMap),
    annotations: maybe(fc.dictionary(mostly(fc.constantFrom('example.com/owner', 'note'), fc.constant('a b')), fc.string({ maxLength: 12 }), { maxKeys: 2 })),
    envFrom: maybe(fc.array(mostly(fc.oneof(fc.record({ secret: fc.constant('team-env'), prefix: maybe(fc.constant('TEAM_')) }, { requiredKeys: ['secret'] }), fc.record({ configMap: fc.constant('team-settings') })), fc.constantFrom({}, { secret: 'a', configMap: 'b' }, { secret: 'a', prefix: '1X' })), { maxLength: 2 })),
    volumes: maybe(fc.array(mostly(
      fc.record({ volume: fc.constant({ name: 'team-ca', secret: { secretName: 'team-ca' } }), mountPath: fc.constant('/etc/team/ca'), readOnly: maybe(fc.constant(true)) }, { requiredKeys: ['volume', 'mountPath'] }),
      fc.constantFrom({ volume: { name: 'tmp', emptyDir: {} }, mountPath: '/x' }, { volume: { name: 'x', emptyDir: {} }, mountPath: 'relative' }),
    ), { maxLength: 1 })),
  };
  const common = {
    replicas: fc.constant(undefined),
    resources: maybe(resources),
    env: maybe(env),
    telemetry: maybe(telemetry),
    networkAccess: maybe(networkAccess),
    ...podSettings,
  };
  const worker = {
    ...common,
    autoscaling: maybe(autoscaling),
    replicas: maybe(int),
    disruptionBudget: maybe(mostly(fc.oneof(fc.constant(false), fc.record({ maxUnavailable: smallPositive })), fc.record({ minAvailable: fc.integer({ min: 0, max: 3 }) }))),
    maxConcurrentTasks: maybe(mostly(smallPositive, int)),
    shutdownGraceSeconds: maybe(fc.integer({ min: 0, max: 20 })),
    terminationGracePeriodSeconds: maybe(mostly(fc.integer({ min: 30, max: 120 }), fc.integer({ min: 1, max: 29 }))),
    image: maybe(mostly(fc.constantFrom('registry.example.com/team/worker:1.2.3', 'r.example.com/w@sha256:' + 'a'.repeat(64)), fc.constantFrom('registry.example.com/team/worker:', 'Registry/Worker'))),
  };
  const ownWorker = fc.record({
    ...worker,
    name: mostly(fc.constantFrom('team-tools', 'ml-a'), fc.constantFrom('Team', 'inference', '')),
    image: mostly(fc.constantFrom('registry.example.com/team/tools:1.0.0'), fc.constantFrom('', 'Bad/Image', undefined)),
    routePrefix: mostly(fc.constantFrom('team', 'ml_a'), fc.constantFrom('/team', 'python', '')),
    command: mostly(fc.constant(['python3', '-m', 'stepflow_kit_worker']), fc.constantFrom([], [''])),
    probes: maybe(mostly(fc.constant({ liveness: false }), fc.constant({ readiness: { httpPath: '/ready' } }))),
  }, { requiredKeys: ['name', 'image', 'routePrefix', 'command'] });
  const auth = mostly(fc.constantFrom(
    lib.IngressAuthentication.external({ url: 'https://auth.example.com/oauth2/auth' }),
    lib.IngressAuthentication.basic({ secretName: 'users' }),
    lib.IngressAuthentication.clientCertificate({ caSecretName: 'client-ca' }),
    lib.IngressAuthentication.unauthenticated(lib.UNAUTHENTICATED_ACKNOWLEDGEMENT),
  ), fc.constantFrom(lib.IngressAuthentication.external({ url: 'not a url' }), undefined));
  return fc.record({
    environment: fc.constantFrom(lib.StepFlowEnvironment.DEV, lib.StepFlowEnvironment.PROD, lib.StepFlowEnvironment.PROD.extend({ name: 'staging', namespace: 'stepflow-staging', namePrefix: 'stg-' })),
    generation: maybe(mostly(fc.constantFrom(lib.StepFlowGeneration.GRPC_PULL), fc.constant('0.12'))),
    namespace: maybe(mostly(dnsLabel.filter((n) => !/^(kube-|default$)/.test(n)), anyString)),
    namePrefix: maybe(mostly(fc.oneof(fc.constantFrom('', 'team-', 'a-'), fc.stringMatching(/^[a-z][a-z0-9-]{0,33}$/)), fc.oneof(fc.stringMatching(/^[a-z][a-z0-9-]{34,40}$/), anyString))),
    imageRegistry: mostly(fc.constantFrom('registry.example.com/stepflow', 'localhost:5000'), fc.oneof(fc.constantFrom('https://r.example.com', 'r.example.com/'), anyString)),
    imageTag: mostly(fc.constantFrom('0.13.0', '1.2.3-rc.1'), fc.oneof(fc.constantFrom('latest', ''), anyString)),
    logLevel: maybe(mostly(fc.constantFrom(...Object.values(lib.LogLevel)), anyString)),
    ingress: mostly(fc.oneof(fc.constant(false), fc.record({ host: mostly(fc.constant('stepflow.example.com'), fc.constant('https://x/')), authentication: auth, className: maybe(mostly(fc.constant('nginx'), fc.constant(''))) }, { requiredKeys: ['host', 'authentication'] })), fc.constant(undefined)),
    telemetry: maybe(telemetry),
    clusterNetworks: maybe(fc.record({ podCidrs: maybe(fc.array(mostly(fc.constantFrom('10.42.0.0/16', 'fd00::/8'), fc.constant('10.42.0.0')), { maxLength: 2 })) }, { requiredKeys: [] })),
    core: maybe(fc.record({ ...common, replicas: maybe(mostly(fc.constant(1), int)), stateStore: maybe(mostly(fc.constantFrom(lib.StateStore.sqlite(), lib.StateStore.sqlite({ sizeGiB: 3 })), fc.constantFrom(lib.StateStore.inMemory(), lib.StateStore.sqlite({ databasePath: '/tmp/x.db' })))) }, { requiredKeys: [] })),
    ...podSettings,
    workers: maybe(fc.array(ownWorker, { maxLength: 2 })),
    pythonSdk: maybe(fc.oneof({ arbitrary: fc.record({ ...worker, tmpSizeMiB: maybe(mostly(smallPositive, int)) }, { requiredKeys: [] }), weight: 5 }, { arbitrary: fc.constant(false), weight: 1 })),
    inference: maybe(fc.record({
      ...worker,
      gpu: maybe(mostly(fc.oneof(fc.constant(false), fc.record({ count: maybe(fc.integer({ min: 1, max: 4 })) }, { requiredKeys: [] })), fc.record({ count: fc.constantFrom(0, 20) }))),
      device: maybe(mostly(fc.constantFrom(lib.InferenceDevice.AUTO, lib.InferenceDevice.CPU), fc.oneof(fc.constant(lib.InferenceDevice.CUDA), anyString))),
      shmSizeMiB: maybe(mostly(fc.integer({ min: 1, max: 1024 }), fc.integer({ min: 20000, max: 30000 }))),
      modelCache: maybe(fc.record({ sizeGiB: maybe(int), storageClassName: maybe(mostly(fc.constant('fast'), fc.constant(''))), sharing: maybe(mostly(fc.constant(lib.ModelCacheSharing.PER_REPLICA), fc.constant(lib.ModelCacheSharing.SHARED))) }, { requiredKeys: [] })),
    }, { requiredKeys: [] })),
  }, { requiredKeys: ['environment', 'imageRegistry', 'imageTag'] });
}

/** The kit's own message: every line names a construct path, a prop, the value and what is allowed. */
const KIT_MESSAGE = /^Validation failed with the following errors:\n( {2}\[[^\]\n]+\] prop '[^'\n]+' is .+: .+(\n|$))+$/;

module.exports = { chartProps, KIT_MESSAGE };
