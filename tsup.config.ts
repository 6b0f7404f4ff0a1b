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

// Adapters import the library through its public entries (lib/index.ts, lib/wire.ts,
// lib/entry-*.ts). In the build those imports become the package's own entries (`ews-push-bridge`,
// `ews-push-bridge/wire`, …, resolved by Node's package self-reference), so an adapter shares their
// modules instead of carrying a copy: `instanceof EwsBridgeError` must hold across entries. (A pure helper such as
// lib/logger.ts's resolveLogger may be imported directly: a copy of it changes nothing.)
const libIndex = resolve('lib/index.ts');
const libWire = resolve('lib/wire.ts');
const libraryEntryOf = new Map<string, string>([
  [libIndex, 'ews-push-bridge'],
  [libWire, 'ews-push-bridge/wire'],
  ...(['errors', 'types', 'redis', 'autodiscover'] as const).map((name) => [resolve(`lib/entry-${name}.ts`), `ews-push-bridge/${name}`] as const),
]);
const adaptersDir = resolve('adapters') + sep;
const adaptersUseLibraryEntries: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'adapters-use-library-entries',
  setup(build) {
    build.onResolve({ filter: /\/lib\/(index|wire|entry-[a-z]+)(\.js)?$/ }, (args) => {
      if (!args.importer.startsWith(adaptersDir)) return undefined;
      const entry = libraryEntryOf.get(resolve(args.resolveDir, args.path).replace(/\.js$/, '.ts'));
      return entry === undefined ? undefined : { path: entry, external: true };
    });
  },
};

// The CLI (cli/) uses the library like any app, through the package's public entries, so the
// bin stays small and shares their modules (and their error classes). The
// demo bundles the 2015 example listener (examples/legacy-listener/) as its legacy app.
const cliDir = resolve('cli') + sep;
const exampleListenerDir = resolve('examples/legacy-listener') + sep;
const publicEntryOf = new Map<string, string>([
  ...libraryEntryOf,
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
      return { errors: [{ text: `cli/ may import only the package's public entries, not ${args.path}` }] };
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
  esbuildPlugins: [adaptersUseLibraryEntries, cliUsesPublicEntries],
};

// The main entry and the wire entry share their modules: both are built as re-exports of one
// private bundle, dist/library.{js,cjs} (lib/library.ts: everything either entry exports), so a
// wire function throws the main entry's error classes (`instanceof` holds whichever entry the class
// came from) and the transport's remembered secrets are the ones every error message is scrubbed
// of. (esbuild's code splitting would do the same for ES modules only; tsup's CommonJS splitting
// rewrites the chunks with sucrase, which lowers `?.` and `??` into helper calls.)
const libraryEntries = {
  index: 'lib/index.ts',
  wire: 'lib/wire.ts',
  errors: 'lib/entry-errors.ts',
  types: 'lib/entry-types.ts',
  redis: 'lib/entry-redis.ts',
  autodiscover: 'lib/entry-autodiscover.ts',
};
const libraryEntryFiles = new Set(Object.values(libraryEntries).map((file) => resolve(file)));
const entriesReexportLibrary: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'entries-reexport-library',
  setup(build) {
    const extension = build.initialOptions.format === 'cjs' ? 'cjs' : 'js';
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (!libraryEntryFiles.has(args.importer)) return undefined;
      return { path: `./library.${extension}`, external: true };
    });
  },
};
const otherEntries = { 'testing/index': 'lib/testing/index.ts', ...adapters };

export default defineConfig([
  { ...shared, dts: false, entry: { library: 'lib/library.ts' }, format: ['esm', 'cjs'] },
  { ...shared, dts: false, entry: libraryEntries, format: ['esm', 'cjs'], esbuildPlugins: [entriesReexportLibrary] },
  { ...shared, dts: false, entry: otherEntries, format: ['esm', 'cjs'] },
  // Declarations of every public entry in one pass, so the entries share their declaration chunks
  // (a type is declared once, whichever entry names it).
  { ...shared, dts: { only: true }, entry: { ...libraryEntries, ...otherEntries }, format: ['esm', 'cjs'] },
  // The bin is CommonJS only: the bundled yaml is CommonJS and needs a real `require`.
  { ...shared, entry: { cli: 'cli/main.ts' }, format: ['cjs'], dts: false },
]);
