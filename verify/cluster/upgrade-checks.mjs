#!/usr/bin/env node
// One scenario of the upgrade proof (started by upgrade.sh against a running,
// EMPTY kube-apiserver): install the previous release's manifests the way the
// README told users (`kubectl apply -f FILE`, client-side), then upgrade to the
// new manifests, and assert on what the server holds afterwards. Node built-ins
// only; every fact is read back from the server.
//
// usage: node upgrade-checks.mjs --kubectl PATH --kubeconfig FILE --server-version vX.Y.Z
//          --scenario readme-apply|documented|next-release|shared-namespace|prune-without-allowlist|adoption
//          --previous DIR --dist DIR --steps FILE.json --prune-allowlist GVK,GVK... --managed-by VALUE
//          --work DIR --results FILE.jsonl [--controllers yes|no] [--deploy PATH] [--shared DIR]
// The documented upgrade command is `scripts/deploy.sh FILE` (--deploy, default the
// repository's), run with this server's kubectl (KUBECTL) and kubeconfig.
// --shared: two installations in one namespace, one file each (the second without a
// Namespace), for shared-namespace (verify/cluster/mutation-shared.mjs --separate writes them).
// --steps is the one-time part of the documented upgrade from the previous release
// (previous/<release>/upgrade.json): per manifest file, kubectl argument lists run
// in order before the documented apply. --controllers yes: kube-controller-manager,
// kube-scheduler and kwok (simulated nodes) run beside the server (adoption only).
// Scenarios (each on an empty cluster):
//   readme-apply             previous, then `kubectl apply -f NEW`: what the plain apply
//                            leaves (dropped objects, rejected workloads) and the hazard
//                            the upgrade notes warn about; every object the server rejects
//                            as immutable is one the one-time steps delete.
//   documented               previous, stand-ins for what the controllers made (pods,
//                            ReplicaSets, ControllerRevisions, claims), the one-time steps
//                            (the garbage collector's part done here), then
//                            `kubectl apply --prune -l <managed-by>,<instance> --prune-allowlist=GVK... -f NEW`:
//                            exactly the new output remains with the stand-ins, claims and
//                            pods are never deleted, every selector of the new output
//                            selects the kept pods exactly as it selects the new workloads'
//                            pods, the same command again changes nothing.
//   next-release             the documented command as a fresh install, then a release
//                            that only bumps app.kubernetes.io/version: no one-time step needed;
//                            then a release that drops a component: --dry-run shows exactly
//                            the objects pruning deletes and changes nothing, the command
//                            deletes exactly them (no claim, no Namespace), a re-run nothing.
//   shared-namespace         two installations in one namespace (--shared), each deployed with
//                            the command: a release of one that drops objects prunes only its
//                            own; the other's objects, the Namespace and every claim stay
//                            untouched; re-runs change nothing; a control shows that the
//                            instance label in the selector is what keeps them apart.
//   prune-without-allowlist  a control: pruning one environment by the managed-by label
//                            alone with kubectl's default allowlist deletes the OTHER
//                            environment's Namespace, and the state comparison sees it.
//   adoption                 (--controllers yes) the previous release running on simulated
//                            nodes, the documented upgrade with the real controllers: the
//                            new workloads adopt the running pods and ReplicaSets and roll
//                            them, the core's new pod mounts the same claim, how many pods
//                            were ready throughout, and a re-run changes nothing.
// Each result is appended to --results as {version, scenario, check, object, ok, message}.
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { items, jsonDocs, jsonReader, ref } from '../lib/kubectl-json.mjs';

const INSTANCE_LABEL = 'app.kubernetes.io/instance';
const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'];
const KUBECTL_TIMEOUT_MS = 180000;
const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];
// What the server (or its controllers) makes by itself in every namespace.
const SERVER_MADE = new Set(['ServiceAccount/default', 'ConfigMap/kube-root-ca.crt']);
// Everything a namespace could hold that an upgrade might leave behind or delete.
const READ_BACK = [
  'configmaps', 'secrets', 'serviceaccounts', 'services', 'persistentvolumeclaims', 'pods',
  'deployments.apps', 'statefulsets.apps', 'daemonsets.apps', 'replicasets.apps', 'controllerrevisions.apps',
  'jobs.batch', 'cronjobs.batch',
  'horizontalpodautoscalers.v2.autoscaling', 'poddisruptionbudgets.v1.policy',
  'ingresses.v1.networking.k8s.io', 'networkpolicies.v1.networking.k8s.io',
  'roles.rbac.authorization.k8s.io', 'rolebindings.rbac.authorization.k8s.io',
];
// What the controllers make for the workloads (stand-ins without controllers).
const CONTROLLER_MADE = new Set(['Pod', 'ReplicaSet', 'ControllerRevision', 'PersistentVolumeClaim']);
const SCENARIOS = ['readme-apply', 'documented', 'next-release', 'shared-namespace', 'prune-without-allowlist', 'adoption'];

// ---------------------------------------------------------------- arguments
const opts = {};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  opts[k] = process.argv[i + 1];
}
for (const k of ['kubectl', 'kubeconfig', 'serverVersion', 'scenario', 'previous', 'dist', 'steps', 'pruneAllowlist', 'managedBy', 'results', 'work']) {
  if (!opts[k]) { console.error(`upgrade-checks.mjs: missing --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`); process.exit(2); }
}
if (!SCENARIOS.includes(opts.scenario)) { console.error(`upgrade-checks.mjs: unknown scenario ${opts.scenario}`); process.exit(2); }
const CONTROLLERS = opts.controllers === 'yes';
if (opts.scenario === 'adoption' && !CONTROLLERS) { console.error('upgrade-checks.mjs: the adoption scenario needs --controllers yes'); process.exit(2); }
if (opts.scenario === 'shared-namespace' && !opts.shared) { console.error('upgrade-checks.mjs: the shared-namespace scenario needs --shared DIR'); process.exit(2); }
const DEPLOY = opts.deploy ?? fileURLToPath(new URL('../../scripts/deploy.sh', import.meta.url));
process.on('uncaughtException', (e) => { console.error('upgrade-checks.mjs crashed:', e); process.exit(3); });
const ALLOWLIST = opts.pruneAllowlist.split(',').filter(Boolean);
const STEPS = JSON.parse(readFileSync(opts.steps, 'utf8'));
mkdirSync(opts.work, { recursive: true });

// ---------------------------------------------------------------- results
let passed = 0;
let failed = 0;
function record(check, object, ok, message = '') {
  appendFileSync(opts.results, JSON.stringify({ version: opts.serverVersion, scenario: opts.scenario, check, object, ok, message }) + '\n');
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'}: [${opts.serverVersion} ${opts.scenario}] ${check}: ${object}${ok && message ? ` (${message})` : ''}`);
  if (!ok && message) for (const line of String(message).trimEnd().split('\n').slice(0, 40)) console.log(`      ${line}`);
  return ok;
}
const pass = (c, o, m) => record(c, o, true, m);
const fail = (c, o, m) => record(c, o, false, m);
const check = (ok, c, o, okMsg, failMsg) => (ok ? pass(c, o, okMsg) : fail(c, o, failMsg));
function note(msg) {
  console.log(`  note  ${msg}`);
  appendFileSync(opts.results, JSON.stringify({ version: opts.serverVersion, scenario: opts.scenario, note: msg }) + '\n');
}
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

