/**
 * The client bundle the router serves, so that a page needs one line:
 * `<script type="module" src="/backjob/client.js">`. It is the browser side
 * (the elements, the connection, Lit) in one ES module file, the same file
 * `@backjob/client` exports as `@backjob/client/bundle.js`.
 *
 * An installed package ships it prebuilt (`dist/bundle.js`, written by
 * `npm run build`). Run from this repository's TypeScript sources (tests,
 * `npm run demo`), there is no build: it is bundled from `client/index.ts`
 * with esbuild on first use, once per process, with the options the build
 * uses, so both serve the same code.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bundle's place in a built package, from the package's root. */
export const BUNDLE_PATH = 'dist/bundle.js';

/** The bundle and the digest its URL and ETag carry. */
export interface ClientBundle {
  code: Buffer;
  /** 12 hex digits of the code's SHA-256: changes whenever the code does. */
  hash: string;
}

/** The nearest folder at or above `dir` with a package.json: the package (or the repository) this module is in. */
function packageRoot(dir: string): string {
  for (let at = dir; ; at = dirname(at)) {
    if (existsSync(join(at, 'package.json'))) return at;
    if (dirname(at) === at) return dir;
  }
}

/**
 * Bundles `client/index.ts` under `root` into one minified ES module, Lit
 * included. Lit's license notices stay, at the end. esbuild is a development
 * dependency: only the build and a run from sources call this.
 */
export async function buildClientBundle(root: string): Promise<Buffer> {
  const { build } = await import('esbuild');
  const result = await build({
    absWorkingDir: root,
    entryPoints: [join(root, 'client', 'index.ts')],
    tsconfig: join(root, 'tsconfig.json'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'eof',
    charset: 'utf8',
    write: false,
    // A mistake in the sources is printed where the developer looks; the request gets a plain 500.
    logLevel: 'error',
  });
  return Buffer.from(result.outputFiles[0]!.contents);
}

async function load(): Promise<ClientBundle> {
  const root = packageRoot(dirname(fileURLToPath(import.meta.url)));
  const built = join(root, BUNDLE_PATH);
  let code: Buffer;
  if (existsSync(built)) code = await readFile(built);
  else if (existsSync(join(root, 'client', 'index.ts'))) code = await buildClientBundle(root);
  else throw new Error(`BackJob's client bundle is missing: expected ${built} (a package built without \`npm run build\`?)`);
  return { code, hash: createHash('sha256').update(code).digest('hex').slice(0, 12) };
}

let loading: Promise<ClientBundle> | undefined;

/** The client bundle, read (or built) on first call and kept for the life of the process. */
export function clientBundle(): Promise<ClientBundle> {
  return (loading ??= load());
}
