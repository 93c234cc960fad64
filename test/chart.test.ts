import { parse } from 'yaml';
import { CONTRACT } from '../src/contract';
import { CONFIG_CHECKSUM_ANNOTATION, StepFlowEnvironment, StepFlowGeneration } from '../src';
import { DEV_PROPS, PROD_PROPS, containers, find, synth, workloads } from './helpers';

const ENVIRONMENTS = [
  { env: 'dev', props: DEV_PROPS, ns: 'stepflow-dev', prefix: 'dev-' },
  { env: 'prod', props: PROD_PROPS, ns: 'stepflow', prefix: '' },
];

describe.each(ENVIRONMENTS)('$env environment', ({ env, props, ns, prefix }) => {
  // GIVEN the preset, WHEN synthesized
  const objects = synth(props);

  test('snapshot (safety net; the assertions below are the specification)', () => {
    expect(objects).toMatchSnapshot();
  });

  test('the Namespace comes first and enforces Pod Security restricted, version pinned', () => {
    expect(objects[0].kind).toBe('Namespace');
    expect(objects[0].metadata.name).toBe(ns);
    for (const mode of ['enforce', 'audit', 'warn']) {
      expect(objects[0].metadata.labels[`pod-security.kubernetes.io/${mode}`]).toBe('restricted');
      expect(objects[0].metadata.labels[`pod-security.kubernetes.io/${mode}-version`]).toBe('v1.30');
    }
    for (const o of objects.slice(1)) expect(o.metadata.namespace).toBe(ns);
  });

  test('names follow the spec, with no hashes', () => {
    expect(find(objects, 'Deployment', `${prefix}stepflow-core`)).toBeDefined();
    expect(find(objects, 'Deployment', `${prefix}stepflow-python-sdk`)).toBeDefined();
    expect(find(objects, 'StatefulSet', `${prefix}stepflow-inference`)).toBeDefined();
    for (const o of objects) expect(o.metadata.name).not.toMatch(/-c8[0-9a-f]{6,}$/);
  });

  test('every container is locked down', () => {
    for (const c of containers(objects)) {
      expect(c.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        privileged: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        runAsUser: expect.any(Number),
        runAsGroup: expect.any(Number),
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(c.resources.requests.cpu).toBeDefined();
      expect(c.resources.requests.memory).toBeDefined();
      expect(c.resources.limits.cpu).toBeDefined();
      expect(c.resources.limits.memory).toBeDefined();
    }
    for (const w of workloads(objects)) {
      const spec = w.spec.template.spec;
      expect(spec.automountServiceAccountToken).toBe(false);
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(spec.serviceAccountName).toBe(w.metadata.name);
      expect(find(objects, 'ServiceAccount', w.metadata.name).automountServiceAccountToken).toBe(false);
    }
  });

  test.each(['core', 'python-sdk', 'inference'] as const)('%s: UID, port, probes, selector and labels from the contract', (component) => {
    const c = CONTRACT.components[component];
    const w = workloads(objects).find((o) => o.metadata.labels.component === component);
    const container = w.spec.template.spec.containers[0];
    const selector = { app: 'stepflow', component, environment: env };
    expect(w.spec.selector).toEqual({ matchLabels: selector });
    expect(w.spec.template.metadata.labels).toMatchObject({ ...selector, 'app.kubernetes.io/component': component, 'app.kubernetes.io/part-of': 'stepflow' });
    expect(w.spec.template.spec.securityContext.runAsUser).toBe(c.uid);
    expect(container.securityContext.runAsUser).toBe(c.uid);
    expect(container.name).toBe(c.container);
    expect(container.ports).toEqual([{ name: 'http', containerPort: c.port, protocol: 'TCP' }]);
    expect(container.livenessProbe.httpGet).toEqual({ path: c.health.liveness, port: 'http', scheme: 'HTTP' });
    expect(container.readinessProbe.httpGet).toEqual({ path: c.health.readiness, port: 'http', scheme: 'HTTP' });
    expect(container.startupProbe.httpGet).toEqual({ path: c.health.startup, port: 'http', scheme: 'HTTP' });
    const svc = find(objects, 'Service', w.metadata.name);
    expect(svc.spec.selector).toEqual(selector);
    expect(svc.spec.ports).toEqual([{ name: 'http', port: c.port, targetPort: 'http', protocol: 'TCP' }]);
    // StepFlow 0.11 sessions live on one component-server pod: each core pod must stay on it.
    if (component === 'core') expect(svc.spec.sessionAffinity).toBeUndefined();
    else expect([svc.spec.sessionAffinity, svc.spec.sessionAffinityConfig]).toEqual(['ClientIP', { clientIP: { timeoutSeconds: 86400 } }]);
  });

  test('core runs stepflow-server with the mounted config and a checksum annotation', () => {
    const core = find(objects, 'Deployment', `${prefix}stepflow-core`);
    const c = core.spec.template.spec.containers[0];
    expect(c.command).toEqual(['/usr/local/bin/stepflow-server']);
    expect(c.args).toEqual(['--port', '8080', '--config', '/etc/stepflow/stepflow-config.yml']);
    expect(c.volumeMounts).toEqual([{ name: 'config', mountPath: '/etc/stepflow', readOnly: true }, { name: 'tmp', mountPath: '/tmp' }]);
    const cm = find(objects, 'ConfigMap', `${prefix}stepflow-config`);
    expect(core.spec.template.spec.volumes[0]).toEqual({ name: 'config', configMap: { name: cm.metadata.name, defaultMode: 0o444 } });
    const config = parse(cm.data['stepflow-config.yml']);
    expect(config).toEqual({
      plugins: {
        builtin: { type: 'builtin' },
        python: { type: 'stepflow', url: `http://${prefix}stepflow-python-sdk.${ns}.svc:8081` },
        inference: { type: 'stepflow', url: `http://${prefix}stepflow-inference.${ns}.svc:8082` },
      },
      routes: {
        '/python/{*component}': [{ plugin: 'python' }],
        '/inference/{*component}': [{ plugin: 'inference' }],
        '/{*component}': [{ plugin: 'builtin' }],
      },
      storageConfig: { type: 'inMemory' },
      blobApi: { url: `http://${prefix}stepflow-core.${ns}.svc:8080/api/v1/blobs` },
    });
    expect(core.spec.template.metadata.annotations[CONFIG_CHECKSUM_ANNOTATION]).toMatch(/^[0-9a-f]{64}$/);
    expect(core.spec.template.spec.initContainers[0].args).toEqual([
      `http://${prefix}stepflow-python-sdk.${ns}.svc:8081/health`,
      `http://${prefix}stepflow-inference.${ns}.svc:8082/health`,
    ]);
  });

  test('python-sdk binds 0.0.0.0:8081 and has writable /tmp and cache', () => {
    const py = find(objects, 'Deployment', `${prefix}stepflow-python-sdk`).spec.template.spec;
    expect(py.containers[0].command).toEqual(['python3', '-m', 'stepflow_py.worker.main']);
    expect(py.containers[0].args).toEqual(['--host', '0.0.0.0', '--port', '8081']);
    expect(py.containers[0].volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }, { name: 'cache', mountPath: '/var/cache/stepflow' }]);
    expect(py.volumes.map((v: any) => Object.keys(v))).toEqual([['emptyDir', 'name'], ['emptyDir', 'name']]);
  });

  test('NetworkPolicies: default deny, then exactly the flows StepFlow uses', () => {
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
    const byName = (n: string) => find(policies, 'NetworkPolicy', `${prefix}${n}`).spec;
    const sel = (component: string) => ({ matchLabels: { app: 'stepflow', component, environment: env } });
    expect(byName('stepflow-default-deny')).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    expect(byName('stepflow-allow-dns').egress).toEqual([{
      to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
      ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
    }]);
    const core = byName('stepflow-core');
    expect(core.podSelector).toEqual(sel('core'));
    expect(core.egress).toEqual([
      { to: [{ podSelector: sel('python-sdk') }], ports: [{ protocol: 'TCP', port: 8081 }] },
      { to: [{ podSelector: sel('inference') }], ports: [{ protocol: 'TCP', port: 8082 }] },
    ]);
    const fromServers = { from: [{ podSelector: sel('python-sdk') }, { podSelector: sel('inference') }], ports: [{ protocol: 'TCP', port: 8080 }] };
    expect(core.ingress).toEqual(env === 'prod'
      ? [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }], ports: [{ protocol: 'TCP', port: 8080 }] }, fromServers]
      : [fromServers]);
    for (const [name, port] of [['stepflow-python-sdk', 8081], ['stepflow-inference', 8082]] as const) {
      const p = byName(name);
      expect(p.ingress).toEqual([{ from: [{ podSelector: sel('core') }], ports: [{ protocol: 'TCP', port }] }]);
      expect(p.egress).toEqual([
        { to: [{ podSelector: sel('core') }], ports: [{ protocol: 'TCP', port: 8080 }] },
        { to: [{ ipBlock: { cidr: '0.0.0.0/0' } }, { ipBlock: { cidr: '::/0' } }], ports: [{ protocol: 'TCP', port: 443 }] },
      ]);
    }
  });
});

