/**
 * The demo's login: two fixed users and a signed session cookie. Small on
 * purpose — BackJob only needs the app's own notion of who is asking, which
 * the demo hands it through `identify`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseCookie, stringifySetCookie } from 'cookie';

/** The demo's users. Passwords are shown on the login page: this is a demo. */
export const DEMO_USERS: Readonly<Record<string, { name: string; password: string }>> = {
  ada: { name: 'Ada Lovelace', password: 'ada-demo' },
  grace: { name: 'Grace Hopper', password: 'grace-demo' },
};

const COOKIE = 'demo_session';
const MAX_AGE_SECONDS = 7 * 24 * 3600;

/**
 * Reads one cookie from a request's Cookie header. The `cookie` package never
 * throws on what a client sends (a value that is not valid percent-encoding
 * comes back as it was) and parses into an object without a prototype, so a
 * cookie named `__proto__` is just a cookie.
 */
function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  return header ? parseCookie(header)[name] : undefined;
}

/** The session cookie with its attributes; an empty value and `maxAge` 0 delete it. */
function sessionCookie(value: string, maxAge: number): string {
  return stringifySetCookie({ name: COOKIE, value, path: '/', httpOnly: true, sameSite: 'lax', maxAge });
}

/** Signed sessions: `user.expiry.mac`, where mac is an HMAC of the rest. */
export interface Sessions {
  /** The logged-in user id of a request, or null. */
  user(req: IncomingMessage): string | null;
  /** Checks a password and, when right, sets the session cookie. */
  login(res: ServerResponse, user: string, password: string): boolean;
  logout(res: ServerResponse): void;
}

/**
 * Creates the session helper. `secret` is read lazily so the demo can use a
 * secret that only exists once BackJob's store is open (and that survives
 * a restart, so a restarted server keeps everyone logged in).
 */
export function createSessions(secret: () => Buffer): Sessions {
  const mac = (payload: string) => createHmac('sha256', secret()).update(`demo-session:${payload}`).digest('base64url');

  return {
    user(req) {
      const value = readCookie(req, COOKIE);
      if (!value) return null;
      const parts = value.split('.');
      if (parts.length !== 3) return null;
      const [user, expiry, signature] = parts as [string, string, string];
      // Own keys only: `constructor` or `__proto__` are `in` every object.
      if (!Object.hasOwn(DEMO_USERS, user) || !/^\d{1,12}$/.test(expiry)) return null;
      const expected = Buffer.from(mac(`${user}.${expiry}`));
      const given = Buffer.from(signature);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
      return Number(expiry) > Date.now() / 1000 ? user : null;
    },
    login(res, user, password) {
      const known = Object.hasOwn(DEMO_USERS, user) ? DEMO_USERS[user] : undefined;
      const given = Buffer.from(password);
      const expected = Buffer.from(known?.password ?? '');
      if (!known || given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
      const expiry = Math.floor(Date.now() / 1000) + MAX_AGE_SECONDS;
      const value = `${user}.${expiry}.${mac(`${user}.${expiry}`)}`;
      res.setHeader('Set-Cookie', sessionCookie(value, MAX_AGE_SECONDS));
      return true;
    },
    logout(res) {
      res.setHeader('Set-Cookie', sessionCookie('', 0));
    },
  };
}
