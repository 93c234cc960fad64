// The `adoption` scenario of upgrade-checks.mjs (which imports it): the previous
// release running on simulated nodes with the real kube-controller-manager,
// kube-scheduler and kwok (started by upgrade.sh), then the documented upgrade.
// What the controllers do is observed, not assumed:
//   * the one-time delete (--cascade=orphan, as documented, waiting for the real
//     garbage collector) leaves every pod, ReplicaSet and claim running, released;
//   * after the relabel and the documented apply, each new Deployment adopts the
//     running ReplicaSet and rolls it (a new ReplicaSet, the old one scaled to 0 and
//     kept as history), each new StatefulSet adopts its pods by name and replaces
//     them one by one with pods of the new template that mount the same claims
//     (same name, uid and volume); no claim is deleted or made anew;
//   * a watch of every pod records how many were ready per workload throughout;
//   * the same command again changes nothing and restarts no pod.
import { simulatedCluster } from '../lib/sim-cluster.mjs';

const SETTLE_S = 180;

export function run(c) {
  const { env, prevAll, newAll, allNamespaces, check, note, kubectl, user, json, items, sleep, ref, fmtSet, sameSet, mapSelects, workloadSelector, isController, INSTANCE_LABEL } = c;
  const nsList = allNamespaces;
  const t0 = Date.now();
  const secs = (t = Date.now()) => ((t - t0) / 1000).toFixed(1);

  // ---------------------------------------------------------------- the cluster
  // nodes, RuntimeClass, default StorageClass and volumes (verify/lib/sim-cluster.mjs)
  const sim = simulatedCluster({ kubectl, json, items, check, sleep, ref });
  if (!sim.ready) return;
  const { waitFor } = sim;
  const live = () => sim.live(nsList);
  const settled = (objs) => sim.settled(objs, nsList);

  // ---------------------------------------------------------------- previous release
  for (const e of env) {
    const r = user(['apply', '-f', e.prevFile]);
    check(r.code === 0 && !r.stderr, 'previous release installs (kubectl apply -f)', e.prevFile, `${e.prev.length} objects`, `exit ${r.code}\n${r.stderr}`);
  }
  const up = waitFor('previous release settled', SETTLE_S, settled(prevAll));
  if (!check(up.ok, 'the previous release runs: every pod ready, every claim Bound', nsList.join(', '), `after ${secs()} s`, up.why)) return;
  const s0 = live();
  const prevWorkloads = [...s0.deps, ...s0.stss];
  const podsOfWorkload = (s, w) => {
    const rsUids = s.rss.filter((x) => isController(x, w.metadata.uid)).map((x) => x.metadata.uid);
    return s.pods.filter((p) => isController(p, w.metadata.uid) || rsUids.some((u) => isController(p, u)));
  };
  const before = new Map(prevWorkloads.map((w) => [ref(w), { w, pods: podsOfWorkload(s0, w), rss: s0.rss.filter((x) => isController(x, w.metadata.uid)) }]));
  note(`previous release running: ${s0.pods.length} pods (${prevWorkloads.map((w) => `${ref(w)} ${before.get(ref(w)).pods.length}`).join(', ')}), ${s0.claims.length} claims Bound`);

  // ---------------------------------------------------------------- watch every pod
  // A separate process (this one blocks in kubectl calls) stamps each watch event
  // (kubectl prints one JSON line per event).
  const watchFile = `${c.opts.work}/pod-events.jsonl`;
  const watcherJs = `
    const { spawn } = require('node:child_process'); const fs = require('node:fs');
    const out = fs.openSync(process.argv[1], 'w');
    const k = spawn(process.argv[2], ['--kubeconfig', process.argv[3], 'get', 'pods', '--all-namespaces', '--watch', '--output-watch-events', '-o', 'json']);
    let buf = '';
    k.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\\n')) >= 0) {
        const doc = buf.slice(0, i); buf = buf.slice(i + 1);
        if (!doc.trim()) continue;
        try {
          const ev = JSON.parse(doc); const p = ev.object; const st = p.status ?? {};
          fs.writeSync(out, JSON.stringify({ t: Date.now(), type: ev.type, ns: p.metadata.namespace, name: p.metadata.name, uid: p.metadata.uid, labels: p.metadata.labels ?? {},
            owner: (p.metadata.ownerReferences ?? []).find((r) => r.controller) ?? null, deleting: Boolean(p.metadata.deletionTimestamp),
            ready: st.phase === 'Running' && (st.conditions ?? []).some((x) => x.type === 'Ready' && x.status === 'True') }) + '\\n');
        } catch (e) { fs.writeSync(out, JSON.stringify({ t: Date.now(), error: String(e) }) + '\\n'); }
      }
    });
    process.on('SIGTERM', () => { k.kill('SIGTERM'); process.exit(0); });
    k.on('exit', () => process.exit(0));`;
  const watcher = c.spawn(process.execPath, ['-e', watcherJs, watchFile, c.opts.kubectl, c.opts.kubeconfig], { stdio: 'ignore', env: c.KUBE_ENV });
  const lines = () => (c.existsSync(watchFile) ? c.readFileSync(watchFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
  const watching = waitFor('the pod watch reports every running pod', 30, () => new Set(lines().map((l) => l.uid)).size >= s0.pods.length);
  check(watching.ok, 'a watch records every pod event from here on', `${s0.pods.length} pods`, '', watching.why);
  const tUpgrade = Date.now();

  // ---------------------------------------------------------------- the documented upgrade
  for (const e of env) {
    // right after the --cascade=orphan delete: everything it left keeps running
    const afterDelete = () => {
      const s = live();
      const mine = [...before.values()].filter((b) => e.namespaces.has(b.w.metadata.namespace));
      const podUids = new Set(s.pods.map((p) => p.metadata.uid));
      const lost = mine.flatMap((b) => b.pods).filter((p) => !podUids.has(p.metadata.uid));
      const gone = mine.filter((b) => ![...s.deps, ...s.stss].some((w) => w.metadata.uid === b.w.metadata.uid));
      const stillOwnedBy = [...s.pods, ...s.rss].filter((o) => gone.some((b) => isController(o, b.w.metadata.uid)));
      const claimsLost = s0.claims.filter((x) => e.namespaces.has(x.metadata.namespace) && !s.claims.some((y) => y.metadata.uid === x.metadata.uid));
      check(gone.length > 0 && lost.length === 0 && stillOwnedBy.length === 0 && claimsLost.length === 0, 'the --cascade=orphan delete leaves every pod, ReplicaSet and claim running, released by the garbage collector', e.name,
        `deleted ${gone.map((b) => ref(b.w)).join(', ')}; ${mine.flatMap((b) => b.pods).length} pods kept (same uids), their ReplicaSets and pods released`,
        `deleted workloads: ${gone.map((b) => ref(b.w)).join(', ') || '(none)'}; pods gone: ${lost.map(ref).join(', ') || '-'}; still owned by a deleted workload: ${stillOwnedBy.map(ref).join(', ') || '-'}; claims gone: ${claimsLost.map(ref).join(', ') || '-'}`);
    };
    c.runDocumented(e, { afterStep: (args) => { if (args !== 'apply' && args.includes('delete')) afterDelete(); } });
  }
  const done = waitFor('upgraded installation settled', SETTLE_S, settled(newAll));
  const tDone = Date.now();
  sleep(1500);
  watcher.kill('SIGTERM');
  if (!check(done.ok, 'the new workloads run: every pod ready with the new template, every claim Bound', nsList.join(', '), `${((tDone - tUpgrade) / 1000).toFixed(1)} s after the first one-time step`, done.why)) return;

  // ---------------------------------------------------------------- what the controllers did
  const s1 = live();
  for (const w of newAll.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')) {
    const b = before.get(ref(w));
    const o = (w.kind === 'Deployment' ? s1.deps : s1.stss).find((x) => ref(x) === ref(w));
    if (!b || !o) { note(`${ref(w)}: not in the previous release, nothing to adopt`); continue; }
    const pods = podsOfWorkload(s1, o);
    const podsNew = pods.every((p) => !b.pods.some((q) => q.metadata.uid === p.metadata.uid) && p.metadata.labels?.[INSTANCE_LABEL] === w.metadata.labels?.[INSTANCE_LABEL]);
    if (w.kind === 'Deployment') {
      const old = b.rss.map((x) => s1.rss.find((y) => y.metadata.uid === x.metadata.uid));
      const adopted = old.every((x) => x && isController(x, o.metadata.uid) && x.spec.replicas === 0);
      const current = s1.rss.filter((x) => isController(x, o.metadata.uid) && (x.spec.replicas ?? 0) > 0);
      check(adopted && current.length === 1 && pods.length === o.spec.replicas && podsNew, 'the new Deployment adopted the running ReplicaSet and rolled it', ref(w),
        `old ${b.rss.map((x) => x.metadata.name).join(', ')}: owned by the new Deployment, scaled to 0 (history); new ${current.map((x) => x.metadata.name).join(', ')}: ${pods.length} new pods`,
        `old ReplicaSets: ${old.map((x) => (x ? `${x.metadata.name} owner ${JSON.stringify(x.metadata.ownerReferences ?? [])} replicas ${x.spec.replicas}` : 'gone')).join('; ')}\ncurrent: ${current.map((x) => x.metadata.name).join(', ')}; pods ${pods.length}/${o.spec.replicas}, all new ${podsNew}`);
    } else {
      const sameNames = sameSet(new Set(pods.map((p) => p.metadata.name)), new Set(b.pods.map((p) => p.metadata.name)));
      const rev = pods.every((p) => p.metadata.labels?.['controller-revision-hash'] === o.status.updateRevision);
      check(sameNames && podsNew && rev && pods.length === o.spec.replicas, 'the new StatefulSet adopted its pods and replaced them with pods of the new template', ref(w),
        `${pods.map((p) => p.metadata.name).join(', ')}: same names, new uids, revision ${o.status.updateRevision}`,
        `pods ${pods.map((p) => `${p.metadata.name} ${b.pods.some((q) => q.metadata.uid === p.metadata.uid) ? 'old uid' : 'new uid'} ${p.metadata.labels?.['controller-revision-hash']}`).join(', ')}; want ${b.pods.map((p) => p.metadata.name).join(', ')} at ${o.status.updateRevision}`);
      for (const t of o.spec.volumeClaimTemplates ?? []) {
        for (const p of pods) {
          const claimName = (p.spec.volumes ?? []).find((v) => v.name === t.metadata.name)?.persistentVolumeClaim?.claimName;
          const was = s0.claims.find((x) => x.metadata.namespace === p.metadata.namespace && x.metadata.name === claimName);
          const now = s1.claims.find((x) => x.metadata.namespace === p.metadata.namespace && x.metadata.name === claimName);
          check(was && now && was.metadata.uid === now.metadata.uid && was.spec.volumeName === now.spec.volumeName && now.status.phase === 'Bound', 'the new pod mounts the claim its predecessor used', `Pod/${p.metadata.namespace}/${p.metadata.name} ${t.metadata.name}`,
            `PersistentVolumeClaim ${claimName}: same uid, volume ${now?.spec.volumeName}, Bound`, `claim ${claimName}: before ${was ? `${was.metadata.uid} ${was.spec.volumeName}` : 'absent'}, now ${now ? `${now.metadata.uid} ${now.spec.volumeName} ${now.status.phase}` : 'absent'}`);
        }
      }
    }
  }
  // every claim kept; new ones only for StatefulSets the previous release did not have
  const claimUids1 = new Set(s1.claims.map((x) => x.metadata.uid));
  const claimsGone = s0.claims.filter((x) => !claimUids1.has(x.metadata.uid));
  const newSets = newAll.filter((o) => o.kind === 'StatefulSet' && !before.has(ref(o)));
  const madeAnew = s1.claims.filter((x) => !s0.claims.some((y) => y.metadata.uid === x.metadata.uid));
  const unexpected = madeAnew.filter((x) => !newSets.some((st) => x.metadata.namespace === st.metadata.namespace && (st.spec.volumeClaimTemplates ?? []).some((t) => x.metadata.name.startsWith(`${t.metadata.name}-${st.metadata.name}-`))));
  check(claimsGone.length === 0 && unexpected.length === 0, 'no claim deleted or made anew (but for a StatefulSet new in this release)', `${s1.claims.length} claims`,
    `${s0.claims.length} kept: ${s0.claims.map((x) => x.metadata.name).join(', ')}${madeAnew.length ? `; new: ${madeAnew.map((x) => x.metadata.name).join(', ')}` : ''}`,
    `deleted: ${claimsGone.map(ref).join(', ') || '-'}; made anew: ${unexpected.map(ref).join(', ') || '-'}`);
  const orphans = [...s1.pods, ...s1.rss, ...s1.revs].filter((o) => !isController(o));
  const oldLabel = s1.all.filter((o) => env.some((e) => e.prevInstance !== e.instance && e.namespaces.has(o.metadata.namespace) && o.metadata.labels?.[INSTANCE_LABEL] === e.prevInstance) && o.kind !== 'ControllerRevision' && !(o.kind === 'ReplicaSet' && o.spec.replicas === 0));
  check(orphans.length === 0, 'nothing is left without an owner (every pod, ReplicaSet and revision belongs to a new workload)', nsList.join(', '), `${s1.pods.length} pods, ${s1.rss.length} ReplicaSets, ${s1.revs.length} revisions`, orphans.map(ref).join(', '));
  check(oldLabel.length === 0, 'no running object keeps the previous instance label', nsList.join(', '), '', oldLabel.map(ref).join(', '));
  c.checkSelectorsMatchKeptPods(s1.pods, (w) => podsOfWorkload(s1, (w.kind === 'Deployment' ? s1.deps : s1.stss).find((x) => ref(x) === ref(w)) ?? w), 'after the rollout');

  // ---------------------------------------------------------------- ready pods throughout
  // Replay the watch: per previous workload (the pods it had and their successors,
  // matched by namespace and component), the fewest ready pods at any moment.
  const events = lines().filter((l) => !l.error);
  if (!check(events.some((l) => l.t >= tUpgrade), 'the pod watch saw the upgrade', `${events.length} pod events`, '', 'no pod event after the first one-time step: ready pods throughout are unknown')) return;
  const errors = lines().filter((l) => l.error);
  if (errors.length) note(`pod watch: ${errors.length} unparsable events`);
  const comp = (l) => `${l.ns}/${l.labels.component ?? '?'}`;
  const state = new Map();
  const minReady = new Map();
  const zeroSince = new Map();
  const zeroTotal = new Map();
  for (const l of events) {
    if (l.type === 'DELETED') state.delete(l.uid); else state.set(l.uid, l);
    if (l.t < tUpgrade) continue;
    const counts = new Map();
    for (const x of state.values()) counts.set(comp(x), (counts.get(comp(x)) ?? 0) + (x.ready && !x.deleting ? 1 : 0));
    for (const [k, n] of counts) {
      minReady.set(k, Math.min(minReady.get(k) ?? Infinity, n));
      if (n === 0 && !zeroSince.has(k)) zeroSince.set(k, l.t);
      if (n > 0 && zeroSince.has(k)) { zeroTotal.set(k, (zeroTotal.get(k) ?? 0) + l.t - zeroSince.get(k)); zeroSince.delete(k); }
    }
  }
  const rows = [];
  for (const b of before.values()) {
    const k = `${b.w.metadata.namespace}/${b.w.spec.template.metadata.labels.component}`;
    const size = b.pods.length;
    const newObj = newAll.find((o) => ref(o) === ref(b.w));
    if (!newObj) {
      // dropped by the new output (pruned; its pods go with it), e.g. 0.1.0's core Deployment
      rows.push(`${ref(b.w)} dropped: ${minReady.get(k) ?? 0}/${size}${zeroTotal.get(k) ? ` (none of its component ready for ${(zeroTotal.get(k) / 1000).toFixed(1)} s)` : ''}`);
      continue;
    }
    const maxUnavailable = b.w.kind === 'Deployment' ? (newObj?.spec.strategy?.rollingUpdate?.maxUnavailable ?? '25%') : 1;
    const floor = b.w.kind === 'Deployment' && maxUnavailable === 0 ? size : Math.max(size - 1, 0);
    const got = minReady.get(k) ?? 0;
    rows.push(`${ref(b.w)} ${got}/${size}${zeroTotal.get(k) ? ` (none ready for ${(zeroTotal.get(k) / 1000).toFixed(1)} s)` : ''}`);
    check(got >= floor, 'ready pods during the upgrade never fall below what the rollout strategy allows', ref(b.w),
      `fewest ready ${got} of ${size}${b.w.kind === 'Deployment' ? ` (maxUnavailable ${maxUnavailable})` : ' (replaced one at a time)'}${zeroTotal.get(k) ? `; none ready for ${(zeroTotal.get(k) / 1000).toFixed(1)} s` : ''}`,
      `fewest ready ${got} of ${size}, the strategy allows no fewer than ${floor}${zeroTotal.get(k) ? `; none ready for ${(zeroTotal.get(k) / 1000).toFixed(1)} s` : ''}`);
  }
  note(`fewest ready pods during the upgrade (${events.length} pod events): ${rows.join('; ')}`);

  // ---------------------------------------------------------------- the same command again
  const gen = (s) => new Map(s.all.filter((o) => o.kind !== 'Pod').map((o) => [ref(o), o.metadata.generation]));
  const g1 = gen(s1);
  const podUids = new Set(s1.pods.map((p) => p.metadata.uid));
  for (const e of env) c.documentedUpgrade(e, { label: 'run again' });
  sleep(3000);
  const s2 = live();
  const g2 = gen(s2);
  const changed = [...g2].filter(([k, v]) => g1.get(k) !== v).map(([k]) => k);
  const restarted = s2.pods.filter((p) => !podUids.has(p.metadata.uid)).map(ref);
  check(changed.length === 0 && restarted.length === 0 && g1.size === g2.size, 're-running the documented command changes nothing and restarts no pod', `${s2.all.length} objects`,
    'generations and pod uids unchanged', `changed: ${changed.join(', ') || '-'}; new pods: ${restarted.join(', ') || '-'}; objects ${g1.size} -> ${g2.size}`);
  note(`adoption scenario: ${secs()} s`);
}