describe('dev specifics', () => {
  const objects = synth(DEV_PROPS);
  test('one replica each, debug logs, dev images, no HPA/PDB/Ingress', () => {
    for (const w of workloads(objects)) {
      expect(w.spec.replicas).toBe(1);
      expect(w.spec.template.spec.topologySpreadConstraints).toBeUndefined();
    }
    for (const c of containers(objects)) expect(c.image).toMatch(/^localhost:5000\/stepflow-[a-z-]+:dev$/);
    const core = find(objects, 'Deployment', 'dev-stepflow-core').spec.template.spec.containers[0];
    expect(core.env).toEqual(expect.arrayContaining([{ name: 'RUST_LOG', value: 'debug' }, { name: 'RUST_BACKTRACE', value: '1' }]));
    const py = find(objects, 'Deployment', 'dev-stepflow-python-sdk').spec.template.spec.containers[0];
    expect(py.env).toContainEqual({ name: 'STEPFLOW_LOG_LEVEL', value: 'DEBUG' });
    expect(objects.filter((o) => ['HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Ingress'].includes(o.kind))).toEqual([]);
  });
  test('inference is CPU-only and needs nothing a laptop k3s lacks', () => {
    const sts = find(objects, 'StatefulSet', 'dev-stepflow-inference');
    const spec = sts.spec.template.spec;
    expect(spec.runtimeClassName).toBeUndefined();
    expect(spec.tolerations).toBeUndefined();
    expect(spec.nodeSelector).toBeUndefined();
    expect(spec.containers[0].resources.limits['nvidia.com/gpu']).toBeUndefined();
    expect(spec.containers[0].env).toEqual(expect.arrayContaining([
      { name: 'STEPFLOW_INFERENCE_DEVICE', value: 'cpu' },
      { name: 'OMP_NUM_THREADS', value: '2' },
    ]));
    expect(sts.spec.volumeClaimTemplates[0].spec.storageClassName).toBeUndefined();
  });
});

