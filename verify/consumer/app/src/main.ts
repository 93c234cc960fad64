// A platform team's installations, written against the packed @stepflow/deploy-kit and
// cdk8s-plus-30 only (public API): two StepFlow installations in one namespace, each with
// a worker of the team's own image, the cluster's pod settings chart-wide and per
// component, references to the team's Secrets, ConfigMaps and ServiceAccount, and the
// team's own cdk8s-plus objects next to them.
//
// usage: node lib/main.js --outdir DIR
import * as kplus from 'cdk8s-plus-30';
import { ApiObject, Chart, Size } from 'cdk8s';
import { Construct } from 'constructs';
import { StepFlowApp, StepFlowChart, StepFlowEnvironment, StepFlowGeneration, StepFlowWorker } from '@stepflow/deploy-kit';
import { FACTS } from './facts';

const args = process.argv.slice(2);
if (args.length !== 2 || args[0] !== '--outdir') {
  process.stderr.write('usage: node lib/main.js --outdir DIR\n');
  process.exit(2);
}

const { namespace: NAMESPACE } = FACTS;
const MANAGED_BY = 'app.kubernetes.io/managed-by';
const platform = StepFlowEnvironment.PROD.extend({
  name: FACTS.environment,
  namespace: NAMESPACE,
  imageRegistry: 'registry.example.com/stepflow',
  imageTag: '0.13.0',
});

const app = new StepFlowApp({ outdir: args[1] });

// References to what the team keeps elsewhere (no object is synthesized for them).
const refs = new Construct(app, 'TeamRefs');

// The platform's own cluster-wide objects, in a plain cdk8s chart beside the kit's.
const platformChart = new Chart(app, 'platform');
for (const [id, pc] of Object.entries(FACTS.priorityClasses)) {
  new kplus.k8s.KubePriorityClass(platformChart, id, {
    metadata: { name: pc.name, labels: { ...FACTS.ownLabels } },
    value: pc.value,
    preemptionPolicy: 'PreemptLowerPriority',
    description: pc.description,
  });
}

// ---------------------------------------------------------------- team A --------
// Every StepFlow component, and a worker of the team's own, on the cluster's ML pool.
// It creates the namespace both installations share.
const a = new StepFlowChart(app, 'team-a', {
  environment: platform,
  namePrefix: FACTS.a.prefix,
  ingress: false,
  // chart-wide pod and metadata settings
  imagePullSecrets: ['registry-mirror', kplus.Secret.fromSecretName(refs, 'TeamAPull', FACTS.a.pullSecret)],
  nodeSelector: { [FACTS.pool.key]: FACTS.pool.value },
  tolerations: [{ key: FACTS.pool.taint, operator: 'Equal', value: FACTS.pool.value, effect: 'NoSchedule' }],
  affinity: {
    nodeAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [{
        weight: 50,
        preference: { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['zone-a', 'zone-b'] }] },
      }],
    },
  },
  topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' }],
  priorityClassName: FACTS.a.priorityClass,
  labels: FACTS.a.labels,
  annotations: FACTS.a.annotations,
  imagePullPolicy: kplus.ImagePullPolicy.ALWAYS,
  inference: {
    gpu: { resourceName: FACTS.mig.resource, nodeSelector: { [FACTS.mig.nodeLabel]: FACTS.mig.nodeValue } },
    nodeSelector: { 'node.example.com/gpu-tier': 'shared' },
    tolerations: [{ key: 'node.example.com/gpu-tier', operator: 'Exists', effect: 'NoSchedule' }],
    labels: { 'gpu-profile': '1g.10gb' },
    env: {
      [FACTS.secretEnv.name]: kplus.EnvValue.fromSecretValue({
        secret: kplus.Secret.fromSecretName(refs, 'HfToken', FACTS.secretEnv.secret), key: FACTS.secretEnv.key,
      }),
    },
    envFrom: [{ configMap: kplus.ConfigMap.fromConfigMapName(refs, 'Models', FACTS.envFrom.configMap), prefix: FACTS.envFrom.prefix }],
    volumes: [{ volume: { name: FACTS.secretVolume.name, secret: { secretName: FACTS.secretVolume.secret } }, mountPath: FACTS.secretVolume.mountPath, readOnly: true }],
  },
  workers: [{
    name: FACTS.a.worker.name,
    image: FACTS.a.worker.image,
    routePrefix: FACTS.a.worker.routePrefix,
    command: ['python3', '-m', 'stepflow_kit_worker'],
    labels: { 'worker-kind': 'tools' },
    annotations: { 'team.example.com/owner': 'tools-squad' },
  }],
});
a.addWorker({
  name: FACTS.a.lateWorker.name,
  image: FACTS.a.lateWorker.image,
  routePrefix: FACTS.a.lateWorker.routePrefix,
  queueName: FACTS.a.lateWorker.queueName,
  command: ['python3', '-m', 'stepflow_kit_worker'],
  priorityClassName: FACTS.priorityClasses.batch.name,
  // an identity the team's IAM pipeline keeps (here in team-a's file, see below), by name
  serviceAccount: kplus.ServiceAccount.fromServiceAccountName(refs, 'EvalIdentityRef', FACTS.a.lateWorker.serviceAccount),
});

