import { parse } from 'yaml';
import { IngressAuthentication, LogFormat, StepFlowEnvironment, StepFlowGeneration, UNAUTHENTICATED_ACKNOWLEDGEMENT } from '../src';
import { DEV_PROPS, PROD_PROPS, find, synth, synthError, workloads } from './helpers';

// The edges of an installation: who may reach it, what it may reach, what it reports,
// and how presets merge. GIVEN props, WHEN synthesized, THEN exactly these fields.
const NGINX = 'nginx.ingress.kubernetes.io';
const ingressWith = (authentication: IngressAuthentication) => ({ ...PROD_PROPS, ingress: { host: 'stepflow.example.com', authentication } });
const annotations = (objects: any[]) => find(objects, 'Ingress', 'stepflow').metadata.annotations;
const env = (objects: any[], component: string) => workloads(objects).find((w) => w.metadata.labels.component === component).spec.template.spec.containers[0].env;
const policy = (objects: any[], name: string) => find(objects, 'NetworkPolicy', name).spec;

describe('1. authentication in front of the core', () => {
  test('external auth (an OAuth2 proxy): every request is checked first', () => {
    const objects = synth(ingressWith(IngressAuthentication.external({ url: 'https://auth.internal/oauth2/auth' })));
    expect(annotations(objects)).toEqual({ 'cert-manager.io/cluster-issuer': 'letsencrypt-prod', [`${NGINX}/auth-url`]: 'https://auth.internal/oauth2/auth' });
  });
  test('client certificates verified against a CA Secret of the namespace', () => {
    const objects = synth(ingressWith(IngressAuthentication.clientCertificate({ caSecretName: 'stepflow-client-ca' })));
    expect(annotations(objects)).toMatchObject({
      [`${NGINX}/auth-tls-secret`]: 'stepflow/stepflow-client-ca',
      [`${NGINX}/auth-tls-verify-client`]: 'on',
      [`${NGINX}/auth-tls-verify-depth`]: '1',
    });
  });
  test('basic auth from an htpasswd Secret: the Secret is named, its value never appears', () => {
    const objects = synth(ingressWith(IngressAuthentication.basic({ secretName: 'stepflow-users' })));
    expect(annotations(objects)).toMatchObject({ [`${NGINX}/auth-type`]: 'basic', [`${NGINX}/auth-secret`]: 'stepflow-users', [`${NGINX}/auth-realm`]: 'StepFlow' });
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
  });
  test('no authentication only with the loud acknowledgement', () => {
    const objects = synth(ingressWith(IngressAuthentication.unauthenticated(UNAUTHENTICATED_ACKNOWLEDGEMENT)));
    expect(annotations(objects)).toEqual({ 'cert-manager.io/cluster-issuer': 'letsencrypt-prod' });
    expect(synthError(ingressWith(IngressAuthentication.unauthenticated('yes' as any)))).toMatch(
      /\[test\/Ingress\] prop 'ingress.authentication' is "yes": publishing the core without authentication needs the exact acknowledgement 'anyone who reaches the host can run code on the core'/);
  });
  test.each([
    ['no authentication named', { ...PROD_PROPS, ingress: { host: 'stepflow.example.com' } as any }, /\[test\/Ingress\] prop 'ingress.authentication' is undefined: the core's API runs users' code: choose IngressAuthentication.external/],
    ['an auth URL that is not one', ingressWith(IngressAuthentication.external({ url: 'auth-service' })), /prop 'ingress.authentication.url' is "auth-service": expected an absolute http\(s\) URL/],
    ['an empty Secret name', ingressWith(IngressAuthentication.basic({ secretName: '' })), /prop 'ingress.authentication.secretName' is "": expected the name of a Secret of the installation's namespace/],
    ['a verify depth out of range', ingressWith(IngressAuthentication.clientCertificate({ caSecretName: 'ca', verifyDepth: 0 })), /prop 'ingress.authentication.verifyDepth' is 0: expected an integer from 1 to 10/],
  ])('rejected: %s', (_name, props, message) => {
    expect(synthError(props)).toMatch(message);
  });
  test('the default prod in dist/ is authenticated', () => {
    expect(annotations(synth(PROD_PROPS))[`${NGINX}/auth-url`]).toMatch(/^https:\/\//);
  });
});

describe('2. egress that stays outside the cluster', () => {
  test('the workers\' HTTPS egress excludes the cluster\'s own ranges, given as props', () => {
    const objects = synth({ ...DEV_PROPS, clusterNetworks: { podCidrs: ['10.42.0.0/16'], serviceCidrs: ['10.43.0.0/16'], apiServerCidrs: ['203.0.113.10/32', '2001:db8::1/128'] } });
    const https = policy(objects, 'dev-stepflow-python-sdk').egress.find((r: any) => r.ports[0].port === 443);
    expect(https.to).toEqual([
      { ipBlock: { cidr: '0.0.0.0/0', except: ['10.42.0.0/16', '10.43.0.0/16', '203.0.113.10/32'] } },
      { ipBlock: { cidr: '::/0', except: ['2001:db8::1/128'] } },
    ]);
  });
  test('a range that is not a CIDR is rejected', () => {
    expect(synthError({ ...DEV_PROPS, clusterNetworks: { podCidrs: ['10.42.0.0'] } })).toMatch(/\[test\/NetworkPolicies\] prop 'clusterNetworks' is "10.42.0.0": expected an IPv4 or IPv6 CIDR/);
  });
});

describe('3. NetworkPolicy additions per component', () => {
  const objects = synth({
    ...DEV_PROPS,
    core: { networkAccess: { ingress: [{ peers: [{ namespace: 'monitoring', podLabels: { app: 'prometheus' } }], ports: [{ port: 8080 }] }] } },
    pythonSdk: { networkAccess: { egress: [
      { peers: [{ cidr: '10.20.0.0/16', except: ['10.20.5.0/24'] }], ports: [{ port: 5432 }] },
      { peers: [{ namespaceLabels: { team: 'data' } }], ports: [{ port: 8443, protocol: 'TCP' }] },
    ] } },
  });
  test('extra sources reach the core, after the ones StepFlow needs', () => {
    const ingress = policy(objects, 'dev-stepflow-core').ingress;
    expect(ingress[ingress.length - 1]).toEqual({
      from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } }, podSelector: { matchLabels: { app: 'prometheus' } } }],
      ports: [{ protocol: 'TCP', port: 8080 }],
    });
  });
  test('extra destinations leave python-sdk: a database range and another team\'s namespace', () => {
    const egress = policy(objects, 'dev-stepflow-python-sdk').egress;
    expect(egress.slice(-2)).toEqual([
      { to: [{ ipBlock: { cidr: '10.20.0.0/16', except: ['10.20.5.0/24'] } }], ports: [{ protocol: 'TCP', port: 5432 }] },
      { to: [{ namespaceSelector: { matchLabels: { team: 'data' } } }], ports: [{ protocol: 'TCP', port: 8443 }] },
    ]);
    expect(policy(objects, 'dev-stepflow-inference').egress).toHaveLength(2);
  });
  test.each([
    ['an empty peer', { core: { networkAccess: { egress: [{ peers: [{}] }] } } }, /prop 'networkAccess.egress\[0\].peers\[0\]' is \{\}: name pods/],
    ['a peer that is both pods and a range', { core: { networkAccess: { egress: [{ peers: [{ cidr: '10.0.0.0/8', podLabels: { a: 'b' } }] }] } } }, /a peer is either an address range \(cidr\) or pods/],
    ['a port out of range', { core: { networkAccess: { ingress: [{ peers: [{ namespace: 'm' }], ports: [{ port: 70000 }] }] } } }, /prop 'networkAccess.ingress\[0\].ports\[0\].port' is 70000/],
  ])('rejected: %s', (_name, extra, message) => {
    expect(synthError({ ...DEV_PROPS, ...extra } as any)).toMatch(message);
  });
});

