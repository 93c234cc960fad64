// Exact assertions on what main.ts wrote (read back from the YAML files, not from the
// constructs). One PASS:/FAIL: line per assertion; exit 1 when anything failed.
//
// usage: node lib/assert.js DIR
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Yaml } from 'cdk8s';
import { FACTS } from './facts';

type Obj = Record<string, any>;
type Labels = Record<string, string>;

const dir = process.argv[2];
if (process.argv.length !== 3 || !dir || dir.startsWith('-')) {
  process.stderr.write('usage: node lib/assert.js DIR\n');
  process.exit(2);
}

let failed = 0;
function check(what: string, problems: string[], detail = ''): void {
  if (problems.length === 0) {
    console.log(`PASS: ${what}${detail ? ` (${detail})` : ''}`);
    return;
  }
  failed++;
  console.log(`FAIL: ${what}`);
  for (const p of problems.slice(0, 30)) console.log(`    ${p}`);
  if (problems.length > 30) console.log(`    ... ${problems.length - 30} more`);
}
const fmt = (x: unknown) => JSON.stringify(x);
// JSON with sorted keys: equal values print equally.
const canon = (x: unknown): string => JSON.stringify(x, (_k, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v));
// cdk8s reads YAML from files only: the StepFlow config goes through a temp file.
function parseYaml(text: string): Obj {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stepflow-config-'));
  try {
    fs.writeFileSync(path.join(tmp, 'c.yaml'), text);
    return (Yaml.load(path.join(tmp, 'c.yaml'))[0] ?? {}) as Obj;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
const ref = (o: Obj) => `${o.kind}/${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`;

// ------------------------------------------------------------------ input --
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
const objects: Obj[] = files.flatMap((f) => (Yaml.load(path.join(dir, f)) as Obj[]).filter((o) => o != null).map((o) => ({ ...o, file: f })));
check('output: the app wrote its files', objects.length > 0 ? [] : [`no objects in ${dir}`], `${files.join(', ')}: ${objects.length} objects`);

const INSTANCE = 'app.kubernetes.io/instance';
const MANAGED = 'app.kubernetes.io/managed-by';
const WORKLOADS = ['Deployment', 'StatefulSet'];
const kit = objects.filter((o) => o.metadata?.labels?.[MANAGED] === 'stepflow-kit');
const own = objects.filter((o) => o.metadata?.labels?.[MANAGED] === FACTS.ownLabels[MANAGED]);
const ofInstance = (inst: string) => kit.filter((o) => o.metadata.labels[INSTANCE] === inst && o.kind !== 'Namespace');
const A = ofInstance(FACTS.a.instance);
const B = ofInstance(FACTS.b.instance);
const C = ofInstance(FACTS.c.instance);
const find = (list: Obj[], kind: string | string[], name: string) => list.find((o) => [kind].flat().includes(o.kind) && o.metadata.name === name);
const workloadOf = (list: Obj[], component: string) => list.find((o) => WORKLOADS.includes(o.kind) && o.metadata.labels.component === component);
const mainContainer = (w: Obj | undefined) => w?.spec.template.spec.containers[0] ?? {};
const envOf = (w: Obj | undefined) => new Map<string, Obj>((mainContainer(w).env ?? []).map((e: Obj) => [e.name, e]));

check('every object is the kit\'s or the team\'s own (managed-by)', objects.filter((o) => !kit.includes(o) && !own.includes(o)).map((o) => `${ref(o)} in ${o.file}: labels ${fmt(o.metadata?.labels)}`),
  `${kit.length} of the kit, ${own.length} of the team`);
const dup = new Map<string, string[]>();
for (const o of objects) {
  const k = `${o.apiVersion}|${ref(o)}`;
  dup.set(k, [...(dup.get(k) ?? []), o.file]);
}
check('no object twice in the output', [...dup].filter(([, f]) => f.length > 1).map(([k, f]) => `${k} in ${f.join(', ')}`));
const nsObjects = objects.filter((o) => o.kind === 'Namespace');
check('one Namespace for all installations', nsObjects.length === 1 && nsObjects[0].metadata.name === FACTS.namespace ? [] : [`Namespaces: ${nsObjects.map((o) => `${ref(o)} in ${o.file}`).join(', ') || 'none'}`]);
const CLUSTER_SCOPED = ['Namespace', 'PriorityClass'];
check('every namespaced object is in the shared namespace', objects.filter((o) => !CLUSTER_SCOPED.includes(o.kind) && o.metadata.namespace !== FACTS.namespace).map(ref));
check('the platform\'s PriorityClasses, once, in a chart of their own', objects.filter((o) => o.kind === 'PriorityClass' && o.file !== 'platform.yaml').map(ref).concat(
  Object.values(FACTS.priorityClasses).filter((pc) => !objects.some((o) => o.kind === 'PriorityClass' && o.metadata.name === pc.name && o.value === pc.value)).map((pc) => `PriorityClass ${pc.name} missing`)));

// ------------------------------------------------- no secret value anywhere --
const secretLeaks: string[] = [];
for (const o of objects) {
  if (o.kind === 'Secret') secretLeaks.push(`${ref(o)}: a Secret object in the output`);
  if (o.data !== undefined || o.stringData !== undefined) { if (o.kind !== 'ConfigMap') secretLeaks.push(`${ref(o)}: has data/stringData`); }
}
for (const w of objects.filter((o) => WORKLOADS.includes(o.kind))) {
  for (const c of [...(w.spec.template.spec.initContainers ?? []), ...w.spec.template.spec.containers]) {
    for (const e of c.env ?? []) {
      if (e.valueFrom?.secretKeyRef && e.value !== undefined) secretLeaks.push(`${ref(w)} ${c.name} env ${e.name}: both value and secretKeyRef`);
      if (/token|password|secret|key/i.test(e.name) && e.value !== undefined) secretLeaks.push(`${ref(w)} ${c.name} env ${e.name} has a literal value`);
    }
  }
}
check('no Secret, no data of one, no literal value for a secret-looking variable', secretLeaks);

// ---------------------------------------------- the team's own workers ------
const tools = workloadOf(A, FACTS.a.worker.name);
const evalW = workloadOf(A, FACTS.a.lateWorker.name);
const retrieval = workloadOf(B, FACTS.b.worker.name);
const toolsB = workloadOf(B, FACTS.a.worker.name);
check('the team workers are Deployments named <prefix><name>', [
  ...(tools?.kind === 'Deployment' && tools.metadata.name === `${FACTS.a.prefix}${FACTS.a.worker.name}` ? [] : [`workers: prop: ${tools ? ref(tools) : 'missing'}`]),
  ...(evalW?.kind === 'Deployment' && evalW.metadata.name === `${FACTS.a.prefix}${FACTS.a.lateWorker.name}` ? [] : [`addWorker: ${evalW ? ref(evalW) : 'missing'}`]),
  ...(retrieval?.kind === 'Deployment' && retrieval.metadata.name === `${FACTS.b.prefix}${FACTS.b.worker.name}` ? [] : [`team-b addWorker: ${retrieval ? ref(retrieval) : 'missing'}`]),
  ...(toolsB?.kind === 'Deployment' && toolsB.metadata.name === `${FACTS.b.prefix}${FACTS.a.worker.name}` ? [] : [`team-b's worker named like team-a's: ${toolsB ? ref(toolsB) : 'missing'}`]),
]);
for (const [w, image, queue, inst] of [
  [tools, FACTS.a.worker.image, FACTS.a.worker.routePrefix, FACTS.a],
  [evalW, FACTS.a.lateWorker.image, FACTS.a.lateWorker.queueName, FACTS.a],
  [retrieval, FACTS.b.worker.image, FACTS.b.worker.routePrefix, FACTS.b],
  [toolsB, FACTS.a.worker.image, FACTS.a.worker.routePrefix, FACTS.b],
] as const) {
  if (!w) continue;
  const c = mainContainer(w);
  const env = envOf(w);
  const problems: string[] = [];
  if (c.image !== image) problems.push(`image ${c.image}, want ${image}`);
  if (env.get('STEPFLOW_QUEUE_NAME')?.value !== queue) problems.push(`STEPFLOW_QUEUE_NAME ${fmt(env.get('STEPFLOW_QUEUE_NAME'))}, want ${queue}`);
  const tasks = String(env.get('STEPFLOW_TASKS_URL')?.value ?? '');
  if (!tasks.includes(`${inst.prefix}stepflow-core`)) problems.push(`STEPFLOW_TASKS_URL ${tasks} is not its own installation's core (${inst.prefix}stepflow-core)`);
  const other = inst === FACTS.a ? FACTS.b : FACTS.a;
  const texts = JSON.stringify(w.spec.template.spec);
  if (texts.includes(`${other.prefix}stepflow`)) problems.push(`names the other installation (${other.prefix}stepflow)`);
  const sc = c.securityContext ?? {};
  if (sc.runAsNonRoot !== true || sc.readOnlyRootFilesystem !== true || sc.allowPrivilegeEscalation !== false || fmt(sc.capabilities?.drop) !== '["ALL"]') problems.push(`securityContext ${fmt(sc)}`);
  if (!c.readinessProbe || !c.livenessProbe) problems.push('no readiness or liveness probe');
  check(`worker ${ref(w)}: image, queue, its own core, hardened, probed`, problems, `queue ${queue}, ${tasks}`);
}
check('team-b has neither python-sdk nor inference', B.filter((o) => ['python-sdk', 'inference'].includes(o.metadata.labels.component)).map(ref));

// the core ConfigMaps: every worker registered in its own installation's config
const configOf = (list: Obj[]) => list.find((o) => o.kind === 'ConfigMap' && o.metadata.labels.component === 'core');
for (const [list, inst, workers, absent] of [
  [A, FACTS.a, [FACTS.a.worker, FACTS.a.lateWorker], [FACTS.b.worker.routePrefix]],
  [B, FACTS.b, [FACTS.b.worker, FACTS.a.worker], [FACTS.a.lateWorker.routePrefix, 'python', 'inference']],
] as const) {
  const cm = configOf(list);
  const configText = String(Object.values(cm?.data ?? {}).find((v) => /plugins:/.test(String(v))) ?? '{}');
  const config = parseYaml(configText);
  const problems: string[] = [];
  if (!cm) problems.push(`no core ConfigMap of ${inst.instance}`);
  for (const w of workers) {
    if (!config?.plugins?.[w.routePrefix]) problems.push(`plugin ${w.routePrefix} missing (plugins: ${Object.keys(config?.plugins ?? {}).join(', ')})`);
    const routes = Object.entries(config?.routes ?? {}) as [string, Obj[]][];
    const route = routes.find(([prefix, rules]) => prefix.startsWith(`/${w.routePrefix}`) && rules.some((r) => r.plugin === w.routePrefix));
    if (!route) problems.push(`no route /${w.routePrefix}... to plugin ${w.routePrefix} (routes: ${fmt(config?.routes)})`);
    const queue = 'queueName' in w ? w.queueName : w.routePrefix;
    if (config?.plugins?.[w.routePrefix]?.queueName !== queue) problems.push(`plugin ${w.routePrefix}: ${fmt(config?.plugins?.[w.routePrefix])}, want queueName ${queue}`);
  }
  for (const p of absent) if (config?.plugins?.[p]) problems.push(`plugin ${p} registered, but not part of this installation`);
  check(`${cm ? ref(cm) : inst.instance}: the team's workers registered in the StepFlow config`, problems, `plugins ${Object.keys(config?.plugins ?? {}).join(', ')}`);
}

// team-c, StepFlow 0.11: the core calls its worker through the worker's own Service
{
  const problems: string[] = [];
  const w = workloadOf(C, FACTS.a.worker.name);
  const name = `${FACTS.c.prefix}${FACTS.a.worker.name}`;
  const svc = find(C, 'Service', name);
  const c = mainContainer(w);
  const url = `http://${name}.${FACTS.namespace}.svc:${FACTS.c.port}`;
  if (!w || w.metadata.name !== name) problems.push(`worker ${name} missing`);
  if (c.image !== FACTS.c.workerImage) problems.push(`image ${c.image}`);
  if (fmt(c.args) !== fmt(['--host', '0.0.0.0', '--port', String(FACTS.c.port)])) problems.push(`args ${fmt(c.args)}: want the 0.11 listen arguments on port ${FACTS.c.port}`);
  if (!(c.ports ?? []).some((p: Obj) => p.containerPort === FACTS.c.port)) problems.push(`containerPorts ${fmt(c.ports)}`);
  if (c.readinessProbe?.httpGet?.path !== '/health') problems.push(`readiness ${fmt(c.readinessProbe)}: want GET /health`);
  if (envOf(w).has('STEPFLOW_QUEUE_NAME')) problems.push('a 0.13 queue variable in a 0.11 worker');
  if (!svc) problems.push(`Service ${name} missing`);
  else {
    if (svc.spec.selector?.[INSTANCE] !== FACTS.c.instance) problems.push(`Service selector ${fmt(svc.spec.selector)}: no ${INSTANCE}=${FACTS.c.instance}`);
    if (svc.spec.sessionAffinity !== 'ClientIP') problems.push(`sessionAffinity ${svc.spec.sessionAffinity}`);
    if (!(svc.spec.ports ?? []).some((p: Obj) => p.port === FACTS.c.port)) problems.push(`Service ports ${fmt(svc.spec.ports)}`);
  }
  const config = parseYaml(String(Object.values(configOf(C)?.data ?? {}).find((v) => /plugins:/.test(String(v))) ?? '{}'));
  const plugin = config?.plugins?.[FACTS.a.worker.routePrefix];
  if (plugin?.url !== url) problems.push(`core config plugin ${FACTS.a.worker.routePrefix}: ${fmt(plugin)}, want url ${url}`);
  const otherTools = [...A, ...B].filter((o) => WORKLOADS.includes(o.kind) && o.metadata.labels.component === FACTS.a.worker.name);
  if (svc && otherTools.some((o) => Object.entries(svc.spec.selector ?? {}).every(([k, v]) => o.spec.template.metadata.labels[k] === v))) problems.push(`Service ${name} selects another installation's ${FACTS.a.worker.name} pods`);
  check(`team-c (0.11): ${name} on port ${FACTS.c.port}, its Service (ClientIP, own instance), the core's plugin URL`, problems, url);
}

// ------------------------------------- labels and annotations, never selectors --
function selectorsOf(o: Obj): [string, Labels][] {
  const out: [string, Labels][] = [];
  const ls = (where: string, sel: Obj | undefined) => { if (sel) out.push([where, { ...(sel.matchLabels ?? {}), ...Object.fromEntries((sel.matchExpressions ?? []).map((e: Obj) => [e.key, fmt(e.values ?? e.operator)])) }]); };
  if (o.kind === 'Service') out.push(['spec.selector', o.spec.selector ?? {}]);
  if (WORKLOADS.includes(o.kind)) {
    ls('spec.selector', o.spec.selector);
    const pod = o.spec.template.spec;
    (pod.topologySpreadConstraints ?? []).forEach((t: Obj, i: number) => ls(`topologySpreadConstraints[${i}].labelSelector`, t.labelSelector));
    for (const kind of ['podAffinity', 'podAntiAffinity']) {
      for (const mode of ['requiredDuringSchedulingIgnoredDuringExecution', 'preferredDuringSchedulingIgnoredDuringExecution']) {
        (pod.affinity?.[kind]?.[mode] ?? []).forEach((t: Obj, i: number) => ls(`${kind}.${mode}[${i}]`, (t.podAffinityTerm ?? t).labelSelector));
      }
    }
  }
  if (o.kind === 'PodDisruptionBudget') ls('spec.selector', o.spec.selector);
  if (o.kind === 'NetworkPolicy') {
    ls('spec.podSelector', o.spec.podSelector);
    for (const dirn of ['ingress', 'egress']) {
      // peers in the namespace itself (none or its own namespaceSelector); other namespaces' pods are not an installation's
      const local = (p: Obj) => !p.namespaceSelector || canon(p.namespaceSelector) === canon({ matchLabels: { 'kubernetes.io/metadata.name': o.metadata.namespace } });
      (o.spec[dirn] ?? []).forEach((r: Obj, i: number) => (r.from ?? r.to ?? []).forEach((p: Obj, j: number) => { if (local(p)) ls(`${dirn}[${i}].peers[${j}].podSelector`, p.podSelector); }));
    }
  }
  return out;
}
for (const [list, inst] of [[A, FACTS.a], [B, FACTS.b], [C, { ...FACTS.c, annotations: {} }]] as const) {
  const problems: string[] = [];
  const teamKeys = Object.keys(inst.labels);
  for (const o of list) {
    const l = o.metadata.labels ?? {};
    const an = o.metadata.annotations ?? {};
    for (const [k, v] of Object.entries(inst.labels)) if (l[k] !== v) problems.push(`${ref(o)}: label ${k}=${fmt(l[k])}, want ${v}`);
    for (const [k, v] of Object.entries(inst.annotations)) if (an[k] !== v) problems.push(`${ref(o)}: annotation ${k}=${fmt(an[k])}, want ${v}`);
    if (WORKLOADS.includes(o.kind)) {
      const t = o.spec.template.metadata ?? {};
      for (const [k, v] of Object.entries(inst.labels)) if (t.labels?.[k] !== v) problems.push(`${ref(o)} pod template: label ${k}=${fmt(t.labels?.[k])}`);
      for (const [k, v] of Object.entries(inst.annotations)) if (t.annotations?.[k] !== v) problems.push(`${ref(o)} pod template: annotation ${k}=${fmt(t.annotations?.[k])}`);
      for (const vct of o.spec.volumeClaimTemplates ?? []) for (const k of teamKeys) if (vct.metadata?.labels?.[k] !== undefined) problems.push(`${ref(o)} claim template ${vct.metadata.name}: team label ${k} (claim templates are immutable)`);
    }
    for (const [where, sel] of selectorsOf(o)) {
      for (const k of [...teamKeys, 'gpu-profile', 'worker-kind']) if (k in sel) problems.push(`${ref(o)} ${where}: team label ${k} in a selector`);
      if (sel[INSTANCE] !== inst.instance && Object.keys(sel).length > 0) problems.push(`${ref(o)} ${where}: ${INSTANCE}=${fmt(sel[INSTANCE])}, want ${inst.instance} (selects other installations' pods)`);
    }
  }
  check(`${inst.instance}: team labels and annotations on every object and pod template, none in a selector, every selector carries the instance`, problems, `${list.length} objects`);
}
{
  const inf = workloadOf(A, 'inference');
  const problems: string[] = [];
  if (inf?.spec.template.metadata.labels['gpu-profile'] !== '1g.10gb' || inf?.metadata.labels['gpu-profile'] !== '1g.10gb') problems.push(`inference: component label gpu-profile missing: ${fmt(inf?.metadata.labels)}`);
  if (A.filter((o) => o.metadata.labels.component !== 'inference').some((o) => o.metadata.labels['gpu-profile'])) problems.push('gpu-profile on objects of other components');
  if (B.some((o) => o.metadata.labels['worker-kind'] || o.metadata.annotations?.['team.example.com/owner'])) problems.push('team-a\'s worker label or annotation on team-b\'s objects');
  if (tools?.metadata.annotations?.['team.example.com/owner'] !== 'tools-squad' || tools?.spec.template.metadata.annotations?.['team.example.com/owner'] !== 'tools-squad') problems.push(`team-tools: own annotation missing: ${fmt(tools?.metadata.annotations)}`);
  if (tools?.metadata.labels['worker-kind'] !== 'tools') problems.push('team-tools: own label worker-kind missing');
  check('per-component labels and annotations beside the chart-wide ones, on their component only', problems);
}

// ---------------------------------------------------- pod settings ---------
const podSpec = (w: Obj | undefined) => w?.spec.template.spec ?? {};
const aWorkloads = A.filter((o) => WORKLOADS.includes(o.kind));
const bWorkloads = B.filter((o) => WORKLOADS.includes(o.kind));
{
  const problems: string[] = [];
  for (const w of aWorkloads) {
    const s = podSpec(w);
    const pulls = (s.imagePullSecrets ?? []).map((x: Obj) => x.name);
    if (fmt(pulls) !== fmt(['registry-mirror', FACTS.a.pullSecret])) problems.push(`${ref(w)}: imagePullSecrets ${fmt(pulls)} (a string and a kplus ISecret)`);
    if (s.nodeSelector?.[FACTS.pool.key] !== FACTS.pool.value) problems.push(`${ref(w)}: nodeSelector ${fmt(s.nodeSelector)}`);
    if (!(s.tolerations ?? []).some((t: Obj) => t.key === FACTS.pool.taint && t.value === FACTS.pool.value && t.effect === 'NoSchedule')) problems.push(`${ref(w)}: tolerations ${fmt(s.tolerations)}`);
    const pref = s.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.[0];
    if (pref?.weight !== 50 || pref?.preference?.matchExpressions?.[0]?.key !== 'topology.kubernetes.io/zone') problems.push(`${ref(w)}: affinity ${fmt(s.affinity)}`);
    const zone = (s.topologySpreadConstraints ?? []).find((t: Obj) => t.topologyKey === 'topology.kubernetes.io/zone');
    if (!zone || zone.maxSkew !== 1 || fmt(zone.labelSelector?.matchLabels) !== fmt(w.spec.selector.matchLabels)) problems.push(`${ref(w)}: zone spread ${fmt(zone)} does not select its own pods ${fmt(w.spec.selector.matchLabels)}`);
    const wantPriority = w === evalW ? FACTS.priorityClasses.batch.name : FACTS.a.priorityClass;
    if (s.priorityClassName !== wantPriority) problems.push(`${ref(w)}: priorityClassName ${s.priorityClassName}, want ${wantPriority}`);
    for (const c of [...(s.initContainers ?? []), ...s.containers]) if (c.imagePullPolicy !== 'Always') problems.push(`${ref(w)} ${c.name}: imagePullPolicy ${c.imagePullPolicy}`);
  }
  check('team-a: chart-wide pull secrets, node selector, toleration, affinity, zone spread, priority (own wins) on every workload', problems, `${aWorkloads.length} workloads`);
}
{
  const inf = workloadOf(A, 'inference');
  const s = podSpec(inf);
  const c = mainContainer(inf);
  const problems: string[] = [];
  if (!inf) problems.push('no inference workload in team-a');
  const res = FACTS.mig.resource;
  if (c.resources?.limits?.[res] === undefined || String(c.resources.limits[res]) !== String(c.resources?.requests?.[res] ?? c.resources.limits[res])) problems.push(`resources ${fmt(c.resources)}: want ${res} in limits (= requests)`);
  if (c.resources?.limits?.['nvidia.com/gpu'] !== undefined || c.resources?.requests?.['nvidia.com/gpu'] !== undefined) problems.push('also requests whole nvidia.com/gpu');
  const ns = s.nodeSelector ?? {};
  for (const [k, v] of [[FACTS.pool.key, FACTS.pool.value], [FACTS.mig.nodeLabel, FACTS.mig.nodeValue], ['node.example.com/gpu-tier', 'shared']]) if (ns[k] !== v) problems.push(`nodeSelector ${k}=${fmt(ns[k])}, want ${v} (chart's, own and GPU merged): ${fmt(ns)}`);
  const tol = s.tolerations ?? [];
  if (!tol.some((t: Obj) => t.key === FACTS.pool.taint)) problems.push(`the chart's toleration is missing: ${fmt(tol)}`);
  if (!tol.some((t: Obj) => t.key === 'node.example.com/gpu-tier' && t.operator === 'Exists')) problems.push(`its own toleration is missing: ${fmt(tol)}`);
  if (!tol.some((t: Obj) => String(t.key).startsWith('nvidia.com/'))) problems.push(`the GPU toleration is missing: ${fmt(tol)}`);
  if (s.runtimeClassName !== 'nvidia') problems.push(`runtimeClassName ${s.runtimeClassName}`);
  const hf = envOf(inf).get(FACTS.secretEnv.name);
  if (canon(hf) !== canon({ name: FACTS.secretEnv.name, valueFrom: { secretKeyRef: { name: FACTS.secretEnv.secret, key: FACTS.secretEnv.key } } })) problems.push(`env ${FACTS.secretEnv.name}: ${fmt(hf)}, want exactly a secretKeyRef ${FACTS.secretEnv.secret}/${FACTS.secretEnv.key}`);
  const ef = c.envFrom ?? [];
  if (!ef.some((e: Obj) => e.configMapRef?.name === FACTS.envFrom.configMap && e.prefix === FACTS.envFrom.prefix)) problems.push(`envFrom ${fmt(ef)}: want configMapRef ${FACTS.envFrom.configMap} prefix ${FACTS.envFrom.prefix}`);
  const vol = (s.volumes ?? []).find((v: Obj) => v.name === FACTS.secretVolume.name);
  const mount = (c.volumeMounts ?? []).find((m: Obj) => m.name === FACTS.secretVolume.name);
  if (vol?.secret?.secretName !== FACTS.secretVolume.secret) problems.push(`volume ${FACTS.secretVolume.name}: ${fmt(vol)}`);
  if (mount?.mountPath !== FACTS.secretVolume.mountPath || mount?.readOnly !== true) problems.push(`mount ${fmt(mount)}: want ${FACTS.secretVolume.mountPath} readOnly`);
  const others = aWorkloads.filter((w) => w !== inf);
  if (others.some((w) => envOf(w).has(FACTS.secretEnv.name) || (podSpec(w).volumes ?? []).some((v: Obj) => v.name === FACTS.secretVolume.name))) problems.push('the secret env or volume leaked to another component');
  check(`${inf ? ref(inf) : 'inference'}: MIG slice, merged node selector and tolerations, secretKeyRef env, envFrom ConfigMap, Secret volume as files`, problems, `${res}, nodeSelector ${fmt(ns)}`);
}
{
  const problems: string[] = [];
  const s = podSpec(retrieval);
  const c = mainContainer(retrieval);
  if (s.serviceAccountName !== FACTS.b.serviceAccount) problems.push(`serviceAccountName ${s.serviceAccountName}, want ${FACTS.b.serviceAccount}`);
  if (s.automountServiceAccountToken !== false) problems.push(`automountServiceAccountToken ${s.automountServiceAccountToken}`);
  if (B.some((o) => o.kind === 'ServiceAccount' && o.metadata.labels.component === FACTS.b.worker.name)) problems.push('the kit made a ServiceAccount of its own for the worker as well');
  if (!own.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === FACTS.b.serviceAccount)) problems.push('the team\'s own ServiceAccount is not in the output');
  if (fmt((s.imagePullSecrets ?? []).map((x: Obj) => x.name)) !== fmt([FACTS.b.pullSecret])) problems.push(`imagePullSecrets ${fmt(s.imagePullSecrets)}`);
  if (!(c.envFrom ?? []).some((e: Obj) => e.secretRef?.name === FACTS.b.envFromSecret)) problems.push(`envFrom ${fmt(c.envFrom)}: want secretRef ${FACTS.b.envFromSecret}`);
  if (envOf(retrieval).get('RETRIEVAL_TOP_K')?.value !== '8') problems.push('env RETRIEVAL_TOP_K missing');
  for (const w of bWorkloads) {
    if (podSpec(w).nodeSelector?.[FACTS.pool.key] !== FACTS.pool.value) problems.push(`${ref(w)}: nodeSelector ${fmt(podSpec(w).nodeSelector)}`);
    if (podSpec(w).priorityClassName !== undefined) problems.push(`${ref(w)}: priorityClassName ${podSpec(w).priorityClassName} (team-b sets none)`);
  }
  const evalSpec = podSpec(evalW);
  if (evalSpec.serviceAccountName !== FACTS.a.lateWorker.serviceAccount || evalSpec.automountServiceAccountToken !== false) problems.push(`team-eval: serviceAccountName ${evalSpec.serviceAccountName}, automount ${evalSpec.automountServiceAccountToken} (want ${FACTS.a.lateWorker.serviceAccount} by name, no token)`);
  if (A.some((o) => o.kind === 'ServiceAccount' && o.metadata.labels.component === FACTS.a.lateWorker.name)) problems.push('the kit made a ServiceAccount of its own for team-eval as well');
  const kitSas = [...A, ...B].filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name);
  for (const w of [...aWorkloads, ...bWorkloads]) {
    const sa = podSpec(w).serviceAccountName;
    if (!kitSas.includes(sa) && !own.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === sa)) problems.push(`${ref(w)}: ServiceAccount ${sa} is in the output neither as the kit's nor as the team's`);
  }
  check(`${retrieval ? ref(retrieval) : 'retrieval'} and team-eval: the team's ServiceAccounts (an object, a name; no own one), a kplus pull secret, envFrom a Secret`, problems);
}

