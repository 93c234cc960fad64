#!/usr/bin/env node
// Scenario checks of the scheduling tier, run by run.sh against a cluster it
// started: etcd, kube-apiserver, kube-scheduler, kube-controller-manager and
// kwok (simulated nodes), all on 127.0.0.1.
//
//   node checks.mjs --scenario NAME --kubectl K --kubeconfig C --results FILE
//                   [--manifest FILE]... [--apiserver-pid PID] [--work DIR]
//
// Scenarios (each on an empty cluster):
//   prod:<label>  3 CPU nodes in 2 zones + 2 GPU nodes; one prod manifest:
//                 placement, claims, spread, core identity, node maintenance
//   no-gpu        3 CPU nodes only; prod: the GPU pods stay Pending with the
//                 scheduler's reason, everything else runs
//   dev           1 untainted node; dev: everything runs there
//   mutation      as prod, with the GPU toleration removed from the manifest:
//                 the placement check must fail, for the scheduler's reason
//   scale         50 nodes, the manifests of --manifest (many installations)
//                 applied at once: time until every pod runs, API server memory
//
// Each check appends one JSON line {scenario, check, object, ok, message} to
// --results; {note} lines carry what the summary reports besides pass/fail.
// Exit 0 when this scenario's checks passed, 1 when one failed, 2 on misuse.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');

