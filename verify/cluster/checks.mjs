#!/usr/bin/env node
// Checks of one scenario of the cluster tier, against a running, EMPTY
// kube-apiserver (started by run.sh). Node built-ins only; every fact asserted
// here is read back from the server (kubectl -o json), never from our TypeScript.
//
// usage: node checks.mjs --kubectl PATH --kubeconfig FILE --server-version vX.Y.Z
//                        --scenario NAME --results FILE.jsonl -- TARGET...
//   TARGET = a manifest file or a directory, applied with one
//   `kubectl apply --server-side --field-manager=stepflow-kit -f TARGET...`.
// Each check result is appended to --results as one JSON line
// {version, scenario, check, object, ok, message}; exit 1 if any failed.
import { spawnSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';

const FIELD_MANAGER = 'stepflow-kit';
// Whole GPUs and MIG slices (nvidia.com/mig-<profile>) the NVIDIA device plugin advertises.
const isGpuResource = (name) => name === 'nvidia.com/gpu' || name.startsWith('nvidia.com/mig-');
const COMPONENT_LABELS = ['component', 'app.kubernetes.io/component'];
const ENV_LABELS = ['environment', 'app.kubernetes.io/environment'];
const PSA_ENFORCE = 'pod-security.kubernetes.io/enforce';
// A namespace this script creates (in the fresh cluster state only) to dry-run
// every pod against the server's newest "restricted" profile as well.
const LATEST_NS = 'stepflow-verify-restricted-latest';
const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'];
const READ_BACK = [
  'namespaces', 'serviceaccounts', 'services',
  'deployments.apps', 'statefulsets.apps', 'daemonsets.apps', 'replicasets.apps', 'jobs.batch',
  'horizontalpodautoscalers.v2.autoscaling', 'poddisruptionbudgets.v1.policy',
  'ingresses.v1.networking.k8s.io', 'networkpolicies.v1.networking.k8s.io',
  'runtimeclasses.v1.node.k8s.io',
];

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const opts = { targets: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { opts.targets.push(...argv.slice(i + 1)); break; }
    const key = a.replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    opts[key] = argv[++i];
  }
  for (const k of ['kubectl', 'kubeconfig', 'serverVersion', 'scenario', 'results']) {
    if (!opts[k]) { console.error(`checks.mjs: missing --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`); process.exit(2); }
  }
  if (opts.targets.length === 0) { console.error('checks.mjs: no manifest TARGET after --'); process.exit(2); }
  return opts;
}
const opts = parseArgs(process.argv.slice(2));
// A crash must not look like "some checks failed" (exit 1): run.sh records
// exit codes > 1 as a failed check of its own.
process.on('uncaughtException', (e) => { console.error('checks.mjs crashed:', e); process.exit(3); });

// ---------------------------------------------------------------- results
let passed = 0;
let failed = 0;
const MAX_MESSAGE_LINES = 40;
function record(check, object, ok, message = '') {
  const lines = String(message).trimEnd().split('\n');
  if (lines.length > MAX_MESSAGE_LINES) message = [...lines.slice(0, MAX_MESSAGE_LINES), `... (${lines.length - MAX_MESSAGE_LINES} more lines)`].join('\n');
  const row = { version: opts.serverVersion, scenario: opts.scenario, check, object, ok, message };
  appendFileSync(opts.results, JSON.stringify(row) + '\n');
  if (ok) {
    passed++;
    console.log(`  ok    ${check}: ${object}${message ? ` (${message})` : ''}`);
  } else {
    failed++;
    console.log(`  FAIL  ${check}: ${object}  [server ${opts.serverVersion}, ${opts.scenario}]`);
    for (const line of String(message).trimEnd().split('\n')) console.log(`          ${line}`);
  }
}
const pass = (check, object, message) => record(check, object, true, message);
const fail = (check, object, message) => record(check, object, false, message);
const note = (msg) => console.log(`  note  ${msg}`);

// ---------------------------------------------------------------- kubectl
function kubectl(args, input) {
  const r = spawnSync(opts.kubectl, ['--kubeconfig', opts.kubeconfig, ...args], {
    input, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw new Error(`unable to execute '${opts.kubectl}': ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}
function kubectlJson(args, input) {
  const r = kubectl([...args, '-o', 'json'], input);
  let json = null;
  if (r.stdout.trim()) {
    try { json = JSON.parse(r.stdout); } catch { /* reported by caller via code/stderr */ }
  }
  return { ...r, json };
}
const items = (json) => (json == null ? [] : json.kind === 'List' || Array.isArray(json.items) ? json.items : [json]);

// ---------------------------------------------------------------- helpers
const ref = (o) => `${o.kind}/${o.metadata.namespace ? o.metadata.namespace + '/' : ''}${o.metadata.name}`;
const key = (o) => `${o.apiVersion.split('/').length > 1 ? o.apiVersion.split('/')[0] : 'core'}|${o.kind}|${o.metadata.namespace ?? ''}|${o.metadata.name}`;
const labelsOf = (o) => o?.metadata?.labels ?? {};
const firstLabel = (labels, keys) => keys.map((k) => labels[k]).find((v) => v !== undefined);
const podTemplate = (w) => (w.kind === 'Job' ? w.spec.template : w.spec.template);
const podLabels = (w) => labelsOf(podTemplate(w));
const allContainers = (spec) => [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
const fmt = (x) => JSON.stringify(x);

// LabelSelector (matchLabels + matchExpressions) semantics; {} selects everything.
function selectorMatches(sel, labels) {
  if (sel == null) return false;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    switch (e.operator) {
      case 'In': if (!has || !e.values.includes(labels[e.key])) return false; break;
      case 'NotIn': if (has && e.values.includes(labels[e.key])) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
      default: return false;
    }
  }
  return true;
}
// Service selector: a plain map; an empty/absent one selects nothing.
function mapSelectorMatches(sel, labels) {
  const entries = Object.entries(sel ?? {});
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

// Does a port (number or name) exist as a containerPort of the workload?
function containerPortMatches(w, port, protocol = 'TCP') {
  const ports = (podTemplate(w).spec.containers ?? []).flatMap((c) => c.ports ?? []);
  return ports.some((p) => (typeof port === 'number' ? p.containerPort === port : p.name === port)
    && (p.protocol ?? 'TCP') === (protocol ?? 'TCP'));
}

// The workloads a policy-like object is meant for: same `component` label as
// the object's own, else the workload its name names (exact or "<name>-suffix").
// Of the same installation (app.kubernetes.io/instance) when the object names one:
// two installations in one namespace each have a component "core".
const INSTANCE = 'app.kubernetes.io/instance';
function intendedWorkloads(obj, allWorkloads) {
  const inst = labelsOf(obj)[INSTANCE];
  const workloads = inst === undefined ? allWorkloads : allWorkloads.filter((w) => (podLabels(w)[INSTANCE] ?? labelsOf(w)[INSTANCE]) === inst);
  const comp = firstLabel(labelsOf(obj), COMPONENT_LABELS);
  if (comp !== undefined) {
    return workloads.filter((w) => firstLabel(podLabels(w), COMPONENT_LABELS) === comp
      || firstLabel(labelsOf(w), COMPONENT_LABELS) === comp);
  }
  const n = obj.metadata.name;
  const byName = workloads.filter((w) => n === w.metadata.name || n.startsWith(w.metadata.name + '-'));
  const longest = Math.max(0, ...byName.map((w) => w.metadata.name.length));
  return byName.filter((w) => w.metadata.name.length === longest);
}
const names = (ws) => (ws.length ? ws.map(ref).join(', ') : '(none)');

// The names the controller gives a workload's pods: a StatefulSet's are
// <name>-<ordinal> (ordinals from spec.ordinals.start); other workloads' pods get
// generated names (null: not predictable, and no per-pod DNS record).
function podNames(w) {
  if (w.kind !== 'StatefulSet') return null;
  const start = w.spec.ordinals?.start ?? 0;
  return [...Array(Math.max(1, w.spec.replicas ?? 1)).keys()].map((i) => `${w.metadata.name}-${start + i}`);
}

// The Pod a workload controller would create from its template (what the
// controller adds: StatefulSet PVC volumes, hostname/subdomain, pod labels).
function podFrom(w, namespace = w.metadata.namespace) {
  const t = structuredClone(podTemplate(w));
  const meta = t.metadata ?? {};
  const labels = { ...(meta.labels ?? {}) };
  const spec = t.spec;
  let name = `${w.metadata.name}-verify`;
  if (w.kind === 'StatefulSet') {
    name = podNames(w)[0];
    labels['statefulset.kubernetes.io/pod-name'] = name;
    labels['apps.kubernetes.io/pod-index'] = name.slice(w.metadata.name.length + 1);
    labels['controller-revision-hash'] = `${w.metadata.name}-verify`;
    spec.hostname = name;
    if (w.spec.serviceName) spec.subdomain = w.spec.serviceName;
    spec.volumes = [...(spec.volumes ?? [])];
    for (const vct of w.spec.volumeClaimTemplates ?? []) {
      if (!spec.volumes.some((v) => v.name === vct.metadata.name)) {
        spec.volumes.push({ name: vct.metadata.name, persistentVolumeClaim: { claimName: `${vct.metadata.name}-${name}` } });
      }
    }
  } else if (w.kind === 'Deployment') {
    labels['pod-template-hash'] = 'verify';
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels, ...(meta.annotations ? { annotations: meta.annotations } : {}) },
    spec,
  };
}

// Paths at which two JSON values differ, as ".a.b[0]: x -> y" lines.
function jsonDiff(a, b, path = '') {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (a && b && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
    const keys = Array.isArray(a) ? [...Array(Math.max(a.length, b.length)).keys()] : [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) => jsonDiff(a[k], b[k], Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`));
  }
  const show = (v) => (v === undefined ? '(absent)' : JSON.stringify(v).slice(0, 200));
  return [`${path}: ${show(a)} -> ${show(b)}`];
}

