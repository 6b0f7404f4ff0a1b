import { readdirSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { defineConfig, type Options } from 'tsup';

// Every file directly under adapters/ is a public subpath: `ews-push-bridge/adapters/<name>`.
// Subfolders (adapters/internal/) hold helpers and are bundled into the adapters that use them.
const adapters = Object.fromEntries(
  readdirSync('adapters')
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => [`adapters/${f.slice(0, -3)}`, `adapters/${f}`]),
);

// Adapters import the library only through lib/index.ts. In the build that import becomes the
// package's own main entry (`ews-push-bridge`, resolved by Node's package self-reference), so an
// adapter shares the main entry's modules instead of carrying a copy: deferAck's registry must be
// the one the user's source registered in, and `instanceof EwsBridgeError` must hold across entries.
const libIndex = resolve('lib/index.ts');
const adaptersDir = resolve('adapters') + sep;
const adaptersUseMainEntry: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'adapters-use-main-entry',
  setup(build) {
    build.onResolve({ filter: /\/lib\/index(\.js)?$/ }, (args) => {
      if (!args.importer.startsWith(adaptersDir)) return undefined;
      if (resolve(args.resolveDir, args.path).replace(/\.js$/, '.ts') !== libIndex) return undefined;
      return { path: 'ews-push-bridge', external: true };
    });
  },
};

// The CLI (lib/cli/) uses the library like any app, through the package's public entries, so the
// bin stays small and shares their modules (and their deferAck registry and error classes). The
// demo bundles the 2015 example listener (examples/legacy-listener/) as its legacy app.
const cliDir = resolve('lib/cli') + sep;
const exampleListenerDir = resolve('examples/legacy-listener') + sep;
const publicEntryOf = new Map<string, string>([
  [libIndex, 'ews-push-bridge'],
  [resolve('lib/testing/index.ts'), 'ews-push-bridge/testing'],
  ...Object.entries(adapters).map(([name, file]) => [resolve(file), `ews-push-bridge/${name}`] as const),
]);
const cliUsesPublicEntries: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'cli-uses-public-entries',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (!args.importer.startsWith(cliDir)) return undefined;
      const target = resolve(args.resolveDir, args.path).replace(/\.js$/, '.ts');
      if (target.startsWith(cliDir) || target.startsWith(exampleListenerDir)) return undefined;
      const entry = publicEntryOf.get(target);
      if (entry !== undefined) return { path: entry, external: true };
      return { errors: [{ text: `lib/cli may import only the package's public entries, not ${args.path}` }] };
    });
  },
};

// One bundle per public entry point, in both module formats, so legacy CommonJS apps can
// `require()` the package and modern ones can `import` it. p-retry is ESM-only, so it is
// bundled in rather than left as an external `require()` that Node 20 may refuse. zod and yaml
// serve only the CLI's config file, prom-client only its /metrics: bundled into the bin, so
// library users do not install them.
const shared: Options = {
  dts: true,
  sourcemap: true,
  // `npm run build` empties dist/ first: two configs cleaning in parallel would race.
  clean: false,
  target: 'node20',
  platform: 'node',
  noExternal: ['p-retry', 'is-network-error', 'zod', 'yaml', 'prom-client'],
  splitting: false,
  // The ews-javascript-api adapter resolves its optional peer from its own location
  // (`createRequire(import.meta.url)`): the CommonJS bundles get import.meta.url shimmed.
  shims: true,
  esbuildPlugins: [adaptersUseMainEntry, cliUsesPublicEntries],
};

export default defineConfig([
  {
    ...shared,
    entry: {
      index: 'lib/index.ts',
      'testing/index': 'lib/testing/index.ts',
      ...adapters,
    },
    format: ['esm', 'cjs'],
  },
  // The bin is CommonJS only: the bundled yaml is CommonJS and needs a real `require`.
  { ...shared, entry: { cli: 'lib/cli/main.ts' }, format: ['cjs'], dts: false },
]);
