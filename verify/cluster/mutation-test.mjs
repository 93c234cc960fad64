// Driver of mutation-test.sh: breaks freshly synthesized manifests one defect at a
// time (cases in mutations.json) and requires run.sh to fail on each, for the reason
// the case names, while the unmutated manifests pass. Node built-ins plus the
// project's pinned `yaml` package. See mutation-test.sh for the command line.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const YAML = createRequire(join(ROOT, 'package.json'))('yaml');
const SUMMARY = /^(\d+) passed, (\d+) failed$/;

// ------------------------------------------------------------ command line
function parseArgs(argv) {
  const a = { work: '', tier: HERE, versions: [], generations: [], cases: [], fast: false, list: false, dryRun: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    if (k === '--work') a.work = v();
    else if (k === '--tier') a.tier = v();
    else if (k === '--versions') a.versions = v().split(/[ ,]+/).filter(Boolean);
    else if (k === '--generations') a.generations = v().split(/[ ,]+/).filter(Boolean);
    else if (k === '--case') a.cases.push(v());
    else if (k === '--fast') a.fast = true;
    else if (k === '--list') a.list = true;
    else if (k === '--dry-run') a.dryRun = true;
    else throw new Error(`unknown argument: ${k}`);
  }
  return a;
}

// ------------------------------------------------------------ paths
// A path is dot-separated keys; a segment in brackets is either a quoted key
// (["stepflow-config.yml"], for keys holding dots), an index ([0]), every element
// ([*]) or a filter ([name=core]: the elements whose sub-path `name` equals `core`;
// the sub-path may itself be dotted and use * for "any element").
function parsePath(path) {
  const segs = [];
  const re = /\.?([^.[\]]+)|\[("(?:[^"\\]|\\.)*"|[^\]]*)\]/gy;
  let m;
  let at = 0;
  while (at < path.length) {
    re.lastIndex = at;
    m = re.exec(path);
    if (!m) throw new Error(`cannot parse path ${JSON.stringify(path)} at ${at}`);
    at = re.lastIndex;
    if (m[1] !== undefined) segs.push({ key: m[1] });
    else if (m[2].startsWith('"')) segs.push({ key: JSON.parse(m[2]) });
    else if (m[2] === '*') segs.push({ all: true });
    else if (/^\d+$/.test(m[2])) segs.push({ index: Number(m[2]) });
    else if (m[2].includes('=')) {
      const eq = m[2].indexOf('=');
      segs.push({ filter: m[2].slice(0, eq), equals: m[2].slice(eq + 1) });
    } else throw new Error(`bad path segment [${m[2]}] in ${JSON.stringify(path)}`);
  }
  return segs;
}

function subValues(item, subPath) {
  let vals = [item];
  for (const part of subPath.split('.')) {
    const next = [];
    for (const v of vals) {
      if (v === null || typeof v !== 'object') continue;
      if (part === '*') { if (Array.isArray(v)) next.push(...v); } else if (part in v) next.push(v[part]);
    }
    vals = next;
  }
  return vals;
}

// Every (container, key) the path names. All but the last segment must resolve to
// at least one existing value; the last may name a missing key when `create` is
// set (a `set` that adds a field). An empty result is an error.
function resolve(obj, path, { create = false } = {}) {
  const segs = parsePath(path);
  let nodes = [obj];
  for (let s = 0; s < segs.length; s++) {
    const seg = segs[s];
    const last = s === segs.length - 1;
    const refs = [];
    for (const n of nodes) {
      if (n === null || typeof n !== 'object') continue;
      if (seg.key !== undefined) {
        if (Array.isArray(n)) continue;
        if (seg.key in n || (last && create)) refs.push([n, seg.key]);
      } else if (!Array.isArray(n)) {
        continue;
      } else if (seg.all) {
        n.forEach((_, i) => refs.push([n, i]));
      } else if (seg.index !== undefined) {
        if (seg.index < n.length) refs.push([n, seg.index]);
      } else {
        n.forEach((item, i) => {
          if (subValues(item, seg.filter).some((v) => String(v) === seg.equals)) refs.push([n, i]);
        });
      }
    }
    if (refs.length === 0) {
      const upto = segs.slice(0, s + 1).map(fmtSeg).join('');
      throw new Error(`path ${JSON.stringify(path)}: nothing at ${upto}`);
    }
    if (last) return refs;
    nodes = refs.map(([c, k]) => c[k]);
  }
  return [];
}