function dryRunPod(pod) {
  return kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(pod));
}

// ================================================================ the checks
console.log(`--- checks: server ${opts.serverVersion}, scenario ${opts.scenario}, targets ${opts.targets.join(' ')}`);
const fileArgs = opts.targets.flatMap((t) => ['-f', t]);
const APPLY = ['apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '--show-managed-fields', ...fileArgs];

// 1. one-pass server-side apply, no warnings --------------------------------
const first = kubectlJson(APPLY);
const applied = items(first.json);
const target = opts.targets.join(' ');
if (first.code !== 0) {
  fail('apply in one pass', target, `kubectl apply exit ${first.code}; the server said:\n${first.stderr || '(nothing on stderr)'}`);
} else if (first.stderr) {
  fail('apply without warnings', target, `stderr is not empty:\n${first.stderr}`);
} else {
  pass('apply in one pass, no warnings', target, `${applied.length} objects`);
}
if (applied.length === 0) {
  console.log(`checks.mjs: nothing was applied; stopping this scenario. ${passed} passed, ${failed} failed`);
  process.exit(1);
}

// 2. idempotence: a second apply changes nothing -----------------------------
// The server stamps managedFields to the whole second: a second apply within the
// same second as the first would hide a field it rewrites on every apply, so the
// second apply waits for the next second.
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1100);
const second = kubectlJson(APPLY);
if (second.code !== 0 || second.stderr) {
  fail('second apply clean', target, `exit ${second.code}; stderr:\n${second.stderr || '(empty)'}`);
} else {
  const before = new Map(applied.map((o) => [key(o), o]));
  const changed = [];
  for (const o of items(second.json)) {
    const b = before.get(key(o));
    if (!b) { changed.push(`${ref(o)}: not in the first apply's output`); continue; }
    if (b.metadata.resourceVersion !== o.metadata.resourceVersion || b.metadata.generation !== o.metadata.generation) {
      changed.push(`${ref(o)}: resourceVersion ${b.metadata.resourceVersion} -> ${o.metadata.resourceVersion}, generation ${b.metadata.generation} -> ${o.metadata.generation}`);
      for (const d of jsonDiff(b, o).filter((p) => !/^\.metadata\.(resourceVersion|generation)\b/.test(p)).slice(0, 8)) changed.push(`    ${d}`);
    }
  }
  if (changed.length) fail('second apply is a no-op', target, changed.join('\n'));
  else pass('second apply is a no-op', target, `resourceVersion and generation unchanged on ${before.size} objects`);
}
const diff = kubectl(['diff', '--server-side', `--field-manager=${FIELD_MANAGER}`, ...fileArgs]);
if (diff.code === 0 && !diff.stderr) pass('kubectl diff --server-side is empty', target);
else fail('kubectl diff --server-side is empty', target, `exit ${diff.code}\n${diff.stdout}${diff.stderr}`);

// 3. read everything back from the server -----------------------------------
const got = kubectlJson(['get', READ_BACK.join(','), '--all-namespaces', '--show-managed-fields']);
if (got.code !== 0) {
  fail('read back', READ_BACK.join(','), got.stderr);
  process.exit(1);
}
const appliedNs = new Set(applied.map((o) => (o.kind === 'Namespace' ? o.metadata.name : o.metadata.namespace)).filter(Boolean));
const server = items(got.json).filter((o) => o.kind === 'RuntimeClass' || o.kind === 'Namespace' || appliedNs.has(o.metadata.namespace));
const byKind = (k) => server.filter((o) => o.kind === k);
const namespaces = byKind('Namespace').filter((n) => appliedNs.has(n.metadata.name));
const workloads = server.filter((o) => WORKLOAD_KINDS.includes(o.kind));
const services = byKind('Service');
const inNs = (list, ns) => list.filter((o) => o.metadata.namespace === ns);
const nsObj = (ns) => namespaces.find((n) => n.metadata.name === ns);
const isDev = (ns) => {
  const n = nsObj(ns);
  return firstLabel(labelsOf(n), ENV_LABELS) === 'dev' || /(^|-)dev(-|$)/.test(ns);
};

// 4. namespaces enforce Pod Security "restricted" ----------------------------
for (const ns of appliedNs) {
  const n = nsObj(ns);
  if (!n) { fail('namespace exists', `Namespace/${ns}`, 'objects are applied into it, but the manifests do not create it'); continue; }
  const level = labelsOf(n)[PSA_ENFORCE];
  if (level === 'restricted') pass('namespace enforces restricted', ref(n), `enforce-version ${labelsOf(n)[PSA_ENFORCE + '-version'] ?? 'latest'}`);
  else fail('namespace enforces restricted', ref(n), `label ${PSA_ENFORCE}=${level ?? '(absent)'}; pods are not held to "restricted"`);
}

// 5. pods built from every workload template are admitted ---------------------
// The serviceaccount controller (not running here) creates `default` in every
// namespace; do the same so pods that use it can be admitted. Done after the
// idempotence check so it cannot disturb it.
for (const ns of [...appliedNs, LATEST_NS]) {
  if (ns === LATEST_NS) {
    const r = kubectl(['create', 'namespace', LATEST_NS]);
    const l = kubectl(['label', 'namespace', LATEST_NS,
      `${PSA_ENFORCE}=restricted`, `${PSA_ENFORCE}-version=latest`,
      'pod-security.kubernetes.io/warn=restricted', 'pod-security.kubernetes.io/warn-version=latest']);
    if (r.code !== 0 || l.code !== 0) fail('scratch namespace', LATEST_NS, r.stderr + l.stderr);
    // the pods' own ServiceAccounts, so only Pod Security decides there
    const sas = new Set(['default', ...workloads.map((w) => podTemplate(w).spec.serviceAccountName).filter(Boolean)]);
    for (const sa of sas) kubectl(['create', 'serviceaccount', sa, '-n', LATEST_NS]);
    continue;
  }
  if (!byKind('ServiceAccount').some((s) => s.metadata.namespace === ns && s.metadata.name === 'default')) {
    kubectl(['create', 'serviceaccount', 'default', '-n', ns]);
  }
}