describe('prod specifics', () => {
  const objects = synth(PROD_PROPS);
  test('HPAs own core and python-sdk, which then carry no replicas', () => {
    const core = find(objects, 'HorizontalPodAutoscaler', 'stepflow-core').spec;
    const py = find(objects, 'HorizontalPodAutoscaler', 'stepflow-python-sdk').spec;
    expect([core.minReplicas, core.maxReplicas, py.minReplicas, py.maxReplicas]).toEqual([3, 10, 5, 20]);
    expect(core.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'stepflow-core' });
    expect(py.behavior.scaleDown.stabilizationWindowSeconds).toBe(300);
    expect(py.metrics.map((m: any) => [m.resource.name, m.resource.target])).toEqual([
      ['cpu', { type: 'Utilization', averageUtilization: 70 }], ['memory', { type: 'Utilization', averageUtilization: 80 }]]);
    expect(find(objects, 'Deployment', 'stepflow-core').spec.replicas).toBeUndefined();
    expect(find(objects, 'Deployment', 'stepflow-python-sdk').spec.replicas).toBeUndefined();
    expect(find(objects, 'StatefulSet', 'stepflow-inference').spec.replicas).toBe(2);
  });
  test('replicas spread across nodes, selected by their own labels', () => {
    for (const w of workloads(objects)) {
      expect(w.spec.template.spec.topologySpreadConstraints).toEqual([{
        maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: w.spec.selector,
      }]);
    }
  });
  test('PDBs allow one eviction at a time, as an integer', () => {
    for (const name of ['stepflow-core', 'stepflow-python-sdk', 'stepflow-inference']) {
      const pdb = find(objects, 'PodDisruptionBudget', name).spec;
      expect(pdb.maxUnavailable).toBe(1);
      expect(pdb.selector.matchLabels.component).toBe(name.replace('stepflow-', ''));
    }
  });
  test('GPU inference: runtime class, GPU requests = limits, toleration, node selector, shm, per-replica cache', () => {
    const sts = find(objects, 'StatefulSet', 'stepflow-inference');
    const spec = sts.spec.template.spec;
    const c = spec.containers[0];
    expect(spec.runtimeClassName).toBe('nvidia');
    expect(c.resources.requests['nvidia.com/gpu']).toBe(1);
    expect(c.resources.limits['nvidia.com/gpu']).toBe(1);
    expect(spec.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(spec.nodeSelector).toEqual({ accelerator: 'nvidia-gpu' });
    expect(spec.volumes).toContainEqual({ name: 'dshm', emptyDir: { medium: 'Memory', sizeLimit: '4096Mi' } });
    expect(c.volumeMounts).toContainEqual({ name: 'model-cache', mountPath: '/models' });
    expect(c.env).toEqual(expect.arrayContaining([
      { name: 'MODEL_CACHE_DIR', value: '/models' },
      { name: 'STEPFLOW_INFERENCE_DEVICE', value: 'cuda' },
      { name: 'OMP_NUM_THREADS', value: '4' },
    ]));
    expect(sts.spec.volumeClaimTemplates).toEqual([{
      metadata: { name: 'model-cache', labels: expect.objectContaining({ component: 'inference' }) },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '50Gi' } } },
    }]);
    expect(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold).toBeGreaterThanOrEqual(600);
    expect(sts.spec.serviceName).toBe('stepflow-inference-headless');
    expect(find(objects, 'Service', 'stepflow-inference-headless').spec.clusterIP).toBe('None');
  });
  test('TLS Ingress through cert-manager to the core Service', () => {
    const ing = find(objects, 'Ingress', 'stepflow');
    expect(ing.metadata.annotations).toEqual({ 'cert-manager.io/cluster-issuer': 'letsencrypt-prod' });
    expect(ing.spec.ingressClassName).toBe('nginx');
    expect(ing.spec.tls).toEqual([{ hosts: ['stepflow.example.com'], secretName: 'stepflow-tls' }]);
    expect(ing.spec.rules[0].http.paths[0].backend).toEqual({ service: { name: 'stepflow-core', port: { name: 'http' } } });
  });
  test('images come from the configured registry and tag', () => {
    for (const c of containers(objects)) expect(c.image).toMatch(/^registry\.example\.com\/stepflow\/stepflow-[a-z-]+:0\.11\.1$/);
  });
});

