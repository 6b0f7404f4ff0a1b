/**
 * The API reports of the package's public entries, from the built declarations (`npm run build`
 * first). One run of api-extractor per entry, with ../api-extractor.json changed only in the entry
 * point and the report's name:
 *
 *   node api/report.mjs           check: fails when a report in api/ differs from the built API
 *   node api/report.mjs --local   update: rewrites the reports in api/ (then review and commit them)
 *
 * `npm test` runs the check (`npm run api:check`); `npm run api:update` runs the update.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const local = process.argv.includes('--local');

// Entry point (relative to dist/, without .d.ts) → report name; one per subpath of package.json's "exports".
const adapters = readdirSync(join(root, 'adapters'))
  .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
  .map((file) => file.slice(0, -3));
const entries = [
  ['index', 'ews-push-bridge'],
  ['wire', 'ews-push-bridge-wire'],
  ...['errors', 'types', 'redis', 'autodiscover'].map((name) => [name, `ews-push-bridge-${name}`]),
  ['testing/index', 'ews-push-bridge-testing'],
  ...adapters.map((name) => [`adapters/${name}`, `ews-push-bridge-adapters-${name}`]),
];

// The main entry leaves the detailed types (each lifecycle signal, each auth variant, …) to
// `ews-push-bridge/types` to stay short: api-extractor's "forgotten export" for them is expected
// there, so it is kept out of the main report and checked here instead: every type the main entry's
// declarations name without exporting must be exported by the types entry.
const typesEntryDts = join(root, 'dist', 'types.d.ts');
const leftToTypesEntry = new Set();

const configFile = join(root, 'api-extractor.json');
const base = ExtractorConfig.loadFile(configFile);
let failed = 0;
for (const [entry, reportName] of entries) {
  const dts = join(root, 'dist', `${entry}.d.ts`);
  if (!existsSync(dts)) {
    console.error(`${dts} is missing: run \`npm run build\` first`);
    process.exit(1);
  }
  const isMain = entry === 'index';
  const messages = isMain
    ? {
        ...base.messages,
        extractorMessageReporting: {
          ...base.messages.extractorMessageReporting,
          'ae-forgotten-export': { logLevel: 'none', addToApiReportFile: false },
        },
      }
    : base.messages;
  const config = ExtractorConfig.prepare({
    configObject: {
      ...base,
      messages,
      mainEntryPointFilePath: dts,
      compiler: { ...base.compiler, overrideTsconfig: { ...base.compiler.overrideTsconfig, files: [dts] } },
      apiReport: { ...base.apiReport, reportFileName: reportName },
    },
    configObjectFullPath: configFile,
    packageJsonFullPath: join(root, 'package.json'),
  });
  const result = Extractor.invoke(config, {
    localBuild: local,
    showVerboseMessages: false,
    messageCallback: (message) => {
      if (!isMain || message.messageId !== 'ae-forgotten-export') return;
      const symbol = /The symbol "([^"]+)"/.exec(message.text)?.[1];
      if (symbol !== undefined) leftToTypesEntry.add(symbol);
      message.handled = true;
    },
  });
  if (result.apiReportChanged && !local) {
    // The difference, committed report first (git's diff works outside a repository too).
    const committed = join(root, 'api', `${reportName}.api.md`);
    const built = join(root, '.tmp', 'api', `${reportName}.api.md`);
    spawnSync('git', ['diff', '--no-index', '--no-color', committed, built], { stdio: 'inherit' });
    console.error(
      `\nThe public API of dist/${entry}.d.ts differs from api/${reportName}.api.md (diff above).\n` +
        'If the change is intended, run `npm run api:update` and commit the updated report with it.',
    );
  }
  if (!result.succeeded) {
    console.error(`dist/${entry}.d.ts: api-extractor reported ${result.errorCount} errors and ${result.warningCount} warnings (above)`);
    failed++;
  }
}
const typesEntry = readFileSync(typesEntryDts, 'utf8');
const missingFromTypes = [...leftToTypesEntry].filter((symbol) => !new RegExp(`\\b${symbol}\\b`).test(typesEntry));
if (missingFromTypes.length > 0) {
  console.error(
    `\nThe main entry's declarations name ${missingFromTypes.join(', ')} without exporting them, and ` +
      'ews-push-bridge/types (lib/entry-types.ts) does not export them either: add them there.',
  );
  failed++;
}
if (failed > 0) {
  console.error(`\napi-extractor: ${failed} of ${entries.length} entries failed`);
  process.exit(1);
}
console.log(`api-extractor: the reports of ${entries.length} entries match the built API`);