const runtimeClassesBefore = new Set(byKind('RuntimeClass').map((r) => r.metadata.name));
const gated = []; // workloads whose pods name a RuntimeClass
for (const w of workloads) {
  const spec = podTemplate(w).spec;
  const rc = spec.runtimeClassName;
  const ns = w.metadata.namespace;
  const pod = podFrom(w);
  const r = dryRunPod(pod);
  const gpu = allContainers(spec).flatMap((c) => Object.keys({ ...c.resources?.limits, ...c.resources?.requests })).find(isGpuResource);

  if (isDev(ns)) {
    if (rc) fail('dev pods have no runtimeClassName', ref(w), `runtimeClassName: ${rc}`);
    else pass('dev pods have no runtimeClassName', ref(w));
  } else if (gpu && !rc) {
    fail('GPU pods name a RuntimeClass', ref(w), `requests ${gpu} but has no runtimeClassName (the NVIDIA GPU operator's runtime is "nvidia")`);
  }

  if (rc && !runtimeClassesBefore.has(rc)) {
    gated.push(w);
    const expected = `RuntimeClass "${rc}" not found`;
    if (r.code !== 0 && r.stderr.includes(expected)) pass('pod rejected while RuntimeClass is missing', `Pod/${ns}/${pod.metadata.name} of ${ref(w)}`, r.stderr);
    else fail('pod rejected while RuntimeClass is missing', `Pod/${ns}/${pod.metadata.name} of ${ref(w)}`, `expected the server to reject with '${expected}'; exit ${r.code}, the server said:\n${r.stderr || r.stdout}`);
  } else if (rc && runtimeClassesBefore.has(rc)) {
    fail('RuntimeClass is not shipped', `RuntimeClass/${rc}`, `exists before the GPU operator step (the manifests ship it?); the GPU operator owns RuntimeClass "${rc}"`);
  } else if (r.code === 0 && !r.stderr) {
    pass('pod admitted (restricted, dry-run=server)', `Pod/${ns}/${pod.metadata.name} of ${ref(w)}`);
  } else {
    fail('pod admitted (restricted, dry-run=server)', `Pod/${ns}/${pod.metadata.name} of ${ref(w)}`, `exit ${r.code}; the server said:\n${r.stderr}`);
  }
}

// Enforcement is live, not just labelled: a pod with no securityContext at all
// must be REJECTED by PodSecurity in every namespace of the manifests.
for (const ns of appliedNs) {
  const control = {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'stepflow-verify-control', namespace: ns },
    spec: { automountServiceAccountToken: false, containers: [{ name: 'c', image: 'registry.example.com/control:1' }] },
  };
  const r = dryRunPod(control);
  if (r.code !== 0 && r.stderr.includes('violates PodSecurity "restricted')) pass('PodSecurity rejects a non-compliant pod', `Namespace/${ns}`);
  else fail('PodSecurity rejects a non-compliant pod', `Namespace/${ns}`, `a pod without any securityContext was not rejected as violating "restricted"; exit ${r.code}, the server said:\n${r.stderr || r.stdout}`);
}

// The GPU operator's step: create the RuntimeClasses, then the gated pods pass.
for (const rc of new Set(gated.map((w) => podTemplate(w).spec.runtimeClassName))) {
  const r = kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: rc }, handler: rc }));
  if (r.code !== 0) fail('create RuntimeClass (as the GPU operator does)', `RuntimeClass/${rc}`, r.stderr);
}
for (const w of gated) {
  const pod = podFrom(w);
  const r = dryRunPod(pod);
  const obj = `Pod/${w.metadata.namespace}/${pod.metadata.name} of ${ref(w)}`;
  if (r.code === 0 && !r.stderr) pass('pod admitted once RuntimeClass exists', obj, `runtimeClassName ${podTemplate(w).spec.runtimeClassName}`);
  else fail('pod admitted once RuntimeClass exists', obj, `exit ${r.code}; the server said:\n${r.stderr}`);
}

// The same pods against the server's NEWEST restricted profile (enforce-version latest).
for (const w of workloads) {
  const pod = podFrom(w, LATEST_NS);
  const r = dryRunPod(pod);
  const obj = `Pod/${LATEST_NS}/${pod.metadata.name} of ${ref(w)}`;
  if (r.code === 0 && !r.stderr) pass('pod admitted under restricted:latest', obj);
  else fail('pod admitted under restricted:latest', obj, `exit ${r.code}; the server said:\n${r.stderr}`);
}

// 6. named probe ports resolve to a port of the same container ---------------
for (const w of workloads) {
  for (const c of allContainers(podTemplate(w).spec)) {
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
      const p = c[probe];
      const port = p?.httpGet?.port ?? p?.tcpSocket?.port ?? p?.grpc?.port;
      if (port === undefined) continue;
      const ok = typeof port === 'number' ? true : (c.ports ?? []).some((cp) => cp.name === port);
      if (!ok) fail('probe port exists', `${ref(w)} container ${c.name} ${probe}`, `port "${port}" is not a named port of the container (ports: ${fmt(c.ports ?? [])})`);
    }
  }
}

// 7. Services: selector selects exactly one workload; targetPorts exist ------
for (const s of services) {
  const ws = inNs(workloads, s.metadata.namespace).filter((w) => mapSelectorMatches(s.spec.selector, podLabels(w)));
  if (s.spec.type === 'ExternalName') { note(`${ref(s)} is ExternalName; no selector check`); continue; }
  if (ws.length !== 1) {
    fail('Service selects exactly one workload', ref(s), `selector ${fmt(s.spec.selector ?? null)} selects ${ws.length} workloads: ${names(ws)}`);
    continue;
  }
  pass('Service selects exactly one workload', ref(s), ref(ws[0]));
  for (const p of s.spec.ports ?? []) {
    const tp = p.targetPort ?? p.port;
    if (containerPortMatches(ws[0], tp, p.protocol)) continue;
    if (typeof tp === 'number') note(`${ref(s)} port ${p.name ?? p.port}: targetPort ${tp} is not a declared containerPort of ${ref(ws[0])}`);
    else fail('Service targetPort exists', `${ref(s)} port ${p.name ?? p.port}`, `targetPort "${tp}" is not a named port of ${ref(ws[0])}; endpoints would have no port`);
  }
}

