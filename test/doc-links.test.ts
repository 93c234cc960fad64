import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { anchors, brokenLink, documentationFiles, headings, links, ROOT, slug } from './markdown';

// GIVEN the README and the guides under docs/ (not docs/api/, which TypeDoc writes),
// THEN every section the README had before its reference parts moved to docs/ is still a
// heading somewhere (test/fixtures/readme-headings.txt: README.md's headings at d2dfa1f,
// kept as a file because a CI clone may have no history), and every relative link reaches a
// file and, with #anchor, a heading of that file as GitHub numbers and spells anchors.

/** The headings of `fixture` that no Markdown file of `root` has (any level). */
function missingHeadings(root: string, fixture: string): string[] {
  const present = new Set(documentationFiles(root).flatMap((f) => headings(fs.readFileSync(path.join(root, f), 'utf8'))));
  return fixture.split('\n').filter((l) => l.trim() !== '')
    .map((l) => l.replace(/^#+\s+/, '').trim())
    .filter((h) => !present.has(h));
}

/** Every broken relative link of the documentation of `root`, as file:line: reason. */
function brokenLinks(root: string): string[] {
  return documentationFiles(root).flatMap((file) => links(fs.readFileSync(path.join(root, file), 'utf8'))
    .map((l) => ({ l, problem: brokenLink(root, file, l.target) }))
    .filter((x) => x.problem !== undefined)
    .map((x) => `${file}:${x.l.line}: ${x.problem}`));
}

const FIXTURE = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'readme-headings.txt'), 'utf8');

/** A copy of the documentation (README.md, docs/ but docs/api/) in a temporary folder, for the controls. */
function copyOfDocs(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'doc-links-'));
  for (const f of documentationFiles()) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  }
  return dir;
}

describe('the README and docs/', () => {
  test('the fixture holds the README headings of d2dfa1f', () => {
    const lines = FIXTURE.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(27);
    expect(lines[0]).toBe('# StepFlow deployment kit');
    expect(lines).toContain('#### From 0.2.0 (once)');
    expect(lines).toContain('### What is validated');
  });

  test('every heading the README had is a heading of README.md or of a guide under docs/', () => {
    expect(missingHeadings(ROOT, FIXTURE)).toEqual([]);
  });

  test('every relative link of README.md and docs/ reaches a file, and a heading for #anchor', () => {
    const linksChecked = documentationFiles().flatMap((f) => links(fs.readFileSync(path.join(ROOT, f), 'utf8')));
    expect(linksChecked.filter((l) => l.target.includes('#')).length).toBeGreaterThan(10);
    expect(brokenLinks(ROOT)).toEqual([]);
  });

  test('anchors are spelled as GitHub spells them', () => {
    expect(slug("The core's state")).toBe('the-cores-state');
    expect(slug('From 0.2.0 (once)')).toBe('from-020-once');
    expect(slug('The 0.13 worker: `python3 -m stepflow_kit_worker`')).toBe('the-013-worker-python3--m-stepflow_kit_worker');
    expect(slug('Serving a team\'s own components: `STEPFLOW_KIT_SERVER`')).toBe('serving-a-teams-own-components-stepflow_kit_server');
    expect(slug('Where the design document was wrong, and what this kit does instead')).toBe('where-the-design-document-was-wrong-and-what-this-kit-does-instead');
    expect(slug('Local development on a Mac (Lima)')).toBe('local-development-on-a-mac-lima');
    expect([...anchors('# A\n## Usage\n```\n## Not a heading\n```\n### Usage\n## Usage #\n')]).toEqual(['a', 'usage', 'usage-1', 'usage-2']);
  });

  // Controls: the checks find a dropped heading, a link to a missing file and an anchor that
  // is no heading, in a copy of today's documentation.
  test('control: a heading dropped from a guide is reported', () => {
    const dir = copyOfDocs();
    const file = path.join(dir, 'docs', 'library.md');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/^## What is validated\n/m, 'What is validated\n'));
    expect(missingHeadings(dir, FIXTURE)).toEqual(['What is validated']);
  });

  test('control: a link to a missing file and to a missing anchor are reported', () => {
    const dir = copyOfDocs();
    const before = new Set(brokenLinks(dir)); // the copy lacks the files outside the docs: links to them stay aside
    const readme = path.join(dir, 'README.md');
    fs.appendFileSync(readme, '\nSee [gone](docs/gone.md) and [renamed](docs/upgrading.md#from-020) and [`ok`](docs/upgrading.md#from-020-once).\n');
    const problems = brokenLinks(dir).filter((p) => !before.has(p));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^README\.md:\d+: 'docs\/gone\.md': no file or folder docs\/gone\.md$/);
    expect(problems[1]).toMatch(/'docs\/upgrading\.md#from-020': docs\/upgrading\.md has no heading with the anchor #from-020$/);
  });
});
