import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ImageLock, StepFlowApp, StepFlowChart, StepFlowGeneration } from '../src';
import { prod } from '../charts/prod';
import { DEV_PROPS, PROD_PROPS, containers, synth, synthError } from './helpers';

// Images pinned by digest: a chart given the lock scripts/build.sh --push writes pulls every
// image as repository@digest; an image the lock lacks fails the synth. The digests here are
// sha256 sums of the test's own strings, computed at run time: no image has them.
const digest = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;
const REG = 'registry.example.com/stepflow';
const PROD_LOCK = {
  [`${REG}/stepflow-core:0.13.0`]: digest('core'),
  [`${REG}/stepflow-python-sdk:0.13.0`]: digest('python-sdk'),
  [`${REG}/stepflow-inference:0.13.0`]: digest('inference'),
};
const images = (objects: any[]) => containers(objects).map((c) => c.image);

function lockFile(content: unknown): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lock-')), 'images.lock.json');
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('a chart given a lock pulls every image by digest', () => {
  test('prod 0.13: core, python-sdk and inference as repository@digest', () => {
    const objects = synth({ ...PROD_PROPS, imageLock: ImageLock.fromDigests(PROD_LOCK) });
    expect(images(objects).sort()).toEqual([
      `${REG}/stepflow-core@${digest('core')}`,
      `${REG}/stepflow-inference@${digest('inference')}`,
      `${REG}/stepflow-python-sdk@${digest('python-sdk')}`,
    ]);
  });

  test('prod 0.11: the core\'s init container too', () => {
    const lock = ImageLock.fromDigests(Object.fromEntries(Object.entries(PROD_LOCK).map(([ref, d]) => [ref.replace(':0.13.0', ':0.11.1'), d])));
    const props = prod(StepFlowGeneration.HTTP_PUSH);
    expect(props.imageTag).toBe('0.11.1');
    const objects = synth({ ...props, imageLock: lock });
    const core = objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'stepflow-core');
    expect(core.spec.template.spec.initContainers.map((c: any) => c.image)).toEqual([`${REG}/stepflow-core@${digest('core')}`]);
    expect(images(objects).every((i) => /@sha256:[0-9a-f]{64}$/.test(i))).toBe(true);
  });

  test('the version labels stay the releases\' (a digest is no version)', () => {
    const pinned = synth({ ...PROD_PROPS, imageLock: ImageLock.fromDigests(PROD_LOCK) });
    const tagged = synth(PROD_PROPS);
    const versions = (os: any[]) => os.map((o) => `${o.kind}/${o.metadata.name}=${o.metadata.labels?.['app.kubernetes.io/version']}`);
    expect(versions(pinned)).toEqual(versions(tagged));
  });

  test('everything but the images is what the tagged chart gives', () => {
    const strip = (os: any[]) => JSON.stringify(os).replace(/"image":"[^"]*"/g, '"image":"-"');
    expect(strip(synth({ ...PROD_PROPS, imageLock: ImageLock.fromDigests(PROD_LOCK) }))).toBe(strip(synth(PROD_PROPS)));
  });

  test('the Helm chart holds the same pinned images', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-helm-'));
    const app = new StepFlowApp({ outdir: dir, helmCharts: {} });
    new StepFlowChart(app, 'prod', { ...PROD_PROPS, imageLock: ImageLock.fromDigests(PROD_LOCK) });
    app.synth();
    const template = fs.readFileSync(path.join(dir, 'helm/prod/templates/statefulset-stepflow-core.yaml'), 'utf8');
    expect(template).toContain(`image: ${REG}/stepflow-core@${digest('core')}\n`);
    expect(fs.readFileSync(path.join(dir, 'prod.yaml'), 'utf8')).toContain(`image: ${REG}/stepflow-core@${digest('core')}\n`);
  });

  test('without a lock: tags, as before', () => {
    expect(images(synth(PROD_PROPS)).sort()).toEqual([`${REG}/stepflow-core:0.13.0`, `${REG}/stepflow-inference:0.13.0`, `${REG}/stepflow-python-sdk:0.13.0`]);
    expect(images(synth(DEV_PROPS)).sort()).toEqual(['localhost:5000/stepflow-core:dev', 'localhost:5000/stepflow-inference:dev', 'localhost:5000/stepflow-python-sdk:dev']);
  });

  test('a team\'s worker: by digest from the lock, or its own digest kept', () => {
    const lock = ImageLock.fromDigests({ ...PROD_LOCK, 'registry.example.com/ml/tools:1.4.0': digest('tools') });
    const own = `registry.example.com/ml/other@${digest('other')}`;
    const objects = synth({
      ...PROD_PROPS, imageLock: lock,
      workers: [
        { name: 'team-tools', image: 'registry.example.com/ml/tools:1.4.0', routePrefix: 'team', command: ['python3', '-m', 'stepflow_kit_worker'] },
        { name: 'team-other', image: own, routePrefix: 'other', command: ['python3', '-m', 'stepflow_kit_worker'] },
      ],
    });
    const tools = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'team-tools');
    expect(tools.spec.template.spec.containers[0].image).toBe(`registry.example.com/ml/tools@${digest('tools')}`);
    expect(tools.metadata.labels['app.kubernetes.io/version']).toBe('1.4.0');
    const other = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'team-other');
    expect(other.spec.template.spec.containers[0].image).toBe(own);
  });
});