// 8. StatefulSets: serviceName names an existing headless Service; every
// claim template is mounted, and the claim the controller would make from it
// (<template>-<pod>, with the StatefulSet's selector labels) is admitted.
for (const sts of byKind('StatefulSet')) {
  const svc = inNs(services, sts.metadata.namespace).find((s) => s.metadata.name === sts.spec.serviceName);
  if (!svc) fail('StatefulSet serviceName is a headless Service', ref(sts), `serviceName "${sts.spec.serviceName}" names no Service in ${sts.metadata.namespace}`);
  else if (svc.spec.clusterIP !== 'None') fail('StatefulSet serviceName is a headless Service', ref(sts), `${ref(svc)} has clusterIP ${svc.spec.clusterIP}, not None`);
  else if (!mapSelectorMatches(svc.spec.selector, podLabels(sts))) fail('StatefulSet serviceName is a headless Service', ref(sts), `${ref(svc)} selector ${fmt(svc.spec.selector)} does not select the StatefulSet's pods ${fmt(podLabels(sts))}`);
  else pass('StatefulSet serviceName is a headless Service', ref(sts), `${ref(svc)}${svc.spec.publishNotReadyAddresses ? ', publishNotReadyAddresses' : ''}`);
  const mounted = new Set(allContainers(podTemplate(sts).spec).flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name)));
  const [pod0] = podNames(sts);
  for (const vct of sts.spec.volumeClaimTemplates ?? []) {
    const obj = `${ref(sts)} volumeClaimTemplate ${vct.metadata.name}`;
    if (mounted.has(vct.metadata.name)) pass('claim template is mounted', obj);
    else fail('claim template is mounted', obj, `no container mounts "${vct.metadata.name}" (mounts: ${[...mounted].join(', ') || 'none'}); the claim would hold nothing`);
    const claim = {
      apiVersion: 'v1', kind: 'PersistentVolumeClaim',
      metadata: {
        name: `${vct.metadata.name}-${pod0}`, namespace: sts.metadata.namespace,
        labels: { ...(vct.metadata.labels ?? {}), ...(sts.spec.selector?.matchLabels ?? {}) },
        ...(vct.metadata.annotations ? { annotations: vct.metadata.annotations } : {}),
      },
      spec: vct.spec,
    };
    const r = kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(claim));
    const size = vct.spec?.resources?.requests?.storage;
    if (r.code === 0 && !r.stderr) pass('claim of the claim template admitted (dry-run=server)', `PersistentVolumeClaim/${sts.metadata.namespace}/${claim.metadata.name} of ${obj}`, `${(vct.spec?.accessModes ?? []).join(',')} ${size ?? '(no size)'}`);
    else fail('claim of the claim template admitted (dry-run=server)', `PersistentVolumeClaim/${sts.metadata.namespace}/${claim.metadata.name} of ${obj}`, `exit ${r.code}; the server said:\n${r.stderr || r.stdout}`);
  }
}

// 9. HPAs: scaleTargetRef -> workload; Utilization metrics have requests -------
for (const h of byKind('HorizontalPodAutoscaler')) {
  const t = h.spec.scaleTargetRef;
  const w = inNs(workloads, h.metadata.namespace).find((x) => x.kind === t.kind && x.metadata.name === t.name
    && (t.apiVersion ?? x.apiVersion) === x.apiVersion);
  if (!w) { fail('HPA target exists', ref(h), `scaleTargetRef ${fmt(t)} names no workload in ${h.metadata.namespace}`); continue; }
  const problems = [];
  const intended = intendedWorkloads(h, inNs(workloads, h.metadata.namespace));
  if (intended.length && !intended.includes(w)) problems.push(`targets ${ref(w)} but its component label points at ${names(intended)}`);
  if (!selectorMatches(w.spec.selector, podLabels(w))) problems.push(`${ref(w)} selector does not select its own pods`);
  for (const m of h.spec.metrics ?? []) {
    if (m.type !== 'Resource' || m.resource?.target?.type !== 'Utilization') continue;
    const missing = (podTemplate(w).spec.containers ?? []).filter((c) => !c.resources?.requests?.[m.resource.name]).map((c) => c.name);
    if (missing.length) problems.push(`metric ${m.resource.name} Utilization: containers without a ${m.resource.name} request: ${missing.join(', ')} (the HPA cannot compute utilization)`);
  }
  // If our field manager owns spec.replicas, the first re-apply after the HPA
  // scaled the workload fails with a conflict (or, forced, resets the scale).
  if (w.metadata.managedFields?.some((f) => f.manager === FIELD_MANAGER && f.fieldsV1?.['f:spec']?.['f:replicas'] !== undefined)) {
    problems.push(`${ref(w)}: the manifest sets spec.replicas (field manager ${FIELD_MANAGER} owns it) although the HPA scales it; a later apply conflicts with the HPA`);
  }
  if (problems.length) fail('HPA targets its workload', ref(h), problems.join('\n'));
  else pass('HPA targets its workload', ref(h), `${ref(w)}, replicas ${h.spec.minReplicas ?? 1}..${h.spec.maxReplicas}`);
}

// 9b. The core (component "core") is a single orchestrator: exactly one
// replica, and no HPA scales it (its state lives on one pod's claim).
const SINGLETON_COMPONENTS = ['core'];
for (const w of workloads) {
  const comp = firstLabel(labelsOf(w), COMPONENT_LABELS) ?? firstLabel(podLabels(w), COMPONENT_LABELS);
  if (!SINGLETON_COMPONENTS.includes(comp)) continue;
  const problems = [];
  if (w.spec.replicas !== 1) problems.push(`spec.replicas is ${fmt(w.spec.replicas ?? null)} on the server, not 1`);
  const hpas = inNs(byKind('HorizontalPodAutoscaler'), w.metadata.namespace)
    .filter((h) => h.spec.scaleTargetRef?.kind === w.kind && h.spec.scaleTargetRef?.name === w.metadata.name);
  if (hpas.length) problems.push(`scaled by ${names(hpas)} (up to ${Math.max(...hpas.map((h) => h.spec.maxReplicas))} replicas)`);
  if (problems.length) fail(`${comp} runs exactly one replica, no HPA`, ref(w), problems.join('\n'));
  else pass(`${comp} runs exactly one replica, no HPA`, ref(w), `${w.kind}, replicas 1`);
}

// 10. PDBs and NetworkPolicies select the pods of the workload they are for ---
function checkSelects(check, obj, selector, intended, nsWorkloads) {
  const selected = nsWorkloads.filter((w) => selectorMatches(selector, podLabels(w)));
  if (intended.length === 0) {
    if (selected.length === 0) fail(check, ref(obj), `selector ${fmt(selector)} selects no workload's pods (workloads: ${names(nsWorkloads)})`);
    else pass(check, ref(obj), `namespace-wide: selects ${names(selected)}`);
    return selected;
  }
  const missed = intended.filter((w) => !selected.includes(w));
  const extra = selected.filter((w) => !intended.includes(w));
  if (missed.length || extra.length) {
    fail(check, ref(obj), [
      `selector ${fmt(selector)}`,
      missed.length ? `does not select the pods of ${names(missed)} (pod labels ${fmt(podLabels(missed[0]))})` : '',
      extra.length ? `also selects the pods of ${names(extra)}` : '',
    ].filter(Boolean).join('\n'));
  } else pass(check, ref(obj), `selects ${names(selected)}`);
  return selected;
}

for (const pdb of byKind('PodDisruptionBudget')) {
  const nsW = inNs(workloads, pdb.metadata.namespace);
  const sel = checkSelects('PDB selects its workload', pdb, pdb.spec.selector, intendedWorkloads(pdb, nsW), nsW);
  for (const w of sel) {
    const replicas = w.spec.replicas ?? 1;
    const hpa = byKind('HorizontalPodAutoscaler').find((h) => h.metadata.namespace === w.metadata.namespace && h.spec.scaleTargetRef.name === w.metadata.name);
    const minReplicas = hpa ? (hpa.spec.minReplicas ?? 1) : replicas;
    if (pdb.spec.maxUnavailable === 0 || pdb.spec.maxUnavailable === '0%'
        || (typeof pdb.spec.minAvailable === 'number' && pdb.spec.minAvailable >= minReplicas)
        || pdb.spec.minAvailable === '100%') {
      fail('PDB allows a voluntary disruption', ref(pdb), `maxUnavailable ${fmt(pdb.spec.maxUnavailable ?? null)}, minAvailable ${fmt(pdb.spec.minAvailable ?? null)} with ${ref(w)} at ${minReplicas} replica(s): no pod may ever be evicted, node drains block`);
    }
  }
}

