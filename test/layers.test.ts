import * as fs from 'fs';
import * as path from 'path';

// The library (src/) is one layer: it never reaches up into this repository's own
// installations (charts/, main.ts), and its modules import each other without cycles.
const ROOT = path.resolve(__dirname, '..');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports of one file, resolved to files (type-only imports included: they bind the layers too). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)].map((m) => {
    const target = path.resolve(path.dirname(file), m[1]);
    return [`${target}.ts`, path.join(target, 'index.ts'), target].find((f) => fs.existsSync(f) && fs.statSync(f).isFile()) ?? target;
  });
}

const graph = new Map(sources(path.join(ROOT, 'src')).map((f) => [f, importsOf(f)]));

test('nothing under src/ imports charts/ or main.ts', () => {
  const upward = [...graph].flatMap(([f, deps]) => deps.filter((d) => d.startsWith(path.join(ROOT, 'charts')) || d.startsWith(path.join(ROOT, 'main')))
    .map((d) => `${path.relative(ROOT, f)} -> ${path.relative(ROOT, d)}`));
  expect(upward).toEqual([]);
});

test('src/internal/ does not import the public constructs', () => {
  const internal = [...graph].filter(([f]) => f.includes(`${path.sep}internal${path.sep}`));
  const up = internal.flatMap(([f, deps]) => deps.filter((d) => !d.includes(`${path.sep}internal${path.sep}`) && /src[\\/](components|platform|chart|app|index|environments)/.test(d))
    .map((d) => `${path.relative(ROOT, f)} -> ${path.relative(ROOT, d)}`));
  expect(up).toEqual([]);
});

test('no import cycles in src/', () => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (f: string, trail: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...trail.slice(trail.indexOf(f)), f].map((x) => path.relative(ROOT, x)).join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const d of graph.get(f) ?? []) if (graph.has(d)) visit(d, [...trail, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
  expect(cycles).toEqual([]);
});