function fmtSeg(seg) {
  if (seg.key !== undefined) return /^[\w-]+$/.test(seg.key) ? `.${seg.key}` : `[${JSON.stringify(seg.key)}]`;
  if (seg.all) return '[*]';
  if (seg.index !== undefined) return `[${seg.index}]`;
  return `[${seg.filter}=${seg.equals}]`;
}

// ------------------------------------------------------------ mutations
const id = (o) => `${o?.kind}/${o?.metadata?.namespace ?? '-'}/${o?.metadata?.name}`;

function matches(obj, sel) {
  if (!obj || typeof obj !== 'object') return false;
  if (sel.kind && ![sel.kind].flat().includes(obj.kind)) return false;
  const name = obj.metadata?.name ?? '';
  if (sel.nameSuffix && !(name === sel.nameSuffix || name.endsWith(`-${sel.nameSuffix}`))) return false;
  for (const [k, v] of Object.entries(sel.labels ?? {})) {
    if ((obj.metadata?.labels ?? {})[k] !== v) return false;
  }
  return true;
}

function applyOp(docs, obj, op) {
  const clone = (v) => structuredClone(v);
  if ('set' in op) {
    for (const [c, k] of resolve(obj, op.set, { create: true })) c[k] = clone(op.value);
  } else if ('delete' in op) {
    // highest index first, so that deleting several list elements keeps the others' indexes
    const refs = resolve(obj, op.delete).sort((x, y) => (typeof y[1] === 'number' ? y[1] : 0) - (typeof x[1] === 'number' ? x[1] : 0));
    for (const [c, k] of refs) {
      if (Array.isArray(c)) c.splice(k, 1); else delete c[k];
    }
  } else if ('append' in op) {
    for (const [c, k] of resolve(obj, op.append)) {
      if (!Array.isArray(c[k])) throw new Error(`append: ${op.append} is not a list in ${id(obj)}`);
      c[k].push(clone(op.value));
    }
  } else if ('replace' in op) {
    const re = new RegExp(op.old, 'g');
    for (const [c, k] of resolve(obj, op.replace)) {
      if (typeof c[k] !== 'string') throw new Error(`replace: ${op.replace} is not a string in ${id(obj)}`);
      if (!re.test(c[k])) throw new Error(`replace: /${op.old}/ does not occur in ${op.replace} of ${id(obj)}`);
      re.lastIndex = 0;
      c[k] = c[k].replace(re, op.new);
    }
  } else if (op.move === 'end') {
    docs.splice(docs.indexOf(obj), 1);
    docs.push(obj);
  } else if (op.remove === true) {
    docs.splice(docs.indexOf(obj), 1);
  } else {
    throw new Error(`unknown operation ${JSON.stringify(op)}`);
  }
}

// Returns the mutated documents and a one-line description per object changed;
// throws when the case does not apply (no object selected, or a path names nothing).
function mutate(docs, c) {
  const out = structuredClone(docs);
  const sel = c.select;
  const targets = out.filter((o) => matches(o, sel));
  if (targets.length === 0) throw new Error(`no object matches ${JSON.stringify(sel)}`);
  if (sel.count !== undefined && targets.length !== sel.count) {
    throw new Error(`${targets.length} objects match ${JSON.stringify(sel)}, expected ${sel.count}: ${targets.map(id).join(', ')}`);
  }
  for (const obj of targets) for (const op of c.ops) applyOp(out, obj, op);
  return { docs: out, changed: targets.map(id) };
}