for (const np of byKind('NetworkPolicy')) {
  const ns = np.metadata.namespace;
  const nsW = inNs(workloads, ns);
  const targets = checkSelects('NetworkPolicy selects its workload', np, np.spec.podSelector, intendedWorkloads(np, nsW), nsW);
  // ports and peers of every rule: a peer podSelector (same namespace) must
  // select some workload, and a port must be a containerPort of the pods the
  // traffic goes to (ingress: the policy's own pods; egress: the peers).
  const problems = [];
  const rules = [
    ...(np.spec.ingress ?? []).map((r) => ({ dir: 'ingress', peers: r.from ?? [], ports: r.ports ?? [] })),
    ...(np.spec.egress ?? []).map((r) => ({ dir: 'egress', peers: r.to ?? [], ports: r.ports ?? [] })),
  ];
  rules.forEach((rule, i) => {
    const localPeers = rule.peers.filter((p) => p.podSelector && !p.namespaceSelector);
    const peerWorkloads = [];
    for (const p of localPeers) {
      const sel = nsW.filter((w) => selectorMatches(p.podSelector, podLabels(w)));
      if (sel.length === 0) problems.push(`${rule.dir}[${i}] peer podSelector ${fmt(p.podSelector)} selects no workload in ${ns}`);
      peerWorkloads.push(...sel);
    }
    const dest = rule.dir === 'ingress' ? targets : peerWorkloads;
    if (rule.dir === 'egress' && localPeers.length !== rule.peers.length) return; // other namespaces / ipBlocks: not ours to resolve
    for (const port of rule.ports) {
      if (port.port === undefined || dest.length === 0) continue;
      const missing = dest.filter((w) => !containerPortMatches(w, port.port, port.protocol));
      if (missing.length) problems.push(`${rule.dir}[${i}] port ${port.protocol ?? 'TCP'}/${port.port} is not a containerPort of ${names(missing)}`);
    }
  });
  if (problems.length) fail('NetworkPolicy rules resolve', ref(np), problems.join('\n'));
  else if (rules.length) pass('NetworkPolicy rules resolve', ref(np), `${rules.length} rule(s)`);
}

// 11. Ingress backends: existing Service, existing port, selects a workload ---
for (const ing of byKind('Ingress')) {
  const ns = ing.metadata.namespace;
  const backends = [];
  if (ing.spec.defaultBackend?.service) backends.push(['defaultBackend', ing.spec.defaultBackend.service]);
  (ing.spec.rules ?? []).forEach((r, i) => (r.http?.paths ?? []).forEach((p, j) => {
    if (p.backend?.service) backends.push([`rules[${i}].paths[${j}] ${r.host ?? '*'}${p.path ?? ''}`, p.backend.service]);
  }));
  if (backends.length === 0) { fail('Ingress has a Service backend', ref(ing), 'no service backend at all'); continue; }
  for (const [where, b] of backends) {
    const obj = `${ref(ing)} ${where}`;
    const svc = inNs(services, ns).find((s) => s.metadata.name === b.name);
    if (!svc) { fail('Ingress backend resolves', obj, `Service "${b.name}" does not exist in ${ns}`); continue; }
    const sp = (svc.spec.ports ?? []).find((p) => (b.port?.name !== undefined ? p.name === b.port.name : p.port === b.port?.number));
    if (!sp) { fail('Ingress backend resolves', obj, `${ref(svc)} has no port ${fmt(b.port)} (ports: ${fmt(svc.spec.ports)})`); continue; }
    const ws = inNs(workloads, ns).filter((w) => mapSelectorMatches(svc.spec.selector, podLabels(w)));
    if (ws.length === 0) { fail('Ingress backend resolves', obj, `${ref(svc)} selects no workload`); continue; }
    const intended = intendedWorkloads(ing, inNs(workloads, ns));
    if (intended.length && !ws.some((w) => intended.includes(w))) { fail('Ingress backend resolves', obj, `routes to ${names(ws)}, but its component label points at ${names(intended)}`); continue; }
    // The ingress controller runs in another namespace: some ingress rule of
    // the backend pods' NetworkPolicies must admit a peer from another namespace.
    const tp = sp.targetPort ?? sp.port;
    const cport = (podTemplate(ws[0]).spec.containers ?? []).flatMap((c) => c.ports ?? []).find((p) => (typeof tp === 'number' ? p.containerPort === tp : p.name === tp));
    const isolating = byKind('NetworkPolicy').filter((np) => np.metadata.namespace === ns && policyTypes(np).includes('Ingress') && selectorMatches(np.spec.podSelector, podLabels(ws[0])));
    const open = isolating.length === 0 || (cport && isolating.some((np) => (np.spec.ingress ?? []).some((r) => ((r.from ?? []).length === 0 || r.from.some((p) => p.namespaceSelector || p.ipBlock)) && rulePortMatches(r.ports, cport))));
    if (!open) { fail('Ingress backend resolves', obj, `${ref(svc)} -> ${names(ws)}:${cport?.containerPort ?? tp}, but no NetworkPolicy ingress rule (${isolating.map(ref).join(', ')}) admits traffic from another namespace (the ingress controller) on that port`); continue; }
    pass('Ingress backend resolves', obj, `${ref(svc)}:${sp.name ?? sp.port} -> ${names(ws)}`);
  }
  if (ing.spec.ingressClassName) note(`${ref(ing)} uses IngressClass "${ing.spec.ingressClassName}" (installed by the ingress controller, not by these manifests)`);
}