// ---------------------------------------------------------------- kubectl
const KUBE_ENV = { ...process.env, KUBECACHEDIR: join(opts.work, 'kcache') };
function kubectl(args, input) {
  const r = spawnSync(opts.kubectl, ['--kubeconfig', opts.kubeconfig, ...args], { input, encoding: 'utf8', env: KUBE_ENV, maxBuffer: 256 * 1024 * 1024, timeout: KUBECTL_TIMEOUT_MS });
  if (r.error?.code === 'ETIMEDOUT') return { code: 124, stdout: r.stdout ?? '', stderr: `kubectl ${args.join(' ')}: no answer in ${KUBECTL_TIMEOUT_MS / 1000} s` };
  if (r.error) throw new Error(`unable to execute '${opts.kubectl}': ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}
// How a user would type the command.
const shown = (args) => `kubectl ${args.map((a) => (/[\s,=]/.test(a) && !a.startsWith('-') ? `'${a}'` : a)).join(' ')}`;
// Run a user-facing command and show it.
function user(args) {
  console.log(`  $ ${shown(args)}`);
  const r = kubectl(args);
  for (const l of `${r.stdout}${r.stderr ? `\n${r.stderr}` : ''}`.trim().split('\n').filter(Boolean).slice(0, 60)) console.log(`    ${l}`);
  return r;
}
const json = jsonReader(kubectl);

// ---------------------------------------------------------------- objects
const yamlFiles = (dir) => readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(dir, f));
// The objects of a manifest file, as kubectl reads them (client-side, nothing sent).
function manifest(file) {
  const r = kubectl(['create', '--dry-run=client', '-o', 'json', '-f', file]);
  if (r.code !== 0) throw new Error(`kubectl create --dry-run=client -f ${file}: ${r.stderr}`);
  return jsonDocs(r.stdout).flatMap(items);
}
const fmtSet = (s) => (s.size ? [...s].sort().join(', ') : '(none)');
const minus = (a, b) => new Set([...a].filter((x) => !b.has(x)));
const sameSet = (a, b) => a.size === b.size && [...a].every((x) => b.has(x));
const podLabels = (w) => w.spec?.template?.metadata?.labels ?? {};
const mapSelects = (sel, labels) => Object.keys(sel ?? {}).length > 0 && Object.entries(sel).every(([k, v]) => labels?.[k] === v);
const workloadSelector = (w) => w.spec?.selector?.matchLabels ?? {};
const isController = (o, uid) => (o.metadata.ownerReferences ?? []).some((r) => r.controller && (uid === undefined || r.uid === uid));
// kubectl's "kind.group/name" for an object.
const groupOf = (o) => (o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '');
const kubectlName = (o) => `${o.kind.toLowerCase()}${groupOf(o) ? `.${groupOf(o)}` : ''}/${o.metadata.name}`;

// What the server holds: every non-system Namespace and what is in it
// (minus what the server makes by itself), with the deletion state.
function serverState() {
  const nss = items(json(['get', 'namespaces'])).filter((n) => !SYSTEM_NAMESPACES.includes(n.metadata.name));
  const inNs = items(json(['get', READ_BACK.join(','), '--all-namespaces', '--show-managed-fields']))
    .filter((o) => !SYSTEM_NAMESPACES.includes(o.metadata.namespace) && !SERVER_MADE.has(`${o.kind}/${o.metadata.name}`));
  const all = [...nss, ...inNs];
  return { objects: all, refs: new Set(all.map(ref)), deleting: all.filter((o) => o.metadata.deletionTimestamp).map(ref), byRef: new Map(all.map((o) => [ref(o), o])) };
}

// The claim a StatefulSet controller makes for each claim template and pod:
// <template>-<set>-<ordinal>, labelled with the template's and the selector's
// labels, created without kubectl's last-applied annotation.
const ordinals = (s) => [...Array(s.spec.replicas ?? 1).keys()].map((i) => (s.spec.ordinals?.start ?? 0) + i);
function controllerClaims(objects) {
  return objects.filter((o) => o.kind === 'StatefulSet').flatMap((s) => (s.spec.volumeClaimTemplates ?? []).flatMap((t) => ordinals(s).map((i) => ({
    apiVersion: 'v1', kind: 'PersistentVolumeClaim',
    metadata: { name: `${t.metadata.name}-${s.metadata.name}-${i}`, namespace: s.metadata.namespace, labels: { ...(t.metadata.labels ?? {}), ...workloadSelector(s) } },
    spec: t.spec,
  }))));
}
function createObjects(objs, what) {
  const made = [];
  for (const o of objs) {
    const r = kubectl(['create', '-o', 'json', '-f', '-'], JSON.stringify(o));
    if (r.code === 0) made.push(JSON.parse(r.stdout));
    else fail(`stand-in created: ${what}`, ref(o), r.stderr);
  }
  if (made.length) pass(`stand-ins created: ${what}`, `${made.length} objects`, `${[...new Set(made.map((o) => o.kind))].join(', ')}, no last-applied annotation`);
  return made;
}
// What the Deployment, ReplicaSet and StatefulSet controllers make for the live
// workloads `ws`: a ReplicaSet and its pods per Deployment, a ControllerRevision and
// the pods (with their claims' volumes) per StatefulSet, owned the way they own them.
function controllerStandIns(ws, replicasOf) {
  const own = (o, kind) => [{ apiVersion: 'apps/v1', kind, name: o.metadata.name, uid: o.metadata.uid, controller: true, blockOwnerDeletion: true }];
  const pods = [];
  const sets = [];
  for (const w of ws) {
    const ns = w.metadata.namespace;
    const tpl = w.spec.template;
    const hash = `h${w.metadata.uid.slice(0, 8)}`;
    if (w.kind === 'Deployment') {
      const rsName = `${w.metadata.name}-${hash}`;
      const labels = { ...tpl.metadata.labels, 'pod-template-hash': hash };
      sets.push({
        apiVersion: 'apps/v1', kind: 'ReplicaSet',
        metadata: { name: rsName, namespace: ns, labels, ownerReferences: own(w, 'Deployment'), annotations: { 'deployment.kubernetes.io/revision': '1' } },
        spec: { replicas: replicasOf(w), selector: { matchLabels: { ...workloadSelector(w), 'pod-template-hash': hash } }, template: { ...tpl, metadata: { ...tpl.metadata, labels } } },
      });
      for (let i = 0; i < replicasOf(w); i++) pods.push({ owner: { kind: 'ReplicaSet', name: rsName }, pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: `${rsName}-p${i}`, namespace: ns, labels }, spec: tpl.spec } });
    } else if (w.kind === 'StatefulSet') {
      sets.push({
        apiVersion: 'apps/v1', kind: 'ControllerRevision',
        metadata: { name: `${w.metadata.name}-${hash}`, namespace: ns, labels: { ...tpl.metadata.labels, 'controller.kubernetes.io/hash': hash }, ownerReferences: own(w, 'StatefulSet') },
        revision: 1, data: { spec: { template: tpl } },
      });
      for (const i of ordinals(w)) {
        const name = `${w.metadata.name}-${i}`;
        const volumes = [...(tpl.spec.volumes ?? []), ...(w.spec.volumeClaimTemplates ?? []).map((t) => ({ name: t.metadata.name, persistentVolumeClaim: { claimName: `${t.metadata.name}-${name}` } }))];
        pods.push({
          pod: {
            apiVersion: 'v1', kind: 'Pod',
            metadata: { name, namespace: ns, labels: { ...tpl.metadata.labels, 'controller-revision-hash': `${w.metadata.name}-${hash}`, 'statefulset.kubernetes.io/pod-name': name }, ownerReferences: own(w, 'StatefulSet') },
            spec: { ...tpl.spec, volumes, hostname: name, subdomain: w.spec.serviceName },
          },
        });
      }
    }
  }
  const madeSets = createObjects(sets, 'ReplicaSets and ControllerRevisions');
  for (const p of pods.filter((x) => x.owner)) {
    const rs = madeSets.find((s) => s.kind === p.owner.kind && s.metadata.name === p.owner.name && s.metadata.namespace === p.pod.metadata.namespace);
    if (rs) p.pod.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs.metadata.name, uid: rs.metadata.uid, controller: true, blockOwnerDeletion: true }];
  }
  return [...madeSets, ...createObjects(pods.map((p) => p.pod), 'pods')];
}
// The garbage collector's part of a `delete --cascade=orphan` when it does not run:
// release the dependents (drop their owner references), then the orphan finalizer.
function orphanLikeTheGarbageCollector(ns) {
  const st = items(json(['-n', ns, 'get', READ_BACK.join(',')]));
  const dying = st.filter((o) => o.metadata.deletionTimestamp && (o.metadata.finalizers ?? []).includes('orphan'));
  for (const d of dying) {
    for (const dep of st.filter((o) => (o.metadata.ownerReferences ?? []).some((r) => r.uid === d.metadata.uid))) {
      const rest = dep.metadata.ownerReferences.filter((r) => r.uid !== d.metadata.uid);
      const r = kubectl(['-n', ns, 'patch', kubectlName(dep), '--type=merge', '-p', JSON.stringify({ metadata: { ownerReferences: rest.length ? rest : null } })]);
      if (r.code !== 0) fail('garbage collector stand-in releases a dependent', ref(dep), r.stderr);
    }
    const r = kubectl(['-n', ns, 'patch', kubectlName(d), '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/metadata/finalizers', value: d.metadata.finalizers.filter((f) => f !== 'orphan') }])]);
    if (r.code !== 0) fail('garbage collector stand-in removes the orphan finalizer', ref(d), r.stderr);
  }
  return dying.map(ref);
}

// ---------------------------------------------------------------- inputs
const prevFiles = yamlFiles(opts.previous);
const newFiles = yamlFiles(opts.dist);
const pairs = prevFiles.map((p) => [p, newFiles.find((n) => basename(n) === basename(p))]);
for (const [p, n] of pairs) if (!n) fail('every previous environment has a new manifest', basename(p), `no ${basename(p)} in ${opts.dist}: its objects would never be upgraded`);
const env = pairs.filter(([, n]) => n).map(([p, n]) => {
  const prev = manifest(p);
  const next = manifest(n);
  // the installation's instance label; objects without one (the Namespace, which
  // installations may share) are applied by a command of their own
  const inst = new Set(next.map((o) => o.metadata.labels?.[INSTANCE_LABEL]).filter(Boolean));
  const prevInst = new Set(prev.map((o) => o.metadata.labels?.[INSTANCE_LABEL]).filter(Boolean));
  return {
    name: basename(n), prevFile: p, newFile: n, prev, next, instance: [...inst][0], instances: inst, prevInstance: [...prevInst][0],
    shared: next.filter((o) => !o.metadata.labels?.[INSTANCE_LABEL]),
    namespaces: new Set([...prev, ...next].map((o) => (o.kind === 'Namespace' ? o.metadata.name : o.metadata.namespace)).filter(Boolean)),
    once: STEPS.once?.[basename(n)] ?? [],
  };
});
for (const f of Object.keys(STEPS.once ?? {})) if (!env.some((e) => e.name === f)) fail('the one-time steps name manifest files of both releases', `${opts.steps}: ${f}`, `no ${f} in both ${opts.previous} and ${opts.dist}`);
const prevAll = env.flatMap((e) => e.prev);
const newAll = env.flatMap((e) => e.next);
const P = new Set(prevAll.map(ref));
const N = new Set(newAll.map(ref));
const dropped = minus(P, N);
const allNamespaces = [...new Set(env.flatMap((e) => [...e.namespaces]))];
console.log(`--- upgrade ${opts.scenario}: server ${opts.serverVersion}; previous ${opts.previous} (${P.size} objects), new ${opts.dist} (${N.size} objects); dropped by the new output: ${fmtSet(dropped)}; one-time steps: ${opts.steps} (${STEPS.from ?? '?'} -> ${STEPS.to ?? '?'})`);

function installPrevious() {
  for (const e of env) {
    const r = user(['apply', '-f', e.prevFile]);
    check(r.code === 0 && !r.stderr, 'previous release installs (kubectl apply -f)', e.prevFile, `${e.prev.length} objects`, `exit ${r.code}\n${r.stderr}`);
  }
}
function expectState(checkName, want, extraOk = new Set()) {
  const s = serverState();
  const missing = minus(want, s.refs);
  const extra = minus(minus(s.refs, want), extraOk);
  check(missing.size === 0 && extra.size === 0 && s.deleting.length === 0, checkName, `${s.refs.size} objects on the server`,
    `${want.size} expected`,
    [missing.size ? `missing: ${fmtSet(missing)}` : '', extra.size ? `left over: ${fmtSet(extra)}` : '', s.deleting.length ? `being deleted: ${s.deleting.join(', ')}` : ''].filter(Boolean).join('\n'));
  return s;
}
// The objects a `delete` step deletes, kubectl's names ("statefulset.apps/x").
const deletedBy = (stdout) => new Set([...stdout.matchAll(/^(\S+) "([^"]+)" deleted/gm)].map((m) => `${m[1]}/${m[2]}`));
const isDeleteStep = (args) => args.includes('delete');

// The documented upgrade of one environment exactly as documented: the steps of
// --steps around the documented apply ("apply" marks its place, else it comes
// last); {"set": NAME, "kubectl": [...]} keeps a command's output for ${NAME} in
// later steps. Without a garbage collector, a --cascade=orphan delete runs with
// --wait=false and this script does the collector's part. `apply` replaces the
// documented apply (the control); `afterStep(args)` runs after each command.
// Returns what the delete steps deleted (kubectl's names).
function runDocumented(e, { apply = () => documentedUpgrade(e, { label: 'upgrade', want: wantPruned(e) }), afterStep = () => {} } = {}) {
  const steps = e.once.includes('apply') ? e.once : [...e.once, 'apply'];
  const vars = {};
  const gone = new Set();
  for (const step of steps) {
    if (step === 'apply') { apply(); afterStep('apply'); continue; }
    if (!Array.isArray(step)) {
      const r = user(step.kubectl);
      vars[step.set] = r.stdout.trim();
      check(r.code === 0 && vars[step.set] !== '', 'documented step keeps a value for later', `${step.set}=$(${shown(step.kubectl)})`, `${step.set}=${vars[step.set]}`, `exit ${r.code}\n${r.stderr}`);
      continue;
    }
    const args = step.map((a) => a.replace(/\$\{(\w+)\}/g, (_, k) => vars[k] ?? ''));
    const orphanDelete = isDeleteStep(args) && args.includes('--cascade=orphan');
    const r = user(orphanDelete && !CONTROLLERS ? [...args, '--wait=false'] : args);
    const ok = r.code === 0 && !r.stderr;
    if (isDeleteStep(args)) for (const x of deletedBy(r.stdout)) gone.add(x);
    let gc = [];
    if (orphanDelete && !CONTROLLERS) for (const ns of e.namespaces) gc = gc.concat(orphanLikeTheGarbageCollector(ns));
    check(ok, 'documented step succeeds', shown(args), isDeleteStep(args) ? `deleted: ${fmtSet(deletedBy(r.stdout))}${gc.length ? `; garbage collector's part done for ${gc.join(', ')}` : ''}` : `${(r.stdout.match(/\n/g) ?? []).length} objects`, `exit ${r.code}\n${r.stderr}`);
    afterStep(args);
  }
  return gone;
}
// What the delete steps would delete now (server dry run), kubectl's names.
function onceDeletesDryRun() {
  const gone = new Set();
  for (const e of env) for (const args of e.once.filter((x) => Array.isArray(x) && isDeleteStep(x))) {
    const r = kubectl([...args, '--dry-run=server']);
    if (r.code !== 0) fail('the one-time delete step runs (server dry run)', shown(args), `exit ${r.code}\n${r.stderr}`);
    for (const x of deletedBy(r.stdout)) gone.add(x);
  }
  return gone;
}

const selectorOf = (e) => `${MANAGED_BY_LABEL}=${opts.managedBy},${INSTANCE_LABEL}=${e.instance}`;
// scripts/deploy.sh with this server's kubectl and kubeconfig, shown as a user types it.
function deploy(args) {
  console.log(`  $ scripts/deploy.sh ${args.join(' ')}`);
  const r = spawnSync(DEPLOY, ['--kubeconfig', opts.kubeconfig, ...args], { encoding: 'utf8', env: { ...KUBE_ENV, KUBECTL: opts.kubectl }, maxBuffer: 256 * 1024 * 1024, timeout: KUBECTL_TIMEOUT_MS * 4 });
  if (r.error) throw new Error(`unable to run ${DEPLOY}: ${r.error.message}`);
  const out = { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
  for (const l of `${out.stdout}\n${out.stderr}`.trim().split('\n').filter((x) => x && !/^[ +-@]|^diff /.test(x)).slice(0, 40)) console.log(`    ${l}`);
  out.errors = out.stderr.split('\n').filter((l) => /^deploy\.sh: error|^error|^Error/.test(l));
  out.pruned = new Set([...out.stdout.matchAll(/^(\S+)\s+pruned$/gm)].map((m) => m[1]));
  return out;
}
// `kubectl diff` output as deploy.sh --dry-run prints it: the objects it would change, create
// and delete (one `diff -u -N LIVE/<group>.<version>.<Kind>.<ns>.<name> MERGED/...` each; a
// side dated 1970 does not exist).
function parseDiff(text) {
  const changed = new Set(); const created = new Set(); const deleted = new Set();
  const blocks = text.split(/^diff -u -N /m).slice(1);
  for (const b of blocks) {
    const m = b.match(/^\S+\/([^/\s]+)\s/);
    const id = m?.[1].match(/^(.*)\.([A-Z][A-Za-z0-9]*)\.([a-z0-9-]+)\.([a-z0-9.-]+)$/);
    const name = id ? `${id[2]}/${id[3]}/${id[4]}` : (m?.[1] ?? '?');
    const live = b.match(/^--- \S+\s+(\S+)/m)?.[1];
    const merged = b.match(/^\+\+\+ \S+\s+(\S+)/m)?.[1];
    if (merged?.startsWith('1970-')) deleted.add(name); else if (live?.startsWith('1970-')) created.add(name); else changed.add(name);
  }
  return { changed, created, deleted };
}
// --dry-run of the documented command: what it shows, and that it changes nothing.
function documentedDryRun(name, file, { label, wantDeleted = new Set(), wantChanges }) {
  const before = serverState();
  const r = deploy(['--dry-run', file]);
  const d = parseDiff(r.stdout);
  const changes = d.changed.size + d.created.size + d.deleted.size;
  const expectChanges = wantChanges ?? wantDeleted.size > 0;
  check(r.code === (expectChanges ? 1 : 0) && r.errors.length === 0 && (changes > 0) === expectChanges, `--dry-run exits ${expectChanges ? '1 and prints the server\'s diff' : '0 with an empty diff'} (${label})`, file,
    `exit ${r.code}; would change ${fmtSet(d.changed)}, create ${fmtSet(d.created)}, delete ${fmtSet(d.deleted)}`, `exit ${r.code}; changed ${fmtSet(d.changed)}, created ${fmtSet(d.created)}, deleted ${fmtSet(d.deleted)}\n${r.stderr}`);
  check(sameSet(d.deleted, wantDeleted), `--dry-run shows exactly the objects pruning deletes (${label})`, name, fmtSet(d.deleted), `shows ${fmtSet(d.deleted)}; the release drops ${fmtSet(wantDeleted)}`);
  const after = serverState();
  const moved = after.objects.filter((o) => before.byRef.get(ref(o))?.metadata.resourceVersion !== o.metadata.resourceVersion);
  check(moved.length === 0 && sameSet(after.refs, before.refs), `--dry-run changes nothing (${label})`, `${after.objects.length} objects`, 'same objects, same resourceVersions',
    `changed: ${moved.map(ref).join(', ')}; objects ${fmtSet(minus(before.refs, after.refs))} gone, ${fmtSet(minus(after.refs, before.refs))} new`);
  return d;
}
// The documented upgrade command for one environment; `want` = what it must prune
// (kubectl's names). deploy.sh applies the Namespace itself, then the installation.
function documentedUpgrade(e, { label, file = e.newFile, want = new Set() }) {
  const r = deploy([file]);
  check(r.code === 0 && r.errors.length === 0, `documented upgrade command succeeds (${label})`, file, `scripts/deploy.sh: ${selectorOf(e)}`, `exit ${r.code}\n${shortErrors(r.stderr)}`);
  check(sameSet(r.pruned, want), `it prunes exactly the objects the new output dropped (${label})`, e.name, fmtSet(r.pruned), `pruned: ${fmtSet(r.pruned)}\nexpected: ${fmtSet(want)}`);
  return r;
}
// The JSON paths at which two objects differ.
function jsonDiff(a, b, p = '') {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].flatMap((k) => jsonDiff(a[k], b[k], `${p}.${k}`));
  }
  return [p || '.'];
}
// kubectl's apply errors without the patch bodies it quotes.
const shortErrors = (text) => text.split('\n').filter((l) => !/^\s*(\{|to:$|Resource: |Name: )/.test(l))
  .map((l) => l.replace(/^for: "[^"]*": error when patching "[^"]*": /, '  ').slice(0, 400)).join('\n');
const wantPruned = (e) => new Set(e.prev.filter((o) => dropped.has(ref(o))).map(kubectlName));

// Every selector of the new output (workloads, Services, PDBs, NetworkPolicy pod
// selectors and pod peers) must select the pods kept from the previous release
// exactly as it selects the new workloads' pods: the pods of the same workloads.
// `keptOf(w)` = the live pods that stand for new workload w's pods.
function checkSelectorsMatchKeptPods(pods, keptOf, label) {
  const ws = newAll.filter((o) => WORKLOAD_KINDS.includes(o.kind));
  const selectors = [];
  for (const o of newAll) {
    const ns = o.metadata.namespace;
    if (WORKLOAD_KINDS.includes(o.kind)) selectors.push([`${ref(o)} spec.selector`, ns, workloadSelector(o)]);
    if (o.kind === 'Service' && o.spec.selector) selectors.push([`${ref(o)} spec.selector`, ns, o.spec.selector]);
    if (o.kind === 'PodDisruptionBudget') selectors.push([`${ref(o)} spec.selector`, ns, o.spec.selector?.matchLabels]);
    if (o.kind === 'NetworkPolicy') {
      if (Object.keys(o.spec.podSelector?.matchLabels ?? {}).length) selectors.push([`${ref(o)} spec.podSelector`, ns, o.spec.podSelector.matchLabels]);
      for (const peer of [...(o.spec.ingress ?? []).flatMap((r) => r.from ?? []), ...(o.spec.egress ?? []).flatMap((r) => r.to ?? [])]) {
        if (peer.podSelector?.matchLabels && !peer.namespaceSelector) selectors.push([`${ref(o)} peer ${JSON.stringify(peer.podSelector.matchLabels)}`, ns, peer.podSelector.matchLabels]);
      }
    }
  }
  const bad = [];
  let matched = 0;
  for (const [what, ns, sel] of selectors) {
    const wantPods = new Set(ws.filter((w) => w.metadata.namespace === ns && mapSelects(sel, podLabels(w))).flatMap((w) => keptOf(w)).map(ref));
    const got = new Set(pods.filter((p) => p.metadata.namespace === ns && !p.metadata.deletionTimestamp && mapSelects(sel, p.metadata.labels)).map(ref));
    matched += got.size;
    if (!sameSet(wantPods, got)) bad.push(`${what}: selects ${fmtSet(got)}; its workloads' pods are ${fmtSet(wantPods)}`);
  }
  check(bad.length === 0 && selectors.length > 0, `every selector of the new output selects the kept pods of its own workloads and nothing else (${label})`, `${selectors.length} selectors`,
    `${matched} pod matches, ${pods.length} pods in the namespaces`, bad.join('\n'));
}