describe('4. telemetry as props', () => {
  const endpoint = 'http://otel-collector.observability.svc:4317';
  const objects = synth({ ...PROD_PROPS, telemetry: { otlpEndpoint: endpoint }, pythonSdk: { telemetry: { serviceName: 'team-python' } } });
  test('the core: JSON logs in production, OTLP traces and metrics', () => {
    expect(env(objects, 'core')).toEqual(expect.arrayContaining([
      { name: 'STEPFLOW_LOG_FORMAT', value: 'json' },
      { name: 'STEPFLOW_OTLP_ENDPOINT', value: endpoint },
      { name: 'STEPFLOW_TRACE_ENABLED', value: 'true' },
      { name: 'STEPFLOW_METRICS_ENABLED', value: 'true' },
    ]));
  });
  test('the workers: the endpoint, traces, logs to stderr and OTLP, their service name', () => {
    expect(env(objects, 'python-sdk')).toEqual(expect.arrayContaining([
      { name: 'STEPFLOW_OTLP_ENDPOINT', value: endpoint },
      { name: 'STEPFLOW_TRACE_ENABLED', value: 'true' },
      { name: 'STEPFLOW_LOG_DESTINATION', value: 'stderr,otlp' },
      { name: 'STEPFLOW_SERVICE_NAME', value: 'team-python' },
    ]));
  });
  test('egress to the collector is allowed for every component, on its port', () => {
    for (const name of ['stepflow-core', 'stepflow-python-sdk', 'stepflow-inference']) {
      expect(policy(objects, name).egress).toContainEqual({ to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } } }], ports: [{ protocol: 'TCP', port: 4317 }] });
    }
  });
  test('no scrape port is invented: StepFlow pushes metrics over OTLP', () => {
    for (const w of workloads(objects)) {
      expect((w.spec.template.spec.containers[0].ports ?? []).map((p: any) => p.name)).not.toContain('metrics');
      expect(w.spec.template.metadata.annotations?.['prometheus.io/scrape']).toBeUndefined();
    }
  });
  test('dev logs text and exports nothing', () => {
    const dev = synth(DEV_PROPS);
    expect(env(dev, 'core')).toContainEqual({ name: 'STEPFLOW_LOG_FORMAT', value: 'text' });
    expect(env(dev, 'core').map((e: any) => e.name)).not.toContain('STEPFLOW_OTLP_ENDPOINT');
  });
  test.each([
    ['tracing without an endpoint', { ...DEV_PROPS, telemetry: { tracing: true } }, /\[test\/Core\] prop 'telemetry.tracing' is true: exporting needs telemetry.otlpEndpoint/],
    ['an endpoint outside the cluster without a collector peer', { ...DEV_PROPS, telemetry: { otlpEndpoint: 'http://collector.example.com:4317' } },
      /prop 'telemetry.collector' is undefined: the NetworkPolicies cannot tell where 'collector.example.com' runs/],
    ['an endpoint that is not a URL', { ...DEV_PROPS, telemetry: { otlpEndpoint: 'collector:4317' } }, /prop 'telemetry.otlpEndpoint' is "collector:4317": expected an http\(s\) URL/],
    ['text logs for a stepflow-py worker', { ...DEV_PROPS, pythonSdk: { telemetry: { logFormat: LogFormat.TEXT } } }, /\[test\/PythonSdk\] prop 'telemetry.logFormat' is "text": stepflow-py workers always write JSON log lines/],
    ['a log format that is not a member', { ...DEV_PROPS, core: { telemetry: { logFormat: 'xml' as any } } }, /\[test\/Core\] prop 'telemetry.logFormat' is "xml": expected one of 'json', 'text'/],
  ])('rejected: %s', (_name, props, message) => {
    expect(synthError(props)).toMatch(message);
  });
  test('a collector outside the cluster is reached through the peer given', () => {
    const out = synth({ ...DEV_PROPS, telemetry: { otlpEndpoint: 'http://collector.example.com:4317', collector: { cidr: '198.51.100.7/32' } } });
    expect(policy(out, 'dev-stepflow-core').egress).toContainEqual({ to: [{ ipBlock: { cidr: '198.51.100.7/32' } }], ports: [{ protocol: 'TCP', port: 4317 }] });
  });
});

