import { parse } from 'yaml';
import { CONTRACT } from '../src/contract';
import { CONFIG_CHECKSUM_ANNOTATION, StepFlowEnvironment, StepFlowGeneration } from '../src';
import { DEV_PROPS, PROD_PROPS, containers, find, synth, workloads } from './helpers';
import { prod } from '../charts/prod';

const PUSH = StepFlowGeneration.HTTP_PUSH;
const PULL = StepFlowGeneration.GRPC_PULL;

const ENVIRONMENTS = [
  { env: 'dev', props: DEV_PROPS, ns: 'stepflow-dev', prefix: 'dev-' },
  { env: 'prod', props: PROD_PROPS, ns: 'stepflow', prefix: '' },
];
const CASES = ENVIRONMENTS.flatMap((e) => [PULL, PUSH].map((generation) => ({
  ...e,
  generation,
  props: e.env === 'prod' ? prod(generation) : { ...e.props, generation },
})));

/** HTTPS egress reaches the internet, not the cluster's private ranges or link-local metadata endpoints. */
const OUTSIDE_THE_CLUSTER = [
  { ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16'] } },
  { ipBlock: { cidr: '::/0', except: ['fd00::/8', 'fe80::/10'] } },
];

const component = (objects: any[], name: string) => workloads(objects).find((w) => w.metadata.labels.component === name);

describe.each(CASES)('$env environment, StepFlow $generation', ({ env, props, ns, prefix, generation }) => {
  // GIVEN the installation of this repository, WHEN synthesized
  const objects = synth(props);
  const pull = generation === PULL;

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
    expect(find(objects, 'StatefulSet', `${prefix}stepflow-core`)).toBeDefined();
    expect(find(objects, 'Deployment', `${prefix}stepflow-python-sdk`)).toBeDefined();
    expect(find(objects, 'StatefulSet', `${prefix}stepflow-inference`)).toBeDefined();
    expect(objects.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name)).toEqual([`${prefix}stepflow-python-sdk`]);
    for (const o of objects) expect(o.metadata.name).not.toMatch(/-c8[0-9a-f]{6,}$/);
  });

  test('every container, init containers included, is locked down and has cpu, memory and ephemeral-storage bounds', () => {
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
      for (const kind of ['requests', 'limits']) {
        expect(Object.keys(c.resources[kind]).filter((k) => k !== 'nvidia.com/gpu').sort()).toEqual(['cpu', 'ephemeral-storage', 'memory']);
      }
    }
    for (const w of workloads(objects)) {
      const spec = w.spec.template.spec;
      expect(spec.automountServiceAccountToken).toBe(false);
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(spec.serviceAccountName).toBe(w.metadata.name);
      expect(find(objects, 'ServiceAccount', w.metadata.name).automountServiceAccountToken).toBe(false);
    }
  });

  test('the ephemeral-storage limit covers the log and every disk-backed emptyDir, not memory-backed ones', () => {
    for (const w of workloads(objects)) {
      const spec = w.spec.template.spec;
      const onDisk = spec.volumes.filter((v: any) => v.emptyDir && v.emptyDir.medium !== 'Memory').map((v: any) => parseInt(v.emptyDir.sizeLimit, 10));
      expect(spec.containers[0].resources.limits['ephemeral-storage']).toBe(`${64 + onDisk.reduce((a: number, b: number) => a + b, 0)}Mi`);
      expect(spec.containers[0].resources.requests['ephemeral-storage']).toBe('64Mi');
    }
  });

  test.each(['core', 'python-sdk', 'inference'] as const)('%s: UID, selector and labels from the contract', (name) => {
    const c = CONTRACT.components[name];
    const w = component(objects, name);
    const container = w.spec.template.spec.containers[0];
    const selector = { app: 'stepflow', component: name, environment: env, 'app.kubernetes.io/instance': `${prefix}stepflow` };
    expect(w.spec.selector).toEqual({ matchLabels: selector });
    expect(w.spec.template.metadata.labels).toMatchObject({ ...selector, 'app.kubernetes.io/component': name, 'app.kubernetes.io/part-of': 'stepflow' });
    const version = name === 'core' ? CONTRACT.generations[generation].orchestrator : CONTRACT.generations[generation].sdk;
    expect(w.metadata.labels['app.kubernetes.io/version']).toBe(version);
    expect(w.spec.template.spec.securityContext.runAsUser).toBe(c.uid);
    expect(container.securityContext.runAsUser).toBe(c.uid);
    expect(container.name).toBe(c.container);
  });

  test.each(['core', 'python-sdk', 'inference'] as const)('%s: port, probes and Service as the generation needs', (name) => {
    const c = CONTRACT.components[name];
    const w = component(objects, name);
    const container = w.spec.template.spec.containers[0];
    const selector = { app: 'stepflow', component: name, environment: env, 'app.kubernetes.io/instance': `${prefix}stepflow` };
    if (name !== 'core' && pull) {
      // gRPC-pull workers listen on nothing: startup = the core answers; readiness = the worker's own state
      // (the loop's ready file is fresh: connected, or reconnecting within its grace); liveness = the loop's
      // heartbeat is fresh.
      expect(container.ports).toBeUndefined();
      expect(objects.filter((o) => o.kind === 'Service' && o.metadata.name === w.metadata.name)).toEqual([]);
      expect(container.startupProbe.exec.command).toEqual(['python3', '-c',
        'import os, urllib.request; urllib.request.urlopen("http://" + os.environ["STEPFLOW_TASKS_URL"] + "/api/v1/health", timeout=3)']);
      expect(container.readinessProbe).toEqual({
        exec: { command: ['python3', '-c', "import os, sys, time; sys.exit(0 if time.time() - os.stat(os.environ['STEPFLOW_KIT_READY_FILE']).st_mtime < 15 else 1)"] },
        periodSeconds: 5, failureThreshold: 3, successThreshold: 1, timeoutSeconds: 5,
      });
      expect(container.env).toContainEqual({ name: 'STEPFLOW_KIT_READY_FILE', value: CONTRACT.paths.ready });
      expect(container.livenessProbe.exec.command[2]).toMatch(/os\.stat\(os\.environ\['STEPFLOW_KIT_HEARTBEAT_FILE'\]\)\.st_mtime < 30 else 1\)$/);
      return;
    }
    expect(container.ports).toEqual([{ name: 'http', containerPort: c.port, protocol: 'TCP' }]);
    expect(container.livenessProbe.httpGet).toEqual({ path: c.health.liveness, port: 'http', scheme: 'HTTP' });
    expect(container.readinessProbe.httpGet).toEqual({ path: c.health.readiness, port: 'http', scheme: 'HTTP' });
    expect(container.startupProbe.httpGet).toEqual({ path: c.health.startup, port: 'http', scheme: 'HTTP' });
    const svc = find(objects, 'Service', w.metadata.name);
    expect(svc.spec.selector).toEqual(selector);
    expect(svc.spec.ports).toEqual([{ name: 'http', port: c.port, targetPort: 'http', protocol: 'TCP' }]);
    // StepFlow 0.11 sessions live on one component-server pod: the core must stay on it.
    if (name === 'core') expect(svc.spec.sessionAffinity).toBeUndefined();
    else expect([svc.spec.sessionAffinity, svc.spec.sessionAffinityConfig]).toEqual(['ClientIP', { clientIP: { timeoutSeconds: 86400 } }]);
  });

  test('the core is one pod of a StatefulSet whose claim holds its sqlite state, and its pod name is the orchestrator id', () => {
    const core = find(objects, 'StatefulSet', `${prefix}stepflow-core`);
    expect(core.spec.replicas).toBe(1);
    expect(core.spec.serviceName).toBe(`${prefix}stepflow-core-headless`);
    expect(core.spec.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Retain', whenScaled: 'Retain' });
    expect(core.spec.volumeClaimTemplates).toEqual([{
      metadata: { name: 'state', labels: expect.objectContaining({ component: 'core' }) },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: env === 'prod' ? '10Gi' : '1Gi' } } },
    }]);
    const c = core.spec.template.spec.containers[0];
    expect(c.command).toEqual(['/usr/local/bin/stepflow-server']);
    expect(c.args).toEqual(['--port', '8080', '--config', '/etc/stepflow/stepflow-config.yml']);
    expect(c.volumeMounts).toEqual([
      { name: 'config', mountPath: '/etc/stepflow', readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'state', mountPath: '/var/lib/stepflow' },
    ]);
    expect(c.env).toContainEqual({ name: 'STEPFLOW_ORCHESTRATOR_ID', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } });
    const headless = find(objects, 'Service', `${prefix}stepflow-core-headless`).spec;
    expect(headless).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true, selector: core.spec.selector.matchLabels });
    expect(objects.filter((o) => ['HorizontalPodAutoscaler', 'PodDisruptionBudget'].includes(o.kind) && o.metadata.name === `${prefix}stepflow-core`)).toEqual([]);
  });

  test('claim templates are immutable: they carry no label that changes between releases', () => {
    for (const sts of objects.filter((o) => o.kind === 'StatefulSet')) {
      for (const t of sts.spec.volumeClaimTemplates ?? []) {
        expect(t.metadata.labels['app.kubernetes.io/version']).toBeUndefined();
        expect(t.metadata.labels).toMatchObject(sts.spec.selector.matchLabels);
      }
    }
  });

  test('the config keeps state in sqlite on the claim and resumes interrupted runs; its checksum annotates the pod', () => {
    const core = find(objects, 'StatefulSet', `${prefix}stepflow-core`);
    const cm = find(objects, 'ConfigMap', `${prefix}stepflow-config`);
    expect(core.spec.template.spec.volumes[0]).toEqual({ name: 'config', configMap: { name: cm.metadata.name, defaultMode: 0o444 } });
    const config = parse(cm.data['stepflow-config.yml']);
    const host = (n: string) => `${prefix}stepflow-${n}.${ns}.svc`;
    expect(config).toEqual({
      plugins: pull ? {
        builtin: { type: 'builtin' },
        python: { type: 'grpc', queueName: 'python' },
        inference: { type: 'grpc', queueName: 'inference' },
      } : {
        builtin: { type: 'builtin' },
        python: { type: 'stepflow', url: `http://${host('python-sdk')}:8081` },
        inference: { type: 'stepflow', url: `http://${host('inference')}:8082` },
      },
      routes: pull
        ? { '/python': [{ plugin: 'python' }], '/inference': [{ plugin: 'inference' }], '/': [{ plugin: 'builtin' }] }
        : { '/python/{*component}': [{ plugin: 'python' }], '/inference/{*component}': [{ plugin: 'inference' }], '/{*component}': [{ plugin: 'builtin' }] },
      storageConfig: { type: 'sqlite', databaseUrl: 'sqlite:/var/lib/stepflow/stepflow.db?mode=rwc' },
      recovery: { enabled: true, maxStartupRecovery: 100 },
      blobApi: { url: `http://${host('core')}:8080/api/v1/blobs` },
    });
    expect(core.spec.template.metadata.annotations[CONFIG_CHECKSUM_ANNOTATION]).toMatch(/^[0-9a-f]{64}$/);
  });

  test('python-sdk has writable /tmp and cache and runs the generation\'s server', () => {
    const py = find(objects, 'Deployment', `${prefix}stepflow-python-sdk`).spec.template.spec;
    expect(py.containers[0].command).toEqual(['python3', '-m', pull ? 'stepflow_kit_worker' : 'stepflow_py.worker.main']);
    expect(py.containers[0].args).toEqual(pull ? undefined : ['--host', '0.0.0.0', '--port', '8081']);
    expect(py.containers[0].volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }, { name: 'cache', mountPath: '/var/cache/stepflow' }]);
    expect(py.volumes.map((v: any) => Object.keys(v))).toEqual([['emptyDir', 'name'], ['emptyDir', 'name']]);
    expect(py.terminationGracePeriodSeconds).toBe(30);
  });

  test('NetworkPolicies: default deny, then exactly the flows StepFlow uses', () => {
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
    const byName = (n: string) => find(policies, 'NetworkPolicy', `${prefix}${n}`).spec;
    const sel = (c: string) => ({ matchLabels: { app: 'stepflow', component: c, environment: env, 'app.kubernetes.io/instance': `${prefix}stepflow` } });
    expect(byName('stepflow-default-deny')).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    expect(byName('stepflow-allow-dns').egress).toEqual([{
      to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
      ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
    }]);
    const core = byName('stepflow-core');
    expect(core.podSelector).toEqual(sel('core'));
    // The workers reach the core on 8080 in both generations: pull (0.13) and the blob API.
    const fromServers = { from: [{ podSelector: sel('python-sdk') }, { podSelector: sel('inference') }], ports: [{ protocol: 'TCP', port: 8080 }] };
    expect(core.ingress).toEqual(env === 'prod'
      ? [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }], ports: [{ protocol: 'TCP', port: 8080 }] }, fromServers]
      : [fromServers]);
    expect(core.egress).toEqual(pull ? undefined : [
      { to: [{ podSelector: sel('python-sdk') }], ports: [{ protocol: 'TCP', port: 8081 }] },
      { to: [{ podSelector: sel('inference') }], ports: [{ protocol: 'TCP', port: 8082 }] },
    ]);
    for (const [name, port] of [['stepflow-python-sdk', 8081], ['stepflow-inference', 8082]] as const) {
      const p = byName(name);
      expect(p.ingress).toEqual(pull ? undefined : [{ from: [{ podSelector: sel('core') }], ports: [{ protocol: 'TCP', port }] }]);
      expect(p.egress).toEqual([
        { to: [{ podSelector: sel('core') }], ports: [{ protocol: 'TCP', port: 8080 }] },
        { to: OUTSIDE_THE_CLUSTER, ports: [{ protocol: 'TCP', port: 443 }] },
      ]);
    }
  });

  test('images carry the generation\'s tag in prod, the dev tag in dev', () => {
    const tag = env === 'prod' ? CONTRACT.generations[generation].imageTag : CONTRACT.images.devTag;
    const registry = env === 'prod' ? 'registry\\.example\\.com/stepflow' : 'localhost:5000';
    for (const c of containers(objects)) expect(c.image).toMatch(new RegExp(`^${registry}/stepflow-[a-z-]+:${tag.replace(/\./g, '\\.')}$`));
  });
});