// ================================================================ scenarios
// Releases whose upgrade needs one-time steps (an immutable field changed).
const HAS_ONCE = env.some((e) => e.once.some((x) => x !== 'apply'));

if (opts.scenario === 'readme-apply') {
  installPrevious();
  // The documented command without the one-time steps: deploy.sh's server dry run finds
  // every rejection first, so it applies no object of the installation (the Namespace only).
  // (Without one-time steps, the documented scenario upgrades the previous release with it.)
  for (const e of HAS_ONCE ? env : []) {
    const nsRefs = new Set(e.next.filter((o) => o.kind === 'Namespace').map(ref));
    const before = serverState();
    const r = deploy([e.newFile]);
    const after = serverState();
    const moved = after.objects.filter((o) => !nsRefs.has(ref(o)) && before.byRef.get(ref(o))?.metadata.resourceVersion !== o.metadata.resourceVersion);
    const same = moved.length === 0 && sameSet(minus(after.refs, nsRefs), minus(before.refs, nsRefs));
    check(r.code === 6 && /nothing of \S+ was changed/.test(r.stderr) && same, 'the documented command without the one-time steps refuses and changes nothing but the Namespace (its server dry run)', e.newFile,
      `exit 6: ${(r.stderr.match(/is invalid[^\n]*/) ?? [''])[0].slice(0, 160)}`, `exit ${r.code}; objects changed: ${moved.map(ref).join(', ') || '(none)'}\n${r.stderr}`);
  }
  const onceGone = onceDeletesDryRun();
  const rejected = new Set();
  for (const e of env) {
    const r = user(['apply', '-f', e.newFile]);
    const here = new Set();
    for (const m of r.stderr.matchAll(/(?:The )?(\w+)(?:\.[\w.]+)? "([^"]+)" is invalid/g)) {
      const o = e.next.find((x) => x.kind === m[1] && x.metadata.name === m[2]);
      here.add(o ? ref(o) : `${m[1]}/${m[2]}`);
    }
    for (const x of here) rejected.add(x);
    if (r.code === 0) pass('kubectl apply -f NEW over the previous release succeeds', e.newFile, r.stderr ? `stderr: ${r.stderr}` : '');
    else if (here.size) note(`kubectl apply -f ${e.newFile} rejected (immutable fields): ${fmtSet(here)}`);
    else fail('kubectl apply -f NEW over the previous release succeeds', e.newFile, `exit ${r.code}\n${r.stderr}`);
  }
  // Workloads in both releases: a changed selector (immutable) must show up as a rejection.
  for (const o of prevAll.filter((x) => WORKLOAD_KINDS.includes(x.kind) && N.has(ref(x)))) {
    const n = newAll.find((x) => ref(x) === ref(o));
    const same = JSON.stringify(o.spec.selector) === JSON.stringify(n.spec.selector);
    check(same || rejected.has(ref(o)), 'a workload of both releases keeps its selector, or the server rejects the change', ref(o),
      same ? `selector unchanged${rejected.has(ref(o)) ? '; rejected for another immutable field' : ''}` : 'selector changed and rejected', `selector changed (${JSON.stringify(o.spec.selector)} -> ${JSON.stringify(n.spec.selector)}) but the server accepted it`);
  }
  // Every object whose change the server rejects (immutable fields) is one the
  // documented one-time steps delete first (with --cascade=orphan).
  const byKubectlName = new Map(prevAll.map((o) => [kubectlName(o), o]));
  const goneRefs = new Set([...onceGone].map((k) => byKubectlName.get(k)).filter(Boolean).map(ref));
  const undocumented = minus(rejected, goneRefs);
  check(undocumented.size === 0, 'objects rejected as immutable are deleted by the documented one-time step', fmtSet(rejected),
    `the step deletes: ${fmtSet(goneRefs)}`, `rejected by the server but not deleted by the documented step: ${fmtSet(undocumented)}`);
  const notWorkloads = [...goneRefs].filter((o) => !N.has(o) || !WORKLOAD_KINDS.includes(o.split('/')[0]));
  check(onceGone.size === goneRefs.size && notWorkloads.length === 0, 'the one-time delete step deletes only workloads of both releases', fmtSet(onceGone),
    '', `deletes what is not a workload of both the previous and the new output: ${notWorkloads.join(', ')} ${[...onceGone].filter((k) => !byKubectlName.has(k)).join(', ')}`);
  // Plain apply never deletes: the server holds the new output plus what it dropped.
  const s = expectState('plain apply leaves the dropped objects beside the new ones', new Set([...N, ...dropped]));
  // The hazard: a Service of the new output selects a left-behind workload beside
  // its successor, or no running workload at all; a NetworkPolicy of the new output
  // no longer selects the running pods it is meant for.
  const live = s.objects.filter((o) => WORKLOAD_KINDS.includes(o.kind));
  const hazards = [];
  for (const svc of s.objects.filter((o) => o.kind === 'Service' && N.has(ref(o)) && o.spec.selector)) {
    const sel = live.filter((w) => w.metadata.namespace === svc.metadata.namespace && mapSelects(svc.spec.selector, podLabels(w)));
    const stale = sel.filter((w) => dropped.has(ref(w)));
    if (stale.length && sel.length > stale.length) hazards.push(`${ref(svc)} selects the pods of ${stale.map(ref).join(', ')} (left behind) beside ${sel.filter((w) => !dropped.has(ref(w))).map(ref).join(', ')}`);
    if (!sel.length) hazards.push(`${ref(svc)} selects the pods of no running workload (its new selector ${JSON.stringify(svc.spec.selector)})`);
  }
  for (const np of s.objects.filter((o) => o.kind === 'NetworkPolicy' && N.has(ref(o)) && Object.keys(o.spec.podSelector?.matchLabels ?? {}).length)) {
    if (!live.some((w) => w.metadata.namespace === np.metadata.namespace && mapSelects(np.spec.podSelector.matchLabels, podLabels(w)))) hazards.push(`${ref(np)} selects the pods of no running workload`);
  }
  for (const w of live.filter((x) => dropped.has(ref(x)))) {
    for (const h of s.objects.filter((o) => o.kind === 'HorizontalPodAutoscaler' && o.spec.scaleTargetRef?.kind === w.kind && o.spec.scaleTargetRef?.name === w.metadata.name && o.metadata.namespace === w.metadata.namespace)) {
      note(`${ref(h)} (${dropped.has(ref(h)) ? 'also left behind' : 'in the new output'}) still scales ${ref(w)}`);
    }
  }
  if (HAS_ONCE) {
    check(hazards.length > 0, 'hazard of a plain apply: Services and NetworkPolicies of the new output miss or double the running workloads', `${hazards.length} found`,
      hazards.slice(0, 4).join('; ') + (hazards.length > 4 ? `; and ${hazards.length - 4} more` : ''),
      'every Service and NetworkPolicy of the new output selects exactly the running workloads: the upgrade notes describe a hazard these manifests no longer have');
  } else {
    check(hazards.length === 0, 'no one-time step: every Service and NetworkPolicy of the new output selects the running workloads', `${hazards.length} hazards`, '', hazards.join('; '));
  }
}