// ------------------------------------------------------------ YAML files
function readDocs(file) {
  const parsed = YAML.parseAllDocuments(readFileSync(file, 'utf8'));
  for (const d of parsed) if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
  return parsed.map((d) => d.toJS()).filter((o) => o !== null && o !== undefined);
}
const dumpDocs = (docs) => docs.map((o) => YAML.stringify(o, { lineWidth: 0 })).join('---\n');

// ------------------------------------------------------------ run.sh
function runTier(tier, dist, version, logFile) {
  const t0 = Date.now();
  const p = spawnSync('bash', [join(tier, 'run.sh'), '--versions', version, '--dist', dist, '--only-files'], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024,
  });
  const out = `${p.stdout ?? ''}${p.stderr ? `\n--- stderr ---\n${p.stderr}` : ''}`;
  writeFileSync(logFile, out);
  const lines = (p.stdout ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  const summary = lines.at(-1) ?? '';
  const i = (p.stdout ?? '').lastIndexOf('\nFAILURES:');
  const failures = i >= 0 ? p.stdout.slice(i) : '';
  return { rc: p.status ?? 128, summary, m: SUMMARY.exec(summary), failures, secs: Math.round((Date.now() - t0) / 1000) };
}

const indent = (text, n = 25) => text.trimEnd().split('\n').slice(-n).map((l) => `    ${l}`).join('\n');