describe('an image the lock lacks is a synth error, never the tag instead', () => {
  test('a built-in image: the construct, the lock, the reference, what it holds, the build command', () => {
    const { [`${REG}/stepflow-inference:0.13.0`]: _gone, ...rest } = PROD_LOCK;
    const message = synthError({ ...PROD_PROPS, imageLock: ImageLock.fromDigests(rest, 'images.lock.json') });
    expect(message).toContain(`[test/Inference] prop 'imageLock' is "images.lock.json": has no digest for ${REG}/stepflow-inference:0.13.0 `
      + `(it holds ${REG}/stepflow-core:0.13.0, ${REG}/stepflow-python-sdk:0.13.0); every image of a chart given a lock is pulled by digest: `
      + `push it with scripts/build.sh inference --registry ${REG} --tag 0.13.0 --push (that records its digest in the lock)`);
    expect(message).not.toContain('[test/Core]');
  });

  test('a lock for another tag: every image is reported', () => {
    const message = synthError({ ...PROD_PROPS, imageTag: '0.13.1', imageLock: ImageLock.fromDigests(PROD_LOCK) });
    for (const c of ['Core', 'PythonSdk', 'Inference']) expect(message).toMatch(new RegExp(`\\[test/${c}\\] prop 'imageLock' is "ImageLock.fromDigests": has no digest for ${REG}/stepflow-[a-z-]+:0\\.13\\.1 `));
  });

  test('a team\'s worker image: record it or give its digest', () => {
    const message = synthError({
      ...PROD_PROPS, imageLock: ImageLock.fromDigests(PROD_LOCK),
      workers: [{ name: 'team-tools', image: 'registry.example.com/ml/tools:1.4.0', routePrefix: 'team', command: ['python3', '-m', 'stepflow_kit_worker'] }],
    });
    expect(message).toContain("[test/Worker-team-tools] prop 'imageLock' is \"ImageLock.fromDigests\": has no digest for registry.example.com/ml/tools:1.4.0 ");
    expect(message).toContain("record it in the lock, or give the image with its digest (image: '<repository>@sha256:<digest>')");
  });

  test('an empty lock', () => {
    expect(synthError({ ...DEV_PROPS, imageLock: ImageLock.fromDigests({}) })).toContain("[test/Core] prop 'imageLock' is \"ImageLock.fromDigests\": has no digest for localhost:5000/stepflow-core:dev (it holds no image)");
  });

  test('something that is not an ImageLock (JavaScript callers)', () => {
    expect(synthError({ ...DEV_PROPS, imageLock: { 'localhost:5000/stepflow-core:dev': digest('core') } as any }))
      .toContain(`[test/Core] prop 'imageLock' is {"localhost:5000/stepflow-core:dev":"${digest('core')}"}: expected an ImageLock, e.g. ImageLock.fromFile('images.lock.json')`);
  });
});

