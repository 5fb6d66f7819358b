/**
 * How a process names itself in `JobRecord.runner`: host, pid and a random
 * tail (a restarted process may get the same pid). Backends that must tell
 * "run here" from "run by a process that is gone" compare the prefix.
 */
import { hostname } from 'node:os';
import { nanoid } from 'nanoid';

/** The start of every runner id this process hands out. */
export const THIS_PROCESS = `${hostname()}:${process.pid}:`;

/** A new runner id of this process (one per shim). */
export function newRunnerId(): string {
  return `${THIS_PROCESS}${nanoid(8)}`;
}