if (opts.scenario === 'documented') {
  // The documented selector and allowlist must cover the new output: `-l`
  // also filters what is applied, and a kind missing from the allowlist is never pruned.
  for (const e of env) {
    const unlabelled = e.next.filter((o) => o.metadata.labels?.[MANAGED_BY_LABEL] !== opts.managedBy || (o.metadata.labels?.[INSTANCE_LABEL] !== e.instance && o.kind !== 'Namespace'));
    check(e.instances.size === 1 && unlabelled.length === 0, 'every new object carries the selector labels (a Namespace may go without the instance label)', e.name,
      `${MANAGED_BY_LABEL}=${opts.managedBy}, ${INSTANCE_LABEL}=${e.instance}${e.shared.length ? `; without ${INSTANCE_LABEL}, applied by a command of their own: ${e.shared.map(ref).join(', ')}` : ''}`,
      `instances ${[...e.instances].join(', ')}; without the labels (kubectl apply -l would silently skip them): ${unlabelled.map(ref).join(', ')}`);
  }
  const gvk = (o) => `${o.apiVersion.includes('/') ? o.apiVersion : `core/${o.apiVersion}`}/${o.kind}`;
  const kinds = new Set([...prevAll, ...newAll].map(gvk));
  const must = minus(kinds, new Set(['core/v1/Namespace', 'core/v1/PersistentVolumeClaim']));
  const bad = ALLOWLIST.filter((k) => /\/(Namespace|PersistentVolumeClaim)$/.test(k));
  check(minus(must, new Set(ALLOWLIST)).size === 0 && bad.length === 0, 'prune allowlist = the kinds the kit emits, without Namespace and PersistentVolumeClaim', ALLOWLIST.join(','), '',
    `kinds emitted but not in the allowlist: ${fmtSet(minus(must, new Set(ALLOWLIST)))}; must never be pruned: ${bad.join(', ') || '(none)'}`);

  installPrevious();
  // What the controllers made while the previous release ran: the claims, and the
  // pods, ReplicaSets and ControllerRevisions of the workloads the new output keeps
  // (those of dropped workloads are deleted with them by the garbage collector).
  for (const ns of allNamespaces) kubectl(['-n', ns, 'create', 'serviceaccount', 'default']);
  kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'nvidia' }, handler: 'nvidia' }));
  const claims = createObjects(controllerClaims(prevAll), 'claims of the StatefulSets');
  const liveWorkloads = serverState().objects.filter((o) => WORKLOAD_KINDS.includes(o.kind) && N.has(ref(o)));
  const hpaMin = (w) => prevAll.find((h) => h.kind === 'HorizontalPodAutoscaler' && h.metadata.namespace === w.metadata.namespace && h.spec.scaleTargetRef?.name === w.metadata.name)?.spec.minReplicas;
  const made = controllerStandIns(liveWorkloads, (w) => w.spec.replicas ?? hpaMin(w) ?? 1);
  const kept = [...claims, ...made];
  const keptRefs = new Set(kept.map(ref));
  // which stand-in pods belong to which (previous) workload
  const podsOf = new Map();
  for (const w of liveWorkloads) {
    const rs = made.filter((o) => o.kind === 'ReplicaSet' && isController(o, w.metadata.uid)).map((o) => o.metadata.uid);
    podsOf.set(ref(w), made.filter((p) => p.kind === 'Pod' && (isController(p, w.metadata.uid) || rs.some((u) => isController(p, u)))));
  }
  const beforeState = serverState();
  for (const e of env) {
    const gone = runDocumented(e);
    const st = serverState();
    const lost = [...keptRefs].filter((r) => e.namespaces.has(r.split('/')[1]) && (!st.refs.has(r) || st.deleting.includes(r)));
    check(lost.length === 0, 'the documented upgrade deletes no pod, ReplicaSet, revision or claim', e.name, `the one-time steps deleted ${gone.size} objects: ${fmtSet(gone)}`, `gone or terminating: ${lost.join(', ')}`);
    const dangling = st.objects.filter((o) => CONTROLLER_MADE.has(o.kind) && e.namespaces.has(o.metadata.namespace) && (o.metadata.ownerReferences ?? []).some((r) => !st.objects.some((x) => x.metadata.uid === r.uid)));
    check(dangling.length === 0, 'no kept object points to a deleted owner', e.name, 'released', dangling.map(ref).join(', '));
    if (e.prevInstance !== e.instance) {
      const old = st.objects.filter((o) => e.namespaces.has(o.metadata.namespace ?? o.metadata.name) && o.kind !== 'Namespace' && o.metadata.labels?.[INSTANCE_LABEL] === e.prevInstance);
      check(old.length === 0, `after the documented upgrade nothing in the namespace keeps ${INSTANCE_LABEL}=${e.prevInstance}`, e.name, `relabelled to ${e.instance}`, old.map(ref).join(', '));
    }
  }
  const after = expectState('after the documented upgrade the server holds exactly the new output (+ what the controllers made)', new Set([...N, ...keptRefs]));
  const keptOf = (w) => {
    const prev = beforeState.objects.find((o) => ref(o) === ref(w));
    return prev ? (podsOf.get(ref(w)) ?? []) : [];
  };
  checkSelectorsMatchKeptPods(after.objects.filter((o) => o.kind === 'Pod'), keptOf, 'stand-in pods');
  // The StatefulSet controller adopts a pod only by its name (<set>-<ordinal>) and
  // its selector, the Deployment controller a ReplicaSet by its labels; a workload
  // the steps kept (same uid) still owns them.
  const adoptable = [];
  for (const w of newAll.filter((o) => WORKLOAD_KINDS.includes(o.kind))) {
    const was = beforeState.byRef.get(ref(w));
    const now = after.byRef.get(ref(w));
    if (!was || !now) continue;
    const kept = was.metadata.uid === now.metadata.uid;
    const owned = (o) => (kept ? isController(o, now.metadata.uid) : !isController(o));
    const how = kept ? `owned by the same ${w.kind} (not deleted)` : 'ownerless, to be adopted';
    const sel = workloadSelector(w);
    const ns = w.metadata.namespace;
    if (w.kind === 'StatefulSet') {
      const pods = after.objects.filter((o) => o.kind === 'Pod' && o.metadata.namespace === ns && mapSelects(sel, o.metadata.labels));
      const names = new Set(pods.map((p) => p.metadata.name));
      const want = new Set(ordinals(w).map((i) => `${w.metadata.name}-${i}`));
      adoptable.push([ref(w), sameSet(names, want) && pods.every(owned), `pods ${fmtSet(names)} (want ${fmtSet(want)}), ${how}`]);
      const claimNames = (w.spec.volumeClaimTemplates ?? []).flatMap((t) => ordinals(w).map((i) => `PersistentVolumeClaim/${ns}/${t.metadata.name}-${w.metadata.name}-${i}`));
      const missing = claimNames.filter((c) => !after.refs.has(c) || !keptRefs.has(c));
      adoptable.push([`${ref(w)} claims`, missing.length === 0, `${claimNames.length} claims the new pods mount by name are the kept ones${missing.length ? `; not: ${missing.join(', ')}` : ''}`]);
    } else {
      const rss = after.objects.filter((o) => o.kind === 'ReplicaSet' && o.metadata.namespace === ns && mapSelects(sel, o.metadata.labels));
      const mine = made.filter((o) => o.kind === 'ReplicaSet' && o.metadata.namespace === ns && o.metadata.name.startsWith(`${w.metadata.name}-`)).map(ref);
      adoptable.push([ref(w), sameSet(new Set(rss.map(ref)), new Set(mine)) && rss.every(owned), `ReplicaSets selected: ${rss.map(ref).join(', ') || '(none)'}, ${how}`]);
    }
  }
  for (const [w, ok, msg] of adoptable) check(ok, 'the new workload can adopt (or still owns) what its predecessor left', w, msg, msg);
  for (const e of env) {
    const d = user(['diff', '-f', e.newFile]);
    check(d.code === 0, 'kubectl diff against the new output is empty', e.newFile, '', `exit ${d.code}\n${d.stdout}${d.stderr}`);
    documentedDryRun(e.name, e.newFile, { label: 'after the upgrade' });
  }
  // The new StatefulSets now exist: their controller would make their claims. Round 2
  // (the same command again, as on every later upgrade) must change and delete nothing.
  const newClaims = controllerClaims(newAll).filter((c) => !keptRefs.has(ref(c)));
  const extraClaims = createObjects(newClaims, 'claims of new claim templates');
  const allKept = new Set([...keptRefs, ...extraClaims.map(ref)]);
  const before = serverState();
  for (const e of env) documentedUpgrade(e, { label: 'run again' });
  const again = expectState('re-running the documented command deletes nothing, what the controllers made stays', new Set([...N, ...allKept]));
  // Only managedFields may change (kubectl scale made its own entry; the next
  // client-side apply re-records the owners): reported, not counted.
  const bump = again.objects.filter((o) => { const b = before.byRef.get(ref(o)); return b && b.metadata.resourceVersion !== o.metadata.resourceVersion; });
  const paths = (o) => jsonDiff(before.byRef.get(ref(o)), o).filter((x) => !/^\.metadata\.(managedFields|resourceVersion)\b/.test(x));
  const changed = bump.filter((o) => paths(o).length);
  const bookkeeping = bump.filter((o) => !paths(o).length);
  if (bookkeeping.length) note(`re-run: only managedFields changed on ${bookkeeping.map(ref).join(', ')}`);
  check(changed.length === 0, 're-running the documented command changes nothing', `${again.objects.length} objects`, `metadata (but managedFields), spec and status unchanged${bookkeeping.length ? `; managedFields only: ${bookkeeping.map(ref).join(', ')}` : ''}`,
    changed.map((o) => `${ref(o)}: ${paths(o).slice(0, 12).join(', ')}`).join('\n'));
  const claimRefs = [...allKept].filter((c) => c.startsWith('PersistentVolumeClaim/'));
  const lostClaims = claimRefs.filter((c) => !again.refs.has(c) || again.deleting.includes(c));
  check(lostClaims.length === 0 && claimRefs.length > 0, 'no claim ever deleted', `${claimRefs.length} claims`, claimRefs.join(', '), `gone or terminating: ${lostClaims.join(', ')}`);
}

