#!/usr/bin/env node
// The Helm tier's checks (started by verify/helm/run.sh against a running, EMPTY
// kube-apiserver with kube-controller-manager, kube-scheduler and kwok beside it): each
// environment's chart (DIST/helm/<env>/) through real Helm, every step asserted from what
// the server then holds. Node built-ins only.
//
// usage: node checks.mjs --helm PATH --kubectl PATH --kubeconfig FILE --server-version vX.Y.Z
//          --dist DIR --next DIR --deploy PATH --work DIR --results FILE.jsonl [--envs dev,prod]
//   --next  the changed release (verify/helm/releases.mjs): NEXT/<env>.yaml, NEXT/helm/<env>/,
//           NEXT/release.json
// Per environment (release = the installation's instance name, in its namespace):
//   lint       helm lint --strict: no warning, no error
//   template   helm template renders exactly the objects of DIST/<env>.yaml but the
//              Namespace; for another namespace it fails, saying where the release must
//              live; a value given to the chart is rejected (it takes none)
//   install    the Namespace from the plain file (the chart leaves it out), helm install
//              --wait: the server holds exactly the chart's objects (+ what controllers
//              make), each with Helm's ownership marks beside every label of the kit, every
//              pod ready, every claim Bound; scripts/deploy.sh refuses the Helm-owned objects
//   upgrade    helm upgrade --wait to the changed release: exactly its objects, the dropped
//              ones deleted, the changed values as written ({{ }} included), no claim lost
//   rollback   helm rollback --wait to revision 1: exactly revision 1's objects again, the
//              StatefulSet it brings back mounts the claim its predecessor left
//   uninstall  helm uninstall --wait: no object of the release left, the Namespace and every
//              StatefulSet claim (same uid) kept
//   switch     scripts/deploy.sh then installs the plain file and its StatefulSets mount the
//              kept claims; helm install over those objects is refused and changes nothing
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { items, jsonDocs, jsonReader, ref } from '../lib/kubectl-json.mjs';
import { simulatedCluster } from '../lib/sim-cluster.mjs';

const opts = {};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  opts[k] = process.argv[i + 1];
}
for (const k of ['helm', 'kubectl', 'kubeconfig', 'serverVersion', 'dist', 'next', 'deploy', 'work', 'results']) {
  if (!opts[k]) { console.error(`checks.mjs: missing --${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`); process.exit(2); }
}
process.on('uncaughtException', (e) => { console.error('checks.mjs crashed:', e); process.exit(3); });
const ENVS = (opts.envs ?? 'dev,prod').split(',').filter(Boolean);
const RELEASE = JSON.parse(readFileSync(join(opts.next, 'release.json'), 'utf8'));
const TIMEOUT_MS = 600000;
mkdirSync(opts.work, { recursive: true });

// ---------------------------------------------------------------- results
let passed = 0;
let failed = 0;
let scenario = '-';
function record(checkName, object, ok, message = '') {
  appendFileSync(opts.results, JSON.stringify({ version: opts.serverVersion, scenario, check: checkName, object, ok, message }) + '\n');
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'}: [${scenario}] ${checkName}: ${object}${ok && message ? ` (${message})` : ''}`);
  if (!ok && message) for (const line of String(message).trimEnd().split('\n').slice(0, 40)) console.log(`      ${line}`);
  return ok;
}
const check = (ok, c, o, okMsg, failMsg) => record(c, o, ok, ok ? okMsg : failMsg);
function note(msg) {
  console.log(`  note  ${msg}`);
  appendFileSync(opts.results, JSON.stringify({ version: opts.serverVersion, scenario, note: msg }) + '\n');
}
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