// 12. In-cluster addresses resolve and NetworkPolicies let the traffic through
// Addresses found in container command/args/env values and in ConfigMaps:
//   http(s)://<service>[.<namespace>[.svc[.cluster.local]]]:<port>
//   [http(s)://]<service>.<namespace>.svc[.cluster.local]:<port>
//   [http(s)://]<pod>.<service>.<namespace>.svc[.cluster.local]:<port>
// (the last one: a pod's own DNS name through a headless Service; without a
// scheme only the fully qualified forms count). Container values are read after
// Kubernetes' $(VAR) expansion, where a fieldRef metadata.name is the name the
// controller gives the pod. The caller of an address in a container is that
// workload; an address a workload gives out for ITSELF (e.g. the core's own
// URL) is called by the workloads that call it otherwise; an address in a
// ConfigMap must be reachable from at least one workload other than its own.
const HOST_LABEL = '[a-z0-9](?:[-a-z0-9]*[a-z0-9])?';
const ADDR_RE = new RegExp(`(https?://)?(${HOST_LABEL}(?:\\.${HOST_LABEL})*):(\\d+)`, 'g');
const UNNAMED_POD = 'stepflow-verify-unnamed-pod';
function serviceUrls(text, defaultNs) {
  const out = [];
  text = String(text);
  for (const m of text.matchAll(ADDR_RE)) {
    const [url, scheme, host, port] = m;
    if (!scheme && m.index > 0 && /[-\w./:@$()]/.test(text[m.index - 1])) continue; // inside a longer token
    let labels = host.split('.');
    if (labels.length > 3 && labels.slice(-3).join('.') === 'svc.cluster.local') labels = labels.slice(0, -2);
    const fq = labels.length > 1 && labels.at(-1) === 'svc';
    if (fq) labels = labels.slice(0, -1);
    if (!scheme && !fq) continue;
    if (!fq && labels.length === 2 && !appliedNs.has(labels[1])) continue; // an external host name
    if (!fq && labels.length > 2) continue; // an external host name
    if (labels.length === 3) out.push({ url, pod: labels[0], svc: labels[1], ns: labels[2], port: Number(port) });
    else if (labels.length <= 2) out.push({ url, svc: labels[0], ns: labels[1] ?? defaultNs, port: Number(port) });
    else out.push({ url, error: `"${host}" is neither <service>.<namespace>.svc nor <pod>.<service>.<namespace>.svc` });
  }
  return out;
}
// A container's command, args and env values after $(VAR) expansion (one
// list per pod name the controller may give the pod).
function expandedTexts(w, c) {
  const pods = podNames(w) ?? [UNNAMED_POD];
  return pods.flatMap((pod) => {
    const vars = new Map();
    const expand = (s) => String(s).replace(/\$\$|\$\(([A-Za-z_][-._A-Za-z0-9]*)\)/g, (all, n) => (all === '$$' ? '$' : vars.has(n) ? vars.get(n) : all));
    const envTexts = [];
    for (const e of c.env ?? []) {
      let v;
      if (e.value !== undefined) v = expand(e.value);
      else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') v = pod;
      else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') v = w.metadata.namespace;
      if (v === undefined) continue;
      vars.set(e.name, v);
      envTexts.push(v);
    }
    return [...(c.command ?? []).map(expand), ...(c.args ?? []).map(expand), ...envTexts];
  });
}
const nsLabels = (ns) => ({ 'kubernetes.io/metadata.name': ns, ...labelsOf(nsObj(ns)) });
function policyTypes(np) {
  return np.spec.policyTypes ?? ['Ingress', ...(np.spec.egress ? ['Egress'] : [])];
}
function peerMatches(peer, policyNs, other) {
  if (peer.ipBlock) return false; // ipBlocks are for addresses outside the cluster
  const nsOk = peer.namespaceSelector ? selectorMatches(peer.namespaceSelector, nsLabels(other.metadata.namespace)) : other.metadata.namespace === policyNs;
  return nsOk && (peer.podSelector ? selectorMatches(peer.podSelector, podLabels(other)) : true);
}
function rulePortMatches(rulePorts, cport) {
  if (!rulePorts || rulePorts.length === 0) return true;
  return rulePorts.some((p) => (p.protocol ?? 'TCP') === (cport.protocol ?? 'TCP') && (p.port === undefined
    || (typeof p.port === 'number' ? (p.port === cport.containerPort || (p.endPort !== undefined && cport.containerPort >= p.port && cport.containerPort <= p.endPort)) : p.port === cport.name)));
}
// Is traffic from workload `src` to container port `cport` of workload `dst` allowed?
function allowed(src, dst, cport) {
  const why = [];
  const eg = byKind('NetworkPolicy').filter((np) => np.metadata.namespace === src.metadata.namespace
    && policyTypes(np).includes('Egress') && selectorMatches(np.spec.podSelector, podLabels(src)));
  const egOk = eg.length === 0 || eg.some((np) => (np.spec.egress ?? []).some((r) => ((r.to ?? []).length === 0 || r.to.some((p) => peerMatches(p, np.metadata.namespace, dst))) && rulePortMatches(r.ports, cport)));
  if (!egOk) why.push(`egress of ${ref(src)} denied by ${eg.map(ref).join(', ')}`);
  const ing = byKind('NetworkPolicy').filter((np) => np.metadata.namespace === dst.metadata.namespace
    && policyTypes(np).includes('Ingress') && selectorMatches(np.spec.podSelector, podLabels(dst)));
  const ingOk = ing.length === 0 || ing.some((np) => (np.spec.ingress ?? []).some((r) => ((r.from ?? []).length === 0 || r.from.some((p) => peerMatches(p, np.metadata.namespace, src))) && rulePortMatches(r.ports, cport)));
  if (!ingOk) why.push(`ingress of ${ref(dst)} denied by ${ing.map(ref).join(', ')}`);
  return why;
}
const containerPort = (w, port) => (podTemplate(w).spec.containers ?? []).flatMap((c) => c.ports ?? [])
  .find((p) => (typeof port === 'number' ? p.containerPort === port : p.name === port));
// Resolve an address to Service -> workload -> container port; returns {error} or {dst, cport, svc}.
// Through a headless Service, DNS answers with pod addresses, so the port is the pods' own.
function resolveUrl(u) {
  if (u.error) return u;
  const svc = inNs(services, u.ns).find((s) => s.metadata.name === u.svc);
  if (!svc) return { error: `Service "${u.svc}" does not exist in namespace ${u.ns}` };
  const headless = svc.spec.clusterIP === 'None';
  const ws = inNs(workloads, u.ns).filter((w) => mapSelectorMatches(svc.spec.selector, podLabels(w)));
  if (u.pod !== undefined) {
    // <pod>.<service>: a record exists for a pod whose hostname is <pod> and whose
    // subdomain is <service>, a headless Service selecting it (a StatefulSet's
    // pods get both from their name and spec.serviceName).
    if (!headless) return { error: `${ref(svc)} is not headless (clusterIP ${svc.spec.clusterIP}); "${u.pod}.${u.svc}" has no DNS record` };
    const owner = ws.find((w) => (w.kind === 'StatefulSet' && w.spec.serviceName === u.svc && podNames(w).includes(u.pod))
      || (podTemplate(w).spec.hostname === u.pod && podTemplate(w).spec.subdomain === u.svc));
    if (!owner) {
      const sts = ws.filter((w) => w.kind === 'StatefulSet');
      return { error: `no pod "${u.pod}" behind ${ref(svc)}: ${sts.length ? sts.map((w) => `${ref(w)} (serviceName ${w.spec.serviceName}) has pods ${podNames(w).join(', ')}`).join('; ') : `it selects ${names(ws)}, no StatefulSet`}` };
    }
    const cport = containerPort(owner, u.port);
    if (!cport) return { error: `port ${u.port} is not a containerPort of ${ref(owner)}` };
    return { svc, dst: owner, cport, pod: u.pod };
  }
  if (ws.length !== 1) return { error: `${ref(svc)} selects ${ws.length} workloads (${names(ws)})` };
  if (headless) {
    const cport = containerPort(ws[0], u.port);
    if (!cport) return { error: `${ref(svc)} is headless: port ${u.port} must be a containerPort of ${ref(ws[0])}` };
    return { svc, dst: ws[0], cport };
  }
  const sp = (svc.spec.ports ?? []).find((p) => p.port === u.port);
  if (!sp) return { error: `${ref(svc)} has no port ${u.port} (ports: ${(svc.spec.ports ?? []).map((p) => p.port).join(', ')})` };
  const tp = sp.targetPort ?? sp.port;
  const cport = containerPort(ws[0], tp);
  if (!cport) return { error: `${ref(svc)} targetPort ${tp} is not a containerPort of ${ref(ws[0])}` };
  return { svc, dst: ws[0], cport };
}
const usesDnsAllowed = (w) => {
  const eg = byKind('NetworkPolicy').filter((np) => np.metadata.namespace === w.metadata.namespace
    && policyTypes(np).includes('Egress') && selectorMatches(np.spec.podSelector, podLabels(w)));
  return eg.length === 0 || eg.some((np) => (np.spec.egress ?? []).some((r) => rulePortMatches(r.ports, { containerPort: 53, protocol: 'UDP' })
    && ((r.to ?? []).length === 0 || r.to.some((p) => p.namespaceSelector || p.ipBlock))));
};
const target_ = (r) => `${ref(r.svc)} -> ${r.pod ? `pod ${r.pod} of ` : ''}${ref(r.dst)}:${r.cport.containerPort}`;