describe('presets only supply defaults', () => {
  test('explicit props win over the preset', () => {
    const objects = synth({ ...DEV_PROPS, namespace: 'team-a', namePrefix: 'a-', imageTag: 'pr-42', pythonSdk: { replicas: 2 } });
    expect(objects[0].metadata.name).toBe('team-a');
    const py = find(objects, 'Deployment', 'a-stepflow-python-sdk');
    expect(py.spec.replicas).toBe(2);
    expect(py.spec.template.spec.containers[0].image).toBe('localhost:5000/stepflow-python-sdk:pr-42');
  });
  test('extend derives a new environment', () => {
    const staging = StepFlowEnvironment.PROD.extend({ name: 'staging', namespace: 'stepflow-staging', namePrefix: 'stg-', imageRegistry: 'r.example.com', imageTag: '1.0.0' });
    const objects = synth({ environment: staging, ingress: { host: 'staging.example.com' } });
    expect(find(objects, 'Deployment', 'stg-stepflow-core').metadata.labels.environment).toBe('staging');
    expect(StepFlowEnvironment.PROD.settings.namespace).toBe('stepflow');
  });
  test('a config change changes the checksum annotation', () => {
    const a = find(synth(DEV_PROPS), 'Deployment', 'dev-stepflow-core').spec.template.metadata.annotations[CONFIG_CHECKSUM_ANNOTATION];
    const b = find(synth({ ...DEV_PROPS, namespace: 'other' }), 'Deployment', 'dev-stepflow-core').spec.template.metadata.annotations[CONFIG_CHECKSUM_ANNOTATION];
    expect(a).not.toBe(b);
  });
});

