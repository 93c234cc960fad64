import * as fs from 'fs';
import * as path from 'path';
import { proseLines, ROOT } from './markdown';

// GIVEN the versions the kit is proven with, read from the files that pin them (the cluster
// tiers' verify/tools/versions.env, the static tier's verify/static/versions.env, the Lima
// template, src/contract.json, package.json and verify/nodejs/versions.env),
// THEN the README's compatibility table names exactly those versions, every tier it cites
// exists, and the pins agree with each other (the k3s of the Lima VM runs a proven
// Kubernetes, `engines` names the pinned Node.js lines, the schemas cover the servers).

/** The shell assignments (NAME=value, NAME="value") of a versions.env file. */
function shellVars(file: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=("([^"]*)"|(\S*))\s*(#.*)?$/.exec(line);
    if (m) vars[m[1]] = m[3] ?? m[4];
  }
  return vars;
}

const words = (s: string | undefined) => (s ?? '').split(/\s+/).filter((w) => w !== '');

/** Every pinned version the table is about, each from its one source. */
export interface Sources {
  /** cdk8s-plus-NN's Kubernetes minor, e.g. "1.30" (package.json's peerDependencies). */
  objectsMinor: string;
  /** src/contract.json podSecurityVersion, e.g. "v1.30". */
  podSecurity: string;
  /** verify/static/versions.env K8S_VERSIONS, e.g. ["1.30", "1.35", "1.37"]. */
  schemas: string[];
  /** verify/tools/versions.env KUBERNETES_VERSIONS and KUBERNETES_VERSION. */
  servers: string[];
  newestServer: string;
  /** scripts/lima/stepflow-dev.yaml K3S_VERSION, e.g. "v1.35.4+k3s1". */
  k3s: string;
  /** src/contract.json generations, the default first. */
  generations: { name: string; orchestrator: string; sdk: string }[];
  /** verify/nodejs/versions.env. */
  nodeLines: string[];
  nodeCiLine: string;
  nodeVersions: Record<string, string>;
  /** package.json engines.node and its npm scripts. */
  engines: string;
  npmScripts: string[];
}

export function readSources(root = ROOT): Sources {
  const json = (f: string) => JSON.parse(fs.readFileSync(path.join(root, f), 'utf8'));
  const pkg = json('package.json');
  const contract = json('src/contract.json');
  const tools = shellVars(path.join(root, 'verify/tools/versions.env'));
  const statik = shellVars(path.join(root, 'verify/static/versions.env'));
  const nodejs = shellVars(path.join(root, 'verify/nodejs/versions.env'));
  const plus = Object.keys(pkg.peerDependencies).map((n) => /^cdk8s-plus-(\d+)$/.exec(n)).find((m) => m);
  const lima = /^\s*K3S_VERSION="([^"]+)"/m.exec(fs.readFileSync(path.join(root, 'scripts/lima/stepflow-dev.yaml'), 'utf8'));
  const names = Object.keys(contract.generations)
    .sort((a, b) => (a === contract.defaultGeneration ? -1 : b === contract.defaultGeneration ? 1 : b.localeCompare(a, undefined, { numeric: true })));
  const nodeLines = words(nodejs.NODEJS_LINES);
  return {
    objectsMinor: plus ? `1.${plus[1]}` : '(no cdk8s-plus-NN peer dependency)',
    podSecurity: contract.podSecurityVersion,
    schemas: words(statik.K8S_VERSIONS),
    servers: words(tools.KUBERNETES_VERSIONS),
    newestServer: tools.KUBERNETES_VERSION,
    k3s: lima ? lima[1] : '(no K3S_VERSION in the Lima template)',
    generations: names.map((name) => ({ name, orchestrator: contract.generations[name].orchestrator, sdk: contract.generations[name].sdk })),
    nodeLines,
    nodeCiLine: nodejs.NODEJS_CI_LINE,
    nodeVersions: Object.fromEntries(nodeLines.map((l) => [l, nodejs[`NODEJS_${l}_VERSION`]])),
    engines: pkg.engines?.node,
    npmScripts: Object.keys(pkg.scripts),
  };
}

/** "a", "a and b", "a, b and c". */
const and = (xs: string[]) => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);

/** The README section's table as rows of cells (header and delimiter rows left out). */
export function compatibilityTable(readme: string): Map<string, string[]> {
  const lines = proseLines(readme).map((l) => l.text);
  const start = lines.findIndex((l) => /^## Compatibility\s*$/.test(l));
  const rows = new Map<string, string[]>();
  if (start < 0) return rows;
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,2} /.test(line)) break;
    if (!line.startsWith('|') || /^\|\s*\|/.test(line) || /^\|[-:| ]+\|$/.test(line)) continue;
    const cells = line.replace(/^\||\|$/g, '').split('|').map((c) => c.trim());
    rows.set(cells[0], cells.slice(1));
  }
  return rows;
}