// ------------------------------------------------------------ main
function main() {
  let a;
  try { a = parseArgs(process.argv.slice(2)); } catch (e) { console.error(`mutation-test: ${e.message}`); return 2; }
  const spec = JSON.parse(readFileSync(join(HERE, 'mutations.json'), 'utf8'));
  let cases = spec.cases;
  const unknown = a.cases.filter((n) => !cases.some((c) => c.name === n));
  if (unknown.length) { console.error(`mutation-test: unknown case(s): ${unknown.join(', ')} (see --list)`); return 2; }
  if (a.cases.length) cases = cases.filter((c) => a.cases.includes(c.name));
  const gensOf = (c) => (a.fast ? c.fast ?? [] : c.generations ?? spec.generations).filter((g) => a.generations.includes(g));
  if (a.list) {
    for (const c of spec.cases) {
      console.log(`${c.name}  [${(c.generations ?? spec.generations).join(', ')}; fast: ${(c.fast ?? []).join(', ') || '-'}${c.versions ? `; only ${c.versions.join(', ')}` : ''}]  ${c.checks}`);
    }
    return 0;
  }
  const runs = cases.flatMap((c) => gensOf(c).map((g) => ({ c, g })));
  if (runs.length === 0) { console.error('mutation-test: no case selected'); return 2; }

  // the unmutated manifests, parsed once per generation
  const base = {};
  for (const g of a.generations) {
    const dir = join(a.work, `gen-${g}`);
    base[g] = {};
    for (const f of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort()) base[g][f] = readDocs(join(dir, f));
    if (Object.keys(base[g]).length === 0) throw new Error(`no manifests synthesized into ${dir}`);
  }

  let passed = 0;
  let failed = 0;
  const pass = (msg) => { passed++; console.log(`PASS ${msg}`); };
  const fail = (msg, detail) => { failed++; console.log(`FAIL ${msg}`); if (detail) console.log(indent(detail)); };

  if (a.dryRun) {
    // only whether every selected case still applies to the synthesized output
    for (const { c, g } of runs) {
      const docs = base[g][c.file];
      if (!docs) { fail(`[${g}] ${c.name}: the ${g} output has no ${c.file}`); continue; }
      try {
        const m = mutate(docs, c);
        if (isDeepStrictEqual(m.docs, docs)) fail(`[${g}] ${c.name}: mutation changes nothing`);
        else pass(`[${g}] ${c.name}: applies to ${m.changed.join(', ')}`);
      } catch (e) { fail(`[${g}] ${c.name}: mutation does not apply: ${e.message}`); }
    }
    console.log(`${passed} passed, ${failed} failed`);
    return failed ? 1 : 0;
  }

  for (const v of a.versions) {
    const work = join(a.work, v);
    mkdirSync(work, { recursive: true });
    // 1. control: the unmutated output, written back through the same YAML writer
    //    the mutations use (so a serialization problem cannot pass as a caught defect)
    for (const g of [...new Set(runs.map((r) => r.g))]) {
      const dist = join(work, `unmutated-${g}`);
      mkdirSync(dist);
      for (const [f, docs] of Object.entries(base[g])) {
        const text = dumpDocs(docs);
        const back = YAML.parseAllDocuments(text).map((d) => d.toJS()).filter((o) => o != null);
        if (!isDeepStrictEqual(back, docs)) { fail(`[${v} ${g}] ${f} does not survive a YAML round trip`); continue; }
        writeFileSync(join(dist, f), text);
      }
      const r = runTier(a.tier, dist, v, join(work, `unmutated-${g}.log`));
      if (r.rc === 0 && r.m && r.m[2] === '0' && Number(r.m[1]) > 0) pass(`[${v} ${g}] unmutated output: run.sh exit 0, '${r.summary}' (${r.secs}s)`);
      else fail(`[${v} ${g}] unmutated output: run.sh exit ${r.rc}, last line '${r.summary}' (${r.secs}s)`, r.failures || r.summary);
    }
    // 2. every mutation must make run.sh fail, for the reason the case names
    for (const { c, g } of runs) {
      const label = `[${v} ${g}] ${c.name}`;
      if (c.versions && !c.versions.includes(v)) {
        console.log(`n/a  ${label}: only observable on ${c.versions.join(', ')} (${c.why ?? ''})`);
        continue;
      }
      const docs = base[g][c.file];
      if (!docs) { fail(`${label}: the ${g} output has no ${c.file}`); continue; }
      let mutated;
      try { mutated = mutate(docs, c); } catch (e) { fail(`${label}: mutation does not apply: ${e.message}`); continue; }
      if (isDeepStrictEqual(mutated.docs, docs)) { fail(`${label}: mutation changes nothing`); continue; }
      const dist = join(work, `${g}-${c.name}`);
      mkdirSync(dist);
      writeFileSync(join(dist, c.file), dumpDocs(mutated.docs));
      const r = runTier(a.tier, dist, v, join(work, `${g}-${c.name}.log`));
      const problems = [];
      if (r.rc === 0) problems.push('run.sh exited 0 on a broken manifest');
      if (!r.m) problems.push(`last line is not 'N passed, M failed': '${r.summary}'`);
      else if (r.m[2] === '0') problems.push(`summary reports no failure: '${r.summary}'`);
      if (/checks\.mjs runs|cluster starts/.test(r.failures)) problems.push('the tier itself broke (crash or server start), not a check');
      const missing = c.expect.filter((rx) => !new RegExp(rx, 'im').test(r.failures));
      if (missing.length) problems.push(`failures do not match ${missing.map((x) => `/${x}/`).join(', ')}`);
      if (problems.length) {
        fail(`${label} (${r.secs}s): ${problems.join('; ')} [changed ${mutated.changed.join(', ')}]`, r.failures || r.summary);
      } else {
        pass(`${label} (${r.secs}s): run.sh failed as expected, '${r.summary}' [changed ${mutated.changed.join(', ')}]`);
        const first = r.failures.split('\n').filter((l) => /^\s+\[/.test(l)).slice(0, 2);
        for (const l of first) console.log(`    ${l.trim().slice(0, 200)}`);
      }
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

try {
  process.exitCode = main();
} catch (e) {
  console.error(`mutation-test: ${e.stack ?? e}`);
  console.log('0 passed, 1 failed');
  process.exitCode = 1;
}
