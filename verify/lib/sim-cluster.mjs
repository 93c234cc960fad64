// Simulated nodes for a kube-apiserver that runs with kube-controller-manager,
// kube-scheduler and kwok (verify/lib/cluster.sh start_controllers), shared by the
// upgrade tier's adoption scenario and the Helm tier: the nodes, the RuntimeClass, the
// default StorageClass and the volumes the kit's manifests need to run, and what it means
// for an installation to have settled. Node built-ins only.
//
//   const sim = simulatedCluster({ kubectl, json, items, check, sleep, ref });
//   sim.ready                   false when a step failed (its check says why)
//   sim.waitFor(what, s, fn)    polls fn (true, or a string saying what is missing) for s seconds
//   sim.live(namespaces)        pods, ReplicaSets, revisions, claims, workloads, HPAs there
//   sim.settled(objects, nss)   a poll function: every workload of `objects` observed, at its
//                               size (the HPA's minimum), current template only, every pod
//                               Running and ready, every claim Bound
export const NODES = [['cpu-a1', 'zone-a', false], ['cpu-a2', 'zone-a', false], ['cpu-b1', 'zone-b', false], ['gpu-a1', 'zone-a', true], ['gpu-b1', 'zone-b', true]];
export const VOLUMES = 12;
const GPU = 'nvidia.com/gpu';

export function simulatedCluster({ kubectl, json, items, check, sleep, ref }) {
  const create = (o) => {
    const r = kubectl(['create', '-f', '-'], JSON.stringify(o));
    if (r.code !== 0) throw new Error(`create ${o.kind}/${o.metadata.name}: ${r.stderr}`);
  };
  const waitFor = (what, seconds, fn) => {
    const end = Date.now() + seconds * 1000;
    let last;
    for (;;) {
      last = fn();
      if (last === true) return { ok: true };
      if (Date.now() > end) return { ok: false, why: typeof last === 'string' ? last : what };
      sleep(1000);
    }
  };
  const sim = { ready: false, waitFor };

  const kcmUp = waitFor('kube-controller-manager made ServiceAccount default/default', 90, () => kubectl(['-n', 'default', 'get', 'serviceaccount', 'default']).code === 0);
  if (!check(kcmUp.ok, 'kube-controller-manager runs (it made default/default)', 'ServiceAccount/default/default', '', kcmUp.why)) return sim;
  let seq = 0;
  for (const [name, zone, gpu] of NODES) {
    seq++;
    const capacity = gpu ? { cpu: '16', memory: '64Gi', pods: '110', 'ephemeral-storage': '200Gi', [GPU]: '2' } : { cpu: '8', memory: '32Gi', pods: '110', 'ephemeral-storage': '100Gi' };
    create({
      apiVersion: 'v1', kind: 'Node',
      metadata: { name, annotations: { 'kwok.x-k8s.io/node': 'fake' }, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', 'topology.kubernetes.io/zone': zone, type: 'kwok', ...(gpu ? { accelerator: 'nvidia-gpu' } : {}) } },
      spec: { podCIDR: `10.100.${seq}.0/24`, ...(gpu ? { taints: [{ key: GPU, effect: 'NoSchedule' }] } : {}) },
      status: { capacity, allocatable: capacity },
    });
  }
  create({ apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'nvidia' }, handler: 'nvidia' });
  create({
    apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'standard', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: 'kubernetes.io/no-provisioner', volumeBindingMode: 'WaitForFirstConsumer', reclaimPolicy: 'Retain',
  });
  for (let i = 1; i <= VOLUMES; i++) {
    create({
      apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: `pv-${String(i).padStart(2, '0')}` },
      spec: { capacity: { storage: '64Gi' }, accessModes: ['ReadWriteOnce'], storageClassName: 'standard', persistentVolumeReclaimPolicy: 'Retain', hostPath: { path: `/var/lib/simulated-volumes/pv-${i}` } },
    });
  }
  const nodesReady = waitFor('nodes Ready', 60, () => items(json(['get', 'nodes'])).filter((n) => (n.status?.conditions ?? []).some((x) => x.type === 'Ready' && x.status === 'True') && !(n.spec.taints ?? []).some((t) => t.key.startsWith('node.kubernetes.io/'))).length === NODES.length);
  if (!check(nodesReady.ok, 'simulated nodes Ready (kwok)', `${NODES.length} nodes`, `3 CPU nodes in 2 zones, 2 GPU nodes (2 GPUs each), RuntimeClass nvidia, default StorageClass, ${VOLUMES} volumes`, nodesReady.why)) return sim;

  const podReady = (p) => p.status?.phase === 'Running' && (p.status?.conditions ?? []).some((x) => x.type === 'Ready' && x.status === 'True') && !p.metadata.deletionTimestamp;
  const live = (nsList) => {
    const all = items(json(['get', 'pods,replicasets.apps,controllerrevisions.apps,persistentvolumeclaims,deployments.apps,statefulsets.apps,horizontalpodautoscalers.v2.autoscaling', '--all-namespaces']))
      .filter((o) => nsList.includes(o.metadata.namespace));
    const of = (k) => all.filter((o) => o.kind === k);
    return { all, pods: of('Pod'), rss: of('ReplicaSet'), revs: of('ControllerRevision'), claims: of('PersistentVolumeClaim'), deps: of('Deployment'), stss: of('StatefulSet'), hpas: of('HorizontalPodAutoscaler') };
  };
  const settled = (objs, nsList) => () => {
    const s = live(nsList);
    const problems = [];
    for (const w of objs.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')) {
      const o = (w.kind === 'Deployment' ? s.deps : s.stss).find((x) => x.metadata.namespace === w.metadata.namespace && x.metadata.name === w.metadata.name);
      if (!o) { problems.push(`${ref(w)} missing`); continue; }
      const st = o.status ?? {};
      const hpa = s.hpas.find((h) => h.metadata.namespace === o.metadata.namespace && h.spec.scaleTargetRef?.name === o.metadata.name);
      const want = o.spec.replicas ?? 1;
      if (hpa && want < hpa.spec.minReplicas) problems.push(`${ref(w)}: ${want} replicas, HPA minimum ${hpa.spec.minReplicas} not applied yet`);
      if ((st.observedGeneration ?? 0) < o.metadata.generation) problems.push(`${ref(w)}: generation ${o.metadata.generation} not observed`);
      if (st.updatedReplicas !== want || st.readyReplicas !== want || st.replicas !== want) problems.push(`${ref(w)}: ${st.updatedReplicas ?? 0} updated, ${st.readyReplicas ?? 0} ready, ${st.replicas ?? 0} in all, want ${want}`);
      if (w.kind === 'StatefulSet' && st.currentRevision !== st.updateRevision) problems.push(`${ref(w)}: revision ${st.currentRevision} -> ${st.updateRevision} in progress`);
    }
    for (const p of s.pods) if (!podReady(p)) problems.push(`Pod/${p.metadata.namespace}/${p.metadata.name}: ${p.metadata.deletionTimestamp ? 'terminating' : p.status?.phase}`);
    for (const x of s.claims) if (x.status?.phase !== 'Bound') problems.push(`${ref(x)}: ${x.status?.phase}`);
    return problems.length === 0 ? true : problems.slice(0, 12).join('\n');
  };
  return Object.assign(sim, { ready: true, live, settled, podReady });
}