// ---------------------------------------------------------------- programs
const ENV = {
  ...process.env, KUBECACHEDIR: join(opts.work, 'kcache'),
  // Helm's own state in the work directory: nothing of the user's Helm is read
  HELM_CACHE_HOME: join(opts.work, 'helm-cache'), HELM_CONFIG_HOME: join(opts.work, 'helm-config'), HELM_DATA_HOME: join(opts.work, 'helm-data'),
};
function run(bin, args, input, show = true) {
  if (show) console.log(`  $ ${bin === opts.helm ? 'helm' : bin === opts.kubectl ? 'kubectl' : bin} ${args.join(' ')}`);
  const r = spawnSync(bin, args, { input, encoding: 'utf8', env: ENV, maxBuffer: 256 * 1024 * 1024, timeout: TIMEOUT_MS });
  if (r.error) throw new Error(`unable to run ${bin}: ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}
const kubectl = (args, input) => run(opts.kubectl, ['--kubeconfig', opts.kubeconfig, ...args], input, false);
const helm = (args) => run(opts.helm, [...args, '--kubeconfig', opts.kubeconfig]);
const json = jsonReader(kubectl);
// Objects as kubectl reads them from YAML (a file, or Helm's output on stdin).
function objectsOf(fileOrText, fromText = false) {
  const r = fromText ? kubectl(['create', '--dry-run=client', '--validate=false', '-o', 'json', '-f', '-'], fileOrText) : kubectl(['create', '--dry-run=client', '--validate=false', '-o', 'json', '-f', fileOrText]);
  if (r.code !== 0) throw new Error(`kubectl cannot read ${fromText ? 'the rendered chart' : fileOrText}: ${r.stderr}`);
  return jsonDocs(r.stdout).flatMap(items);
}

// ---------------------------------------------------------------- objects
const fmt = (xs) => (xs.length ? [...xs].sort().join(', ') : '(none)');
const canon = (v) => (Array.isArray(v) ? v.map(canon) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon(v[k])])) : v);
const same = (a, b) => JSON.stringify(canon(a)) === JSON.stringify(canon(b));
const isNamespace = (o) => o.kind === 'Namespace';
const CONTROLLER_MADE = new Set(['Pod', 'ReplicaSet', 'ControllerRevision', 'PersistentVolumeClaim']);
const SERVER_MADE = new Set(['ServiceAccount/default', 'ConfigMap/kube-root-ca.crt']);
const READ_BACK = ['configmaps', 'secrets', 'serviceaccounts', 'services', 'persistentvolumeclaims', 'pods', 'deployments.apps', 'statefulsets.apps',
  'replicasets.apps', 'controllerrevisions.apps', 'horizontalpodautoscalers.v2.autoscaling', 'poddisruptionbudgets.v1.policy',
  'ingresses.v1.networking.k8s.io', 'networkpolicies.v1.networking.k8s.io'];
// What the namespace holds, split into the release's objects, what controllers made, Helm's
// release records (Secrets of type helm.sh/release.v1), and anything else.
function namespaceState(ns) {
  const all = items(json(['-n', ns, 'get', READ_BACK.join(',')])).filter((o) => !SERVER_MADE.has(`${o.kind}/${o.metadata.name}`));
  const releases = all.filter((o) => o.kind === 'Secret' && o.type === 'helm.sh/release.v1');
  const controllerMade = all.filter((o) => CONTROLLER_MADE.has(o.kind));
  const rest = all.filter((o) => !releases.includes(o) && !controllerMade.includes(o));
  return { all, releases, controllerMade, objects: rest, byRef: new Map(rest.map((o) => [ref(o), o])), claims: all.filter((o) => o.kind === 'PersistentVolumeClaim') };
}
const HELM_MARKS = { label: ['app.kubernetes.io/managed-by', 'Helm'], annotations: ['meta.helm.sh/release-name', 'meta.helm.sh/release-namespace'] };
// The server holds exactly `want` (chart objects) with Helm's marks beside the kit's labels.
function expectRelease(label, ns, release, want) {
  const s = namespaceState(ns);
  const wantRefs = new Set(want.map(ref));
  const missing = [...wantRefs].filter((r) => !s.byRef.has(r));
  const extra = [...s.byRef.keys()].filter((r) => !wantRefs.has(r));
  check(missing.length === 0 && extra.length === 0, `the server holds exactly the release's objects (${label})`, `${wantRefs.size} objects in ${ns}`,
    `+ ${s.controllerMade.length} made by controllers, ${s.releases.length} Helm release records`, `missing: ${fmt(missing)}\nnot in the release: ${fmt(extra)}`);
  const bad = [];
  for (const w of want) {
    const o = s.byRef.get(ref(w));
    if (!o) continue;
    const labels = o.metadata.labels ?? {};
    const kit = { ...(w.metadata.labels ?? {}), [HELM_MARKS.label[0]]: HELM_MARKS.label[1] };
    if (!same(labels, kit)) bad.push(`${ref(w)}: labels ${JSON.stringify(labels)}`);
    const a = o.metadata.annotations ?? {};
    if (a[HELM_MARKS.annotations[0]] !== release || a[HELM_MARKS.annotations[1]] !== ns) bad.push(`${ref(w)}: annotations ${JSON.stringify(a)}`);
  }
  check(bad.length === 0, `every object carries the kit's labels as synthesized, Helm's ownership beside them (${label})`, `${want.length} objects`,
    `app.kubernetes.io/managed-by=Helm, meta.helm.sh/release-name=${release}; app.kubernetes.io/instance and the kit's other labels as in the file`, bad.slice(0, 8).join('\n'));
  return s;
}
function status(release, ns) {
  const r = helm(['status', release, '--namespace', ns, '--output', 'json']);
  if (r.code !== 0) return { code: r.code, stderr: r.stderr };
  const j = JSON.parse(r.stdout);
  return { code: 0, status: j.info?.status, version: j.version, manifest: j.manifest };
}

