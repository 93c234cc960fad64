// Reading what kubectl prints as JSON, for the tiers' Node.js check scripts
// (verify/cluster/upgrade-checks.mjs, verify/helm/checks.mjs).

// The objects of a List (kubectl get of several), or the one object.
export const items = (j) => (j == null ? [] : Array.isArray(j.items) ? j.items : [j]);

// "Kind/namespace/name" (or "Kind/name" for a cluster-scoped object), as the checks name objects.
export const ref = (o) => `${o.kind}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;

// kubectl prints one indented JSON document per object, each closed by a "}" in column 0.
export const jsonDocs = (text) => text.split(/^\}\s*$/m).filter((t) => t.trim()).map((t) => JSON.parse(`${t}}`));

// jsonReader(kubectl)(args): `kubectl ARGS -o json`, parsed; a failure throws with kubectl's own words.
// kubectl(args, input) returns { code, stdout, stderr }.
export const jsonReader = (kubectl) => (args) => {
  const r = kubectl([...args, '-o', 'json']);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
};
