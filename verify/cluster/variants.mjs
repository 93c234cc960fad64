#!/usr/bin/env node
// Synthesizes production variants that dist/ does not hold, for the cluster tier:
//   prod-internal.yaml   no Ingress (ingress: false), every other production rule
//   prod-basic.yaml      Ingress with basic auth from a Secret, extra NetworkPolicy rules (monitoring in, a database out)
//   prod-mtls.yaml       Ingress with client-certificate verification
// Each in a namespace of its own, so the directory also applies as a whole.
// Usage: node verify/cluster/variants.mjs OUTDIR   (needs the compiled library: npm run build)
import { createRequire } from 'module';
import * as path from 'path';
import { fileURLToPath } from 'url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
if (args.length !== 1 || args[0].startsWith('-')) {
  process.stderr.write('usage: node verify/cluster/variants.mjs OUTDIR\n');
  process.exit(2);
}
const lib = require(path.join(root, 'lib', 'src'));
const { prod } = require(path.join(root, 'lib', 'charts', 'prod'));

const base = prod(lib.StepFlowGeneration.GRPC_PULL);
const variants = {
  'prod-internal': { ...base, namespace: 'stepflow-internal', ingress: false },
  'prod-basic': {
    ...base,
    namespace: 'stepflow-basic',
    ingress: { host: 'stepflow.example.com', authentication: lib.IngressAuthentication.basic({ secretName: 'stepflow-users' }) },
    core: { networkAccess: { ingress: [{ peers: [{ namespace: 'monitoring', podLabels: { app: 'blackbox-exporter' } }], ports: [{ port: 8080 }] }] } },
    pythonSdk: { networkAccess: { egress: [{ peers: [{ cidr: '10.20.0.0/16' }], ports: [{ port: 5432 }] }] } },
  },
  'prod-mtls': { ...base, namespace: 'stepflow-mtls', ingress: { host: 'stepflow.example.com', authentication: lib.IngressAuthentication.clientCertificate({ caSecretName: 'stepflow-client-ca' }) } },
};
const app = new lib.StepFlowApp({ outdir: args[0] });
for (const [id, props] of Object.entries(variants)) new lib.StepFlowChart(app, id, props);
app.synth();
process.stdout.write(`${Object.keys(variants).map((v) => `${v}.yaml`).join(' ')} in ${args[0]}\n`);
