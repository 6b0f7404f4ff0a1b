/**
 * Build-only module, not a public entry: the code of both library entries in one bundle
 * (`dist/library.js`, `dist/library.cjs`), which `dist/index.*` (lib/index.ts) and `dist/wire.*`
 * (lib/wire.ts) re-export from. So the two entries share one copy of every module: an error a wire
 * function throws is `instanceof` the main entry's class, and the secrets the transport remembers
 * are the ones every error message is scrubbed of. The package's `exports` map does not list it,
 * so applications cannot import it. See tsup.config.ts.
 *
 * @packageDocumentation
 */
export * from './index.js';
export * from './wire.js';
export * from './entry-errors.js';
export * from './entry-redis.js';
export * from './entry-autodiscover.js';
