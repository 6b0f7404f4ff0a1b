/**
 * The side-by-side report of issue 19: Microsoft's streaming and pull samples, written for
 * ews-javascript-api, run unchanged but for one import on ews-javascript-api's own classes and on
 * the bridge's, each in a process of its own against its own EwsSimulator, through the same events
 * and the same fault (test/helpers/ejs-side-by-side.ts). Prints one table: what each app received
 * once, twice, out of order, lost (and whether the loss was reported to it), what errors it was
 * handed, whether its process stayed up, and the requests it sent.
 *
 * Usage: npx tsx bench/ejs-apps-side-by-side.ts [--json]
 */
import { SCENARIOS, rowOf, runScenario, type Row, type SampleApp } from '../test/helpers/ejs-side-by-side.js';

const rows: Row[] = [];
for (const app of ['streaming', 'pull'] as const satisfies readonly SampleApp[]) {
  for (const scenario of SCENARIOS) {
    try {
      const result = await runScenario(app, scenario, ['bridge', 'ews']);
      for (const client of result.clients) rows.push(rowOf(app, scenario, client));
      process.stderr.write(`${app} / ${scenario.name}: done\n`);
    } catch (error) {
      process.stderr.write(`${app} / ${scenario.name}: could not run: ${String(error)}\n`);
    }
  }
}
if (process.argv.includes('--json')) console.log(JSON.stringify(rows, null, 2));
else console.table(rows);