describe('StepFlow 0.13: workers reach the core pod that owns their task', () => {
  const objects = synth(DEV_PROPS);
  test('the core advertises its own pod DNS name, defined after the id it expands', () => {
    const env = find(objects, 'StatefulSet', 'dev-stepflow-core').spec.template.spec.containers[0].env;
    const names = env.map((e: any) => e.name);
    expect(env).toContainEqual({ name: 'STEPFLOW_ORCHESTRATOR_URL', value: '$(STEPFLOW_ORCHESTRATOR_ID).dev-stepflow-core-headless.stepflow-dev.svc:8080' });
    expect(names.indexOf('STEPFLOW_ORCHESTRATOR_ID')).toBeLessThan(names.indexOf('STEPFLOW_ORCHESTRATOR_URL'));
    expect(find(objects, 'Service', 'dev-stepflow-core-headless').spec.ports).toEqual([{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }]);
  });
  test('workers pull from their queue with the concurrency, grace and heartbeat the kit sets', () => {
    for (const [name, queue] of [['dev-stepflow-python-sdk', 'python'], ['dev-stepflow-inference', 'inference']]) {
      const w = workloads(objects).find((o) => o.metadata.name === name).spec.template.spec;
      expect(w.containers[0].env).toEqual(expect.arrayContaining([
        { name: 'STEPFLOW_TRANSPORT', value: 'grpc' },
        { name: 'STEPFLOW_TASKS_URL', value: 'dev-stepflow-core.stepflow-dev.svc:8080' },
        { name: 'STEPFLOW_QUEUE_NAME', value: queue },
        { name: 'STEPFLOW_MAX_CONCURRENT', value: '4' },
        { name: 'STEPFLOW_SHUTDOWN_GRACE_SECS', value: '10' },
        { name: 'STEPFLOW_KIT_HEARTBEAT_FILE', value: '/tmp/stepflow-worker.heartbeat' },
        { name: 'STEPFLOW_KIT_READY_FILE', value: '/tmp/stepflow-worker.ready' },
      ]));
      expect(w.terminationGracePeriodSeconds).toBeGreaterThan(10);
      expect(w.containers[0].readinessProbe.timeoutSeconds).toBe(5);
    }
    expect(objects.filter((o) => o.kind === 'Service').map((o) => o.metadata.name)).toEqual(['dev-stepflow-inference-headless', 'dev-stepflow-core', 'dev-stepflow-core-headless']);
    expect(find(objects, 'StatefulSet', 'dev-stepflow-core').spec.template.spec.initContainers).toBeUndefined();
  });
  test('worker props reach the env', () => {
    const objects2 = synth({ ...DEV_PROPS, pythonSdk: { maxConcurrentTasks: 16, shutdownGraceSeconds: 50, terminationGracePeriodSeconds: 70 } });
    const py = find(objects2, 'Deployment', 'dev-stepflow-python-sdk').spec.template.spec;
    expect(py.containers[0].env).toEqual(expect.arrayContaining([{ name: 'STEPFLOW_MAX_CONCURRENT', value: '16' }, { name: 'STEPFLOW_SHUTDOWN_GRACE_SECS', value: '50' }]));
    expect(py.terminationGracePeriodSeconds).toBe(70);
  });
});

