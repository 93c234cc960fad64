import * as fs from 'fs';
import * as path from 'path';
import { CONTRACT, ComponentId } from '../src/contract';
import { DEV_PROPS, synth, workloads } from './helpers';

// The Containerfiles, the constructs and contract.json must agree on every port, UID,
// command, health path and pinned version: a Containerfile edit that drifts fails here.
const ROOT = path.resolve(__dirname, '..');

interface Stage { name: string; args: Record<string, string>; instructions: [string, string][] }

/** Split a Containerfile into stages: ARG defaults and instructions, continuations joined. */
function parseContainerfile(file: string): Stage[] {
  const lines = fs.readFileSync(file, 'utf8').replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  const stages: Stage[] = [{ name: '(global)', args: {}, instructions: [] }];
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [, keyword, rest] = line.match(/^(\S+)\s*(.*)$/)!;
    const kw = keyword.toUpperCase();
    if (kw === 'FROM') stages.push({ name: rest.match(/\sAS\s+(\S+)$/i)?.[1] ?? '', args: {}, instructions: [] });
    const stage = stages[stages.length - 1];
    if (kw === 'ARG') {
      const [name, value] = rest.split('=');
      stage.args[name] = value ?? '';
    }
    stage.instructions.push([kw, rest]);
  }
  return stages;
}

const instruction = (stage: Stage, kw: string) => stage.instructions.filter(([k]) => k === kw).map(([, v]) => v);
const jsonForm = (s: string) => JSON.parse(s) as string[];

const devObjects = synth(DEV_PROPS);

describe.each(['core', 'python-sdk', 'inference'] as ComponentId[])('containers/%s/Containerfile', (component) => {
  const c = CONTRACT.components[component];
  const file = path.join(ROOT, 'containers', component, 'Containerfile');
  const stages = parseContainerfile(file);
  const runtime = stages.find((s) => s.name === 'runtime');
  // The production image is the `runtime` stage; ARGs and instructions it inherits come from its base stage.
  const chain = (s: Stage): Stage[] => {
    const from = instruction(s, 'FROM')[0] ?? '';
    const parent = stages.find((p) => p.name !== '' && from.split(/\s+/)[0] === p.name);
    return parent ? [...chain(parent), s] : [s];
  };
  const image = chain(runtime!);
  const last = (kw: string) => image.flatMap((s) => instruction(s, kw)).pop();
  const argOf = (name: string) => image.map((s) => s.args[name]).filter((v) => v !== undefined).pop();
  const container = workloads(devObjects).find((w) => w.metadata.labels.component === component).spec.template.spec.containers[0];

  test('has a runtime stage, last in the file (the default target)', () => {
    expect(runtime).toBeDefined();
    expect(stages[stages.length - 1].name).toBe('runtime');
  });

  test('port, UID and GID ARG defaults equal contract.json', () => {
    expect(argOf('STEPFLOW_PORT')).toBe(String(c.port));
    expect(argOf('STEPFLOW_UID')).toBe(String(c.uid));
    expect(argOf('STEPFLOW_GID')).toBe(String(c.gid));
    expect(last('EXPOSE')).toBe('${STEPFLOW_PORT}');
    expect(last('USER')).toBe('${STEPFLOW_UID}:${STEPFLOW_GID}');
  });

  test('ENTRYPOINT + CMD run exactly what the construct runs', () => {
    expect([...jsonForm(last('ENTRYPOINT')!), ...jsonForm(last('CMD')!)]).toEqual([...container.command, ...container.args]);
  });

  test('HEALTHCHECK calls the liveness endpoint on the contract port', () => {
    const hc = last('HEALTHCHECK')!;
    expect(hc).toContain(`http://127.0.0.1:${c.port}${c.health.liveness}`);
    expect(hc).not.toMatch(/--version/);
  });

  test('pinned StepFlow versions equal contract.json', () => {
    const v = CONTRACT.generations['0.11'];
    const all = Object.assign({}, ...stages.map((s) => s.args));
    if (component === 'core') expect(all.STEPFLOW_ORCHESTRATOR_VERSION).toBe(v.orchestrator);
    else expect(all.STEPFLOW_PY_VERSION).toBe(v.sdk);
  });

  test('base images are pinned by tag and can be pinned by digest', () => {
    const globals = stages[0].args;
    for (const [name, value] of Object.entries(globals).filter(([n]) => n.endsWith('_TAG'))) {
      expect(value).not.toBe('latest');
      expect(value).not.toBe('');
      expect(Object.keys(globals)).toContain(name.replace(/_TAG$/, '_DIGEST'));
    }
  });

  test('a .dockerignore beside it keeps the context small', () => {
    expect(fs.existsSync(`${file}.dockerignore`)).toBe(true);
  });
});

test('the inference image and construct agree on the model cache and writable paths', () => {
  const stages = parseContainerfile(path.join(ROOT, 'containers', 'inference', 'Containerfile'));
  const all = Object.assign({}, ...stages.map((s) => s.args));
  expect(all.MODEL_CACHE_DIR).toBe(CONTRACT.paths.models);
  expect(all.STEPFLOW_CACHE_DIR).toBe(CONTRACT.paths.cache);
  const sts = devObjects.find((o) => o.kind === 'StatefulSet');
  const mounts = sts.spec.template.spec.containers[0].volumeMounts.map((m: any) => m.mountPath);
  expect(mounts).toEqual([CONTRACT.paths.tmp, CONTRACT.paths.cache, CONTRACT.paths.shm, CONTRACT.paths.models]);
});

test('scripts/build.sh reads names and versions from contract.json rather than repeating them', () => {
  const script = fs.readFileSync(path.join(ROOT, 'scripts', 'build.sh'), 'utf8');
  expect(script).toMatch(/contract\.json/);
  for (const c of Object.values(CONTRACT.components)) {
    expect(script).not.toContain(String(c.port));
    expect(script).not.toContain(`"${c.image}"`);
  }
});
