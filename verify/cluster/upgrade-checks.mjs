#!/usr/bin/env node
// One scenario of the upgrade proof (started by upgrade.sh against a running,
// EMPTY kube-apiserver): install the previous release's manifests the way the
// README told users (`kubectl apply -f FILE`, client-side), then upgrade to the
// new manifests, and assert on what the server holds afterwards. Node built-ins
// only; every fact is read back from the server.
//
// usage: node upgrade-checks.mjs --kubectl PATH --kubeconfig FILE --server-version vX.Y.Z
//          --scenario readme-apply|documented|next-release|prune-without-allowlist
//          --previous DIR --dist DIR --prune-allowlist GVK,GVK... --managed-by VALUE
//          --orphan-first Kind/namespace/name,... --work DIR --results FILE.jsonl
// Scenarios (each on an empty cluster):
//   readme-apply             previous, then `kubectl apply -f NEW`: the objects the
//                            new output dropped stay, a left-behind workload is
//                            selected by a Service beside its successor (the hazard
//                            the upgrade notes warn about), and every object the
//                            server rejects as immutable is in the --cascade=orphan step.
//   documented               previous, then the documented upgrade per file:
//                            `kubectl -n NS delete KIND NAME --cascade=orphan` for
//                            --orphan-first, then
//                            `kubectl apply --prune -l <managed-by>,<instance> --prune-allowlist=GVK... -f NEW`:
//                            exactly the new output remains, claims are never deleted,
//                            the same command again changes nothing.
//   next-release             the documented command as a fresh install, then a release
//                            that only bumps app.kubernetes.io/version: no orphan step needed.
//   prune-without-allowlist  a control: pruning one environment by the managed-by label
//                            alone with kubectl's default allowlist deletes the OTHER
//                            environment's Namespace, and the state comparison sees it.
// Each result is appended to --results as {version, scenario, check, object, ok, message}.
import { spawnSync } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, basename } from 'node:path';

const INSTANCE_LABEL = 'app.kubernetes.io/instance';
const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'];
const KUBECTL_TIMEOUT_MS = 120000;
const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];
// What the server (or its controllers) makes by itself in every namespace.
const SERVER_MADE = new Set(['ServiceAccount/default', 'ConfigMap/kube-root-ca.crt']);
// Everything a namespace could hold that an upgrade might leave behind or delete.
const READ_BACK = [
  'configmaps', 'secrets', 'serviceaccounts', 'services', 'persistentvolumeclaims', 'pods',
  'deployments.apps', 'statefulsets.apps', 'daemonsets.apps', 'replicasets.apps', 'jobs.batch', 'cronjobs.batch',
  'horizontalpodautoscalers.v2.autoscaling', 'poddisruptionbudgets.v1.policy',
  'ingresses.v1.networking.k8s.io', 'networkpolicies.v1.networking.k8s.io',
  'roles.rbac.authorization.k8s.io', 'rolebindings.rbac.authorization.k8s.io',
];

// ---------------------------------------------------------------- arguments
const opts = {};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  opts[k] = process.argv[i + 1];
}
for (const k of ['kubectl', 'kubeconfig', 'serverVersion', 'scenario', 'previous', 'dist', 'pruneAllowlist', 'managedBy', 'results', 'work']) {
  if (!opts[k]) { console.error(`upgrade-checks.mjs: missing --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`); process.exit(2); }
}
if (!['readme-apply', 'documented', 'next-release', 'prune-without-allowlist'].includes(opts.scenario)) { console.error(`upgrade-checks.mjs: unknown scenario ${opts.scenario}`); process.exit(2); }
process.on('uncaughtException', (e) => { console.error('upgrade-checks.mjs crashed:', e); process.exit(3); });
const ALLOWLIST = opts.pruneAllowlist.split(',').filter(Boolean);
const ORPHAN_FIRST = (opts.orphanFirst ?? '').split(',').filter(Boolean);

