import { Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-30';
import { parse } from 'yaml';
import { IngressAuthentication, StepFlowChart, StepFlowChartProps, StepFlowEnvironment, StepFlowGeneration, StepFlowWorker, WorkerOverrides } from '../src';
import { DEV_PROPS, PROD_PROPS, find, workloads } from './helpers';

// A team's own component servers, installations that stay apart, pod settings and
// cdk8s-plus interop: GIVEN the props a platform team writes, THEN the exact fields.

const TEAM: WorkerOverrides = {
  name: 'team-tools',
  image: 'registry.example.com/team/tools:1.2.0',
  routePrefix: 'team',
  command: ['python3', '-m', 'stepflow_kit_worker'],
  env: { STEPFLOW_KIT_SERVER: 'team_tools:server' },
};

const pod = (w: any) => w.spec.template.spec;
const byComponent = (objects: any[], c: string) => workloads(objects).find((w) => w.metadata.labels.component === c);
const configOf = (objects: any[]) => parse(find(objects, 'ConfigMap', objects.find((o) => o.kind === 'ConfigMap').metadata.name).data['stepflow-config.yml']);

function chartWith(props: Partial<StepFlowChartProps>, base: StepFlowChartProps = DEV_PROPS) {
  const app = Testing.app();
  const chart = new StepFlowChart(app, 'test', { ...base, ...props });
  return { app, chart, objects: () => Testing.synth(chart) };
}

function errorOf(build: () => { objects: () => any[] }): string {
  try {
    build().objects();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected synth to fail');
}

describe("a team's own worker", () => {
  test.each([StepFlowGeneration.GRPC_PULL, StepFlowGeneration.HTTP_PUSH])('core and a team worker alone (gen %s): routed, secured, probed like the built-ins', (generation) => {
    const objects = chartWith({ generation, pythonSdk: false, inference: false, workers: [TEAM] }).objects();
    const pull = generation === StepFlowGeneration.GRPC_PULL;
    expect(workloads(objects).map((w) => w.metadata.name).sort()).toEqual(['dev-stepflow-core', 'dev-team-tools']);
    const config = configOf(objects);
    expect(config.plugins.team).toEqual(pull ? { type: 'grpc', queueName: 'team' } : { type: 'stepflow', url: 'http://dev-team-tools.stepflow-dev.svc:8081' });
    expect(config.routes[pull ? '/team' : '/team/{*component}']).toEqual([{ plugin: 'team' }]);
    expect(Object.keys(config.plugins).sort()).toEqual(['builtin', 'team']);

    const w = byComponent(objects, 'team-tools');
    expect(w.kind).toBe('Deployment');
    expect(w.spec.selector.matchLabels).toEqual({ 'app': 'stepflow', 'component': 'team-tools', 'environment': 'dev', 'app.kubernetes.io/instance': 'dev-stepflow' });
    expect(w.metadata.labels['app.kubernetes.io/version']).toBe('1.2.0');
    const c = pod(w).containers[0];
    expect(c.image).toBe('registry.example.com/team/tools:1.2.0');
    expect(c.command).toEqual(['python3', '-m', 'stepflow_kit_worker']);
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, runAsNonRoot: true,
      runAsUser: 65532, runAsGroup: 65532, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]));
    expect(env.STEPFLOW_KIT_SERVER).toBe('team_tools:server');
    if (pull) {
      expect(env).toMatchObject({ STEPFLOW_TRANSPORT: 'grpc', STEPFLOW_QUEUE_NAME: 'team', STEPFLOW_TASKS_URL: 'dev-stepflow-core.stepflow-dev.svc:8080', STEPFLOW_KIT_HEARTBEAT_FILE: '/tmp/stepflow-worker.heartbeat' });
      expect(c.args).toBeUndefined();
      // an image on the kit's loop: ready on its own state (the ready file), started once the core answers
      expect(env.STEPFLOW_KIT_READY_FILE).toBe('/tmp/stepflow-worker.ready');
      expect(c.readinessProbe.exec.command[2]).toBe("import os, sys, time; sys.exit(0 if time.time() - os.stat(os.environ['STEPFLOW_KIT_READY_FILE']).st_mtime < 15 else 1)");
      expect(c.startupProbe.exec.command.join(' ')).toContain('STEPFLOW_TASKS_URL');
      expect(c.livenessProbe.exec.command.join(' ')).toContain('STEPFLOW_KIT_HEARTBEAT_FILE');
    } else {
      expect(c.args).toEqual(['--host', '0.0.0.0', '--port', '8081']);
      expect(c.readinessProbe.httpGet).toEqual({ path: '/health', port: 'http', scheme: 'HTTP' });
      const svc = find(objects, 'Service', 'dev-team-tools');
      expect(svc.spec).toMatchObject({ selector: w.spec.selector.matchLabels, sessionAffinity: 'ClientIP', ports: [{ name: 'http', port: 8081, targetPort: 'http', protocol: 'TCP' }] });
      const wait = pod(byComponent(objects, 'core')).initContainers[0];
      expect(wait.args).toEqual(['http://dev-team-tools.stepflow-dev.svc:8081/health']);
    }
    // NetworkPolicies: the worker reaches the core (and HTTPS out); the core accepts it (0.11: calls it).
    const own = find(objects, 'NetworkPolicy', 'dev-team-tools').spec;
    expect(own.podSelector).toEqual(w.spec.selector);
    expect(own.egress[0]).toEqual({ to: [{ podSelector: byComponent(objects, 'core').spec.selector }], ports: [{ protocol: 'TCP', port: 8080 }] });
    const core = find(objects, 'NetworkPolicy', 'dev-stepflow-core').spec;
    expect(core.ingress).toEqual([{ from: [{ podSelector: w.spec.selector }], ports: [{ protocol: 'TCP', port: 8080 }] }]);
    expect(core.egress).toEqual(pull ? undefined : [{ to: [{ podSelector: w.spec.selector }], ports: [{ protocol: 'TCP', port: 8081 }] }]);
  });

  test('addWorker after construction joins the config and the policies; its own probes, user and scaling apply', () => {
    const { chart, objects } = chartWith({}, PROD_PROPS);
    const worker = chart.addWorker({
      ...TEAM,
      autoscaling: { minReplicas: 2, maxReplicas: 6 },
      disruptionBudget: { maxUnavailable: 1 },
      runAsUser: 10001,
      probes: { liveness: false, readiness: { command: ['/bin/team-ready'], periodSeconds: 7 } },
    });
    expect(worker).toBeInstanceOf(StepFlowWorker);
    expect(chart.workers).toEqual([worker]);
    const out = objects();
    expect(Object.keys(configOf(out).plugins)).toEqual(expect.arrayContaining(['python', 'inference', 'team']));
    const w = find(out, 'Deployment', 'team-tools');
    expect(w.spec.replicas).toBeUndefined();
    expect(find(out, 'HorizontalPodAutoscaler', 'team-tools').spec).toMatchObject({ minReplicas: 2, maxReplicas: 6 });
    expect(find(out, 'PodDisruptionBudget', 'team-tools').spec.selector).toEqual(w.spec.selector);
    const c = pod(w).containers[0];
    expect(c.livenessProbe).toBeUndefined();
    expect(c.readinessProbe).toMatchObject({ exec: { command: ['/bin/team-ready'] }, periodSeconds: 7 });
    // without the kit's loop (liveness: false) nothing writes the ready file: the default readiness asks the core
    const plain = chart.addWorker({ ...TEAM, name: 'team-plain', routePrefix: 'plain', probes: { liveness: false } });
    const p = pod(find(objects(), 'Deployment', 'team-plain')).containers[0];
    expect(plain.routePrefix).toBe('plain');
    expect(p.livenessProbe).toBeUndefined();
    expect(p.readinessProbe.exec.command).toEqual(p.startupProbe.exec.command);
    expect(p.readinessProbe.exec.command[2]).toBe('import os, urllib.request; urllib.request.urlopen("http://" + os.environ["STEPFLOW_TASKS_URL"] + "/api/v1/health", timeout=3)');
    expect(c.securityContext).toMatchObject({ runAsUser: 10001, runAsGroup: 10001 });
    expect(pod(w).topologySpreadConstraints).toEqual([{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: w.spec.selector }]);
    expect(find(out, 'NetworkPolicy', 'stepflow-core').spec.ingress.at(-1).from).toContainEqual({ podSelector: w.spec.selector });
  });

  test.each<[string, Partial<WorkerOverrides>, RegExp]>([
    ['no image', { image: undefined }, /\[test\/Worker-team-tools\] prop 'image' is undefined: a team's own worker names its image/],
    ['a bad name', { name: 'Team_Tools' }, /prop 'name' is "Team_Tools": expected a DNS-1035 label/],
    ['a built-in name', { name: 'inference' }, /prop 'name' is "inference": is a built-in component's/],
    ['a route prefix with a slash', { routePrefix: '/team' }, /prop 'routePrefix' is "\/team": expected one path segment/],
    ['the python-sdk route', { routePrefix: 'python' }, /\[test\/Core\] prop 'componentServers' is "team-tools": route prefix '\/python' is already served by python-sdk/],
    ['no command', { command: [] }, /prop 'command' is \[\]: expected a non-empty list/],
    ['a privileged port', { port: 80 }, /prop 'port' is 80: expected an integer from 1024 to 65535/],
    ['an HTTP probe on a pull worker', { probes: { readiness: { httpPath: '/ready' } } }, /prop 'probes.readiness.httpPath' is "\/ready": a gRPC-pull worker listens on no port: use command/],
  ])('%s is rejected at synth with the prop and what is allowed', (_case, change, message) => {
    expect(errorOf(() => chartWith({ workers: [{ ...TEAM, ...change } as WorkerOverrides] }))).toMatch(message);
  });

  test('two workers of one name are rejected', () => {
    expect(errorOf(() => chartWith({ workers: [TEAM, { ...TEAM, routePrefix: 'team2' }] }))).toMatch(/prop 'workers' is "team-tools": two workers have this name/);
  });
});

describe('installations stay apart', () => {
  function twoInOneNamespace(secondProps: Partial<StepFlowChartProps> = { namePrefix: 'staging-', createNamespace: false }) {
    const app = Testing.app();
    const a = new StepFlowChart(app, 'a', { ...DEV_PROPS, workers: [TEAM] });
    const b = new StepFlowChart(app, 'b', { ...DEV_PROPS, ...secondProps, workers: [TEAM] });
    return { app, a, b };
  }

  test("every Service, PDB, workload and component policy selects only its own installation's pods", () => {
    const { a, b } = twoInOneNamespace({ namePrefix: 'staging-', createNamespace: false, pythonSdk: { disruptionBudget: { maxUnavailable: 1 } } });
    const objects = [...Testing.synth(a), ...Testing.synth(b)];
    expect(objects.filter((o) => o.kind === 'Namespace')).toHaveLength(1);
    const pods = workloads(objects).map((w) => ({ owner: w.metadata.name, labels: w.spec.template.metadata.labels }));
    const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
    const selectors = objects.flatMap((o) => {
      if (o.kind === 'Service') return [{ o, sel: o.spec.selector }];
      if (o.kind === 'PodDisruptionBudget' || o.kind === 'Deployment' || o.kind === 'StatefulSet') return [{ o, sel: o.spec.selector.matchLabels }];
      if (o.kind === 'NetworkPolicy' && o.spec.podSelector.matchLabels?.component) return [{ o, sel: o.spec.podSelector.matchLabels }];
      return [];
    });
    expect(selectors.length).toBeGreaterThan(20);
    for (const { o, sel } of selectors) {
      const selected = pods.filter((p) => matches(sel, p.labels)).map((p) => p.owner);
      const prefix = o.metadata.name.startsWith('staging-') ? 'staging-' : 'dev-';
      expect({ object: `${o.kind}/${o.metadata.name}`, selected }).toEqual({ object: `${o.kind}/${o.metadata.name}`, selected: [expect.stringMatching(new RegExp(`^${prefix}`))] });
    }
  });

  test('a chart added after a first synth is checked against the objects that exist then', () => {
    const app = Testing.app();
    const a = new StepFlowChart(app, 'a', DEV_PROPS);
    expect(() => Testing.synth(a)).not.toThrow();
    new StepFlowChart(app, 'b', { ...DEV_PROPS, createNamespace: false });
    expect(() => app.synth()).toThrow(/\[b\] prop 'namePrefix' is "dev-": StatefulSet.apps stepflow-dev\/dev-stepflow-core is emitted twice/);
  });

  test('the same namespace twice with one Namespace each, or one prefix twice, is rejected at synth', () => {
    const bothNamespaces = twoInOneNamespace({ namePrefix: 'staging-' });
    expect(() => bothNamespaces.app.synth()).toThrow(/\[b\] prop 'createNamespace' is true: Namespace.core stepflow-dev is emitted twice, by a\/Namespace\/Resource and b\/Namespace\/Resource; .*createNamespace: false/);
    const samePrefix = twoInOneNamespace({ createNamespace: false });
    expect(() => samePrefix.app.synth()).toThrow(/\[b\] prop 'namePrefix' is "dev-": StatefulSet.apps stepflow-dev\/dev-stepflow-core is emitted twice/);
  });
});

describe('pod and metadata settings', () => {
  const app = Testing.app();
  const secret = kplus.Secret.fromSecretName(app, 'DbSecret', 'team-db');
  const settings = kplus.ConfigMap.fromConfigMapName(app, 'Settings', 'team-settings');
  const chart = new StepFlowChart(app, 'prod', {
    ...PROD_PROPS,
    imagePullSecrets: [kplus.Secret.fromSecretName(app, 'Pull', 'regcred'), 'other-cred'],
    nodeSelector: { pool: 'stepflow' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'stepflow', effect: 'NoSchedule' }],
    priorityClassName: 'stepflow-normal',
    labels: { team: 'ml', cost: 'c-42' },
    annotations: { 'team.example.com/owner': 'ml-platform' },
    env: { DB_PASSWORD: kplus.EnvValue.fromSecretValue({ secret, key: 'password' }) },
    envFrom: [{ configMap: settings, prefix: 'TEAM_' }],
    volumes: [{ volume: { name: 'team-ca', secret: { secretName: 'team-ca', defaultMode: 0o444 } }, mountPath: '/etc/team/ca', readOnly: true }],
    inference: {
      gpu: { resourceName: 'nvidia.com/mig-1g.10gb', nodeSelector: { 'nvidia.com/mig.capable': 'true' } },
      nodeSelector: { pool: 'gpu' },
      labels: { cost: 'c-99' },
      imagePullSecrets: ['other-cred'],
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] } } },
      topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' }],
    },
    pythonSdk: { serviceAccount: kplus.ServiceAccount.fromServiceAccountName(app, 'TeamSa', 'team-identity'), imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT },
  });
  const objects = Testing.synth(chart);
  const text = JSON.stringify(objects);

  test('labels and annotations on every object and pod template, never in a selector; the component wins', () => {
    for (const o of objects) {
      expect({ o: `${o.kind}/${o.metadata.name}`, team: o.metadata.labels?.team, note: o.metadata.annotations?.['team.example.com/owner'] })
        .toEqual({ o: `${o.kind}/${o.metadata.name}`, team: 'ml', note: 'ml-platform' });
    }
    for (const w of workloads(objects)) {
      expect(w.spec.template.metadata.labels.team).toBe('ml');
      expect(w.spec.template.metadata.annotations['team.example.com/owner']).toBe('ml-platform');
      expect(Object.keys(w.spec.selector.matchLabels).sort()).toEqual(['app', 'app.kubernetes.io/instance', 'component', 'environment']);
    }
    expect(byComponent(objects, 'inference').spec.template.metadata.labels.cost).toBe('c-99');
    expect(byComponent(objects, 'core').spec.template.metadata.labels.cost).toBe('c-42');
    // Claim templates are immutable: the team's labels stay out of them.
    expect(byComponent(objects, 'core').spec.volumeClaimTemplates[0].metadata.labels.team).toBeUndefined();
  });

  test('a Secret-backed variable is a reference, never a value; envFrom and a Secret volume reach every component', () => {
    expect(text).not.toMatch(/"password"\s*:/);
    for (const w of workloads(objects)) {
      const c = pod(w).containers[0];
      expect(c.env).toContainEqual({ name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'team-db', key: 'password' } } });
      expect(c.envFrom).toEqual([{ prefix: 'TEAM_', configMapRef: { name: 'team-settings' } }]);
      expect(pod(w).volumes).toContainEqual({ name: 'team-ca', secret: { secretName: 'team-ca', defaultMode: 0o444 } });
      expect(c.volumeMounts).toContainEqual({ name: 'team-ca', mountPath: '/etc/team/ca', readOnly: true });
    }
  });

  test('pull secrets, priority, node selectors and tolerations merge; the GPU ones join the team\'s; MIG is requested', () => {
    for (const w of workloads(objects)) {
      expect(pod(w).imagePullSecrets).toEqual([{ name: 'regcred' }, { name: 'other-cred' }]);
      expect(pod(w).priorityClassName).toBe('stepflow-normal');
    }
    const core = pod(byComponent(objects, 'core'));
    expect(core.nodeSelector).toEqual({ pool: 'stepflow' });
    expect(core.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'stepflow', effect: 'NoSchedule' }]);
    const inf = pod(byComponent(objects, 'inference'));
    expect(inf.nodeSelector).toEqual({ 'pool': 'gpu', 'nvidia.com/mig.capable': 'true' });
    expect(inf.tolerations).toEqual([
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
      { key: 'dedicated', operator: 'Equal', value: 'stepflow', effect: 'NoSchedule' },
    ]);
    const r = inf.containers[0].resources;
    expect(r.requests['nvidia.com/mig-1g.10gb']).toBe(1);
    expect(r.limits['nvidia.com/mig-1g.10gb']).toBe(1);
    expect(r.limits['nvidia.com/gpu']).toBeUndefined();
    expect(inf.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key).toBe('zone');
    const sel = byComponent(objects, 'inference').spec.selector;
    expect(inf.topologySpreadConstraints).toEqual([
      { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: sel },
      { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: sel },
    ]);
  });

  test("a team's ServiceAccount replaces the component's own; cdk8s-plus ImagePullPolicy is taken", () => {
    const py = byComponent(objects, 'python-sdk');
    expect(pod(py).serviceAccountName).toBe('team-identity');
    expect(pod(py).automountServiceAccountToken).toBe(false);
    expect(objects.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name)).not.toContain('stepflow-python-sdk');
    expect(pod(py).containers[0].imagePullPolicy).toBe('IfNotPresent');
  });

  test.each<[string, Partial<StepFlowChartProps>, RegExp]>([
    ['a reserved label', { labels: { component: 'x' } }, /\[test\] prop 'labels' is "component": is a label the kit sets itself/],
    ['a toleration with a bad effect', { tolerations: [{ key: 'a', operator: 'Exists', effect: 'NoRun' }] }, /prop 'tolerations\[0\].effect' is "NoRun": expected one of 'NoSchedule', 'PreferNoSchedule', 'NoExecute'/],
    ['an Exists toleration with a value', { tolerations: [{ key: 'a', operator: 'Exists', value: 'v' }] }, /prop 'tolerations\[0\].value' is "v": operator 'Exists' takes no value/],
    ['envFrom naming both', { envFrom: [{ secret: 'a', configMap: 'b' }] }, /prop 'envFrom\[0\]' is .*give exactly one of secret, configMap/],
    ['a relative mount path', { volumes: [{ volume: { name: 'x', emptyDir: {} }, mountPath: 'etc/x' }] }, /prop 'volumes\[0\].mountPath' is "etc\/x": expected an absolute path/],
    ['a volume named like the kit\'s', { volumes: [{ volume: { name: 'tmp', emptyDir: {} }, mountPath: '/team' }] }, /prop 'volumes' is "tmp": the pod already has a volume named "tmp"/],
    ['a mount over the kit\'s', { volumes: [{ volume: { name: 'team', emptyDir: {} }, mountPath: '/tmp' }] }, /prop 'volumes' is "\/tmp": the pod already has a mount at "\/tmp"/],
    ['an env value that is no string', { env: { A: 1 as unknown as string } }, /prop 'env.A' is 1: expected a string or a cdk8s-plus EnvValue/],
    ['a bad pull secret name', { imagePullSecrets: ['Reg_Cred'] }, /prop 'imagePullSecrets\[0\]' is "Reg_Cred": expected the name of a Secret/],
  ])('%s is rejected at synth', (_case, change, message) => {
    expect(errorOf(() => chartWith(change))).toMatch(message);
  });

  test('a GPU resource name that is no extended resource is rejected', () => {
    expect(errorOf(() => chartWith({ inference: { gpu: { resourceName: 'gpu' } } }, PROD_PROPS)))
      .toMatch(/\[test\/Inference\] prop 'gpu.resourceName' is "gpu": expected an extended resource name <domain>\/<name>/);
  });
});