describe('5. production without an Ingress', () => {
  const objects = synth({ ...PROD_PROPS, ingress: false });
  test('internal only: no Ingress and no ingress-controller rule, every other production rule kept', () => {
    expect(objects.filter((o) => o.kind === 'Ingress')).toEqual([]);
    expect(JSON.stringify(policy(objects, 'stepflow-core').ingress)).not.toContain('ingress-nginx');
    expect(objects.filter((o) => o.kind === 'PodDisruptionBudget')).toHaveLength(2);
    expect(env(objects, 'core')).toContainEqual({ name: 'STEPFLOW_LOG_FORMAT', value: 'json' });
    expect(synthError({ ...PROD_PROPS, ingress: false, imageTag: 'latest' })).toMatch(/production images must carry an explicit version tag/);
  });
});

describe('6. presets merge field by field; false removes a field', () => {
  const sts = (objects: any[], name: string) => find(objects, 'StatefulSet', name);
  test('model cache: a StorageClass alone keeps prod\'s 50 GiB', () => {
    const objects = synth({ ...PROD_PROPS, inference: { modelCache: { storageClassName: 'fast-ssd' } } });
    expect(sts(objects, 'stepflow-inference').spec.volumeClaimTemplates[0].spec).toEqual({
      accessModes: ['ReadWriteOnce'], storageClassName: 'fast-ssd', resources: { requests: { storage: '50Gi' } },
    });
  });
  test('resources: one limit alone keeps the preset\'s other figures', () => {
    const objects = synth({ ...PROD_PROPS, pythonSdk: { resources: { memoryLimitMiB: 2048 } } });
    const r = find(objects, 'Deployment', 'stepflow-python-sdk').spec.template.spec.containers[0].resources;
    expect([r.requests.cpu, r.limits.cpu, r.requests.memory, r.limits.memory]).toEqual(['250m', '1000m', '256Mi', '2048Mi']);
  });
  test('autoscaling: a new ceiling keeps the floor; false removes the autoscaler', () => {
    const raised = synth({ ...PROD_PROPS, pythonSdk: { autoscaling: { maxReplicas: 40 } } });
    expect(find(raised, 'HorizontalPodAutoscaler', 'stepflow-python-sdk').spec).toMatchObject({ minReplicas: 5, maxReplicas: 40 });
    const fixed = synth({ ...PROD_PROPS, pythonSdk: { autoscaling: false, replicas: 3 } });
    expect(fixed.filter((o) => o.kind === 'HorizontalPodAutoscaler')).toEqual([]);
    expect(find(fixed, 'Deployment', 'stepflow-python-sdk').spec.replicas).toBe(3);
  });
  test('GPU: a count alone keeps the runtime class and node selector; false runs inference on CPU', () => {
    const two = sts(synth({ ...PROD_PROPS, inference: { gpu: { count: 2 } } }), 'stepflow-inference').spec.template.spec;
    expect([two.runtimeClassName, two.nodeSelector, two.containers[0].resources.limits['nvidia.com/gpu']]).toEqual(['nvidia', { accelerator: 'nvidia-gpu' }, 2]);
    const cpu = sts(synth({ ...PROD_PROPS, inference: { gpu: false } }), 'stepflow-inference').spec.template.spec;
    expect([cpu.runtimeClassName, cpu.tolerations, cpu.containers[0].resources.limits['nvidia.com/gpu']]).toEqual([undefined, undefined, undefined]);
    expect(cpu.containers[0].env).toContainEqual({ name: 'STEPFLOW_INFERENCE_DEVICE', value: 'cpu' });
  });
  test('disruption budget: false removes it', () => {
    const objects = synth({ ...PROD_PROPS, inference: { disruptionBudget: false } });
    expect(objects.filter((o) => o.kind === 'PodDisruptionBudget').map((o) => o.metadata.name)).toEqual(['stepflow-python-sdk']);
  });
  test('telemetry: a component\'s own block merges with the chart\'s and the preset\'s', () => {
    const objects = synth({ ...PROD_PROPS, telemetry: { otlpEndpoint: 'http://c.o11y.svc:4317' }, core: { telemetry: { metrics: false } } });
    expect(env(objects, 'core')).toEqual(expect.arrayContaining([
      { name: 'STEPFLOW_LOG_FORMAT', value: 'json' }, { name: 'STEPFLOW_METRICS_ENABLED', value: 'false' }, { name: 'STEPFLOW_TRACE_ENABLED', value: 'true' },
    ]));
  });
  test('extend merges the same way', () => {
    const bigCache = StepFlowEnvironment.PROD.extend({ inference: { modelCache: { storageClassName: 'nfs', accessMode: undefined } }, pythonSdk: { autoscaling: false } });
    expect(bigCache.settings.inference.modelCache).toEqual({ sizeGiB: 50, storageClassName: 'nfs', accessMode: undefined });
    expect(bigCache.settings.pythonSdk.autoscaling).toBeUndefined();
    expect(StepFlowEnvironment.PROD.settings.pythonSdk.autoscaling).toBeDefined();
  });
  test('a partial autoscaler with nothing to merge with is rejected', () => {
    expect(synthError({ ...DEV_PROPS, pythonSdk: { autoscaling: { maxReplicas: 4 } } })).toMatch(/\[test\/PythonSdk\] prop 'autoscaling.minReplicas' is undefined: an autoscaler needs minReplicas and maxReplicas/);
  });
  test('0.11 keeps one worker replica even when the preset scales out', () => {
    const objects = synth({ ...PROD_PROPS, generation: StepFlowGeneration.HTTP_PUSH });
    expect(find(objects, 'Deployment', 'stepflow-python-sdk').spec.replicas).toBe(1);
    expect(parse(find(objects, 'ConfigMap', 'stepflow-config').data['stepflow-config.yml']).plugins.python.type).toBe('stepflow');
  });
});