// A release that drops one component: the file without the objects labelled
// component=COMPONENT (its workload, ServiceAccount, HPA, PDB, NetworkPolicy), written to
// OUT. Returns the objects it dropped.
function dropComponent(file, component, out) {
  const docs = readFileSync(file, 'utf8').split(/^---\s*$/m).filter((d) => d.trim());
  const objs = manifest(file);
  if (docs.length !== objs.length) throw new Error(`${file}: ${docs.length} YAML documents but kubectl reads ${objs.length} objects`);
  const drop = (o) => o.metadata.labels?.component === component;
  writeFileSync(out, docs.filter((_, i) => !drop(objs[i])).map((d) => `---${d.startsWith('\n') ? '' : '\n'}${d.trimEnd()}\n`).join(''));
  return objs.filter(drop);
}
const diffName = (o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
// The same command again changes nothing: no object gone, new or with another resourceVersion.
function rerunChangesNothing(label, runs) {
  const before = serverState();
  for (const [name, file] of runs) {
    const r = deploy([file]);
    check(r.code === 0 && r.errors.length === 0 && r.pruned.size === 0, `re-running the documented command succeeds and prunes nothing (${label})`, name, '', `exit ${r.code}; pruned ${fmtSet(r.pruned)}\n${r.stderr}`);
  }
  const after = serverState();
  const moved = after.objects.filter((o) => before.byRef.get(ref(o))?.metadata.resourceVersion !== o.metadata.resourceVersion);
  check(moved.length === 0 && sameSet(after.refs, before.refs), `re-running the documented command changes nothing (${label})`, `${after.objects.length} objects`, 'same objects, same resourceVersions',
    `changed: ${moved.map((o) => `${ref(o)}: ${jsonDiff(before.byRef.get(ref(o)), o).slice(0, 8).join(', ')}`).join('\n')}; gone ${fmtSet(minus(before.refs, after.refs))}, new ${fmtSet(minus(after.refs, before.refs))}`);
  for (const [name, file] of runs) documentedDryRun(name, file, { label: `${label}, after it` });
}

if (opts.scenario === 'next-release') {
  // A fresh install with the documented command, then a next release that only
  // bumps app.kubernetes.io/version: it must upgrade with the documented command
  // alone (no one-time step), deleting and changing nothing else. Then a release
  // that drops a component: --dry-run shows exactly what goes, the command prunes
  // exactly that, no claim, no Namespace; the same command again changes nothing.
  // --dry-run before anything exists: every object of the file listed, nothing created
  for (const e of env) {
    const r = deploy(['--dry-run', e.newFile]);
    const listed = new Set([...r.stdout.matchAll(/^would create (\S+)$/gm)].map((m) => m[1]));
    const want = new Set(e.next.map((o) => `${o.kind}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`));
    const s = serverState();
    check(r.code === 1 && sameSet(listed, want) && s.refs.size === 0, '--dry-run of a new installation lists every object as one to create and creates nothing', e.newFile,
      `exit 1, ${listed.size} objects`, `exit ${r.code}; listed ${fmtSet(listed)}; want ${fmtSet(want)}; the server holds ${fmtSet(s.refs)}\n${r.stderr}`);
  }
  for (const e of env) documentedUpgrade(e, { label: 'fresh install' });
  const claims = createObjects(controllerClaims(newAll), 'claims of the StatefulSets');
  const dir = join(opts.work, 'next-release');
  mkdirSync(dir, { recursive: true });
  for (const e of env) {
    const file = join(dir, e.name);
    const text = readFileSync(e.newFile, 'utf8');
    const bumped = text.replace(/^(\s*app\.kubernetes\.io\/version: )"?([^"\s]+)"?\s*$/gm, '$1"$2-next"');
    check(bumped !== text, 'next release differs only in app.kubernetes.io/version', file, `${(text.match(/app\.kubernetes\.io\/version:/g) ?? []).length} labels bumped`, 'no app.kubernetes.io/version label to bump');
    writeFileSync(file, bumped);
    e.nextFile = file;
  }
  for (const e of env) documentedDryRun(e.name, e.nextFile, { label: 'next release', wantChanges: true });
  for (const e of env) documentedUpgrade(e, { label: 'next release', file: e.nextFile });
  expectState('after the next release the server holds the same objects (+ the claims)', new Set([...N, ...claims.map(ref)]));
  for (const e of env) {
    const d = user(['diff', '-f', e.nextFile]);
    check(d.code === 0, 'kubectl diff against the next release is empty', e.nextFile, '', `exit ${d.code}\n${d.stdout}${d.stderr}`);
  }
  // A release that drops the python-sdk component (every object labelled with it).
  const dropDir = join(opts.work, 'drop-release');
  mkdirSync(dropDir, { recursive: true });
  const gone = new Set();
  for (const e of env) {
    e.dropFile = join(dropDir, e.name);
    e.dropped = dropComponent(e.nextFile, 'python-sdk', e.dropFile);
    check(e.dropped.length >= 3 && e.dropped.some((o) => WORKLOAD_KINDS.includes(o.kind)), 'a release that drops a component: its objects are gone from the file', e.dropFile, `drops ${e.dropped.map(ref).join(', ')}`, `only ${e.dropped.map(ref).join(', ') || 'nothing'} labelled component=python-sdk`);
    for (const o of e.dropped) gone.add(ref(o));
  }
  for (const e of env) documentedDryRun(e.name, e.dropFile, { label: 'a release that drops python-sdk', wantDeleted: new Set(e.dropped.map(diffName)) });
  for (const e of env) documentedUpgrade(e, { label: 'a release that drops python-sdk', file: e.dropFile, want: new Set(e.dropped.map(kubectlName)) });
  const after = expectState('after it the server holds the release\'s objects, the Namespaces and every claim', new Set([...minus(N, gone), ...claims.map(ref)]));
  check(claims.every((c) => after.refs.has(ref(c))), 'no claim deleted', `${claims.length} claims`, claims.map(ref).join(', '), '');
  rerunChangesNothing('a release that drops python-sdk', env.map((e) => [e.name, e.dropFile]));
}