/** What the table gets wrong about `s`, one sentence each; empty when it is true. */
export function tableProblems(readme: string, s: Sources): string[] {
  const rows = compatibilityTable(readme);
  const problems: string[] = [];
  if (rows.size === 0) return ['README.md has no "## Compatibility" table'];
  const others = s.nodeLines.filter((l) => l !== s.nodeCiLine);
  const expected: Record<string, { versions: string; provenBy: string[] }> = {
    'Kubernetes objects': {
      versions: `the ${s.objectsMinor} API (cdk8s-plus-${s.objectsMinor.split('.')[1]}), Pod Security \`${s.podSecurity}\``,
      provenBy: [`schemas of ${and(s.schemas)}`, '`verify:static`'],
    },
    'Kubernetes API servers': { versions: s.servers.join(', '), provenBy: ['`verify:cluster`', `at ${s.newestServer} (\`verify:scheduling\`)`] },
    'kubectl': { versions: s.servers.join(', '), provenBy: ['`verify:cluster`'] },
    'k3s (the Lima VM)': { versions: s.k3s, provenBy: [`its Kubernetes, ${s.k3s.replace(/\+.*$/, '')}, is a proven API server`] },
    'StepFlow': {
      versions: s.generations.map((g) => `${g.name} (stepflow-orchestrator ${g.orchestrator}, stepflow-py ${g.sdk})`).join(', '),
      provenBy: ['`verify:stepflow`'],
    },
    'Node.js': {
      versions: s.nodeLines.map((l) => `${l} (${s.nodeVersions[l]})`).join(', '),
      provenBy: [`every step on ${s.nodeCiLine};`, `on ${and(others)} (\`verify:nodejs\`)`, '`engines`'],
    },
  };
  for (const [row, want] of Object.entries(expected)) {
    const cells = rows.get(row);
    if (!cells) { problems.push(`no row "${row}"`); continue; }
    const [versions = '', provenBy = ''] = cells;
    // The versions cell is the list, optionally followed by a parenthesis that explains it.
    if (versions !== want.versions && !versions.startsWith(`${want.versions} (`)) {
      problems.push(`row "${row}": versions "${versions}", the pins say "${want.versions}"`);
    }
    for (const phrase of want.provenBy) {
      if (!provenBy.includes(phrase)) problems.push(`row "${row}": "proven by" does not say "${phrase}"`);
    }
  }
  // Nothing else in the table may name a version no pin holds (a stale "1.30" server, "20").
  const known = new Set([
    s.objectsMinor, s.podSecurity, ...s.schemas, ...s.servers, s.newestServer, s.k3s, s.k3s.replace(/\+.*$/, ''),
    ...s.generations.flatMap((g) => [g.name, g.orchestrator, g.sdk]), ...Object.values(s.nodeVersions),
  ]);
  for (const [row, cells] of rows) {
    const text = cells.join(' | ');
    for (const v of text.match(/\bv?\d+\.\d+(?:\.\d+)?(?:\+k3s\d+)?/g) ?? []) {
      if (!known.has(v)) problems.push(`row "${row}" names ${v}, which no pin holds`);
    }
    for (const m of text.matchAll(/`(verify:[a-z0-9:-]+|lint:[a-z]+)`/g)) {
      if (!s.npmScripts.includes(m[1])) problems.push(`row "${row}" cites \`${m[1]}\`, which is not an npm script`);
    }
  }
  return problems;
}

/** Where the pins disagree with each other; empty when they agree. */
export function pinProblems(s: Sources): string[] {
  const problems: string[] = [];
  const minor = (v: string) => v.replace(/^v/, '').split('.').slice(0, 2).join('.');
  const k3sKubernetes = s.k3s.replace(/\+.*$/, '');
  if (!s.servers.includes(k3sKubernetes)) {
    problems.push(`the Lima template's k3s ${s.k3s} runs Kubernetes ${k3sKubernetes}, not one of the proven servers ${s.servers.join(', ')} (verify/tools/versions.env)`);
  }
  if (!/^v\d+\.\d+\.\d+\+k3s\d+$/.test(s.k3s)) problems.push(`K3S_VERSION ${s.k3s} is not a k3s release tag (vX.Y.Z+k3sN)`);
  if (!s.servers.includes(s.newestServer)) problems.push(`KUBERNETES_VERSION ${s.newestServer} is not one of KUBERNETES_VERSIONS`);
  for (const v of [s.objectsMinor, ...s.servers.map(minor)]) {
    if (!s.schemas.includes(v)) problems.push(`the static tier validates ${s.schemas.join(', ')}, not ${v}`);
  }
  if (minor(s.podSecurity) !== s.objectsMinor) problems.push(`podSecurityVersion ${s.podSecurity} is not the objects' API ${s.objectsMinor}`);
  if (!s.nodeLines.includes(s.nodeCiLine)) problems.push(`NODEJS_CI_LINE ${s.nodeCiLine} is not one of NODEJS_LINES ${s.nodeLines.join(' ')}`);
  for (const l of s.nodeLines) {
    if (!new RegExp(`^${l}\\.\\d+\\.\\d+$`).test(s.nodeVersions[l] ?? '')) problems.push(`NODEJS_${l}_VERSION ${s.nodeVersions[l]} is not a ${l}.x.y release`);
  }
  const engines = s.nodeLines.map((l) => `^${l}.0.0`).join(' || ');
  if (s.engines !== engines) problems.push(`package.json engines.node is "${s.engines}", the pinned lines say "${engines}"`);
  return problems;
}

