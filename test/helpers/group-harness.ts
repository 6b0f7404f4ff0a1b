/**
 * A StreamingGroup with many members running against an EwsSimulator, recording each member's
 * signals and received sequence numbers, with the same completeness check as the single-source
 * harness (every delivered event arrives once and in order, unless made inside a reported lossy gap).
 */
import type { Subscription } from 'rxjs';
import { expect } from 'vitest';
import type { GapEvent, SourceLifecycleEvent, SourceSignal } from '../../lib/sources/lifecycle.js';
import { StreamingGroup, type StreamingGroupMemberOptions, type StreamingGroupOptions } from '../../lib/sources/streaming-group.js';
import { EwsSimulator, type EwsSimulatorOptions, type SimulatedEvent } from '../../lib/testing/index.js';
import { expectReceivedExceptLossyGaps, recordInto } from './streaming-harness.js';
import { until } from './until.js';

export const SERVICE = { type: 'basic', username: 'svc@contoso.com', password: 'correct horse' } as const;

/** One member: a mailbox watched through impersonation. */
export interface MemberRecord {
  readonly mailbox: string;
  readonly signals: SourceSignal[];
  readonly received: number[];
  readonly delivered: { seq: number; at: number }[];
  error: unknown;
  completed: boolean;
  subscription: Subscription;
  lifecycle(type?: SourceLifecycleEvent['type']): SourceLifecycleEvent[];
}

export interface GroupHarness {
  readonly sim: EwsSimulator;
  readonly group: StreamingGroup;
  readonly members: MemberRecord[];
  /** Adds a member watching `mailbox`. */
  join(mailbox: string, options?: Partial<StreamingGroupMemberOptions>): MemberRecord;
  deliver(member: MemberRecord, event?: SimulatedEvent): number;
  until(predicate: () => boolean, what: string, hangGuardMs?: number): Promise<void>;
  /** Waits until each member received everything delivered to it so far. */
  allReceived(members?: readonly MemberRecord[], hangGuardMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export const mailboxOf = (i: number): string => `room-${String(i).padStart(3, '0')}@contoso.com`;

export async function startGroupHarness(
  options: { sim?: EwsSimulatorOptions; group?: Partial<StreamingGroupOptions> } = {},
): Promise<GroupHarness> {
  const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, ...options.sim });
  const group = new StreamingGroup({
    url: sim.url,
    auth: SERVICE,
    heartbeatTimeoutMs: 5_000,
    regroupDelayMs: 20,
    // The simulator's timeScale makes a 30-minute connection last 1.8 s, and tests force Closed to stand
    // for ConnectionTimeout: no connection is too short to count as healthy here. (test/hostile/ covers
    // retry.minConnectionLifetimeMs with its default.)
    retry: { minDelayMs: 20, maxDelayMs: 200, minConnectionLifetimeMs: 0 },
    ...options.group,
  });
  const h: GroupHarness = {
    sim,
    group,
    members: [],
    join(mailbox, memberOptions = {}) {
      const record: MemberRecord = {
        mailbox,
        signals: [],
        received: [],
        delivered: [],
        error: undefined,
        completed: false,
        subscription: undefined as unknown as Subscription,
        lifecycle(type) {
          return record.signals.filter((s): s is SourceLifecycleEvent => s.type !== 'notification' && (type === undefined || s.type === type));
        },
      };
      record.subscription = group
        .signals({ mailbox, ...memberOptions })
        .subscribe(recordInto(record, (notification) => expect(notification.mailbox).toBe(mailbox)));
      h.members.push(record);
      return record;
    },
    deliver(member, event = { type: 'NewMail' }) {
      const at = Date.now();
      const d = sim.deliver(member.mailbox, event);
      member.delivered.push({ seq: d.seq, at });
      return d.seq;
    },
    async until(predicate, what, hangGuardMs) {
      await until(predicate, what, { hangGuardMs, describe: () => `stats ${JSON.stringify(group.stats())}; ${lagging(h)}` });
    },
    async allReceived(members = h.members, hangGuardMs) {
      await h.until(
        () => members.every((m) => m.delivered.every((d) => m.received.includes(d.seq))),
        'every member to receive its events',
        hangGuardMs,
      );
    },
    async stop() {
      await group.close();
      await sim.close();
    },
  };
  return h;
}

/** The members still waiting for an event or a connection, with their last signals: a timeout's diagnosis. */
function lagging(h: GroupHarness): string {
  const behind = h.members.filter((m) => !m.completed && (m.lifecycle('connected').length === 0 || m.delivered.some((d) => !m.received.includes(d.seq))));
  return behind
    .slice(0, 5)
    .map((m) => `${m.mailbox} error=${String(m.error)} last=${m.lifecycle().slice(-6).map((s) => s.type + ('reason' in s ? `(${s.reason})` : '')).join(' ')}`)
    .join(' | ');
}

/** Every member connected (its first `connected` signal). */
export function allConnected(h: GroupHarness, members: readonly MemberRecord[] = h.members): boolean {
  return members.every((m) => m.lifecycle('connected').length > 0);
}

/**
 * No duplicates, wire order, and every delivered event received unless made inside a reported
 * lossy gap of that member. Returns the sequence numbers legitimately lost.
 */
export function expectMemberComplete(member: MemberRecord): number[] {
  return expectReceivedExceptLossyGaps(member.received, member.delivered, member.lifecycle('gap') as GapEvent[], `${member.mailbox}: `);
}
