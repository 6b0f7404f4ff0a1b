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
import type * as Redis from '../lib/entry-redis.js';
import type * as Library from '../lib/index.js';

/** The public API's shape: the main entry (lib/index.ts) and `ews-push-bridge/redis` (lib/entry-redis.ts). */
export type Shipped = typeof Library & typeof Redis;

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const DIST_REDIS = fileURLToPath(new URL('../dist/redis.js', import.meta.url));

/** Loads `dist/index.js` and `dist/redis.js`; throws with the fix when they were not built. */
export async function shipped(): Promise<Shipped> {
  for (const file of [DIST, DIST_REDIS]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (npm run bench does)`);
  }
  const [library, redis] = await Promise.all([import(pathToFileURL(DIST).href), import(pathToFileURL(DIST_REDIS).href)]);
  return { ...(library as typeof Library), ...(redis as typeof Redis) };
}
