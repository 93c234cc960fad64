import * as fs from 'fs';
import * as path from 'path';
import { CONTRACT, ComponentId, DEFAULT_GENERATION } from '../src/contract';
import { ModelCacheAccessMode, ModelCacheSharing, StepFlowGeneration } from '../src';
import { prod } from '../charts/prod';
import { DEV_PROPS, PROD_PROPS, containers as containersOf, synth, workloads } from './helpers';

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
const GENERATIONS = Object.values(StepFlowGeneration);

describe.each(['core', 'python-sdk', 'inference'] as ComponentId[])('containers/%s/Containerfile', (component) => {
  const c = CONTRACT.components[component];
  const file = path.join(ROOT, 'containers', component, 'Containerfile');
  const stages = parseContainerfile(file);
  const runtime = stages.find((s) => s.name === 'runtime');
  /** The stages the `runtime` target is built from when STEPFLOW_GENERATION is `generation` (base first). */
  const imageOf = (generation: string): Stage[] => {
    const chain = (s: Stage): Stage[] => {
      const from = (instruction(s, 'FROM')[0] ?? '').replace(/\$\{STEPFLOW_GENERATION\}/g, generation).replace(/^--platform=\S+\s+/, '');
      const parent = stages.find((p) => p.name !== '' && from.split(/\s+/)[0] === p.name);
      return parent ? [...chain(parent), s] : [s];
    };
    return chain(runtime!);
  };

  test('has a runtime stage, last in the file (the default target)', () => {
    expect(runtime).toBeDefined();
    expect(stages[stages.length - 1].name).toBe('runtime');
  });

  test('its generation ARG defaults to the contract\'s default generation, and its pinned StepFlow versions to that generation\'s', () => {
    const all = Object.assign({}, ...stages.map((s) => s.args));
    const v = CONTRACT.generations[DEFAULT_GENERATION];
    if (component === 'core') expect(all.STEPFLOW_ORCHESTRATOR_VERSION).toBe(v.orchestrator);
    else {
      expect(stages[0].args.STEPFLOW_GENERATION).toBe(DEFAULT_GENERATION);
      expect(all.STEPFLOW_PY_VERSION).toBe(v.sdk);
      expect(all.STEPFLOW_PY_EXTRAS ?? '').toBe(v.sdkExtras);
    }
  });

  describe.each(GENERATIONS)('StepFlow %s', (generation) => {
    const image = imageOf(generation);
    const last = (kw: string) => image.flatMap((st) => instruction(st, kw)).pop();
    const argOf = (name: string) => image.map((st) => st.args[name]).filter((x) => x !== undefined).pop();
    const objects = synth({ ...DEV_PROPS, generation });
    const container = workloads(objects).find((w) => w.metadata.labels.component === component).spec.template.spec.containers[0];

    test('UID and GID ARG defaults equal contract.json; a port is exposed exactly when the process listens', () => {
      expect(argOf('STEPFLOW_UID')).toBe(String(c.uid));
      expect(argOf('STEPFLOW_GID')).toBe(String(c.gid));
      expect(last('USER')).toBe('${STEPFLOW_UID}:${STEPFLOW_GID}');
      if (container.ports) {
        expect(argOf('STEPFLOW_PORT')).toBe(String(c.port));
        expect(last('EXPOSE')).toBe('${STEPFLOW_PORT}');
      } else {
        expect(last('EXPOSE')).toBeUndefined();
      }
    });

    test('ENTRYPOINT + CMD run exactly what the construct runs', () => {
      const cmd = last('CMD');
      expect([...jsonForm(last('ENTRYPOINT')!), ...(cmd ? jsonForm(cmd) : [])]).toEqual([...container.command, ...(container.args ?? [])]);
    });

    test('HEALTHCHECK checks what the liveness probe checks', () => {
      const hc = last('HEALTHCHECK')!;
      expect(hc).not.toMatch(/--version/);
      if (container.livenessProbe.httpGet) {
        expect(hc).toContain(`http://127.0.0.1:${c.port}${container.livenessProbe.httpGet.path}`);
      } else {
        // gRPC-pull workers: the same heartbeat check, in the image's exec form.
        expect(jsonForm(hc.replace(/^.*?CMD\s+/, '')).slice(0, 3)).toEqual(container.livenessProbe.exec.command);
        expect(argOf('STEPFLOW_KIT_HEARTBEAT_FILE')).toBe(container.env.find((e: any) => e.name === CONTRACT.env.heartbeatFile).value);
      }
    });
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

test('the core image carries the state directory the claim is mounted on', () => {
  const stages = parseContainerfile(path.join(ROOT, 'containers', 'core', 'Containerfile'));
  const all = Object.assign({}, ...stages.map((s) => s.args));
  expect(all.STEPFLOW_STATE_DIR).toBe(CONTRACT.components.core.state.mountPath);
});

test('build.sh tags images with the generation\'s imageTag, the tag prod pulls; dev.sh with the dev tag the dev manifests pull', () => {
  const build = fs.readFileSync(path.join(ROOT, 'scripts', 'build.sh'), 'utf8');
  const dev = fs.readFileSync(path.join(ROOT, 'scripts', 'dev.sh'), 'utf8');
  expect(build).toMatch(/contract "generations\.\$\{generation\}\.imageTag"/);
  expect(dev).toMatch(/contract images\.devTag/);
  for (const generation of GENERATIONS) {
    for (const o of containersOf(synth(prod(generation)))) expect(o.image.split(':').pop()).toBe(CONTRACT.generations[generation].imageTag);
  }
  for (const o of containersOf(devObjects)) expect(o.image.split(':').pop()).toBe(CONTRACT.images.devTag);
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

describe('scripts/deploy.sh (bash and kubectl only) agrees with the library', () => {
  const script = fs.readFileSync(path.join(ROOT, 'scripts', 'deploy.sh'), 'utf8');
  const constant = (name: string) => script.match(new RegExp(`^readonly ${name}="([^"]*)"`, 'm'))?.[1];

  test('the labels it selects by are the ones the library sets', () => {
    expect(constant('MANAGED_BY')).toBe(CONTRACT.managedBy);
    expect(constant('MANAGED_BY_LABEL')).toBe('app.kubernetes.io/managed-by');
    expect(constant('INSTANCE_LABEL')).toBe('app.kubernetes.io/instance');
    for (const o of [...devObjects, ...synth(PROD_PROPS)].filter((x) => x.kind !== 'Namespace')) {
      expect([o.kind, o.metadata.labels['app.kubernetes.io/managed-by'], typeof o.metadata.labels['app.kubernetes.io/instance']]).toEqual([o.kind, CONTRACT.managedBy, 'string']);
    }
  });

  test('its prune allowlist is every kind the library emits but Namespace and PersistentVolumeClaim', () => {
    const variants = [
      devObjects, synth(PROD_PROPS), ...GENERATIONS.map((g) => synth(prod(g))),
      // a shared model cache (a claim of its own), a team's autoscaled worker with a budget, no Ingress
      synth({ ...PROD_PROPS, ingress: false, inference: { modelCache: { sharing: ModelCacheSharing.SHARED, accessMode: ModelCacheAccessMode.READ_WRITE_MANY } },
        workers: [{ name: 'team-tools', image: 'registry.example.com/ml/tools:1.4.0', routePrefix: 'team', command: ['python3', '-m', 'stepflow_kit_worker'],
          autoscaling: { minReplicas: 2, maxReplicas: 4 }, disruptionBudget: { maxUnavailable: 1 } }] }),
    ];
    const gvk = (o: any) => `${o.apiVersion.includes('/') ? o.apiVersion : `core/${o.apiVersion}`}/${o.kind}`;
    const emitted = new Set(variants.flat().map(gvk));
    expect([...emitted].filter((k) => k.endsWith('/Namespace') || k.endsWith('/PersistentVolumeClaim')).sort()).toEqual(['core/v1/Namespace', 'core/v1/PersistentVolumeClaim']);
    expect(constant('PRUNE_ALLOWLIST')!.split(' ').sort()).toEqual([...emitted].filter((k) => !/\/(Namespace|PersistentVolumeClaim)$/.test(k)).sort());
  });
});
