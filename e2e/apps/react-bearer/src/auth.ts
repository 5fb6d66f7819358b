/**
 * The page's sign-in: a bearer token kept in memory, sent on the page's own
 * calls and, once configured here, on every call BackJob's elements make.
 */
import { configureBackjob } from '@backjob/client';

let token: string | null = null;

// Asked at each call, so the elements always send the current token.
configureBackjob({ headers: (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {}) });

/** Signs in; false when the API refused the user or password. */
export async function signIn(user: string, password: string): Promise<boolean> {
  const response = await fetch('/api/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, password }),
  });
  if (!response.ok) return false;
  token = ((await response.json()) as { token: string }).token;
  return true;
}
