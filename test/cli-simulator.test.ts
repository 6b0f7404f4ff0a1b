/**
 * `ews-push-bridge simulator` as a person uses it: start it (a child process), copy the config it
 * prints, point `forward` and `tail` at it (two more child processes), and see mail arrive at the
 * listener and on tail's stdout; SIGINT stops it with exit 0. A config broken the way people break
 * them (wrong password) gets an exit code and a message that say what to fix. And
 * `EwsSimulator.start({ port, host })` for the same from code.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SIMULATOR_PASSWORD, type SimulatorBanner } from '../cli/simulator-command.js';
import { EwsSimulator } from '../lib/testing/index.js';
import { killAll, runCli, spawnCli } from './helpers/cli-process.js';

afterEach(killAll);
const dir = mkdtempSync(join(tmpdir(), 'ews-cli-simulator-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts `simulator` on free ports and returns it with what it printed first. */
async function startSimulator(extra: readonly string[] = []) {
  const child = spawnCli(['simulator', '--port', '0', '--listener-port', '0', '--json', ...extra]);
  const [line] = await child.waitFor(/^\{.*\}\n/, undefined, 'stdout');
  return { child, banner: JSON.parse(line!) as SimulatorBanner };
}

describe('ews-push-bridge simulator (child processes)', () => {
  it('prints a config that forward and tail run on as they are; mail made at --rate reaches both; SIGINT exits 0', async () => {
    const { child: sim, banner } = await startSimulator(['--rate', '20', '--mailboxes', 'alice@contoso.com,bob@contoso.com']);
    expect(banner.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/EWS\/Exchange\.asmx$/);
    expect(banner.mailboxes).toEqual(['alice@contoso.com', 'bob@contoso.com']);
    expect(banner.password).toBe(SIMULATOR_PASSWORD);

    // The printed config, with only the metrics port made free for a shared test machine.
    const config = { ...banner.config, metrics: { port: 0 } };
    const file = join(dir, 'bridge.json');
    writeFileSync(file, JSON.stringify(config));
    const forward = spawnCli(['forward', '--config', file], { EWS_PASSWORD: banner.password });
    await forward.waitFor(/metrics on http/);
    // The listener the simulator runs files what forward posts.
    const [filedLine] = await sim.waitFor(/^\{"filed":.*\}$/m, undefined, 'stdout');
    const filed = JSON.parse(filedLine!) as { filed: { type: string; seq: number | null } };
    expect(filed.filed.type).toBe('NewMail');
    expect(filed.filed.seq).toBeGreaterThan(0);

    // tail, with the environment the banner tells a person to export.
    const tail = await runCli(['tail', '--url', banner.url, '--mailbox', 'bob@contoso.com', '--limit', '1', '--json'], {
      EWS_USERNAME: banner.username,
      EWS_PASSWORD: banner.password,
    });
    expect(tail.stderr).not.toMatch(/error/i);
    expect(tail.code).toBe(0);
    const notification = JSON.parse(tail.stdout.trim().split('\n')[0]!) as { mailbox: string; events: { type: string }[] };
    expect(notification.mailbox).toBe('bob@contoso.com');
    expect(notification.events.map((e) => e.type)).toContain('NewMail');

    forward.process.kill('SIGTERM');
    expect(await forward.exited()).toBe(0);
    sim.process.kill('SIGINT');
    expect(await sim.exited()).toBe(0);
  }, 120_000);

  it('a wrong password in the copied config exits 3 with the reason; --write-config writes the same config', async () => {
    const configFile = join(dir, 'written.json');
    const { child: sim, banner } = await startSimulator(['--write-config', configFile]);
    const written = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    expect(written).toEqual(banner.config);
    const file = join(dir, 'wrong-password.json');
    writeFileSync(file, JSON.stringify({ ...written, metrics: { port: 0 }, ews: { ...(written['ews'] as object), startupTimeoutSeconds: 20 } }));
    const forward = await runCli(['forward', '--config', file], { EWS_PASSWORD: 'not-the-password' });
    expect(forward.code).toBe(3);
    expect(forward.stderr).toMatch(/credentials|401|authenticat/i);
    expect(forward.stderr).not.toContain('not-the-password');
    sim.process.kill('SIGTERM');
    expect(await sim.exited()).toBe(0);
  }, 90_000);

  it('says what to do when the port is taken, and refuses bad options with the usage (exit 2)', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const taken = await runCli(['simulator', '--port', String(port)]);
      expect(taken.code).toBe(1);
      expect(taken.stderr).toContain(`port ${port} on 127.0.0.1 is in use (EADDRINUSE); pass --port 0 for a free port`);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    const rate = await runCli(['simulator', '--rate', 'fast']);
    expect(rate.code).toBe(2);
    expect(rate.stderr).toContain('--rate must be a whole number 0–10,000 (got "fast")');
    const mailbox = await runCli(['simulator', '--mailboxes', 'alice']);
    expect(mailbox.code).toBe(2);
    expect(mailbox.stderr).toContain('"alice" is not an SMTP address');
    const help = await runCli(['simulator', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: ews-push-bridge simulator');
  }, 90_000);
});

describe('EwsSimulator.start({ port, host })', () => {
  it('listens where it is told and says so in url; a taken port rejects; bad values name the option', async () => {
    const first = await EwsSimulator.start({ host: '127.0.0.1' });
    try {
      const port = Number(new URL(first.url).port);
      expect(port).toBeGreaterThan(0);
      await expect(EwsSimulator.start({ port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await first.close();
    }
    await expect(EwsSimulator.start({ port: 70_000 })).rejects.toThrow(/^port must be 0–65535 \(got 70000\)$/);
    await expect(EwsSimulator.start({ port: 1.5 })).rejects.toThrow(/^port must be 0–65535 \(got 1.5\)$/);
    await expect(EwsSimulator.start({ host: '' })).rejects.toThrow(/^host must be a non-empty string \(got ""\)$/);
  });

  it('a freed port can be taken again by a new simulator (the fixed-port workflow)', async () => {
    const first = await EwsSimulator.start();
    const port = Number(new URL(first.url).port);
    await first.close();
    const second = await EwsSimulator.start({ port });
    try {
      expect(second.url).toBe(`http://127.0.0.1:${port}/EWS/Exchange.asmx`);
      const response = await fetch(second.url, { method: 'POST', body: '' });
      expect(response.status).toBe(401);
    } finally {
      await second.close();
    }
  });
});