// The team's own objects beside the installation: the evaluation worker's identity, and a
// flow runner that calls the core.
const teamMeta = (name: string) => ({ name, namespace: NAMESPACE, labels: { ...FACTS.ownLabels } });
new kplus.ServiceAccount(a, 'EvalIdentity', { metadata: teamMeta(FACTS.a.lateWorker.serviceAccount), automountToken: false });
const runner = new kplus.Deployment(a, 'FlowRunner', {
  metadata: teamMeta(FACTS.runner.name),
  replicas: 1,
  automountServiceAccountToken: false,
  securityContext: { ensureNonRoot: true, user: 10001, group: 10001 },
  podMetadata: { labels: { ...FACTS.ownLabels } },
  containers: [{
    name: 'runner',
    image: 'registry.example.com/team-a/flow-runner:2.1.0',
    imagePullPolicy: kplus.ImagePullPolicy.ALWAYS,
    portNumber: 9090,
    envVariables: { STEPFLOW_URL: kplus.EnvValue.fromValue(a.core.url) },
    securityContext: {
      ensureNonRoot: true, user: 10001, group: 10001, readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false, privileged: false,
      capabilities: { drop: [kplus.Capability.ALL] },
      seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
    },
    resources: {
      cpu: { request: kplus.Cpu.millis(50), limit: kplus.Cpu.millis(200) },
      memory: { request: Size.mebibytes(64), limit: Size.mebibytes(128) },
      ephemeralStorage: { request: Size.gibibytes(1), limit: Size.gibibytes(1) },
    },
    liveness: kplus.Probe.fromHttpGet('/healthz', { port: 9090 }),
    readiness: kplus.Probe.fromHttpGet('/ready', { port: 9090 }),
  }],
});
// cdk8s-plus interop: a StepFlow component as a scheduling selector and a network peer.
runner.scheduling.separate(a.inference!, { weight: 60 });
runner.connections.allowTo(a.core, { ports: [kplus.NetworkPolicyPort.tcp(8080)] });
new kplus.NetworkPolicy(a, 'RunnerDns', {
  metadata: teamMeta(FACTS.runner.dnsPolicy),
  selector: runner,
  egress: { rules: [{ peer: kplus.Namespaces.select(a, 'KubeSystem', { names: ['kube-system'] }), ports: [kplus.NetworkPolicyPort.udp(53), kplus.NetworkPolicyPort.tcp(53)] }] },
});
// The monitoring namespace probes the core's API.
new kplus.NetworkPolicy(a, 'CoreFromMonitoring', {
  metadata: teamMeta(FACTS.monitoringPolicy),
  selector: a.core,
  ingress: {
    rules: [{
      peer: kplus.Pods.select(a, 'Blackbox', { labels: { app: 'blackbox-exporter' }, namespaces: kplus.Namespaces.select(a, 'Monitoring', { names: ['monitoring'] }) }),
      ports: [kplus.NetworkPolicyPort.tcp(8080)],
    }],
  },
});

// ---------------------------------------------------------------- team B --------
// Only the core and workers of the team's own (no python-sdk, no inference), in the same
// namespace: one named like team-a's, one under the team's own ServiceAccount.
const b = new StepFlowChart(app, 'team-b', {
  environment: platform,
  namePrefix: FACTS.b.prefix,
  createNamespace: false,
  ingress: false,
  pythonSdk: false,
  inference: false,
  // the same worker as team-a's, by name and image: its selectors must tell the two apart
  workers: [{
    name: FACTS.a.worker.name,
    image: FACTS.a.worker.image,
    routePrefix: FACTS.a.worker.routePrefix,
    command: ['python3', '-m', 'stepflow_kit_worker'],
  }],
  labels: FACTS.b.labels,
  annotations: FACTS.b.annotations,
  nodeSelector: { [FACTS.pool.key]: FACTS.pool.value },
  tolerations: [{ key: FACTS.pool.taint, operator: 'Equal', value: FACTS.pool.value, effect: 'NoSchedule' }],
});
const identity = new kplus.ServiceAccount(b, 'RetrievalIdentity', {
  metadata: teamMeta(FACTS.b.serviceAccount),
  automountToken: false,
});
const retrieval: StepFlowWorker = b.addWorker({
  name: FACTS.b.worker.name,
  image: FACTS.b.worker.image,
  routePrefix: FACTS.b.worker.routePrefix,
  command: ['python3', '-m', 'retrieval.worker'],
  serviceAccount: identity,
  imagePullSecrets: [kplus.Secret.fromSecretName(refs, 'TeamBPull', FACTS.b.pullSecret)],
  envFrom: [{ secret: kplus.Secret.fromSecretName(refs, 'VectorDb', FACTS.b.envFromSecret) }],
  env: { RETRIEVAL_TOP_K: '8' },
});
void retrieval;

// ---------------------------------------------------------------- team C --------
// Still on StepFlow 0.11 (the core calls its workers over HTTP, through their Services), in
// the same namespace, with a worker named like team-a's and team-b's.
new StepFlowChart(app, 'team-c', {
  environment: platform,
  namePrefix: FACTS.c.prefix,
  generation: StepFlowGeneration.HTTP_PUSH,
  imageTag: '0.11.0',
  createNamespace: false,
  ingress: false,
  pythonSdk: false,
  inference: false,
  labels: FACTS.c.labels,
  workers: [{
    name: FACTS.a.worker.name,
    image: FACTS.c.workerImage,
    routePrefix: FACTS.a.worker.routePrefix,
    command: ['python3', '-m', 'team_tools.server'],
    port: FACTS.c.port,
  }],
});

// The platform labels every object it manages itself, those cdk8s-plus generates for
// `connections.allowTo` included; the kit's own objects say they are the kit's.
for (const c of app.node.findAll()) {
  if (c instanceof ApiObject && c.metadata.getLabel(MANAGED_BY) === undefined) c.metadata.addLabel(MANAGED_BY, FACTS.ownLabels[MANAGED_BY]);
}

app.synth();
process.stdout.write(`synthesized ${app.charts.map((c) => c.node.id).join(', ')} into ${args[1]}\n`);