// ---------------------------------------------------------------- the cluster
scenario = 'cluster';
const sim = simulatedCluster({ kubectl, json, items, check, sleep, ref });
if (!sim.ready) finish();

for (const env of ENVS) {
  const chart = join(opts.dist, 'helm', env);
  const nextChart = join(opts.next, 'helm', env);
  const plainFile = join(opts.dist, `${env}.yaml`);
  const plain = objectsOf(plainFile);
  const nsObj = plain.filter(isNamespace);
  const ns = plain.find((o) => !isNamespace(o))?.metadata.namespace;
  const release = plain.find((o) => !isNamespace(o))?.metadata.labels?.['app.kubernetes.io/instance'];
  const rev1 = plain.filter((o) => !isNamespace(o));
  const next = objectsOf(join(opts.next, `${env}.yaml`)).filter((o) => !isNamespace(o));
  const dropped = rev1.filter((o) => !next.some((n) => ref(n) === ref(o)));
  console.log(`--- ${env}: chart ${chart}, release ${release} in namespace ${ns}; the changed release drops ${fmt(dropped.map(ref))}`);

  // ------------------------------------------------------------ lint
  scenario = `${env} lint`;
  let r = helm(['lint', '--strict', chart, '--namespace', ns]);
  const findings = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /\[(WARNING|ERROR)\]/.test(l));
  check(r.code === 0 && findings.length === 0 && /1 chart\(s\) linted, 0 chart\(s\) failed/.test(r.stdout), 'helm lint --strict: no warning, no error', chart,
    `${r.stdout.split('\n').filter((l) => /\[INFO\]/.test(l)).map((l) => l.trim()).join('; ') || 'nothing to report'}`, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);

  // ------------------------------------------------------------ template
  scenario = `${env} template`;
  r = helm(['template', release, chart, '--namespace', ns]);
  if (check(r.code === 0, 'helm template renders', chart, '', `exit ${r.code}\n${r.stderr}`)) {
    const rendered = objectsOf(r.stdout, true);
    const missing = rev1.filter((o) => !rendered.some((x) => ref(x) === ref(o)));
    const extra = rendered.filter((x) => !rev1.some((o) => ref(x) === ref(o)));
    const differ = rev1.filter((o) => { const x = rendered.find((y) => ref(y) === ref(o)); return x && !same(x, o); });
    check(rendered.length === rev1.length && missing.length === 0 && extra.length === 0 && differ.length === 0, `helm template renders exactly the objects of ${env}.yaml but the Namespace`, `${rendered.length} objects`,
      `equal to the file's ${rev1.length}; left out: ${fmt(nsObj.map(ref))}`, `missing: ${fmt(missing.map(ref))}; extra: ${fmt(extra.map(ref))}; different: ${fmt(differ.map(ref))}`);
  }
  r = helm(['template', release, chart]);
  check(r.code !== 0 && r.stderr.includes(`this chart's objects live in namespace ${ns}, not default: install the release there`), 'rendered for another namespace, the chart fails and says where its release must live', `${chart} (namespace default)`,
    (r.stderr.match(/this chart's objects[^\n]*/) ?? [''])[0], `exit ${r.code}\n${r.stdout.slice(0, 400)}\n${r.stderr}`);
  // Control: the changed release's chart with the escapes undone. Helm then runs the value's
  // actions (or fails on them): the escaping is what carries it through.
  const unescaped = join(opts.work, 'unescaped', env);
  cpSync(nextChart, unescaped, { recursive: true });
  for (const f of readdirSync(join(unescaped, 'templates'))) {
    const file = join(unescaped, 'templates', f);
    writeFileSync(file, readFileSync(file, 'utf8').split('{{ "{{" }}').join('{{'));
  }
  r = helm(['template', release, unescaped, '--namespace', ns]);
  const passedThrough = r.code === 0 && objectsOf(r.stdout, true).every((o) => (o.metadata.annotations ?? {})[RELEASE.annotation] === RELEASE.note);
  check(!passedThrough, 'control: without the escaping, Helm does not carry a value with {{ through', unescaped,
    r.code === 0 ? 'rendered, the value changed' : `fails: ${(r.stderr.split('\n')[0] ?? '').slice(0, 160)}`, 'the unescaped chart renders the value unchanged: the check cannot tell escaping from none');
  r = helm(['template', release, chart, '--namespace', ns, '--set', 'replicas=3']);
  check(r.code !== 0 && /additional ?properties|additionalProperties|not allowed/i.test(r.stderr) && r.stderr.includes('replicas'), 'a value given to the chart is rejected (it takes none)', '--set replicas=3',
    (r.stderr.split('\n').find((l) => l.includes('replicas')) ?? '').trim(), `exit ${r.code}\n${r.stderr}`);

  // ------------------------------------------------------------ install
  scenario = `${env} install`;
  r = kubectl(['apply', '-f', plainFile, '-l', 'app.kubernetes.io/managed-by=stepflow-kit,!app.kubernetes.io/instance']);
  console.log(`  $ kubectl apply -f ${plainFile} -l 'app.kubernetes.io/managed-by=stepflow-kit,!app.kubernetes.io/instance'\n    ${r.stdout.trim()}`);
  check(r.code === 0 && r.stdout.trim() === `namespace/${ns} created`, 'the Namespace, from the plain file (the chart leaves it out)', `Namespace/${ns}`, r.stdout.trim(), `exit ${r.code}\n${r.stdout}${r.stderr}`);
  const tInstall = Date.now();
  r = helm(['install', release, chart, '--namespace', ns, '--wait', '--timeout', '5m']);
  const installSecs = ((Date.now() - tInstall) / 1000).toFixed(1);
  check(r.code === 0, 'helm install --wait', `${release} in ${ns}`, `${installSecs} s`, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  let st = status(release, ns);
  check(st.status === 'deployed' && st.version === 1, 'helm status: revision 1 deployed', release, `${st.status}, revision ${st.version}`, JSON.stringify(st));
  let s = expectRelease('after install', ns, release, rev1);
  let up = sim.waitFor('release settled', 180, sim.settled(rev1, [ns]));
  check(up.ok, 'every workload at its size, every pod ready, every claim Bound (after install)', ns, `${s.controllerMade.filter((o) => o.kind === 'Pod').length} pods`, up.why);
  const claims1 = namespaceState(ns).claims;
  check(claims1.length > 0 && claims1.every((c) => !(c.metadata.annotations ?? {})['meta.helm.sh/release-name']), 'the StatefulSets\' claims exist and are not the release\'s (no Helm marks)', `${claims1.length} claims`, fmt(claims1.map((c) => c.metadata.name)), JSON.stringify(claims1.map((c) => c.metadata.annotations)));
  // scripts/deploy.sh never takes over (or prunes) a Helm release's objects
  const beforeDeploy = namespaceState(ns);
  const d = run(opts.deploy, ['--kubeconfig', opts.kubeconfig, plainFile], undefined);
  const afterDeploy = namespaceState(ns);
  const moved = afterDeploy.objects.filter((o) => beforeDeploy.byRef.get(ref(o))?.metadata.resourceVersion !== o.metadata.resourceVersion);
  check(d.code === 5 && d.stderr.includes(`belong to a Helm release`) && d.stderr.includes(`release ${release} in namespace ${ns}`) && moved.length === 0, 'scripts/deploy.sh refuses the release\'s objects and changes nothing', plainFile,
    'exit 5', `exit ${d.code}; changed ${fmt(moved.map(ref))}\n${d.stderr}`);

  // ------------------------------------------------------------ upgrade
  scenario = `${env} upgrade`;
  const coreClaims = claims1.filter((c) => c.metadata.labels?.component === 'core');
  r = helm(['upgrade', release, nextChart, '--namespace', ns, '--wait', '--timeout', '5m']);
  check(r.code === 0, 'helm upgrade --wait to the changed release', nextChart, '', `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  st = status(release, ns);
  check(st.status === 'deployed' && st.version === 2, 'helm status: revision 2 deployed', release, `${st.status}, revision ${st.version}`, JSON.stringify(st));
  s = expectRelease('after upgrade', ns, release, next);
  check(dropped.length > 0 && dropped.every((o) => !s.byRef.has(ref(o))), 'what the changed release dropped is deleted', fmt(dropped.map(ref)), '', `still there: ${fmt(dropped.filter((o) => s.byRef.has(ref(o))).map(ref))}`);
  const notes = s.objects.filter((o) => (o.metadata.annotations ?? {})[RELEASE.annotation] !== RELEASE.note);
  check(notes.length === 0, 'a value with Go template syntax and a document separator reaches every object as written', `${RELEASE.annotation} on ${s.objects.length} objects`,
    JSON.stringify(RELEASE.note), notes.slice(0, 5).map((o) => `${ref(o)}: ${JSON.stringify((o.metadata.annotations ?? {})[RELEASE.annotation])}`).join('\n'));
  const coreSet = s.objects.find((o) => o.kind === 'StatefulSet' && o.metadata.labels?.component === 'core');
  const envValue = coreSet?.spec.template.spec.containers[0].env?.find((e) => e.name === RELEASE.coreEnv)?.value;
  check(envValue === RELEASE.note, 'the core\'s env var holds the same text', `${ref(coreSet ?? { kind: 'StatefulSet', metadata: { name: '?' } })} ${RELEASE.coreEnv}`, '', JSON.stringify(envValue));
  for (const [w, n] of Object.entries(RELEASE.replicas[env] ?? {})) {
    const o = s.objects.find((x) => `${x.kind}/${x.metadata.name}` === w);
    check(o?.spec.replicas === n, 'the changed replica count', w, `${n}`, `${o?.spec.replicas}`);
  }
  up = sim.waitFor('release settled', 180, sim.settled(next, [ns]));
  check(up.ok, 'every workload rolled to the new template, every pod ready (after upgrade)', ns, '', up.why);
  const claims2 = namespaceState(ns).claims;
  const lost2 = claims1.filter((c) => !claims2.some((x) => x.metadata.uid === c.metadata.uid));
  check(lost2.length === 0, 'no claim deleted by the upgrade, those of dropped StatefulSets included', `${claims2.length} claims`, fmt(claims2.map((c) => c.metadata.name)), `gone: ${fmt(lost2.map(ref))}`);
  const corePod = namespaceState(ns).controllerMade.find((p) => p.kind === 'Pod' && p.metadata.labels?.component === 'core');
  const mounted = corePod?.spec.volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim.claimName;
  check(coreClaims.length === 1 && mounted === coreClaims[0].metadata.name, 'the rolled core pod mounts the claim it had (its state)', `Pod/${ns}/${corePod?.metadata.name}`, `${mounted}, uid ${coreClaims[0]?.metadata.uid}`, `mounts ${mounted}; core claims ${fmt(coreClaims.map((c) => c.metadata.name))}`);

  // ------------------------------------------------------------ rollback
  scenario = `${env} rollback`;
  r = helm(['rollback', release, '1', '--namespace', ns, '--wait', '--timeout', '5m']);
  check(r.code === 0, 'helm rollback --wait to revision 1', release, '', `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  st = status(release, ns);
  check(st.status === 'deployed' && st.version === 3, 'helm status: revision 3 deployed (revision 1\'s objects)', release, `${st.status}, revision ${st.version}`, JSON.stringify(st));
  s = expectRelease('after rollback', ns, release, rev1);
  const stale = s.objects.filter((o) => (o.metadata.annotations ?? {})[RELEASE.annotation] !== undefined);
  check(stale.length === 0, 'nothing of the changed release is left on the objects', `${s.objects.length} objects`, `no ${RELEASE.annotation}`, fmt(stale.map(ref)));
  up = sim.waitFor('release settled', 180, sim.settled(rev1, [ns]));
  check(up.ok, 'every workload at revision 1\'s template, every pod ready (after rollback)', ns, '', up.why);
  const s3 = namespaceState(ns);
  for (const c of claims1) {
    const now = s3.claims.find((x) => x.metadata.name === c.metadata.name);
    const pod = s3.controllerMade.find((p) => p.kind === 'Pod' && (p.spec.volumes ?? []).some((v) => v.persistentVolumeClaim?.claimName === c.metadata.name));
    check(now?.metadata.uid === c.metadata.uid && now?.spec.volumeName === c.spec.volumeName && pod && sim.podReady(pod), 'each StatefulSet pod mounts the claim it had at install (same uid, same volume)', `PersistentVolumeClaim/${ns}/${c.metadata.name}`,
      `${pod?.metadata.name}, volume ${now?.spec.volumeName}`, `claim ${now ? `${now.metadata.uid} ${now.spec.volumeName}` : 'gone'} (was ${c.metadata.uid} ${c.spec.volumeName}); pod ${pod?.metadata.name ?? 'none'}`);
  }

  // ------------------------------------------------------------ uninstall
  scenario = `${env} uninstall`;
  r = helm(['uninstall', release, '--namespace', ns, '--wait', '--timeout', '5m']);
  check(r.code === 0, 'helm uninstall --wait', release, '', `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  st = status(release, ns);
  check(st.code !== 0 && /not found/.test(st.stderr), 'the release is gone (helm status: not found)', release, '', JSON.stringify(st));
  const gone = sim.waitFor('pods gone', 120, () => { const x = namespaceState(ns); const pods = x.controllerMade.filter((o) => o.kind === 'Pod'); return pods.length === 0 || `pods left: ${fmt(pods.map(ref))}`; });
  const s4 = namespaceState(ns);
  check(s4.objects.length === 0 && s4.releases.length === 0 && gone.ok, 'no object of the release left, no release record, no pod', ns, '', `left: ${fmt([...s4.objects, ...s4.releases].map(ref))}; ${gone.why ?? ''}`);
  const kept = claims1.filter((c) => s4.claims.some((x) => x.metadata.uid === c.metadata.uid && x.status?.phase === 'Bound'));
  check(kept.length === claims1.length && s4.claims.length === claims1.length, 'every StatefulSet claim is kept (same uid, Bound): the core\'s state outlives the release', `${claims1.length} claims`, fmt(kept.map((c) => c.metadata.name)),
    `kept ${fmt(kept.map((c) => c.metadata.name))} of ${fmt(claims1.map((c) => c.metadata.name))}; now ${fmt(s4.claims.map((c) => c.metadata.name))}`);
  const nsNow = kubectl(['get', 'namespace', ns, '-o', 'json']);
  const nsLabels = nsNow.code === 0 ? JSON.parse(nsNow.stdout).metadata.labels ?? {} : {};
  check(nsNow.code === 0 && nsLabels['pod-security.kubernetes.io/enforce'] === 'restricted', 'the Namespace stays, Pod Security restricted enforced', `Namespace/${ns}`, '', nsNow.stderr || JSON.stringify(nsLabels));

  // ------------------------------------------------------------ from Helm to the plain file and back
  scenario = `${env} switch`;
  const dep = run(opts.deploy, ['--kubeconfig', opts.kubeconfig, plainFile]);
  check(dep.code === 0, 'after the uninstall, scripts/deploy.sh installs the plain file', plainFile, '', `exit ${dep.code}\n${dep.stderr}`);
  up = sim.waitFor('installation settled', 180, sim.settled(rev1, [ns]));
  const s5 = namespaceState(ns);
  const remounted = claims1.filter((c) => s5.controllerMade.some((p) => p.kind === 'Pod' && sim.podReady(p) && (p.spec.volumes ?? []).some((v) => v.persistentVolumeClaim?.claimName === c.metadata.name))
    && s5.claims.some((x) => x.metadata.uid === c.metadata.uid));
  check(up.ok && remounted.length === claims1.length, 'its StatefulSets mount the claims the release left (same uids), every pod ready', `${claims1.length} claims`, fmt(remounted.map((c) => c.metadata.name)), `${up.why ?? ''}; remounted ${fmt(remounted.map((c) => c.metadata.name))}`);
  r = helm(['install', release, chart, '--namespace', ns]);
  const s6 = namespaceState(ns);
  const touched = s6.objects.filter((o) => s5.byRef.get(ref(o))?.metadata.resourceVersion !== o.metadata.resourceVersion);
  check(r.code !== 0 && /invalid ownership metadata/.test(r.stderr) && touched.length === 0 && s6.releases.length === 0, 'helm install over objects it does not own is refused and changes nothing', release,
    (r.stderr.match(/[^\n]*invalid ownership metadata[^\n]*/) ?? [''])[0].slice(0, 200), `exit ${r.code}; changed ${fmt(touched.map(ref))}; release records ${s6.releases.length}\n${r.stderr}`);
  note(`${env}: helm install --wait took ${installSecs} s`);
}
finish();

function finish() {
  console.log(`--- helm checks: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
