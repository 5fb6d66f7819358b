/** The example apps' user table: two people, so a test can show one of them nothing of the other's jobs. */
import { timingSafeEqual } from 'node:crypto';

const PASSWORDS: ReadonlyMap<string, string> = new Map([
  ['ada', 'ada-secret'],
  ['grace', 'grace-secret'],
]);

/** Whether `password` is `user`'s. */
export function checkPassword(user: unknown, password: unknown): user is string {
  if (typeof user !== 'string' || typeof password !== 'string') return false;
  const expected = PASSWORDS.get(user);
  if (expected === undefined) return false;
  const given = Buffer.from(password);
  return given.length === expected.length && timingSafeEqual(given, Buffer.from(expected));
}
