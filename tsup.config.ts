import { readdirSync } from 'node:fs';
import { defineConfig } from 'tsup';

// Every file directly under adapters/ is a public subpath: `ews-push-bridge/adapters/<name>`.
const adapters = Object.fromEntries(
  readdirSync('adapters')
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => [`adapters/${f.slice(0, -3)}`, `adapters/${f}`]),
);

// One bundle per public entry point, in both module formats, so legacy CommonJS apps can
// `require()` the package and modern ones can `import` it. p-retry is ESM-only, so it is
// bundled in rather than left as an external `require()` that Node 20 may refuse.
export default defineConfig({
  entry: {
    index: 'lib/index.ts',
    'testing/index': 'lib/testing/index.ts',
    ...adapters,
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  noExternal: ['p-retry', 'is-network-error'],
  splitting: false,
});
