/**
 * What the end-to-end tests share: the real demo server as a child process
 * (on a temp SQLite file, restartable on the same port), and Debian's
 * Chromium driven by playwright-core.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { chromiumArgs, chromiumPath } from '../scripts/chromium.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Generous: a loaded 2-core machine compiles TypeScript on first load. */
export const E2E_TIMEOUT = 30_000;

/** One demo server process. */
export interface DemoProcess {
  url: string;
  port: number;
  /** Everything the process printed, for failure messages. */
  output(): string;
  /** Stops the process with `signal` and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `demo/server.ts` and resolves once it prints its URL. */
export function startDemoProcess(env: { dbFile: string; port?: number; stepMs: number }): Promise<DemoProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'demo/server.ts'], {
    cwd: root,
    env: { ...process.env, PORT: String(env.port ?? 0), BACKJOB_DB: env.dbFile, DEMO_STEP_MS: String(env.stepMs) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`The demo did not print its URL within 60 s:\n${output}`));
    }, 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk;
      const match = /running at (http:\/\/\S+?)\/?\s/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      const url = match[1]!;
      resolve({
        url,
        port: Number(new URL(url).port),
        output: () => output,
        async stop(signal = 'SIGTERM') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          await exited;
        },
      });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`The demo exited (${code ?? signal}) before printing its URL:\n${output}`));
    });
  });
}

/** A temp directory for one test file's SQLite database, and its removal. */
export function tempDir(): { dir: string; dbFile: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'backjob-e2e-'));
  return { dir, dbFile: join(dir, 'demo.db'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Debian's Chromium, headless. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
}

/** Directory for test artifacts (gitignored). */
export const ARTIFACTS = join(root, 'test-artifacts');

/** Polls `check` until it returns a truthy value (or throws `message` after `timeout` ms). */
export async function waitUntil<T>(check: () => Promise<T>, message: string, timeout = E2E_TIMEOUT): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeout} ms waiting until ${message}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Listens on a free port of 127.0.0.1 and resolves with the server's origin. */
export async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Closes `server` and every connection still open to it (keep-alive, WebSockets). */
export async function closeServer(server: Server | undefined): Promise<void> {
  if (!server?.listening) return;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * What axe-core finds against WCAG 2.0, 2.1 and 2.2, levels A and AA, on the
 * page as it is now, one line per rule. axe is evaluated through the
 * DevTools protocol, which the page's Content-Security-Policy does not govern.
 */
export async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: Array<{ id: string; nodes: Array<{ target: unknown }> }> }> } }).axe;
    const { violations } = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } });
    return violations.map((v) => `${v.id}: ${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')}`);
  });
}

/**
 * The demo in its own process and a browser, for a test file: started before
 * its tests (in parallel), stopped after them, its database removed. Read
 * `demo` and `browser` inside tests and hooks, once `before` has run.
 */
export function useDemo(stepMs = 60): { readonly demo: DemoProcess; readonly browser: Browser; readonly temp: ReturnType<typeof tempDir> } {
  const temp = tempDir();
  let demo: DemoProcess | undefined;
  let browser: Browser | undefined;
  before(async () => {
    [demo, browser] = await Promise.all([startDemoProcess({ dbFile: temp.dbFile, stepMs }), launchBrowser()]);
  });
  after(async () => {
    await browser?.close();
    await demo?.stop();
    temp.remove();
  });
  return {
    temp,
    get demo() {
      return demo!;
    },
    get browser() {
      return browser!;
    },
  };
}
