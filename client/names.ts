/**
 * How a job is called where a person reads it: the title `define` gave it,
 * else its name made readable. Internal names (`reports/quarterly`,
 * `POST /exports/contacts`) are addresses, not labels.
 */
import type { JobSnapshot } from '../shared/protocol.js';

/**
 * A job name made readable: the HTTP method of a route job dropped, ids and
 * route parameters dropped, separators and camelCase turned into spaces, the
 * first letter capitalised. `reports/quarterly` → "Reports quarterly",
 * `POST /exports/contacts` → "Exports contacts", `sendWelcomeEmail` → "Send welcome email".
 */
export function humanizeName(name: string): string {
  const path = name.replace(/^[A-Z]+\s+(?=\/)/, '');
  const words = path
    .split(/[/?#]+/)
    .filter((segment) => segment && !segment.startsWith(':') && !/^[\d-]+$|^[0-9a-f-]{16,}$/i.test(segment))
    .join(' ')
    .replace(/([a-z\d])([A-Z])/g, '$1 $2')
    .replace(/[-_.]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (!words) return name;
  const lower = words.replace(/\b([A-Z][a-z]+)\b/g, (word) => word.toLowerCase());
  return lower.charAt(0).toUpperCase() + lower.slice(1);
}

/** The job's display name: its title, else its humanized name. */
export function jobTitle(snapshot: Pick<JobSnapshot, 'name' | 'title'>): string {
  return snapshot.title || humanizeName(snapshot.name);
}