// ---------------------------------------------------- cdk8s-plus interop -----
{
  const problems: string[] = [];
  const runner = own.find((o) => o.kind === 'Deployment' && o.metadata.name === FACTS.runner.name);
  const infSel = workloadOf(A, 'inference')?.spec.selector.matchLabels ?? {};
  const coreSel = workloadOf(A, 'core')?.spec.selector.matchLabels ?? {};
  const anti = runner?.spec.template.spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
  const term = anti.find((t: Obj) => t.weight === 60)?.podAffinityTerm;
  const covers = (sel: Obj | undefined, want: Labels) => Object.entries(want).every(([k, v]) => sel?.matchLabels?.[k] === v)
    || Object.entries(want).every(([k, v]) => (sel?.matchExpressions ?? []).some((e: Obj) => e.key === k && e.operator === 'In' && fmt(e.values) === fmt([v])));
  if (!runner) problems.push(`the team's Deployment ${FACTS.runner.name} is missing`);
  if (!term || !covers(term.labelSelector, infSel)) problems.push(`scheduling.separate(inference): anti-affinity ${fmt(anti)} does not select the inference pods ${fmt(infSel)}`);
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
  const toCore = policies.filter((p) => (p.spec.egress ?? []).some((r: Obj) => (r.to ?? []).some((peer: Obj) => covers(peer.podSelector, coreSel))));
  if (!toCore.length) problems.push(`connections.allowTo(core): no egress rule to the core's pods ${fmt(coreSel)}`);
  const intoCore = policies.filter((p) => !kit.includes(p) && covers(p.spec.podSelector, coreSel));
  if (intoCore.length < 2) problems.push(`own policies selecting the core's pods ${fmt(coreSel)}: ${intoCore.map(ref).join(', ') || 'none'} (want the monitoring one and allowTo's ingress side)`);
  const mon = find(own, 'NetworkPolicy', FACTS.monitoringPolicy);
  if (!mon || !(mon.spec.ingress ?? []).some((r: Obj) => (r.from ?? []).some((p: Obj) => p.podSelector?.matchLabels?.app === 'blackbox-exporter' && p.namespaceSelector))) problems.push(`${FACTS.monitoringPolicy}: ${fmt(mon?.spec)}`);
  const runnerEnv = envOf(runner).get('STEPFLOW_URL')?.value;
  if (!String(runnerEnv).includes(`${FACTS.a.prefix}stepflow-core.${FACTS.namespace}.svc`)) problems.push(`the runner's STEPFLOW_URL ${runnerEnv} is not team-a's core URL`);
  check('cdk8s-plus: scheduling.separate(component), connections.allowTo(core), a NetworkPolicy with a component as selector', problems,
    `${[...toCore, ...intoCore].map(ref).join(', ')}`);
}

// ---------------------------------------------------------- isolation ------
{
  const problems: string[] = [];
  const podsOf = (list: Obj[]) => list.filter((o) => WORKLOADS.includes(o.kind)).map((w) => ({ w, labels: w.spec.template.metadata.labels as Labels }));
  const pods = [...podsOf(A), ...podsOf(B), ...podsOf(C)];
  for (const o of [...A, ...B, ...C]) {
    for (const [where, sel] of selectorsOf(o)) {
      if (Object.keys(sel).length === 0) continue;
      const hits = pods.filter((p) => Object.entries(sel).every(([k, v]) => p.labels[k] === v));
      const foreign = hits.filter((p) => p.labels[INSTANCE] !== o.metadata.labels[INSTANCE]);
      if (foreign.length) problems.push(`${ref(o)} ${where} ${fmt(sel)} selects ${foreign.map((p) => ref(p.w)).join(', ')}`);
    }
  }
  check('isolation in the YAML: no selector of one installation matches another\'s pod templates', problems, `${pods.length} pod templates of 3 installations`);
}

console.log(`assert: ${failed} failed`);
process.exit(failed ? 1 : 0);