describe('StepFlow 0.11: the core waits for its servers; one server pod each', () => {
  const objects = synth(prod(PUSH));
  test('the init container polls every server health URL and is bounded like the others', () => {
    const init = find(objects, 'StatefulSet', 'stepflow-core').spec.template.spec.initContainers[0];
    expect(init.args).toEqual(['http://stepflow-python-sdk.stepflow.svc:8081/health', 'http://stepflow-inference.stepflow.svc:8082/health']);
    expect(init.resources.limits['ephemeral-storage']).toBe('64Mi');
  });
  test('the prod preset\'s scale-out is dropped: replicas above one would take no work', () => {
    expect(find(objects, 'Deployment', 'stepflow-python-sdk').spec.replicas).toBe(1);
    expect(find(objects, 'StatefulSet', 'stepflow-inference').spec.replicas).toBe(1);
    expect(objects.filter((o) => o.kind === 'HorizontalPodAutoscaler')).toEqual([]);
  });
});

describe('dev specifics', () => {
  const objects = synth(DEV_PROPS);
  test('one replica each, debug logs, dev images, no HPA/PDB/Ingress', () => {
    for (const w of workloads(objects)) {
      expect(w.spec.replicas).toBe(1);
      expect(w.spec.template.spec.topologySpreadConstraints).toBeUndefined();
    }
    const core = find(objects, 'StatefulSet', 'dev-stepflow-core').spec.template.spec.containers[0];
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
  test('the HPA owns python-sdk, which then carries no replicas; nothing scales the core', () => {
    const py = find(objects, 'HorizontalPodAutoscaler', 'stepflow-python-sdk').spec;
    expect([py.minReplicas, py.maxReplicas]).toEqual([5, 20]);
    expect(py.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'stepflow-python-sdk' });
    expect(py.behavior.scaleDown.stabilizationWindowSeconds).toBe(300);
    expect(py.metrics.map((m: any) => [m.resource.name, m.resource.target])).toEqual([
      ['cpu', { type: 'Utilization', averageUtilization: 70 }], ['memory', { type: 'Utilization', averageUtilization: 80 }]]);
    expect(objects.filter((o) => o.kind === 'HorizontalPodAutoscaler').map((o) => o.metadata.name)).toEqual(['stepflow-python-sdk']);
    expect(find(objects, 'Deployment', 'stepflow-python-sdk').spec.replicas).toBeUndefined();
    expect(find(objects, 'StatefulSet', 'stepflow-inference').spec.replicas).toBe(2);
  });
  test('replicas spread across nodes, selected by their own labels; the single core is not spread', () => {
    for (const w of workloads(objects)) {
      const spread = w.spec.template.spec.topologySpreadConstraints;
      if (w.metadata.labels.component === 'core') expect(spread).toBeUndefined();
      else expect(spread).toEqual([{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: w.spec.selector }]);
    }
  });
  test('PDBs allow one eviction at a time, as an integer', () => {
    expect(objects.filter((o) => o.kind === 'PodDisruptionBudget').map((o) => o.metadata.name)).toEqual(['stepflow-python-sdk', 'stepflow-inference']);
    for (const name of ['stepflow-python-sdk', 'stepflow-inference']) {
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
  test('TLS Ingress through cert-manager to the core Service, behind external authentication', () => {
    const ing = find(objects, 'Ingress', 'stepflow');
    expect(ing.metadata.annotations).toEqual({
      'cert-manager.io/cluster-issuer': 'letsencrypt-prod',
      'nginx.ingress.kubernetes.io/auth-url': 'https://auth.example.com/oauth2/auth',
      'nginx.ingress.kubernetes.io/auth-signin': 'https://auth.example.com/oauth2/start?rd=$escaped_request_uri',
      'nginx.ingress.kubernetes.io/auth-response-headers': 'X-Auth-Request-User,X-Auth-Request-Email',
    });
    expect(ing.spec.ingressClassName).toBe('nginx');
    expect(ing.spec.tls).toEqual([{ hosts: ['stepflow.example.com'], secretName: 'stepflow-tls' }]);
    expect(ing.spec.rules[0].http.paths[0].backend).toEqual({ service: { name: 'stepflow-core', port: { name: 'http' } } });
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
    const objects = synth({ environment: staging, ingress: false });
    expect(find(objects, 'StatefulSet', 'stg-stepflow-core').metadata.labels.environment).toBe('staging');
    expect(StepFlowEnvironment.PROD.settings.namespace).toBe('stepflow');
  });
  test('a config change changes the checksum annotation', () => {
    const checksum = (objects: any[]) => find(objects, 'StatefulSet', 'dev-stepflow-core').spec.template.metadata.annotations[CONFIG_CHECKSUM_ANNOTATION];
    expect(checksum(synth(DEV_PROPS))).not.toBe(checksum(synth({ ...DEV_PROPS, namespace: 'other' })));
  });
});
