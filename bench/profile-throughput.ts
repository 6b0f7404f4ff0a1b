/**
 * CPU profile of one client consuming one throughput shape (bench/throughput.ts's streams), cold
 * (the first stream of the process) or warm (after the warm-ups): writes a `.cpuprofile` (open it
 * in Chrome DevTools) and prints self time by function and by area.
 *
 * Run: `npx tsx bench/profile-throughput.ts [--client=ours] [--size=50] [--chunk=0] [--pass=cold|warm] [--out=file]`
 * (`npm run build` first: (a) runs dist/).
 */
import { readFileSync } from 'node:fs';
import { runChild } from './child-runner.js';
import { RawEwsServer, holdOpen } from './raw-server.js';
import { chunksOf, streamingResponseEnvelopes, streamingResponseText } from './stream-fixture.js';
import type { ProfileTask } from './profile-child.js';
import type { ClientKind } from './clients.js';

const arg = (name: string, fallback: string): string => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const client = arg('client', 'ours') as ClientKind;
const size = Number(arg('size', '50'));
const chunk = Number(arg('chunk', '0'));
const pass = arg('pass', 'warm');
const out = arg('out', `/tmp/profile-${client}-${size}-${chunk}-${pass}.cpuprofile`);
const WARMUPS = 5;

function bursts(events: number): Buffer[] {
  if (chunk === 0) return streamingResponseEnvelopes({ events, eventsPerNotification: size, closed: true });
  return chunksOf(Buffer.from(streamingResponseText({ events, eventsPerNotification: size, closed: true }), 'utf8'), chunk);
}

const server = await RawEwsServer.start();
const full = bursts(10_000);
const warm = bursts(3_000);
const passes = pass === 'cold' ? [10_000] : [10_000, ...Array.from({ length: WARMUPS }, () => 3_000), 10_000];
const queue = passes.map((n) => (n === 10_000 ? full : warm));
server.onStream = (res, request) => {
  const burst = request.fresh ? queue.shift() : undefined;
  if (!burst) return holdOpen(res, request);
  res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
  res.cork();
  for (const c of burst) res.write(c);
  res.end();
  res.uncork();
};
const task: ProfileTask = { client, url: server.url, passes, profile: passes.length - 1, out };
const outcome = await runChild<{ type: string; count: number }>({ script: 'profile-child.ts', task, timeoutMs: 180_000 });
await server.close();
if (outcome.failure) throw new Error(outcome.failure);
console.log(`passes: ${outcome.reports.map((r) => r.count).join(', ')}; profile: ${out}`);
summarise(JSON.parse(readFileSync(out, 'utf8')) as Profile);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function area(url: string, name: string): string {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)' || name === '(idle)') return name;
  if (url.includes('/saxes/')) return 'saxes';
  if (url.includes('/rxjs/')) return 'rxjs';
  if (url.includes('/dist/')) return 'ours (dist)';
  if (url.includes('/bench/')) return 'bench harness';
  if (url.startsWith('node:') || url === '') return 'node internals / native';
  return url.replace(/^.*node_modules\//, '').split('/')[0] ?? url;
}

function summarise(profile: Profile): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  // Profiler.start's own work (logging every compiled function) lands in the first samples.
  const IGNORED = new Set(['dispatch', 'post', 'postMessage', '(idle)']);
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    if (IGNORED.has((byId.get(id) as ProfileNode).callFrame.functionName)) continue;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFn = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const [id, us] of self) {
    const { callFrame: f } = byId.get(id) as ProfileNode;
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|dist|bench)\//, '$1/')}:${f.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    const a = area(f.url, f.functionName);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
  }
  const pct = (us: number): string => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
  console.log(`profiled ${(total / 1000).toFixed(1)} ms`);
  for (const [a, us] of [...byArea].sort((x, y) => y[1] - x[1])) console.log(`${pct(us)}  ${a}`);
  console.log('');
  for (const [fn, us] of [...byFn].sort((x, y) => y[1] - x[1]).slice(0, 40)) console.log(`${pct(us)}  ${fn}`);
}
