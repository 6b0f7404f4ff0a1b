/**
 * The library as users run it: the built `dist/` bundle, not the TypeScript sources.
 *
 * Why: the benches run under tsx, whose esbuild transform forces `keepNames`, wrapping every
 * function and class of a transformed file in `__name(…)` (an `Object.defineProperty` per closure
 * created). That costs our code (and only ours: ews-javascript-api and saxes load from
 * node_modules untransformed) ~2.3 KiB of heap per idle subscription and CPU on every closure made
 * in a hot path. So the clients load `dist/` (`npm run build` first; `npm run bench` does it).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as Library from '../lib/index.js';

/** The public API's shape (the bundle exports exactly lib/index.ts). */
export type Shipped = typeof Library;

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/** Loads `dist/index.js`; throws with the fix when it was not built. */
export async function shipped(): Promise<Shipped> {
  if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run \`npm run build\` first (npm run bench does)`);
  return (await import(pathToFileURL(DIST).href)) as Shipped;
}