const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

describe('the compatibility table and the pins it reads', () => {
  const sources = readSources();

  test('the sources are read (the parsers found every pin)', () => {
    expect(sources.servers.length).toBeGreaterThanOrEqual(2);
    expect(sources.schemas.length).toBeGreaterThanOrEqual(2);
    expect(sources.nodeLines.length).toBeGreaterThanOrEqual(2);
    expect(sources.generations.map((g) => g.name)).toContain('0.13');
    expect(sources.k3s).toMatch(/^v1\.\d+\.\d+\+k3s\d+$/);
    expect(sources.newestServer).toMatch(/^v1\.\d+\.\d+$/);
  });

  test('the README table names exactly the pinned versions', () => {
    expect(tableProblems(README, sources)).toEqual([]);
  });

  test('the pins agree: k3s runs a proven Kubernetes, the schemas cover every server, engines names the Node.js lines', () => {
    expect(pinProblems(sources)).toEqual([]);
  });

  test('the README\'s first command names the Node.js lines', () => {
    const lines = sources.nodeLines;
    expect(README).toContain(`On a fresh machine with Node.js ${lines.slice(0, -1).join(', ')} or ${lines[lines.length - 1]} and npm:`);
  });

  test('no dependency compiles native code (each Node.js line needs only its binary)', () => {
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
    const native = Object.entries(lock.packages as Record<string, { hasInstallScript?: boolean; optional?: boolean }>)
      .filter(([, p]) => p.hasInstallScript && !p.optional).map(([name]) => name);
    expect(native).toEqual([]);
  });

  describe('controls: a table or pin that disagrees fails', () => {
    const mutations: [string, (t: string) => string, RegExp][] = [
      ['a stale API server (1.30)', (t) => t.replace('| v1.35.4, v1.37.2 (', '| v1.30.0, v1.37.2 ('), /Kubernetes API servers.*versions "v1\.30\.0, v1\.37\.2/],
      ['the old k3s', (t) => t.replace('| v1.35.4+k3s1 |', '| v1.31.6+k3s1 |'), /k3s \(the Lima VM\).*v1\.31\.6\+k3s1/],
      ['Node.js 20 added', (t) => t.replace('| 22 (22.23.5),', '| 20 (20.20.2), 22 (22.23.5),'), /Node\.js.*20\.20\.2/],
      ['a Node.js line dropped', (t) => t.replace(', 26 (26.12.1) |', ' |'), /row "Node\.js": versions/],
      ['a version no pin holds in "proven by"', (t) => t.replace('schemas of 1.30, 1.35 and 1.37', 'schemas of 1.30, 1.35, 1.36 and 1.37'), /names 1\.36, which no pin holds/],
      ['a tier that does not exist', (t) => t.replace('(`verify:stepflow`)', '(`verify:stepflow`, `verify:k3s`)'), /`verify:k3s`, which is not an npm script/],
      ['the table removed', (t) => t.replace('## Compatibility', '## Versions'), /no "## Compatibility" table/],
    ];
    test.each(mutations)('%s', (_name, mutate, problem) => {
      const mutated = mutate(README);
      expect(mutated).not.toBe(README);
      expect(tableProblems(mutated, sources).join('\n')).toMatch(problem);
    });

    test('a pin moved without the table: the cluster tiers on v1.38.0', () => {
      const moved = { ...sources, servers: ['v1.36.1', 'v1.38.0'], newestServer: 'v1.38.0' };
      expect(tableProblems(README, moved).join('\n')).toMatch(/Kubernetes API servers.*the pins say "v1\.36\.1, v1\.38\.0"/);
      expect(pinProblems(moved).join('\n')).toMatch(/k3s v1\.35\.4\+k3s1 runs Kubernetes v1\.35\.4, not one of the proven servers/);
    });

    test('pins that disagree: engines left at >=20, a CI line that is not pinned', () => {
      expect(pinProblems({ ...sources, engines: '>=20' }).join('\n')).toMatch(/engines\.node is ">=20"/);
      expect(pinProblems({ ...sources, nodeCiLine: '20' }).join('\n')).toMatch(/NODEJS_CI_LINE 20 is not one of NODEJS_LINES/);
    });
  });
});