// ---------------------------------------------------------------- results
let passed = 0;
let failed = 0;
function record(check, object, ok, message = '') {
  appendFileSync(opts.results, JSON.stringify({ version: opts.serverVersion, scenario: opts.scenario, check, object, ok, message }) + '\n');
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'}: [${opts.serverVersion} ${opts.scenario}] ${check}: ${object}${ok && message ? ` (${message})` : ''}`);
  if (!ok && message) for (const line of String(message).trimEnd().split('\n').slice(0, 40)) console.log(`      ${line}`);
}
const pass = (c, o, m) => record(c, o, true, m);
const fail = (c, o, m) => record(c, o, false, m);
const check = (ok, c, o, okMsg, failMsg) => (ok ? pass(c, o, okMsg) : fail(c, o, failMsg));

// ---------------------------------------------------------------- kubectl
function kubectl(args, input) {
  const r = spawnSync(opts.kubectl, ['--kubeconfig', opts.kubeconfig, ...args], { input, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: KUBECTL_TIMEOUT_MS });
  if (r.error?.code === 'ETIMEDOUT') return { code: 124, stdout: r.stdout ?? '', stderr: `kubectl ${args.join(' ')}: no answer in ${KUBECTL_TIMEOUT_MS / 1000} s` };
  if (r.error) throw new Error(`unable to execute '${opts.kubectl}': ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}
// Run a user-facing command and show it the way a user would type it.
function user(args) {
  console.log(`  $ kubectl ${args.map((a) => (/[\s,=]/.test(a) && !a.startsWith('-') ? `'${a}'` : a)).join(' ')}`);
  const r = kubectl(args);
  for (const l of `${r.stdout}${r.stderr ? `\n${r.stderr}` : ''}`.trim().split('\n').filter(Boolean)) console.log(`    ${l}`);
  return r;
}
const items = (j) => (j == null ? [] : Array.isArray(j.items) ? j.items : [j]);
function json(args) {
  const r = kubectl([...args, '-o', 'json']);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// ---------------------------------------------------------------- objects
const ref = (o) => `${o.kind}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;
const yamlFiles = (dir) => readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(dir, f));
// The objects of a manifest file, as kubectl reads them (client-side, nothing
// sent). kubectl prints one indented JSON document per object, each closed by
// a "}" in column 0.
function manifest(file) {
  const r = kubectl(['create', '--dry-run=client', '-o', 'json', '-f', file]);
  if (r.code !== 0) throw new Error(`kubectl create --dry-run=client -f ${file}: ${r.stderr}`);
  return r.stdout.split(/^\}\s*$/m).filter((t) => t.trim()).map((t) => JSON.parse(`${t}}`)).flatMap(items);
}
const fmtSet = (s) => (s.size ? [...s].sort().join(', ') : '(none)');
const minus = (a, b) => new Set([...a].filter((x) => !b.has(x)));
const sameSet = (a, b) => a.size === b.size && [...a].every((x) => b.has(x));
const podLabels = (w) => w.spec?.template?.metadata?.labels ?? {};
const mapSelects = (sel, labels) => Object.keys(sel ?? {}).length > 0 && Object.entries(sel).every(([k, v]) => labels[k] === v);

// What the server holds: every non-system Namespace and what is in it
// (minus what the server makes by itself), with the deletion state.
function serverState() {
  const nss = items(json(['get', 'namespaces'])).filter((n) => !SYSTEM_NAMESPACES.includes(n.metadata.name));
  const inNs = items(json(['get', READ_BACK.join(','), '--all-namespaces']))
    .filter((o) => !SYSTEM_NAMESPACES.includes(o.metadata.namespace) && !SERVER_MADE.has(`${o.kind}/${o.metadata.name}`));
  const all = [...nss, ...inNs];
  return { objects: all, refs: new Set(all.map(ref)), deleting: all.filter((o) => o.metadata.deletionTimestamp).map(ref) };
}

// The claim a StatefulSet controller makes for each claim template and pod:
// <template>-<set>-<ordinal>, labelled with the template's and the selector's
// labels, created without kubectl's last-applied annotation.
function controllerClaims(objects) {
  return objects.filter((o) => o.kind === 'StatefulSet').flatMap((s) => (s.spec.volumeClaimTemplates ?? []).flatMap((t) => [...Array(s.spec.replicas ?? 1).keys()].map((i) => ({
    apiVersion: 'v1', kind: 'PersistentVolumeClaim',
    metadata: { name: `${t.metadata.name}-${s.metadata.name}-${(s.spec.ordinals?.start ?? 0) + i}`, namespace: s.metadata.namespace, labels: { ...(t.metadata.labels ?? {}), ...(s.spec.selector?.matchLabels ?? {}) } },
    spec: t.spec,
  }))));
}
function createClaims(claims) {
  for (const c of claims) {
    const r = kubectl(['create', '-f', '-'], JSON.stringify(c));
    check(r.code === 0, 'stand-in for a StatefulSet-made claim created', ref(c), `labels ${Object.keys(c.metadata.labels).length}, no last-applied annotation`, r.stderr);
  }
}