// Every address in every workload, resolved once.
const calls = workloads.flatMap((w) => {
  const seen = new Set();
  return allContainers(podTemplate(w).spec).flatMap((c) => expandedTexts(w, c))
    .flatMap((t) => serviceUrls(t, w.metadata.namespace))
    .filter((u) => !seen.has(u.url) && seen.add(u.url))
    .map((u) => (u.pod === UNNAMED_POD
      ? { w, u: { ...u, url: u.url.replace(UNNAMED_POD, '<pod name>') }, r: { error: `the host is built from the pod's own metadata.name, but a ${w.kind}'s pods get generated names and no hostname/subdomain: "<pod name>.${u.svc}" has no DNS record` } }
      : { w, u, r: resolveUrl(u) }));
});
for (const w of workloads) {
  const own = calls.filter((c) => c.w === w);
  const outgoing = own.filter((c) => c.r.dst !== w);
  if (outgoing.length && !usesDnsAllowed(w)) fail('caller may resolve service names (egress UDP/53)', ref(w), `calls ${outgoing.map((c) => c.u.url).join(', ')} but no NetworkPolicy egress rule allows DNS (UDP 53)`);
  for (const { u, r } of own) {
    const obj = `${ref(w)} -> ${u.url}`;
    if (r.error) { fail('URL resolves to a workload port', obj, r.error); continue; }
    if (r.dst !== w) {
      const why = allowed(w, r.dst, r.cport);
      if (why.length) fail('NetworkPolicies allow the call', obj, why.join('\n'));
      else pass('URL resolves and NetworkPolicies allow the call', obj, target_(r));
      continue;
    }
    // The workload's own address, given out to its callers.
    const callers = [...new Set(calls.filter((c) => c.w !== w && c.r.dst === w).map((c) => c.w))];
    if (callers.length === 0) {
      const any = inNs(workloads, w.metadata.namespace).filter((x) => x !== w && allowed(x, w, r.cport).length === 0);
      if (any.length) pass('own address resolves and its callers may reach it', obj, `${target_(r)}, reachable from ${names(any)}`);
      else fail('own address resolves and its callers may reach it', obj, `${target_(r)}, but NetworkPolicies let no other workload of ${w.metadata.namespace} reach it`);
      continue;
    }
    const problems = callers.flatMap((x) => [...allowed(x, w, r.cport).map((m) => `from ${ref(x)}: ${m}`), ...(usesDnsAllowed(x) ? [] : [`${ref(x)} may not resolve DNS (no NetworkPolicy egress rule allows UDP 53)`])]);
    if (problems.length) fail('own address resolves and its callers may reach it', obj, `${target_(r)}; its callers ${names(callers)}:\n${problems.join('\n')}`);
    else pass('own address resolves and its callers may reach it', obj, `${target_(r)}, from ${names(callers)}`);
  }
}
const cmKinds = items(kubectlJson(['get', 'configmaps', '--all-namespaces']).json).filter((c) => appliedNs.has(c.metadata.namespace) && c.metadata.name !== 'kube-root-ca.crt');
for (const cm of cmKinds) {
  const urls = Object.values(cm.data ?? {}).flatMap((t) => serviceUrls(t, cm.metadata.namespace));
  // the workloads that read this ConfigMap call its URLs by DNS name
  const consumers = inNs(workloads, cm.metadata.namespace).filter((w) => {
    const s = podTemplate(w).spec;
    return (s.volumes ?? []).some((v) => v.configMap?.name === cm.metadata.name
      || (v.projected?.sources ?? []).some((x) => x.configMap?.name === cm.metadata.name))
      || allContainers(s).some((c) => (c.envFrom ?? []).some((e) => e.configMapRef?.name === cm.metadata.name)
        || (c.env ?? []).some((e) => e.valueFrom?.configMapKeyRef?.name === cm.metadata.name));
  });
  if (urls.length) {
    for (const w of consumers) {
      if (usesDnsAllowed(w)) pass('caller may resolve service names (egress UDP/53)', ref(w), `reads ${ref(cm)}`);
      else fail('caller may resolve service names (egress UDP/53)', ref(w), `reads ${ref(cm)} with ${urls.map((u) => u.url).join(', ')}, but no NetworkPolicy egress rule allows DNS (UDP 53)`);
    }
  }
  for (const u of urls) {
    const obj = `${ref(cm)} -> ${u.url}`;
    const r = resolveUrl(u);
    if (r.error) { fail('URL resolves to a workload port', obj, r.error); continue; }
    const callers = inNs(workloads, cm.metadata.namespace).filter((w) => w !== r.dst && allowed(w, r.dst, r.cport).length === 0);
    if (callers.length) pass('URL resolves and some workload may call it', obj, `${ref(r.dst)}:${r.cport.containerPort} reachable from ${names(callers)}`);
    else fail('URL resolves and some workload may call it', obj, `${target_(r)}, but NetworkPolicies let no other workload of ${cm.metadata.namespace} reach it`);
  }
}

// 12b. egress to addresses stays outside the cluster ----------------------
// An ipBlock egress rule must not cover the API server: its Service address
// (the ClusterIP this server gave `default/kubernetes`) must fall into an
// `except` of every ipBlock whose range holds it. Checked for every workload
// that some policy lets out by ipBlock.
const ipv4 = (a) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const inCidr4 = (addr, cidr) => {
  const [net, bits] = cidr.split('/');
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(net) || !/^\d+\.\d+\.\d+\.\d+$/.test(addr)) return false;
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(addr) / size) === Math.floor(ipv4(net) / size);
};
const apiServerIp = kubectlJson(['get', 'service', 'kubernetes', '-n', 'default']).json?.spec?.clusterIP;
for (const w of workloads) {
  const eg = byKind('NetworkPolicy').filter((np) => np.metadata.namespace === w.metadata.namespace
    && policyTypes(np).includes('Egress') && selectorMatches(np.spec.podSelector, podLabels(w)));
  const blocks = eg.flatMap((np) => (np.spec.egress ?? []).flatMap((r) => (r.to ?? []).filter((p) => p.ipBlock).map((p) => ({ np, block: p.ipBlock }))));
  if (blocks.length === 0) continue;
  if (!apiServerIp) { fail('address egress excludes the API server', ref(w), 'the server has no default/kubernetes Service address to check against'); continue; }
  const open = blocks.filter(({ block }) => inCidr4(apiServerIp, block.cidr) && !(block.except ?? []).some((e) => inCidr4(apiServerIp, e)));
  if (open.length) fail('address egress excludes the API server', ref(w), open.map(({ np, block }) => `${ref(np)}: ipBlock ${block.cidr} (except ${fmt(block.except ?? [])}) reaches the API server's Service address ${apiServerIp}`).join('\n'));
  else pass('address egress excludes the API server', ref(w), `${blocks.length} ipBlock(s); ${apiServerIp} excluded`);
}

// 13. labels on everything ---------------------------------------------
// app=stepflow, component=<its component: core, python-sdk, inference, a team's
// worker>, environment=<the preset's name> and some app.kubernetes.io/* label on
// every object of the kit the server returned from the apply. component may only
// be absent on a Namespace and on a NetworkPolicy that does not select exactly one
// workload (default deny, DNS). environment must equal the namespace's; a pod
// template carries the workload's app/component/environment. Objects a team adds
// beside the kit's (app.kubernetes.io/managed-by naming another manager) are not
// the kit's to label.
const MANAGED_BY = 'app.kubernetes.io/managed-by';
const KIT_MANAGER = 'stepflow-kit';
const LABEL_VALUE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const isForeign = (o) => labelsOf(o)[MANAGED_BY] !== undefined && labelsOf(o)[MANAGED_BY] !== KIT_MANAGER;
for (const o of applied) {
  const l = labelsOf(o);
  if (isForeign(o)) { note(`${ref(o)} is managed by ${l[MANAGED_BY]}, not by the kit: its labels are not checked`); continue; }
  const problems = [];
  if (l.app !== 'stepflow') problems.push(`app=${fmt(l.app)} (want "stepflow")`);
  if (!LABEL_VALUE.test(l.environment ?? '')) problems.push(`environment=${fmt(l.environment)} (want the environment's name)`);
  if (!Object.keys(l).some((k) => k.startsWith('app.kubernetes.io/'))) problems.push('no app.kubernetes.io/* label');
  const shared = o.kind === 'Namespace' || (o.kind === 'NetworkPolicy'
    && inNs(workloads, o.metadata.namespace).filter((w) => selectorMatches(o.spec.podSelector, podLabels(w))).length !== 1);
  if (!shared && !LABEL_VALUE.test(l.component ?? '')) problems.push(`component=${fmt(l.component)} (want the component's name: core, python-sdk, inference or a worker's)`);
  if (!shared && l['app.kubernetes.io/component'] !== undefined && l['app.kubernetes.io/component'] !== l.component) problems.push(`component=${fmt(l.component)} but app.kubernetes.io/component=${fmt(l['app.kubernetes.io/component'])}`);
  const nsEnv = o.metadata.namespace ? labelsOf(nsObj(o.metadata.namespace)).environment : undefined;
  if (nsEnv !== undefined && l.environment !== nsEnv) problems.push(`environment=${fmt(l.environment)}, but Namespace/${o.metadata.namespace} has environment=${fmt(nsEnv)}`);
  if (WORKLOAD_KINDS.includes(o.kind)) {
    const t = podLabels(o);
    for (const k of ['app', 'component', 'environment']) if (t[k] !== l[k]) problems.push(`pod template ${k}=${fmt(t[k])} differs from the workload's ${fmt(l[k])}`);
  }
  if (problems.length) fail('labels', ref(o), problems.join('\n'));
  else pass('labels', ref(o));
}

