import * as fs from 'fs';
import * as path from 'path';

/**
 * Reading the repository's Markdown as GitHub renders it: the documentation files, their
 * headings and anchors, their links and their fenced code blocks. Used by the README and
 * docs tests (examples, headings, links).
 */
export const ROOT = path.resolve(__dirname, '..');

/** The hand-written documentation: README.md and every Markdown file under docs/ but docs/api/ (TypeDoc's). */
export function documentationFiles(root = ROOT): string[] {
  const walk = (dir: string): string[] => fs.readdirSync(path.join(root, dir), { withFileTypes: true })
    .flatMap((e) => {
      const rel = path.posix.join(dir, e.name);
      if (e.isDirectory()) return rel === 'docs/api' ? [] : walk(rel);
      return e.name.endsWith('.md') ? [rel] : [];
    });
  return ['README.md', ...(fs.existsSync(path.join(root, 'docs')) ? walk('docs') : [])].sort();
}

/** A line of a Markdown file, outside fenced code blocks. */
export interface ProseLine { readonly line: number; readonly text: string }

/** The lines of a Markdown text outside fenced code blocks (``` or ~~~, CommonMark's rule for closing). */
export function proseLines(markdown: string): ProseLine[] {
  const out: ProseLine[] = [];
  let fence: string | undefined;
  markdown.split('\n').forEach((text, i) => {
    const m = /^ {0,3}(`{3,}|~{3,})/.exec(text);
    if (fence === undefined) {
      if (m) fence = m[1];
      else out.push({ line: i + 1, text });
    } else if (m && m[1][0] === fence[0] && m[1].length >= fence.length && /^ {0,3}[`~]+\s*$/.test(text)) {
      fence = undefined;
    }
  });
  return out;
}

/** The fenced code blocks of a Markdown text whose info string starts with one of `languages`. */
export function codeBlocks(markdown: string, languages: string[]): { line: number; source: string }[] {
  const blocks: { line: number; source: string }[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]);
    if (!open) continue;
    const fence = open[1];
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(lines[j]);
      if (close && close[1][0] === fence[0] && close[1].length >= fence.length) break;
      body.push(lines[j]);
    }
    if (languages.includes(open[2])) blocks.push({ line: i + 1, source: body.join('\n') + '\n' });
    i = j;
  }
  return blocks;
}

/** ATX headings (`## Text`) outside code blocks, as their text (closing hashes removed). */
export function headings(markdown: string): string[] {
  return proseLines(markdown)
    .map((l) => /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(l.text))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => m[1].trim());
}

/** The text GitHub renders for a heading's inline Markdown: code spans, links, emphasis markers. */
function renderedText(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/(\*\*|__|\*)(\S(?:.*?\S)?)\1/g, '$2');
}

/**
 * GitHub's anchor for a heading text: the rendered text lower-cased, every character that is
 * not a letter, mark, number, connector (`_`), space or hyphen removed, each space a hyphen.
 */
export function slug(heading: string): string {
  return renderedText(heading).trim().toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** Every anchor a Markdown text has: each heading's slug, repeated ones numbered -1, -2, ... as GitHub does. */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const h of headings(markdown)) {
    const base = slug(h);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** A link of a Markdown file: where it is and what it points at. */
export interface Link { readonly line: number; readonly target: string }

/** Inline links and images (`[text](target)`) and link reference definitions, outside code. */
export function links(markdown: string): Link[] {
  const out: Link[] = [];
  for (const { line, text } of proseLines(markdown)) {
    const prose = text.replace(/(`+)[\s\S]*?\1/g, '');
    for (const m of prose.matchAll(/\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ line, target: m[1] });
    const def = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(prose);
    if (def) out.push({ line, target: def[1] });
  }
  return out;
}

/**
 * What is wrong with a relative link of `file` (a path relative to `root`): nothing (undefined)
 * when it names an existing file or folder and, with `#anchor`, a heading of that Markdown
 * file. Links with a scheme (https:, mailto:) are not followed.
 */
export function brokenLink(root: string, file: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined;
  const hash = target.indexOf('#');
  const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
  const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const resolved = pathPart === '' ? file
    : pathPart.startsWith('/') ? path.posix.normalize(pathPart.slice(1))
      : path.posix.normalize(path.posix.join(path.posix.dirname(file), pathPart));
  if (resolved.startsWith('..')) return `'${target}' leaves the repository`;
  const absolute = path.join(root, resolved);
  if (!fs.existsSync(absolute)) return `'${target}': no file or folder ${resolved}`;
  if (anchor === undefined) return undefined;
  if (!resolved.endsWith('.md')) return `'${target}': an anchor into ${resolved}, which is not Markdown`;
  if (!anchors(fs.readFileSync(absolute, 'utf8')).has(anchor)) return `'${target}': ${resolved} has no heading with the anchor #${anchor}`;
  return undefined;
}
