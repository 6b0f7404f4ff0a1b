/**
 * One row of the doctor's table (its own module so each group of checks can make rows without
 * importing the doctor).
 *
 * @packageDocumentation
 */

/** The outcome of one check. `skip`: not applicable to this configuration, or blocked by an earlier failure. */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

/** One row of the doctor's table. */
export interface DoctorCheck {
  /** Stable id, e.g. `tls` or `mailbox:alice@contoso.com`. */
  readonly id: string;
  readonly title: string;
  readonly status: CheckStatus;
  /** What was found. Never contains a secret. */
  readonly detail: string;
  /** What to do about a failure or warning. */
  readonly fix?: string;
}