describe('ImageLock.fromFile reads what scripts/build.sh --push writes', () => {
  test('references, digests and platforms', () => {
    const file = lockFile({ lockVersion: 1, images: { [`${REG}/stepflow-core:0.13.0`]: { digest: digest('core'), platforms: ['linux/amd64', 'linux/arm64'] }, 'localhost:5000/stepflow-core:dev': { digest: digest('dev') } } });
    const lock = ImageLock.fromFile(file);
    expect(lock.source).toBe(file);
    expect(lock.references).toEqual(['localhost:5000/stepflow-core:dev', `${REG}/stepflow-core:0.13.0`]);
    expect(lock.digestOf('localhost:5000/stepflow-core:dev')).toBe(digest('dev'));
    expect(lock.pin('localhost:5000/stepflow-core:dev')).toBe(`localhost:5000/stepflow-core@${digest('dev')}`);
    expect(lock.pin('localhost:5000/stepflow-core:other')).toBeUndefined();
    expect(lock.pin(`localhost:5000/x@${digest('x')}`)).toBe(`localhost:5000/x@${digest('x')}`);
  });

  test.each<[string, unknown, string]>([
    ['not JSON', '{ "lockVersion": 1,', 'not JSON'],
    ['another format version', { lockVersion: 2, images: {} }, 'lockVersion is 2; this version of the kit reads lockVersion 1'],
    ['no images map', { lockVersion: 1, images: [] }, '"images" must map image references to { "digest": "sha256:…" }'],
    ['an entry that is no object', { lockVersion: 1, images: { 'localhost:5000/stepflow-core:dev': 'sha256:x' } }, 'images["localhost:5000/stepflow-core:dev"] must be { "digest": "sha256:…" }'],
    ['a short digest', { lockVersion: 1, images: { 'localhost:5000/stepflow-core:dev': { digest: 'sha256:abc' } } }, 'the digest of localhost:5000/stepflow-core:dev is "sha256:abc"; expected sha256: and 64 lower-case hex digits, as the registry serves it'],
    ['an untagged reference', { lockVersion: 1, images: { 'localhost:5000/stepflow-core': { digest: digest('core') } } }, '"localhost:5000/stepflow-core" is not a tagged image reference [host[:port]/]path:tag'],
    ['a reference with a digest as key', { lockVersion: 1, images: { [`localhost:5000/stepflow-core:dev@${digest('core')}`]: { digest: digest('core') } } }, 'is not a tagged image reference'],
    ['platforms that are no list', { lockVersion: 1, images: { 'localhost:5000/stepflow-core:dev': { digest: digest('core'), platforms: 'linux/amd64' } } }, 'platforms must be a list of platforms such as "linux/amd64"'],
  ])('%s: an error naming the file', (_what, content, expected) => {
    const file = lockFile(content);
    expect(() => ImageLock.fromFile(file)).toThrow(`image lock ${file}: `);
    expect(() => ImageLock.fromFile(file)).toThrow(expected);
  });

  test('a missing file: how to make one', () => {
    expect(() => ImageLock.fromFile('/nonexistent/images.lock.json')).toThrow('image lock /nonexistent/images.lock.json: cannot read it (ENOENT); scripts/build.sh <component|all> --registry <registry> --push writes it');
  });
});

test('the lock scripts/build.sh --push writes is the one the library reads', () => {
  // build.sh with the recording buildctl stub of its bats tests (test/scripts/stubs): the
  // stub reports sha256 of each image's name as BuildKit's containerimage.digest.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-build-'));
  const bin = path.join(tmp, 'bin');
  fs.mkdirSync(bin);
  for (const stub of ['buildctl', '_record.sh']) fs.symlinkSync(path.join(__dirname, 'scripts', 'stubs', stub), path.join(bin, stub));
  const file = path.join(tmp, 'images.lock.json');
  execFileSync('bash', [path.join(__dirname, '..', 'scripts', 'build.sh'), 'all', '--registry', REG, '--push', '--lock', file], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, HOME: tmp, STUB_LOG: path.join(tmp, 'calls.log'), STEPFLOW_KIT_CACHE: path.join(tmp, 'cache'), BUILDKIT_HOST: '' },
    stdio: 'pipe',
  });
  const lock = ImageLock.fromFile(file);
  expect(lock.references).toEqual(Object.keys(PROD_LOCK).sort());
  const objects = synth({ ...PROD_PROPS, imageLock: lock });
  expect(images(objects).sort()).toEqual(['core', 'inference', 'python-sdk'].map((c) => `${REG}/stepflow-${c}@${digest(`${REG}/stepflow-${c}:0.13.0`)}`));
});