if (opts.scenario === 'shared-namespace') {
  // Two installations in one namespace, one creating it: each deployed with the documented
  // command, each release of one prunes its own objects only.
  const inst = yamlFiles(opts.shared).map((file) => {
    const objs = manifest(file);
    const instances = new Set(objs.map((o) => o.metadata.labels?.[INSTANCE_LABEL]).filter(Boolean));
    return { file, name: basename(file), objs, instance: [...instances][0], instances, createsNs: objs.some((o) => o.kind === 'Namespace') };
  }).sort((x, y) => Number(y.createsNs) - Number(x.createsNs));
  const nss = new Set(inst.flatMap((i) => i.objs.map((o) => o.metadata.namespace).filter(Boolean)));
  if (!check(inst.length === 2 && inst.every((i) => i.instances.size === 1) && inst[0].instance !== inst[1].instance && nss.size === 1 && inst[0].createsNs && !inst[1].createsNs,
    'input: two installations in one namespace, one creating it', `${opts.shared}: ${inst.map((i) => `${i.name} (${[...i.instances].join(',')})`).join(', ')}`, `namespace ${[...nss][0]}`, `namespaces ${fmtSet(nss)}`)) process.exit(1);
  const [a, b] = inst;
  let r = deploy([b.file]);
  check(r.code === 6 && /does not exist and .* does not create it/.test(r.stderr) && serverState().refs.size === 0, 'the installation that does not create the namespace waits for it: exit 6, nothing applied', b.name,
    'namespace missing: refused', `exit ${r.code}; server holds ${fmtSet(serverState().refs)}\n${r.stderr}`);
  for (const i of [a, b]) {
    r = deploy([i.file]);
    check(r.code === 0 && r.errors.length === 0 && r.pruned.size === 0, 'each installation installs with the documented command', i.name, `${i.objs.length} objects`, `exit ${r.code}\n${r.stderr}`);
  }
  const claims = createObjects(controllerClaims([...a.objs, ...b.objs]), 'claims of both installations');
  const claimRefs = new Set(claims.map(ref));
  const both = new Set([...a.objs, ...b.objs].map(ref));
  expectState('the server holds both installations (+ their claims)', new Set([...both, ...claimRefs]));
  const dir = join(opts.work, 'shared-releases');
  mkdirSync(dir, { recursive: true });
  const left = new Set([...both, ...claimRefs]);
  for (const [mine, other] of [[b, a], [a, b]]) {
    const file = join(dir, mine.name);
    const dropped = dropComponent(mine.file, 'python-sdk', file);
    documentedDryRun(mine.name, file, { label: `${mine.instance} drops python-sdk`, wantDeleted: new Set(dropped.map(diffName)) });
    const before = serverState();
    r = deploy([file]);
    check(r.code === 0 && r.errors.length === 0, `a release of ${mine.instance} that drops python-sdk deploys`, file, '', `exit ${r.code}\n${r.stderr}`);
    check(sameSet(r.pruned, new Set(dropped.map(kubectlName))), `it prunes exactly ${mine.instance}'s dropped objects`, mine.name, fmtSet(r.pruned), `pruned ${fmtSet(r.pruned)}; dropped ${dropped.map(kubectlName).join(', ')}`);
    for (const o of dropped) left.delete(ref(o));
    const after = expectState(`after it the server holds what is left of both installations (+ every claim)`, left);
    const otherRefs = new Set([...other.objs.map(ref), ...[...claimRefs], ...a.objs.filter((o) => o.kind === 'Namespace').map(ref)]);
    const touched = [...otherRefs].filter((x) => after.byRef.get(x)?.metadata.resourceVersion !== before.byRef.get(x)?.metadata.resourceVersion);
    check(touched.length === 0, `${other.instance}'s objects, the Namespace and every claim untouched by ${mine.instance}'s release`, `${otherRefs.size} objects`, 'same resourceVersions', `changed or gone: ${touched.join(', ')}`);
    mine.releaseFile = file;
  }
  rerunChangesNothing('both installations', [[a.name, a.releaseFile], [b.name, b.releaseFile]]);
  // Control: the same pruning apply without the instance label in its selector would delete
  // the other installation's objects in the namespace.
  r = user(['apply', '--prune', '-l', `${MANAGED_BY_LABEL}=${opts.managedBy}`, ...ALLOWLIST.map((k) => `--prune-allowlist=${k}`), '-f', a.file]);
  const hitOther = b.objs.filter((o) => [...r.stdout.matchAll(/^(\S+)\s+pruned$/gm)].some((m) => m[1] === kubectlName(o)));
  check(r.code === 0 && hitOther.length > 0, 'control: without the instance label in the selector, one installation\'s prune deletes the other\'s objects', a.name,
    `deleted ${hitOther.length} of ${b.instance}'s: ${hitOther.slice(0, 3).map(ref).join(', ')}…`, `exit ${r.code}; pruned ${(r.stdout.match(/pruned$/gm) ?? []).length}: the instance label may no longer be what keeps installations apart\n${r.stderr}`);
}