// 14. installations sharing a namespace stay apart ------------------------
// Where the kit's pod templates in one namespace carry more than one
// app.kubernetes.io/instance (two installations, different name prefixes), every
// selector of the kit's objects there (Service selector, workload selector,
// topology spread and pod (anti-)affinity label selectors, PDB selector,
// NetworkPolicy podSelector and its same-namespace pod peers) selects pods of its
// own installation only, and some of them; a team's own object (a NetworkPolicy
// on a StepFlow component, an anti-affinity to it) selects the pods of at most one
// installation. An empty selector ({}: every pod of the namespace, e.g. a default
// deny) is reported, not failed. All read back from the server.
function selectorsOf(o) {
  const out = [];
  const add = (where, sel, asMap = false) => { if (sel) out.push({ where, sel: asMap ? { matchLabels: sel } : sel }); };
  if (o.kind === 'Service') add('spec.selector', o.spec.selector, true);
  if (o.kind === 'PodDisruptionBudget') add('spec.selector', o.spec.selector);
  if (WORKLOAD_KINDS.includes(o.kind)) {
    add('spec.selector', o.spec.selector);
    const spec = podTemplate(o).spec;
    (spec.topologySpreadConstraints ?? []).forEach((t, i) => add(`topologySpreadConstraints[${i}].labelSelector`, t.labelSelector));
    for (const kind of ['podAffinity', 'podAntiAffinity']) {
      for (const mode of ['requiredDuringSchedulingIgnoredDuringExecution', 'preferredDuringSchedulingIgnoredDuringExecution']) {
        (spec.affinity?.[kind]?.[mode] ?? []).forEach((t, i) => {
          const term = t.podAffinityTerm ?? t;
          const local = !term.namespaceSelector && (!term.namespaces || term.namespaces.includes(o.metadata.namespace));
          if (local) add(`affinity.${kind}.${mode}[${i}]`, term.labelSelector);
        });
      }
    }
  }
  if (o.kind === 'NetworkPolicy') {
    add('spec.podSelector', o.spec.podSelector);
    for (const [dir, key] of [['ingress', 'from'], ['egress', 'to']]) {
      (o.spec[dir] ?? []).forEach((r, i) => (r[key] ?? []).forEach((p, j) => {
        const local = !p.namespaceSelector || selectorMatches(p.namespaceSelector, nsLabels(o.metadata.namespace));
        if (p.podSelector && local) add(`${dir}[${i}].${key}[${j}].podSelector`, p.podSelector);
      }));
    }
  }
  return out;
}
const isEmptySelector = (sel) => Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0;
// Which installation an object of the kit belongs to, told by its name rather than
// by the labels under test: every installation has one core, `<prefix>stepflow-core`,
// and every object of the installation is named `<prefix>...` (the longest prefix wins).
const CORE_SUFFIX = 'stepflow-core';
for (const ns of appliedNs) {
  const kitWorkloads = inNs(workloads, ns).filter((w) => labelsOf(w)[MANAGED_BY] === KIT_MANAGER);
  const cores = kitWorkloads.filter((w) => SINGLETON_COMPONENTS.includes(firstLabel(labelsOf(w), COMPONENT_LABELS)) && w.metadata.name.endsWith(CORE_SUFFIX));
  if (cores.length < 2) continue;
  const prefixes = cores.map((w) => w.metadata.name.slice(0, -CORE_SUFFIX.length)).sort((x, y) => y.length - x.length);
  const installationOf = (o) => prefixes.find((p) => o.metadata.name.startsWith(p));
  const label = (p) => `${p}stepflow`;
  note(`Namespace/${ns} holds ${cores.length} installations: ${prefixes.map(label).join(', ')}`);
  // Each installation's pods carry a value of their own.
  const problems = [];
  for (const p of prefixes) {
    const own = kitWorkloads.filter((w) => installationOf(w) === p);
    const values = [...new Set(own.map((w) => podLabels(w)[INSTANCE]))];
    if (values.length !== 1 || values[0] === undefined) problems.push(`${label(p)}: its pod templates carry ${INSTANCE} ${fmt(values)}`);
    const clash = kitWorkloads.filter((w) => installationOf(w) !== p && values.includes(podLabels(w)[INSTANCE]));
    if (clash.length) problems.push(`${label(p)}: ${names(clash)} of another installation carry the same ${INSTANCE}=${fmt(podLabels(clash[0])[INSTANCE])}`);
  }
  if (problems.length) fail('isolation: each installation names its pods', `Namespace/${ns}`, problems.join('\n'));
  else pass('isolation: each installation names its pods', `Namespace/${ns}`, prefixes.map((p) => `${label(p)}: ${INSTANCE}=${podLabels(kitWorkloads.find((w) => installationOf(w) === p))[INSTANCE]}`).join(', '));
  const objects = [...inNs(services, ns), ...inNs(workloads, ns), ...inNs(byKind('PodDisruptionBudget'), ns), ...inNs(byKind('NetworkPolicy'), ns)];
  for (const o of objects) {
    const kitObject = labelsOf(o)[MANAGED_BY] === KIT_MANAGER;
    const own = kitObject ? installationOf(o) : undefined;
    if (kitObject && own === undefined) { fail('isolation: selects only its own installation', ref(o), `its name starts with none of the installations' prefixes (${prefixes.map(fmt).join(', ')})`); continue; }
    for (const { where, sel } of selectorsOf(o)) {
      const obj = `${ref(o)} ${where}`;
      if (isEmptySelector(sel)) { note(`${obj} is empty: every pod of ${ns}, of every installation`); continue; }
      const hit = kitWorkloads.filter((w) => selectorMatches(sel, podLabels(w)));
      const hitInstallations = [...new Set(hit.map(installationOf))];
      const byInstallation = hitInstallations.map((p) => `${label(p)}: ${names(hit.filter((w) => installationOf(w) === p))}`).join('; ');
      if (kitObject) {
        const foreign = hit.filter((w) => installationOf(w) !== own);
        const mustHit = !where.startsWith('affinity.') && !(o.kind === 'NetworkPolicy' && where !== 'spec.podSelector');
        if (foreign.length) fail('isolation: selects only its own installation', obj, `of ${label(own)}; selector ${fmt(sel)} also selects the pods of ${names(foreign)} (${byInstallation})`);
        else if (hit.length === 0 && mustHit) fail('isolation: selects only its own installation', obj, `of ${label(own)}; selector ${fmt(sel)} selects no pod of it`);
        else pass('isolation: selects only its own installation', obj, hit.length ? byInstallation : `of ${label(own)}: none of the kit's pods`);
      } else if (hit.length) {
        if (hitInstallations.length > 1) fail('isolation: a team\'s selector picks one installation', obj, `selector ${fmt(sel)} selects pods of ${hitInstallations.length} installations (${byInstallation})`);
        else pass('isolation: a team\'s selector picks one installation', obj, byInstallation);
      }
    }
  }
}

console.log(`--- ${opts.serverVersion} ${opts.scenario}: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