describe('cdk8s-plus interop', () => {
  test("a team's own kplus.NetworkPolicy selects a component and admits another as a peer", () => {
    const app = Testing.app();
    const chart = new StepFlowChart(app, 'dev', { ...DEV_PROPS, workers: [TEAM] });
    const policy = new kplus.NetworkPolicy(chart, 'TeamMetrics', { selector: chart.workers[0], metadata: { namespace: chart.core.namespace } });
    policy.addIngressRule(chart.core, [kplus.NetworkPolicyPort.tcp(9090)]);
    const team = find(Testing.synth(chart), 'NetworkPolicy', policy.name);
    const own = { 'app': 'stepflow', 'component': 'team-tools', 'environment': 'dev', 'app.kubernetes.io/instance': 'dev-stepflow' };
    expect(team.spec.podSelector).toEqual({ matchLabels: own });
    expect(team.spec.ingress).toEqual([{
      from: [{ podSelector: { matchLabels: { ...chart.core.selector } }, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'stepflow-dev' } } }],
      ports: [{ port: 9090, protocol: 'TCP' }],
    }]);
  });

  test('scheduling.separate keeps a kplus Deployment off the nodes of a component', () => {
    const app = Testing.app();
    const chart = new StepFlowChart(app, 'prod', PROD_PROPS);
    const batch = new kplus.Deployment(chart, 'Batch', { containers: [{ image: 'registry.example.com/team/batch:1.0.0' }] });
    batch.scheduling.separate(chart.inference!);
    const out = find(Testing.synth(chart), 'Deployment', batch.name);
    expect(out.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution).toEqual([{
      labelSelector: { matchLabels: { ...chart.inference!.selector } },
      namespaces: ['stepflow'],
      topologyKey: 'kubernetes.io/hostname',
    }]);
  });

  test('the prod environment still needs an explicit exposure with a worker only', () => {
    const env = StepFlowEnvironment.PROD;
    expect(errorOf(() => chartWith({ environment: env, ingress: undefined, pythonSdk: false, inference: false, workers: [TEAM] }, PROD_PROPS))).toMatch(/prop 'ingress' is undefined/);
    expect(() => chartWith({ ingress: { host: 'a.example.com', authentication: IngressAuthentication.external({ url: 'https://auth.example.com/verify' }) } }, PROD_PROPS).objects()).not.toThrow();
  });
});
