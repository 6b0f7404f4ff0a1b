/**
 * Acceptance (issue 5): a pull consumer with a FileCheckpointStore, killed with SIGKILL at random
 * moments and restarted 20 times while the mailbox keeps receiving mail, handles every event at
 * least once — and, after de-duplication by watermark, exactly once.
 *
 * The simulator runs here; each consumer is a child process (test/children/pull-consumer.ts, run
 * with tsx) that logs every event it handles before acknowledging it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointKey } from '../lib/checkpoint/checkpoint-store.js';
import { FileCheckpointStore } from '../lib/checkpoint/file-store.js';
import { EVENT_TYPES } from '../lib/model.js';
import { EwsSimulator, type DeliveredEvent } from '../lib/testing/index.js';
import { until } from './helpers/until.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const consumerScript = join(root, 'test/children/pull-consumer.ts');
const MAILBOX = 'alice@contoso.com';
const KILLS = 20;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Consumer {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  ready: boolean;
  stderr: string;
}

let dir: string;
let sim: EwsSimulator;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ews-pull-restart-'));
  sim = await EwsSimulator.start();
});
afterAll(async () => {
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

function startConsumer(checkpointFile: string, logFile: string): Consumer {
  const child = spawn(process.execPath, ['--import', 'tsx', consumerScript, sim.url, checkpointFile, logFile], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const consumer: Consumer = {
    child,
    exited: new Promise((resolve) => child.on('exit', () => resolve())),
    ready: false,
    stderr: '',
  };
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    if (d.includes('ready')) consumer.ready = true;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (consumer.stderr += d));
  return consumer;
}

interface LogLine {
  readonly pid: number;
  readonly seq: number;
  readonly watermark: string;
}

function readLog(logFile: string): LogLine[] {
  if (!existsSync(logFile)) return [];
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [pid, seq, watermark] = line.split(' ');
      return { pid: Number(pid), seq: Number(seq), watermark: watermark ?? '' };
    });
}

describe('pull source across SIGKILL restarts', () => {
  it(`handles every event at least once, exactly once after dedupe by watermark, across ${KILLS} kills`, async () => {
    const checkpointFile = join(dir, 'checkpoints.json');
    const logFile = join(dir, 'handled.log');
    const delivered: DeliveredEvent[] = [];

    // The first consumer must have checkpointed its starting point before mail arrives: events
    // made before any subscription exists are nobody's to deliver.
    let consumer = startConsumer(checkpointFile, logFile);
    await until(() => consumer.ready, 'the first consumer');

    let producing = true;
    const producer = (async () => {
      while (producing) {
        const burst = 1 + Math.floor(Math.random() * 4);
        for (let i = 0; i < burst; i++) delivered.push(sim.deliver(MAILBOX, { type: i % 3 === 2 ? 'Modified' : 'NewMail' }));
        await sleep(10 + Math.random() * 10);
      }
    })();

    let killedBeforeReady = 0;
    for (let kill = 1; kill <= KILLS; kill++) {
      // Half the kills land at a random moment after start-up (even during it), half while the
      // consumer is busy handling mail.
      if (kill % 2 === 0) await until(() => consumer.ready, `consumer ${kill} ready`);
      await sleep(Math.random() * (kill % 2 === 0 ? 300 : 1_200));
      if (!consumer.ready) killedBeforeReady++;
      expect(consumer.child.exitCode, consumer.stderr).toBeNull();
      consumer.child.kill('SIGKILL');
      await consumer.exited;
      expect(consumer.stderr).toBe('');
      consumer = startConsumer(checkpointFile, logFile);
    }
    producing = false;
    await producer;

    // The last consumer runs until it has handled everything.
    const want = new Set(delivered.map((d) => d.seq));
    await until(() => {
      const seen = new Set(readLog(logFile).map((l) => l.seq));
      return [...want].every((seq) => seen.has(seq));
    }, 'the last consumer to catch up', { hangGuardMs: 60_000 });
    consumer.child.kill('SIGKILL');
    await consumer.exited;
    expect(consumer.stderr).toBe('');

    const log = readLog(logFile);
    const byWatermark = new Map(delivered.map((d) => [d.watermark, d.seq]));
    // Nothing invented: every handled event is one the simulator made, with its own watermark.
    for (const line of log) expect(byWatermark.get(line.watermark), `line ${JSON.stringify(line)}`).toBe(line.seq);
    // At least once…
    const handledSeqs = new Set(log.map((l) => l.seq));
    expect(delivered.filter((d) => !handledSeqs.has(d.seq)).map((d) => d.seq)).toEqual([]);
    // …and exactly once after de-duplication by watermark.
    const deduped = [...new Set(log.map((l) => l.watermark))];
    expect(deduped.map((w) => byWatermark.get(w)).sort((a, b) => a! - b!)).toEqual(delivered.map((d) => d.seq));
    // Each consumer handled its events in wire order, and redelivery after a restart only repeats
    // what the killed consumer had not yet acknowledged: at most one notification (≤ 50 events).
    const pids = [...new Set(log.map((l) => l.pid))];
    let previousMax = 0;
    let duplicates = 0;
    for (const pid of pids) {
      const seqs = log.filter((l) => l.pid === pid).map((l) => l.seq);
      expect(seqs, `consumer ${pid} in wire order`).toEqual([...seqs].sort((a, b) => a - b));
      const repeated = seqs.filter((s) => s <= previousMax).length;
      expect(repeated).toBeLessThanOrEqual(50);
      duplicates += repeated;
      previousMax = Math.max(previousMax, ...seqs);
    }
    expect(log.length).toBe(delivered.length + duplicates);
    // The checkpoint file is whole and points at an event that was delivered.
    const key = checkpointKey({ mailbox: MAILBOX, folders: ['inbox'], eventTypes: EVENT_TYPES });
    const stored = await new FileCheckpointStore({ path: checkpointFile }).get(key);
    expect(byWatermark.has(stored?.watermark ?? '')).toBe(true);

    console.info(
      `pull restart: ${delivered.length} events, ${KILLS} SIGKILLs (${killedBeforeReady} during start-up), ` +
        `${pids.length} consumers handled events, ${duplicates} redelivered and removed by watermark`,
    );
  }, 180_000);
});
