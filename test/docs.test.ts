import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

// The API reference (docs/api/, TypeDoc → Markdown from the TSDoc) is generated, never
// edited: a fresh generation must equal the committed one, and every optional field of a
// public props or options interface documents its @default.
const ROOT = path.resolve(__dirname, '..');
const OUT = fs.mkdtempSync(path.join(os.tmpdir(), 'api-docs-'));
execFileSync(path.join(ROOT, 'node_modules', '.bin', 'typedoc'), ['--out', path.join(OUT, 'md'), '--json', path.join(OUT, 'api.json'), '--logLevel', 'Error'], { cwd: ROOT, stdio: 'pipe' });

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)).map((f) => path.join(e.name, f)) : [e.name])).sort();
}

test('docs/api/ is what TypeDoc generates from src/ (run `npm run docs` and commit)', () => {
  const fresh = files(path.join(OUT, 'md'));
  expect(files(path.join(ROOT, 'docs', 'api'))).toEqual(fresh);
  for (const f of fresh) expect(fs.readFileSync(path.join(ROOT, 'docs', 'api', f), 'utf8')).toBe(fs.readFileSync(path.join(OUT, 'md', f), 'utf8'));
});

test('every optional field of a public props, options or preset interface documents its @default', () => {
  const INTERFACE = 256;
  const PROPERTY = 1024;
  const api = JSON.parse(fs.readFileSync(path.join(OUT, 'api.json'), 'utf8'));
  const interfaces = (api.children ?? []).filter((r: any) => r.kind === INTERFACE && !/^I[A-Z]/.test(r.name));
  const missing = interfaces.flatMap((i: any) => (i.children ?? [])
    .filter((p: any) => p.kind === PROPERTY && p.flags?.isOptional)
    .filter((p: any) => !(p.comment?.blockTags ?? []).some((t: any) => t.tag === '@default'))
    .map((p: any) => `${i.name}.${p.name}`));
  expect(interfaces.length).toBeGreaterThan(20);
  expect(missing).toEqual([]);
});