// --- arguments ------------------------------------------------------------------
const USAGE = 'usage: checks.mjs --scenario NAME --kubectl K --kubeconfig C --results FILE [--manifest FILE]... [--apiserver-pid PID] [--work DIR]';
const opt = { manifests: [] };
{
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i += 2) {
    const [k, v] = [a[i], a[i + 1]];
    if (v === undefined) usage(`missing value for ${k}`);
    if (k === '--scenario') opt.scenario = v;
    else if (k === '--kubectl') opt.kubectl = v;
    else if (k === '--kubeconfig') opt.kubeconfig = v;
    else if (k === '--results') opt.results = v;
    else if (k === '--manifest') opt.manifests.push(v);
    else if (k === '--apiserver-pid') opt.apiserverPid = v;
    else if (k === '--work') opt.work = v;
    else usage(`unknown argument ${k}`);
  }
  for (const k of ['scenario', 'kubectl', 'kubeconfig', 'results']) if (!opt[k]) usage(`--${k} is required`);
  opt.work ??= path.dirname(opt.results);
}
function usage(msg) {
  process.stderr.write(`checks.mjs: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

// --- results ----------------------------------------------------------------------
let failures = 0;
const sinks = [];
function record(check, object, ok, message = '') {
  const row = { scenario: opt.scenario, check, object, ok: Boolean(ok), message: String(message) };
  if (sinks.length) { sinks[sinks.length - 1].push(row); return ok; }
  fs.appendFileSync(opt.results, JSON.stringify(row) + '\n');
  if (!ok) failures++;
  const first = String(message).split('\n')[0];
  log(`${ok ? 'ok  ' : 'FAIL'} ${check}: ${object}${ok ? (first ? ` (${first.slice(0, 160)})` : '') : `\n       ${String(message).split('\n').join('\n       ')}`}`);
  return ok;
}
function note(text) {
  fs.appendFileSync(opt.results, JSON.stringify({ scenario: opt.scenario, note: text }) + '\n');
  log(`note ${text}`);
}
/** Runs fn with record() collecting into a list instead of the results file. */
async function captured(fn) {
  const rows = [];
  sinks.push(rows);
  try { await fn(); } finally { sinks.pop(); }
  return rows;
}
function log(msg) {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[scheduling ${t}] ${msg}\n`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- API access (direct HTTPS with the kubeconfig's client certificate) ----------
const kc = fs.readFileSync(opt.kubeconfig, 'utf8');
const kcField = (name) => {
  const m = kc.match(new RegExp(`^\\s*${name}:\\s*(\\S+)\\s*$`, 'm'));
  if (!m) usage(`kubeconfig ${opt.kubeconfig} has no ${name}`);
  return m[1];
};
const SERVER = new URL(kcField('server'));
const agent = new https.Agent({
  ca: fs.readFileSync(kcField('certificate-authority')),
  cert: fs.readFileSync(kcField('client-certificate')),
  key: fs.readFileSync(kcField('client-key')),
  keepAlive: true,
  maxSockets: 8,
});
function api(method, p, body, contentType = 'application/json') {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = https.request({
      host: SERVER.hostname, port: SERVER.port, path: p, method, agent,
      headers: { Accept: 'application/json', ...(data ? { 'Content-Type': contentType, 'Content-Length': data.length } : {}) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json;
        try { json = text ? JSON.parse(text) : {}; } catch { json = { raw: text }; }
        if (res.statusCode >= 400) {
          const e = new Error(`${method} ${p}: ${res.statusCode} ${json.message ?? text}`);
          e.status = res.statusCode;
          reject(e);
        } else resolve(json);
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}
const get = (p) => api('GET', p);
const create = (p, obj) => api('POST', p, obj);
const items = async (p) => (await get(p)).items ?? [];

// --- kubectl (the procedures an operator runs: apply, cordon, drain) -------------
function kubectl(args, { timeoutMs = 300_000 } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(opt.kubectl, ['--kubeconfig', opt.kubeconfig, ...args], {
      env: { ...process.env, KUBECACHEDIR: path.join(opt.work, 'kcache') },
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), out, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

// --- the simulated cluster --------------------------------------------------------
const GPU_LABEL = 'accelerator';
const GPU_VALUE = 'nvidia-gpu';
const GPU_RESOURCE = 'nvidia.com/gpu';
let nodeSeq = 0;
function nodeObject(name, zone, gpu) {
  nodeSeq++;
  const capacity = gpu
    ? { cpu: '16', memory: '64Gi', pods: '110', 'ephemeral-storage': '200Gi', [GPU_RESOURCE]: '2' }
    : { cpu: '8', memory: '32Gi', pods: '110', 'ephemeral-storage': '100Gi' };
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: {
      name,
      annotations: { 'kwok.x-k8s.io/node': 'fake' },
      labels: {
        'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64',
        'topology.kubernetes.io/zone': zone, 'topology.kubernetes.io/region': 'verify',
        type: 'kwok', ...(gpu ? { [GPU_LABEL]: GPU_VALUE } : {}),
      },
    },
    spec: {
      podCIDR: `10.${100 + Math.floor(nodeSeq / 250)}.${nodeSeq % 250}.0/24`,
      ...(gpu ? { taints: [{ key: GPU_RESOURCE, effect: 'NoSchedule' }] } : {}),
    },
    status: { capacity, allocatable: capacity },
  };
}
const LAYOUTS = {
  // the cluster a production StepFlow lands on
  standard: [['cpu-a1', 'zone-a', false], ['cpu-a2', 'zone-a', false], ['cpu-b1', 'zone-b', false],
    ['gpu-a1', 'zone-a', true], ['gpu-b1', 'zone-b', true]],
  'cpu-only': [['cpu-a1', 'zone-a', false], ['cpu-a2', 'zone-a', false], ['cpu-b1', 'zone-b', false]],
  single: [['node-1', 'zone-a', false]],
  scale: [
    ...Array.from({ length: 30 }, (_, i) => [`cpu-${String(i + 1).padStart(2, '0')}`, `zone-${'abc'[i % 3]}`, false]),
    ...Array.from({ length: 20 }, (_, i) => [`gpu-${String(i + 1).padStart(2, '0')}`, `zone-${'ab'[i % 2]}`, true]),
  ],
};

async function setupCluster(layout, pvCount) {
  // the controller-manager has started when it has made the default namespace's ServiceAccount
  await waitFor('kube-controller-manager created ServiceAccount default/default', 90, async () => {
    try { await get('/api/v1/namespaces/default/serviceaccounts/default'); return true; } catch { return false; }
  });
  for (const [name, zone, gpu] of LAYOUTS[layout]) await create('/api/v1/nodes', nodeObject(name, zone, gpu));
  // what the GPU operator installs: the RuntimeClass, without scheduling rules of its own
  await create('/apis/node.k8s.io/v1/runtimeclasses', { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'nvidia' }, handler: 'nvidia' });
  // the default StorageClass: no provisioner, pre-created volumes bound by the
  // scheduler's VolumeBinding plugin once a pod that uses the claim is placed
  await create('/apis/storage.k8s.io/v1/storageclasses', {
    apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass',
    metadata: { name: 'standard', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: 'kubernetes.io/no-provisioner', volumeBindingMode: 'WaitForFirstConsumer', reclaimPolicy: 'Retain',
  });
  for (let i = 1; i <= pvCount; i++) {
    await create('/api/v1/persistentvolumes', {
      apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: `pv-${String(i).padStart(3, '0')}` },
      spec: {
        capacity: { storage: '64Gi' }, accessModes: ['ReadWriteOnce'], storageClassName: 'standard',
        persistentVolumeReclaimPolicy: 'Retain', hostPath: { path: `/var/lib/simulated-volumes/pv-${i}` },
      },
    });
  }
  const want = LAYOUTS[layout].length;
  await waitFor(`${want} nodes Ready (kwok) and schedulable`, 120, async () => {
    const nodes = await items('/api/v1/nodes');
    return nodes.filter((n) => isReady(n) && !(n.spec.taints ?? []).some((t) => t.key.startsWith('node.kubernetes.io/'))).length === want;
  });
  log(`cluster: ${want} nodes (${layout}), RuntimeClass nvidia, default StorageClass standard, ${pvCount} PersistentVolumes`);
}

async function waitFor(what, seconds, fn, { interval = 1000, quiet = false } = {}) {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > end) {
      if (quiet) return false;
      throw new Error(`timed out after ${seconds}s waiting for: ${what}`);
    }
    await sleep(interval);
  }
}

// --- object helpers ----------------------------------------------------------------
const isReady = (o) => (o.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
const podRunning = (p) => p.status?.phase === 'Running' && isReady(p) && !p.metadata.deletionTimestamp;
const gpuRequest = (spec) => [...(spec.containers ?? []), ...(spec.initContainers ?? [])]
  .reduce((n, c) => n + Number(c.resources?.limits?.[GPU_RESOURCE] ?? c.resources?.requests?.[GPU_RESOURCE] ?? 0), 0);
const isGpuNode = (n) => n.metadata.labels?.[GPU_LABEL] === GPU_VALUE;
const matches = (labels, sel) => Object.entries(sel ?? {}).every(([k, v]) => labels?.[k] === v);
function tolerates(tolerations, taint) {
  return (tolerations ?? []).some((t) => {
    if (t.effect && t.effect !== taint.effect) return false;
    if (t.operator === 'Exists') return !t.key || t.key === taint.key;
    return t.key === taint.key && (t.value ?? '') === (taint.value ?? '');
  });
}
/** Nodes a pod template may land on: its nodeSelector matches and it tolerates every hard taint. */
function eligibleNodes(nodes, podSpec) {
  return nodes.filter((n) => !n.spec.unschedulable && matches(n.metadata.labels, podSpec.nodeSelector) &&
    (n.spec.taints ?? []).filter((t) => t.effect !== 'PreferNoSchedule').every((t) => tolerates(podSpec.tolerations, t)));
}

async function workloads(ns) {
  const [deps, stss, hpas] = await Promise.all([
    items(`/apis/apps/v1/namespaces/${ns}/deployments`),
    items(`/apis/apps/v1/namespaces/${ns}/statefulsets`),
    items(`/apis/autoscaling/v2/namespaces/${ns}/horizontalpodautoscalers`),
  ]);
  return [...deps.map((o) => ({ kind: 'Deployment', o })), ...stss.map((o) => ({ kind: 'StatefulSet', o }))].map(({ kind, o }) => {
    const hpa = hpas.find((h) => h.spec.scaleTargetRef.kind === kind && h.spec.scaleTargetRef.name === o.metadata.name);
    return { kind, name: o.metadata.name, obj: o, replicas: o.spec.replicas ?? 1, minReplicas: hpa?.spec.minReplicas };
  });
}

/** Whether every workload of the installation runs at its wanted size, and what is missing. */
async function installationState(ns) {
  const [ws, pods] = await Promise.all([workloads(ns), items(`/api/v1/namespaces/${ns}/pods`)]);
  const problems = [];
  let want = 0;
  for (const w of ws) {
    if (w.minReplicas !== undefined && w.replicas < w.minReplicas) problems.push(`${w.kind}/${w.name}: ${w.replicas} replicas, HPA minimum ${w.minReplicas} not applied yet`);
    const st = w.obj.status ?? {};
    if ((st.readyReplicas ?? 0) !== w.replicas || (st.replicas ?? 0) !== w.replicas) problems.push(`${w.kind}/${w.name}: ${st.readyReplicas ?? 0}/${w.replicas} ready`);
    want += w.replicas;
  }
  for (const p of pods) if (!podRunning(p)) problems.push(`pod/${p.metadata.name}: ${podWhy(p)}`);
  const running = pods.filter(podRunning).length;
  if (running !== want) problems.push(`${running} pods running, ${want} wanted`);
  if (ws.length === 0) problems.push('no Deployment or StatefulSet in the namespace');
  return { ok: problems.length === 0, problems, pods, workloads: ws };
}
function podWhy(p) {
  if (p.metadata.deletionTimestamp) return 'terminating';
  const sched = (p.status?.conditions ?? []).find((c) => c.type === 'PodScheduled');
  if (sched && sched.status !== 'True') return `${p.status.phase}, not scheduled: ${sched.reason}: ${sched.message}`;
  return `${p.status?.phase ?? 'no status'} on ${p.spec.nodeName ?? '-'}${isReady(p) ? '' : ', not Ready'}`;
}
async function schedulerEvents(ns, podName) {
  const evs = await items(`/api/v1/namespaces/${ns}/events`);
  return evs.filter((e) => e.reason === 'FailedScheduling' && e.involvedObject?.name === podName &&
    (e.reportingComponent === 'default-scheduler' || e.source?.component === 'default-scheduler'));
}

/** Check: every pod of the installation scheduled and Running within the time. */
async function checkAllRunning(ns, seconds, label = 'every pod scheduled and Running') {
  const t0 = Date.now();
  let st;
  await waitFor('installation settled', seconds, async () => { st = await installationState(ns); return st.ok; }, { quiet: true });
  if (st.ok) return record(label, `namespace ${ns}`, true, `${st.pods.length} pods after ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  const lines = [...st.problems];
  for (const p of st.pods.filter((x) => !x.spec.nodeName)) {
    const evs = await schedulerEvents(ns, p.metadata.name);
    if (evs.length) lines.push(`  scheduler (${evs.at(-1).reason}) on pod/${p.metadata.name}: ${evs.at(-1).message}`);
  }
  return record(label, `namespace ${ns}`, false, `not settled after ${seconds}s:\n${lines.join('\n')}`);
}

// --- placement checks ---------------------------------------------------------------
async function checkPlacement(nss, { expectGpuPods = true, prefix = '' } = {}) {
  const nodes = await items('/api/v1/nodes');
  const byName = new Map(nodes.map((n) => [n.metadata.name, n]));
  const allPods = (await items('/api/v1/pods')).filter((p) => p.spec.nodeName);
  const mine = allPods.filter((p) => nss.includes(p.metadata.namespace));
  const gpuPods = mine.filter((p) => gpuRequest(p.spec) > 0);
  const where = nss.length === 1 ? `namespace ${nss[0]}` : `${nss.length} namespaces`;
  const off = gpuPods.filter((p) => !isGpuNode(byName.get(p.spec.nodeName)));
  record(`${prefix}GPU pods only on GPU nodes`, where,
    off.length === 0 && (!expectGpuPods || gpuPods.length > 0),
    off.length ? off.map((p) => `${p.metadata.namespace}/${p.metadata.name} on ${p.spec.nodeName}`).join('\n')
      : gpuPods.length ? `${gpuPods.length} GPU pods on ${[...new Set(gpuPods.map((p) => p.spec.nodeName))].join(', ')}` : 'no GPU pod is running');
  const intruders = allPods.filter((p) => isGpuNode(byName.get(p.spec.nodeName)) && gpuRequest(p.spec) === 0);
  record(`${prefix}nothing else on the GPU nodes`, 'all namespaces', intruders.length === 0,
    intruders.map((p) => `${p.metadata.namespace}/${p.metadata.name} (no ${GPU_RESOURCE} request) on ${p.spec.nodeName}`).join('\n'));
  const used = new Map();
  for (const p of allPods) used.set(p.spec.nodeName, (used.get(p.spec.nodeName) ?? 0) + gpuRequest(p.spec));
  const over = [...used].filter(([n, u]) => u > Number(byName.get(n)?.status.allocatable?.[GPU_RESOURCE] ?? 0));
  record(`${prefix}GPUs not overcommitted`, 'all nodes', over.length === 0, over.map(([n, u]) => `${n}: ${u} GPUs in use`).join('\n'));
}

async function checkClaims(nss, prefix = '') {
  let total = 0;
  const bad = [];
  for (const ns of nss) {
    const pvcs = await items(`/api/v1/namespaces/${ns}/persistentvolumeclaims`);
    total += pvcs.length;
    for (const c of pvcs) if (c.status?.phase !== 'Bound') bad.push(`${ns}/${c.metadata.name}: ${c.status?.phase ?? 'no phase'}`);
  }
  record(`${prefix}every claim bound`, nss.length === 1 ? `namespace ${nss[0]}` : `${nss.length} namespaces`,
    total > 0 && bad.length === 0, bad.length ? bad.join('\n') : total ? `${total} claims Bound` : 'no PersistentVolumeClaim found');
}

async function checkSpread(ns) {
  const nodes = await items('/api/v1/nodes');
  const zoneOf = new Map(nodes.map((n) => [n.metadata.name, n.metadata.labels['topology.kubernetes.io/zone']]));
  const { workloads: ws, pods } = await installationState(ns);
  let checked = 0;
  for (const w of ws) {
    if (w.replicas < 2) continue;
    checked++;
    const sel = w.obj.spec.selector.matchLabels;
    const mine = pods.filter((p) => podRunning(p) && matches(p.metadata.labels, sel));
    const perNode = {};
    for (const p of mine) perNode[p.spec.nodeName] = (perNode[p.spec.nodeName] ?? 0) + 1;
    const eligible = eligibleNodes(nodes, w.obj.spec.template.spec).length;
    const want = Math.min(w.replicas, eligible);
    const used = Object.keys(perNode).length;
    const zones = [...new Set(Object.keys(perNode).map((n) => zoneOf.get(n)))];
    record('replicas spread across nodes', `${w.kind}/${w.name} (${ns})`, used >= want,
      `${w.replicas} replicas on ${used} of ${eligible} eligible nodes (${Object.entries(perNode).map(([n, c]) => `${n}:${c}`).join(' ')}; zones ${zones.join(',')})`);
  }
  if (!checked) note(`${ns}: no workload with two or more replicas; spread not applicable`);
}

// --- the core keeps its identity and its claim ---------------------------------------
async function checkCoreIdentity(ns) {
  const stss = await items(`/apis/apps/v1/namespaces/${ns}/statefulsets`);
  const sts = stss.find((s) => (s.spec.volumeClaimTemplates ?? []).some((t) => t.metadata.name === 'state'));
  if (!record('core is a StatefulSet of one pod with a state claim template', `namespace ${ns}`, sts && sts.spec.replicas === 1,
    sts ? `${sts.metadata.name}: replicas ${sts.spec.replicas}` : 'no StatefulSet with a volumeClaimTemplate named state')) return;
  const name = `${sts.metadata.name}-0`;
  const before = await get(`/api/v1/namespaces/${ns}/pods/${name}`);
  const claimName = (before.spec.volumes ?? []).find((v) => v.name === 'state')?.persistentVolumeClaim?.claimName;
  const claim0 = await get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${claimName}`);
  const node0 = before.spec.nodeName;
  // move it: the node it ran on takes no new pods, then the pod is deleted
  await kubectl(['cordon', node0]);
  await api('DELETE', `/api/v1/namespaces/${ns}/pods/${name}`);
  let after;
  const back = await waitFor(`${name} recreated`, 90, async () => {
    try { after = await get(`/api/v1/namespaces/${ns}/pods/${name}`); } catch { return false; }
    return after.metadata.uid !== before.metadata.uid && podRunning(after);
  }, { quiet: true });
  await kubectl(['uncordon', node0]);
  if (!record('core pod rescheduled after deletion', `pod/${name}`, back && after.spec.nodeName !== node0,
    back ? `${node0} -> ${after.spec.nodeName} (new uid)` : `not Running again within 90s: ${after ? podWhy(after) : 'absent'}`)) return;
  const claimNow = (after.spec.volumes ?? []).find((v) => v.name === 'state')?.persistentVolumeClaim?.claimName;
  const claim1 = await get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${claimNow}`);
  record('core keeps its identity', `pod/${name}`,
    after.metadata.name === name && after.spec.hostname === name && after.spec.subdomain === sts.spec.serviceName,
    `name ${after.metadata.name}, hostname ${after.spec.hostname}, subdomain ${after.spec.subdomain} (Service ${sts.spec.serviceName})`);
  record('core keeps its claim', `pvc/${claimName}`,
    claimNow === claimName && claim1.metadata.uid === claim0.metadata.uid && claim1.spec.volumeName === claim0.spec.volumeName && claim1.status.phase === 'Bound',
    `claim ${claimNow} uid ${claim1.metadata.uid === claim0.metadata.uid ? 'unchanged' : 'CHANGED'}, volume ${claim0.spec.volumeName} -> ${claim1.spec.volumeName}, ${claim1.status.phase}`);
}

// --- maintenance: cordon, drain, wait, uncordon, node by node ------------------------
async function maintenance(ns) {
  const nodes = (await items('/api/v1/nodes')).map((n) => n.metadata.name).sort((a, b) => a.localeCompare(b));
  let refusals = 0;
  let allDrained = true;
  let budgetBroken = [];
  const placementRows = [];
  // a budget can refuse an eviction only when it protects two or more pods
  const budgets = await items(`/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets`);
  const canRefuse = budgets.filter((b) => (b.status?.expectedPods ?? 0) >= 2).map((b) => b.metadata.name);
  for (const node of nodes) {
    const gpu = isGpuNode(await get(`/api/v1/nodes/${node}`));
    const onNode = (await items(`/api/v1/namespaces/${ns}/pods`)).filter((p) => p.spec.nodeName === node).map((p) => p.metadata.name);
    await kubectl(['cordon', node]);
    // sample the budgets while the drain runs: healthy pods never below the budget's floor
    let draining = true;
    const sampler = (async () => {
      while (draining) {
        for (const b of await items(`/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets`)) {
          const s = b.status ?? {};
          if (s.observedGeneration && s.currentHealthy < s.desiredHealthy) budgetBroken.push(`${node}: pdb/${b.metadata.name} ${s.currentHealthy} healthy < ${s.desiredHealthy}`);
        }
        await sleep(500);
      }
    })();
    const r = await kubectl(['drain', node, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout', '120s'], { timeoutMs: 150_000 });
    draining = false;
    await sampler;
    fs.writeFileSync(path.join(opt.work, `drain-${opt.scenario.replace(/[^A-Za-z0-9.-]+/g, '_')}-${node}.log`), r.out);
    const refused = r.out.split('\n').filter((l) => /Cannot evict pod as it would violate the pod's disruption budget/.test(l));
    const refusedPods = new Set(refused.map((l) => l.match(/pods\/"([^"]+)"/)?.[1]).filter(Boolean));
    const evicted = new Set([...r.out.matchAll(/pod\/(\S+) evicted/g)].map((m) => m[1]));
    refusals += refused.length;
    const notEvicted = [...refusedPods].filter((p) => !evicted.has(p));
    const ok = record('drain completes within its timeout', `node ${node}`, r.code === 0 && r.seconds < 120 && notEvicted.length === 0,
      `exit ${r.code} after ${r.seconds.toFixed(1)}s; ${evicted.size} evicted, ${refused.length} evictions refused by a budget and retried` +
      (notEvicted.length ? `; refused and never evicted: ${notEvicted.join(', ')}` : '') + (r.code ? `\n${r.out.trim().split('\n').slice(-8).join('\n')}` : ''));
    allDrained &&= ok;
    await checkAllRunning(ns, 120, `installation Running again after draining ${node}`);
    placementRows.push(...await captured(() => checkPlacement([ns], { prefix: `after draining ${node}: ` })));
    const now = (await items(`/api/v1/namespaces/${ns}/pods`));
    if (gpu) {
      const gpuPods = now.filter((p) => gpuRequest(p.spec) > 0).map((p) => `${p.metadata.name}@${p.spec.nodeName}`);
      note(`GPU node ${node}: drained in ${r.seconds.toFixed(1)}s; it ran ${onNode.join(', ') || 'nothing'}; evicted ${[...evicted].join(', ') || 'nothing'}; ` +
        `${refused.length} eviction(s) refused by the budget then retried; GPU pods now: ${gpuPods.join(', ')}`);
    }
    await kubectl(['uncordon', node]);
  }
  const gpuNow = (await items(`/api/v1/namespaces/${ns}/pods`)).filter((p) => gpuRequest(p.spec) > 0);
  const gpuNodesNow = new Set(gpuNow.map((p) => p.spec.nodeName));
  note(`after maintenance: ${gpuNow.length} GPU pod(s) on ${gpuNodesNow.size} GPU node(s) (${[...gpuNodesNow].join(', ')})` +
    (gpuNow.length > 1 && gpuNodesNow.size === 1 ? ': the replicas now share one node; nothing moves them apart again (the spread is ScheduleAnyway, no descheduler)' : ''));
  const badPlacement = placementRows.filter((r) => !r.ok);
  record('GPU placement held through maintenance', `namespace ${ns}`, badPlacement.length === 0,
    badPlacement.map((r) => `${r.check}: ${r.message}`).join('\n') || `${placementRows.length} placement checks after the ${nodes.length} drains`);
  record('budgets held during every drain (no forced eviction)', `namespace ${ns}`, budgetBroken.length === 0, budgetBroken.slice(0, 10).join('\n'));
  if (canRefuse.length) {
    record('evictions the budgets refused were retried, not forced', `namespace ${ns}`, refusals > 0 && allDrained,
      refusals > 0 ? `${refusals} refusals over ${nodes.length} drains, every refused pod evicted later` : 'no eviction was refused by a budget: the retry path was not exercised');
  } else {
    note(`${ns}: ${budgets.length ? `every PodDisruptionBudget (${budgets.map((b) => b.metadata.name).join(', ')}) protects a single pod` : 'no PodDisruptionBudget'}: ` +
      'no eviction can be refused, each drain stops that pod until its replacement runs');
  }
}

// --- scenarios ------------------------------------------------------------------------
async function applyManifest(file, label = path.basename(file)) {
  const r = await kubectl(['apply', '-f', file]);
  return record('manifest applies', label, r.code === 0, r.out.trim().split('\n').filter((l) => r.code || /error|warn/i.test(l)).slice(0, 15).join('\n'));
}
function namespaceOf(file) {
  const m = fs.readFileSync(file, 'utf8').match(/^kind: Namespace\n(?:.*\n)*?  name: (\S+)/m);
  if (!m) usage(`${file} has no Namespace`);
  return m[1];
}

async function scenarioProd() {
  const [file] = opt.manifests;
  const ns = namespaceOf(file);
  await setupCluster('standard', 8);
  if (!await applyManifest(file)) return;
  if (!await checkAllRunning(ns, 120)) return;
  await checkPlacement([ns]);
  await checkClaims([ns]);
  await checkSpread(ns);
  await checkCoreIdentity(ns);
  await maintenance(ns);
}

async function scenarioNoGpu() {
  const [file] = opt.manifests;
  const ns = namespaceOf(file);
  await setupCluster('cpu-only', 8);
  if (!await applyManifest(file)) return;
  let st;
  // everything that needs no GPU runs
  await waitFor('CPU workloads ready', 120, async () => {
    st = await installationState(ns);
    return st.workloads.filter((w) => gpuRequest(w.obj.spec.template.spec) === 0)
      .every((w) => (w.obj.status?.readyReplicas ?? 0) === w.replicas && (w.minReplicas === undefined || w.replicas >= w.minReplicas));
  }, { quiet: true });
  const gpuW = st.workloads.filter((w) => gpuRequest(w.obj.spec.template.spec) > 0);
  const cpuW = st.workloads.filter((w) => gpuRequest(w.obj.spec.template.spec) === 0);
  record('without GPU nodes the other workloads run', `namespace ${ns}`,
    cpuW.length > 0 && cpuW.every((w) => (w.obj.status?.readyReplicas ?? 0) === w.replicas),
    cpuW.map((w) => `${w.kind}/${w.name} ${w.obj.status?.readyReplicas ?? 0}/${w.replicas}`).join(', '));
  if (!record('the manifest has GPU workloads', `namespace ${ns}`, gpuW.length > 0, gpuW.map((w) => w.name).join(', '))) return;
  for (const w of gpuW) {
    const sel = w.obj.spec.selector.matchLabels;
    let pods = [];
    let evs = [];
    await waitFor(`scheduler events for ${w.name}`, 60, async () => {
      pods = (await items(`/api/v1/namespaces/${ns}/pods`)).filter((p) => matches(p.metadata.labels, sel));
      evs = (await Promise.all(pods.map((p) => schedulerEvents(ns, p.metadata.name))));
      return pods.length > 0 && evs.every((e) => e.length > 0);
    }, { quiet: true });
    const pending = pods.filter((p) => p.status.phase === 'Pending' && !p.spec.nodeName);
    const unsched = pods.filter((p) => (p.status.conditions ?? []).some((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable'));
    const msgs = evs.flat().map((e) => e.message);
    const reason = msgs.length > 0 && msgs.every((m) => /didn't match Pod's node affinity\/selector/.test(m));
    record('without GPU nodes the GPU pods stay Pending for the scheduler\'s reason', `${w.kind}/${w.name}`,
      pods.length === w.replicas && pending.length === pods.length && unsched.length === pods.length && reason,
      `${pending.length}/${pods.length} Pending, ${unsched.length} Unschedulable; default-scheduler: ${msgs.at(-1) ?? 'no FailedScheduling event'}`);
  }
}

async function scenarioDev() {
  const [file] = opt.manifests;
  const ns = namespaceOf(file);
  await setupCluster('single', 6);
  if (!await applyManifest(file)) return;
  if (!await checkAllRunning(ns, 120)) return;
  const pods = await items(`/api/v1/namespaces/${ns}/pods`);
  const nodes = new Set(pods.map((p) => p.spec.nodeName));
  record('dev schedules on a single untainted node', `namespace ${ns}`, nodes.size === 1 && nodes.has('node-1'),
    `${pods.length} pods on ${[...nodes].join(', ')}`);
  await checkClaims([ns]);
}

async function scenarioMutation() {
  const [file] = opt.manifests;
  const ns = namespaceOf(file);
  const require = createRequire(path.join(ROOT, 'package.json'));
  const YAML = require('yaml');
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS());
  let removed = 0;
  for (const d of docs) {
    const spec = d?.spec?.template?.spec;
    if (spec && gpuRequest(spec) > 0 && spec.tolerations) {
      spec.tolerations = spec.tolerations.filter((t) => t.key !== GPU_RESOURCE);
      if (!spec.tolerations.length) delete spec.tolerations;
      removed++;
    }
  }
  if (!record('mutation applies to the manifest', 'GPU toleration removed', removed > 0, `${removed} pod templates changed`)) return;
  const mutated = path.join(opt.work, 'mutated-prod.yaml');
  fs.writeFileSync(mutated, docs.map((d) => YAML.stringify(d)).join('---\n'));
  await setupCluster('standard', 8);
  if (!await applyManifest(mutated, 'prod.yaml without the GPU toleration')) return;
  // the scheduler has decided once it reports FailedScheduling for the GPU pods
  await waitFor('FailedScheduling events', 60, async () => {
    const pods = (await items(`/api/v1/namespaces/${ns}/pods`)).filter((p) => gpuRequest(p.spec) > 0);
    return pods.length > 0 && (await Promise.all(pods.map((p) => schedulerEvents(ns, p.metadata.name)))).every((e) => e.length > 0);
  }, { quiet: true });
  const rows = await captured(() => checkAllRunning(ns, 10));
  const row = rows[0];
  const gpuLines = row.message.split('\n').filter((l) => /untolerated taint/.test(l));
  note(`mutation (GPU toleration removed): the prod check reports ${row.ok ? 'ok' : 'FAIL'} "${row.check}": ${gpuLines.slice(0, 2).join(' | ')}`);
  record('a manifest without the GPU toleration fails the tier', 'mutated prod.yaml', !row.ok && gpuLines.length > 0,
    row.ok ? 'the broken manifest passed the prod check' : gpuLines.length ? `the prod check fails: ${gpuLines[0].trim()}` : `the prod check fails, but not for an untolerated taint:\n${row.message}`);
}

async function scenarioScale() {
  const files = opt.manifests;
  const nss = files.map(namespaceOf);
  await setupCluster('scale', files.length * 3 + 10);
  const t0 = Date.now();
  const results = await Promise.all(files.map((f) => kubectl(['apply', '-f', f])));
  const applySeconds = (Date.now() - t0) / 1000;
  const bad = results.map((r, i) => [r, files[i]]).filter(([r]) => r.code !== 0);
  record('manifests apply at once', `${files.length} installations`, bad.length === 0,
    bad.length ? bad.map(([r, f]) => `${path.basename(f)}: ${r.out.trim().split('\n').slice(-3).join(' ')}`).join('\n') : `applied in ${applySeconds.toFixed(1)}s`);
  let states = [];
  const done = await waitFor('every installation running', 600, async () => {
    states = await Promise.all(nss.map(installationState));
    return states.every((s) => s.ok);
  }, { quiet: true, interval: 2000 });
  const seconds = (Date.now() - t0) / 1000;
  const pods = states.reduce((n, s) => n + s.pods.length, 0);
  record('every pod of every installation Running', `${files.length} installations on ${LAYOUTS.scale.length} nodes`, done,
    done ? `${pods} pods in ${seconds.toFixed(1)}s` : states.flatMap((s, i) => s.problems.slice(0, 3).map((p) => `${nss[i]}: ${p}`)).slice(0, 20).join('\n'));
  await checkPlacement(nss, { prefix: 'at scale: ' });
  await checkClaims(nss, 'at scale: ');
  let mem = '';
  if (opt.apiserverPid) {
    try {
      const status = fs.readFileSync(`/proc/${opt.apiserverPid}/status`, 'utf8');
      const kb = (k) => Number(status.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))?.[1] ?? 0);
      mem = `; kube-apiserver peak memory (VmHWM) ${(kb('VmHWM') / 1024).toFixed(0)} MiB, now (VmRSS) ${(kb('VmRSS') / 1024).toFixed(0)} MiB`;
    } catch (e) { mem = `; kube-apiserver memory unreadable: ${e.message}`; }
  }
  note(`scale: ${files.length} installations, ${LAYOUTS.scale.length} nodes, ${pods} pods: all Running ${seconds.toFixed(1)}s after the apply started (apply ${applySeconds.toFixed(1)}s)${mem}`);
}

const SCENARIOS = { 'no-gpu': scenarioNoGpu, dev: scenarioDev, mutation: scenarioMutation, scale: scenarioScale };
const fn = opt.scenario.startsWith('prod:') ? scenarioProd : SCENARIOS[opt.scenario];
if (!fn) usage(`unknown scenario ${opt.scenario}`);
if (opt.manifests.length === 0) usage('--manifest is required');
try {
  await fn();
} catch (e) {
  record('scenario runs to its end', opt.scenario, false, e.stack ?? String(e));
}
agent.destroy();
process.exit(failures ? 1 : 0);