if (opts.scenario === 'prune-without-allowlist') {
  // A control: upgrade ONE environment pruning by the managed-by label alone with
  // kubectl's default allowlist (which has Namespace and PersistentVolumeClaim).
  if (env.length < 2) { fail('control needs two environments', opts.previous, `only ${env.length}`); }
  else {
    installPrevious();
    const claims = createObjects(controllerClaims(prevAll), 'claims of the StatefulSets');
    const [e, ...others] = env;
    let r;
    runDocumented(e, { apply: () => { r = user(['apply', '--prune', '-l', `${MANAGED_BY_LABEL}=${opts.managedBy}`, '-f', e.newFile]); } });
    const s = serverState();
    const otherNs = others.flatMap((o) => o.next.filter((x) => x.kind === 'Namespace').map(ref));
    const hit = otherNs.filter((n) => !s.refs.has(n) || s.deleting.includes(n));
    check(r.code === 0 && hit.length > 0, `control: the default allowlist deletes another environment's Namespace`, hit.join(', ') || fmtSet(new Set(otherNs)),
      `kubectl said: ${(r.stdout.match(/^namespace\/\S+ pruned$/m) ?? [''])[0]}; the state comparison sees it as: being deleted ${s.deleting.filter((x) => x.startsWith('Namespace/')).join(', ')}`,
      `expected ${otherNs.join(', ')} to be deleted by this command (exit ${r.code}); kubectl's default prune allowlist may have changed: re-check why the documented command excludes Namespace\n${r.stderr}`);
    const lost = claims.map(ref).filter((c) => !s.refs.has(c) || s.deleting.includes(c));
    check(lost.length === 0, 'control: claims without the last-applied annotation are not pruned even so', claims.map(ref).join(', '), 'kubectl prunes only objects it applied', `deleted: ${lost.join(', ')}`);
  }
}

if (opts.scenario === 'adoption') await import('./upgrade-adoption.mjs').then((m) => m.run({
  opts, env, prevAll, newAll, N, dropped, allNamespaces, record, pass, fail, check, note, kubectl, user, json, items, jsonDocs, sleep, ref, fmtSet, minus, sameSet,
  mapSelects, podLabels, workloadSelector, isController, kubectlName, serverState, runDocumented, documentedUpgrade, wantPruned, checkSelectorsMatchKeptPods,
  ordinals, INSTANCE_LABEL, WORKLOAD_KINDS, KUBE_ENV, spawn, openSync, closeSync, existsSync, readFileSync,
}));

console.log(`--- ${opts.serverVersion} upgrade ${opts.scenario}: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