describe('StepFlow 0.13 (gRPC pull)', () => {
  const objects = synth({ ...DEV_PROPS, generation: StepFlowGeneration.GRPC_PULL });
  test('workers dial core; plugins are grpc queues; no worker Services or ports', () => {
    const cm = find(objects, 'ConfigMap', 'dev-stepflow-config');
    const config = parse(cm.data['stepflow-config.yml']);
    expect(config.plugins.python).toEqual({ type: 'grpc', queueName: 'python' });
    expect(Object.keys(config.routes)).toEqual(['/python', '/inference', '/']);
    const py = find(objects, 'Deployment', 'dev-stepflow-python-sdk').spec.template.spec.containers[0];
    expect(py.args).toBeUndefined(); // with command set, Kubernetes ignores the image's CMD
    expect(py.ports).toBeUndefined();
    expect(py.livenessProbe).toBeUndefined();
    expect(py.readinessProbe.exec.command[0]).toBe('python3');
    expect(py.readinessProbe.exec.command[2]).toContain('timeout=3');
    expect(py.readinessProbe.timeoutSeconds).toBe(5);
    expect(find(objects, 'Deployment', 'dev-stepflow-python-sdk').spec.template.spec.terminationGracePeriodSeconds).toBe(15);
    expect(py.env).toEqual(expect.arrayContaining([
      { name: 'STEPFLOW_TRANSPORT', value: 'grpc' },
      { name: 'STEPFLOW_TASKS_URL', value: 'dev-stepflow-core.stepflow-dev.svc:8080' },
      { name: 'STEPFLOW_QUEUE_NAME', value: 'python' },
    ]));
    expect(objects.filter((o) => o.kind === 'Service').map((o) => o.metadata.name)).toEqual(['dev-stepflow-inference-headless', 'dev-stepflow-core']);
    const corePolicy = find(objects, 'NetworkPolicy', 'dev-stepflow-core').spec;
    expect(corePolicy.egress).toBeUndefined(); // Egress policy type with no rules: core calls nobody
    expect(find(objects, 'NetworkPolicy', 'dev-stepflow-python-sdk').spec.ingress).toBeUndefined();
    expect(find(objects, 'Service', 'dev-stepflow-inference-headless').spec.ports).toBeUndefined();
    expect(find(objects, 'Deployment', 'dev-stepflow-core').spec.template.spec.initContainers).toBeUndefined();
  });
});