describe('4b. telemetry tells installations apart', () => {
  const objects = synth({ ...DEV_PROPS, telemetry: { otlpEndpoint: 'http://c.o11y.svc:4317' } });
  test('every export carries the namespace and environment; the core also its pod name, expanded after the id is set', () => {
    const core = env(objects, 'core');
    const names = core.map((e: any) => e.name);
    expect(core).toContainEqual({ name: 'OTEL_RESOURCE_ATTRIBUTES', value: 'service.namespace=stepflow-dev,deployment.environment=dev,k8s.pod.name=$(STEPFLOW_ORCHESTRATOR_ID)' });
    expect(names.indexOf('STEPFLOW_ORCHESTRATOR_ID')).toBeLessThan(names.indexOf('OTEL_RESOURCE_ATTRIBUTES'));
    expect(env(objects, 'python-sdk')).toContainEqual({ name: 'OTEL_RESOURCE_ATTRIBUTES', value: 'service.namespace=stepflow-dev,deployment.environment=dev' });
  });
  test('a service name for the core is rejected: it always reports stepflow-server; a chart-wide one names the workers only', () => {
    expect(synthError({ ...DEV_PROPS, core: { telemetry: { serviceName: 'my-core' } } })).toMatch(/\[test\/Core\] prop 'telemetry.serviceName' is "my-core": the core always reports service.name 'stepflow-server'/);
    const named = synth({ ...DEV_PROPS, telemetry: { serviceName: 'team' } });
    expect(env(named, 'python-sdk')).toContainEqual({ name: 'STEPFLOW_SERVICE_NAME', value: 'team' });
  });
});