// ---------------------------------------------------------------- inputs
const prevFiles = yamlFiles(opts.previous);
const newFiles = yamlFiles(opts.dist);
const pairs = prevFiles.map((p) => [p, newFiles.find((n) => basename(n) === basename(p))]);
for (const [p, n] of pairs) if (!n) fail('every previous environment has a new manifest', basename(p), `no ${basename(p)} in ${opts.dist}: its objects would never be upgraded`);
const env = pairs.filter(([, n]) => n).map(([p, n]) => {
  const prev = manifest(p);
  const next = manifest(n);
  const inst = new Set(next.map((o) => o.metadata.labels?.[INSTANCE_LABEL]));
  return { name: basename(n), prevFile: p, newFile: n, prev, next, instance: [...inst][0], instances: inst };
});
const prevAll = env.flatMap((e) => e.prev);
const newAll = env.flatMap((e) => e.next);
const P = new Set(prevAll.map(ref));
const N = new Set(newAll.map(ref));
const dropped = minus(P, N);
console.log(`--- upgrade ${opts.scenario}: server ${opts.serverVersion}; previous ${opts.previous} (${P.size} objects), new ${opts.dist} (${N.size} objects); dropped by the new output: ${fmtSet(dropped)}`);

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

// ================================================================ scenarios
if (opts.scenario === 'readme-apply') {
  installPrevious();
  const rejected = new Set();
  for (const e of env) {
    const r = user(['apply', '-f', e.newFile]);
    const here = new Set();
    for (const m of r.stderr.matchAll(/The (\w+) "([^"]+)" is invalid/g)) {
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
  // documented upgrade deletes with --cascade=orphan first.
  const undocumented = minus(rejected, new Set(ORPHAN_FIRST));
  check(undocumented.size === 0, 'objects rejected as immutable are in the documented --cascade=orphan step', fmtSet(rejected),
    `documented: ${ORPHAN_FIRST.join(', ') || '(none)'}`, `rejected by the server but not in the documented step: ${fmtSet(undocumented)}`);
  const notThere = ORPHAN_FIRST.filter((o) => !P.has(o) || !N.has(o) || !WORKLOAD_KINDS.includes(o.split('/')[0]));
  check(notThere.length === 0, 'the --cascade=orphan step names workloads of both releases', ORPHAN_FIRST.join(', ') || '(none)', '', `not a workload of both the previous and the new output: ${notThere.join(', ')}`);
  // Plain apply never deletes: the server holds the new output plus what it dropped.
  const s = expectState('plain apply leaves the dropped objects beside the new ones', new Set([...N, ...dropped]));
  // The hazard: a dropped workload is still selected by a Service of the new
  // output, beside the workload that replaced it.
  const live = (r) => s.objects.find((o) => ref(o) === r);
  const staleWorkloads = [...dropped].map(live).filter((o) => o && WORKLOAD_KINDS.includes(o.kind));
  const hazards = [];
  for (const w of staleWorkloads) {
    for (const svc of s.objects.filter((o) => o.kind === 'Service' && N.has(ref(o)) && o.metadata.namespace === w.metadata.namespace)) {
      const alsoNew = s.objects.filter((o) => WORKLOAD_KINDS.includes(o.kind) && N.has(ref(o)) && o.metadata.namespace === w.metadata.namespace && mapSelects(svc.spec.selector, podLabels(o)));
      if (mapSelects(svc.spec.selector, podLabels(w)) && alsoNew.length) hazards.push(`${ref(svc)} selects the pods of ${ref(w)} (left behind) and of ${alsoNew.map(ref).join(', ')}`);
    }
    for (const h of s.objects.filter((o) => o.kind === 'HorizontalPodAutoscaler' && o.spec.scaleTargetRef?.kind === w.kind && o.spec.scaleTargetRef?.name === w.metadata.name && o.metadata.namespace === w.metadata.namespace)) {
      note(`${ref(h)} (${dropped.has(ref(h)) ? 'also left behind' : 'in the new output'}) still scales ${ref(w)}`);
    }
  }
  check(hazards.length > 0, 'hazard of a plain apply: a left-behind workload serves beside its successor', `${staleWorkloads.length} left-behind workload(s): ${staleWorkloads.map(ref).join(', ') || '(none)'}`,
    hazards.join('; '), `no left-behind workload is selected by a Service of the new output together with a new workload: the upgrade notes describe a hazard these manifests no longer have (${fmtSet(dropped)})`);
}

// The documented one-time step: delete what the server would reject as an
// immutable change, leaving its pods (and claims) to the new object.
function orphanFirst(e) {
  const nss = new Set(e.prev.map((o) => o.metadata.namespace).filter(Boolean));
  for (const o of ORPHAN_FIRST.filter((x) => nss.has(x.split('/')[1]))) {
    const [kind, ns, name] = o.split('/');
    // --wait=false: the "orphan" finalizer is removed by the garbage collector,
    // which does not run here; do its part (there are no dependents to release).
    const r = user(['-n', ns, 'delete', kind.toLowerCase(), name, '--cascade=orphan', '--wait=false']);
    const f = kubectl(['-n', ns, 'patch', kind.toLowerCase(), name, '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]']);
    const gone = kubectl(['-n', ns, 'get', kind.toLowerCase(), name]);
    check(r.code === 0 && f.code === 0 && /NotFound|not found/.test(gone.stderr), 'documented: delete with --cascade=orphan first', o,
      'deleted; with the orphan finalizer its pods and claims stay for the new object',
      `delete exit ${r.code} ${r.stderr}\nfinalizer removal (as the garbage collector does) exit ${f.code} ${f.stderr}\nstill there: ${gone.stdout}`);
  }
}
const selectorOf = (e) => `${MANAGED_BY_LABEL}=${opts.managedBy},${INSTANCE_LABEL}=${e.instance}`;
const pruneArgs = (e, file) => ['apply', '--prune', '-l', selectorOf(e), ...ALLOWLIST.map((k) => `--prune-allowlist=${k}`), '-f', file];
// The documented upgrade command for one environment; `want` = what it must prune.
function documentedUpgrade(e, { label, file = e.newFile, want = new Set() }) {
  const r = user(pruneArgs(e, file));
  const pruned = new Set([...r.stdout.matchAll(/^(\S+)\s+pruned$/gm)].map((m) => m[1]));
  check(r.code === 0 && !r.stderr, `documented upgrade command succeeds (${label})`, file, selectorOf(e), `exit ${r.code}\n${shortErrors(r.stderr)}`);
  check(sameSet(pruned, want), `it prunes exactly the objects the new output dropped (${label})`, e.name, fmtSet(pruned), `pruned: ${fmtSet(pruned)}\nexpected: ${fmtSet(want)}`);
}
// kubectl's apply errors without the patch bodies it quotes.
const shortErrors = (text) => text.split('\n').filter((l) => !/^\s*(\{|to:$|Resource: |Name: )/.test(l))
  .map((l) => l.replace(/^for: "[^"]*": error when patching "[^"]*": /, '  ').slice(0, 400)).join('\n');
// kubectl's "kind.group/name" for an object.
const kubectlName = (o) => `${o.kind.toLowerCase()}${o.apiVersion.includes('/') ? `.${o.apiVersion.split('/')[0]}` : ''}/${o.metadata.name}`;

if (opts.scenario === 'documented') {
  // The documented selector and allowlist must cover the new output: `-l`
  // also filters what is applied, and a kind missing from the allowlist is never pruned.
  for (const e of env) {
    const unlabelled = e.next.filter((o) => o.metadata.labels?.[MANAGED_BY_LABEL] !== opts.managedBy || o.metadata.labels?.[INSTANCE_LABEL] !== e.instance);
    check(e.instances.size === 1 && unlabelled.length === 0, 'every new object carries the selector labels', e.name, `${MANAGED_BY_LABEL}=${opts.managedBy}, ${INSTANCE_LABEL}=${e.instance}`,
      `instances ${[...e.instances].join(', ')}; without the labels (kubectl apply -l would silently skip them): ${unlabelled.map(ref).join(', ')}`);
  }
  const gvk = (o) => `${o.apiVersion.includes('/') ? o.apiVersion : `core/${o.apiVersion}`}/${o.kind}`;
  const kinds = new Set([...prevAll, ...newAll].map(gvk));
  const must = minus(kinds, new Set(['core/v1/Namespace', 'core/v1/PersistentVolumeClaim']));
  const bad = ALLOWLIST.filter((k) => /\/(Namespace|PersistentVolumeClaim)$/.test(k));
  check(minus(must, new Set(ALLOWLIST)).size === 0 && bad.length === 0, 'prune allowlist = the kinds the kit emits, without Namespace and PersistentVolumeClaim', ALLOWLIST.join(','), '',
    `kinds emitted but not in the allowlist: ${fmtSet(minus(must, new Set(ALLOWLIST)))}; must never be pruned: ${bad.join(', ') || '(none)'}`);

  installPrevious();
  const claims = controllerClaims(prevAll);
  createClaims(claims);
  const claimRefs = new Set(claims.map(ref));
  for (const e of env) {
    orphanFirst(e);
    documentedUpgrade(e, { label: 'upgrade', want: new Set(e.prev.filter((o) => dropped.has(ref(o))).map(kubectlName)) });
  }
  expectState('after the documented upgrade the server holds exactly the new output (+ the claims)', new Set([...N, ...claimRefs]));
  for (const e of env) {
    const d = user(['diff', '-f', e.newFile]);
    check(d.code === 0, 'kubectl diff against the new output is empty', e.newFile, '', `exit ${d.code}\n${d.stdout}${d.stderr}`);
  }
  // The new StatefulSets now exist: their controller would make their claims. Round 2
  // (the same command again, as on every later upgrade) must change and delete nothing.
  const newClaims = controllerClaims(newAll).filter((c) => !claimRefs.has(ref(c)));
  createClaims(newClaims);
  const allClaims = new Set([...claimRefs, ...newClaims.map(ref)]);
  const before = serverState();
  for (const e of env) documentedUpgrade(e, { label: 'run again' });
  const after = expectState('re-running the documented command deletes nothing, claims stay', new Set([...N, ...allClaims]));
  const changed = after.objects.filter((o) => { const b = before.objects.find((x) => ref(x) === ref(o)); return b && b.metadata.resourceVersion !== o.metadata.resourceVersion; });
  check(changed.length === 0, 're-running the documented command changes nothing', `${after.objects.length} objects`, 'resourceVersions unchanged', changed.map(ref).join(', '));
  for (const c of allClaims) check(after.refs.has(c) && !after.deleting.includes(c), 'claim never deleted', c, 'present, not terminating', 'gone or terminating');
}

if (opts.scenario === 'next-release') {
  // A fresh install with the documented command, then a next release that only
  // bumps app.kubernetes.io/version: it must upgrade with the documented command
  // alone (no --cascade=orphan step), deleting and changing nothing else.
  for (const e of env) documentedUpgrade(e, { label: 'fresh install' });
  const claims = controllerClaims(newAll);
  createClaims(claims);
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
  for (const e of env) documentedUpgrade(e, { label: 'next release', file: e.nextFile });
  expectState('after the next release the server holds the same objects (+ the claims)', new Set([...N, ...claims.map(ref)]));
  for (const e of env) {
    const d = user(['diff', '-f', e.nextFile]);
    check(d.code === 0, 'kubectl diff against the next release is empty', e.nextFile, '', `exit ${d.code}\n${d.stdout}${d.stderr}`);
  }
}

if (opts.scenario === 'prune-without-allowlist') {
  // A control: upgrade ONE environment pruning by the managed-by label alone with
  // kubectl's default allowlist (which has Namespace and PersistentVolumeClaim).
  if (env.length < 2) { fail('control needs two environments', opts.previous, `only ${env.length}`); }
  else {
    installPrevious();
    const claims = controllerClaims(prevAll);
    createClaims(claims);
    const [e, ...others] = env;
    orphanFirst(e);
    const r = user(['apply', '--prune', '-l', `${MANAGED_BY_LABEL}=${opts.managedBy}`, '-f', e.newFile]);
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

function note(msg) { console.log(`  note  ${msg}`); }
console.log(`--- ${opts.serverVersion} upgrade ${opts.scenario}: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
