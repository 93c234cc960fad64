import * as fs from 'fs';

/** A digest as registries serve it: `sha256:` and 64 lower-case hex digits. */
const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** What a lock key is: a tagged reference, `[host[:port]/]path:tag`, without a digest. */
const TAGGED_REFERENCE = /^(?:[a-zA-Z0-9.-]+(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*:[\w][\w.-]{0,127}$/;

/** One image of a lock: the digest the registry serves for the pushed tag. */
export interface ImageLockEntry {
  /** `sha256:<64 hex digits>`: the manifest (or, for several platforms, the index) the registry serves. */
  readonly digest: string;
  /**
   * The platforms the image was built for.
   * @default - not recorded
   */
  readonly platforms?: string[];
}

/**
 * The images a release pulls, pinned: each tagged reference (`registry/name:tag`) with the
 * digest the registry served when it was pushed. `scripts/build.sh --push` writes one
 * (`images.lock.json`); a chart given one (`imageLock`) pulls every image by digest
 * (`registry/name@sha256:…`), and an image the lock lacks is a synth error.
 *
 * The file: `{ "lockVersion": 1, "images": { "<registry>/<name>:<tag>": { "digest": "sha256:…", "platforms": ["linux/amd64"] } } }`.
 */
export class ImageLock {
  /** The file format this version of the kit reads and `scripts/build.sh` writes. */
  public static readonly LOCK_VERSION = 1;

  /** Read a lock file. Throws, naming the file and the entry, when it is not one. */
  public static fromFile(file: string): ImageLock {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`image lock ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); scripts/build.sh <component|all> --registry <registry> --push writes it`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`image lock ${file}: not JSON (${(e as Error).message})`);
    }
    return ImageLock.fromJson(json, file);
  }

  /** A lock from its parsed JSON; `source` names it in messages. */
  public static fromJson(json: unknown, source = 'ImageLock.fromJson'): ImageLock {
    const doc = json as { lockVersion?: unknown; images?: unknown };
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`image lock ${source}: expected an object { "lockVersion": ${ImageLock.LOCK_VERSION}, "images": { ... } }`);
    if (doc.lockVersion !== ImageLock.LOCK_VERSION) {
      throw new Error(`image lock ${source}: lockVersion is ${JSON.stringify(doc.lockVersion)}; this version of the kit reads lockVersion ${ImageLock.LOCK_VERSION}`);
    }
    const images = doc.images;
    if (images === null || typeof images !== 'object' || Array.isArray(images)) throw new Error(`image lock ${source}: "images" must map image references to { "digest": "sha256:…" }`);
    const entries: Record<string, ImageLockEntry> = {};
    for (const [reference, entry] of Object.entries(images as Record<string, unknown>)) {
      const e = entry as { digest?: unknown; platforms?: unknown };
      if (e === null || typeof e !== 'object') throw new Error(`image lock ${source}: images[${JSON.stringify(reference)}] must be { "digest": "sha256:…" }`);
      const platforms = e.platforms;
      if (platforms !== undefined && (!Array.isArray(platforms) || platforms.some((p) => typeof p !== 'string'))) {
        throw new Error(`image lock ${source}: images[${JSON.stringify(reference)}].platforms must be a list of platforms such as "linux/amd64"`);
      }
      entries[reference] = { digest: e.digest as string, platforms: platforms as string[] | undefined };
    }
    return new ImageLock(entries, source);
  }

  /** A lock from digests by tagged reference, e.g. from a build system of your own. */
  public static fromDigests(digests: { readonly [reference: string]: string }, source = 'ImageLock.fromDigests'): ImageLock {
    return new ImageLock(Object.fromEntries(Object.entries(digests ?? {}).map(([reference, digest]) => [reference, { digest }])), source);
  }

  private readonly entries: Map<string, ImageLockEntry>;

  private constructor(entries: Record<string, ImageLockEntry>, public readonly source: string) {
    this.entries = new Map();
    for (const [reference, entry] of Object.entries(entries)) {
      if (!TAGGED_REFERENCE.test(reference)) {
        throw new Error(`image lock ${source}: ${JSON.stringify(reference)} is not a tagged image reference [host[:port]/]path:tag (no digest: the digest is its value)`);
      }
      if (typeof entry.digest !== 'string' || !DIGEST.test(entry.digest)) {
        throw new Error(`image lock ${source}: the digest of ${reference} is ${JSON.stringify(entry.digest)}; expected sha256: and 64 lower-case hex digits, as the registry serves it`);
      }
      this.entries.set(reference, entry);
    }
  }

  /** Every tagged reference the lock holds, sorted. */
  public get references(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** The digest recorded for a tagged reference, or undefined. */
  public digestOf(reference: string): string | undefined {
    return this.entries.get(reference)?.digest;
  }

  /**
   * The reference to pull: `repository@digest` for a locked `repository:tag`; a reference
   * that already carries a digest unchanged; undefined when the lock lacks it.
   */
  public pin(reference: string): string | undefined {
    if (reference.includes('@')) return reference;
    const digest = this.digestOf(reference);
    if (digest === undefined) return undefined;
    return `${reference.slice(0, reference.lastIndexOf(':'))}@${digest}`;
  }

  /** How validation messages show a lock: its source. */
  public toJSON(): string {
    return this.source;
  }
}
