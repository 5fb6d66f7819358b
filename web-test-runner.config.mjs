// Element tests in Debian's Chromium. Besides the pages, this starts a real
// BackJob server (client/test-server.ts, memory backend) for the integration
// tests: its HTTP API is proxied under the test pages' own origin (so the
// launcher's default base path works), and the pages open its WebSocket
// directly, on an origin it was told to allow.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { esbuildPlugin } from '@web/dev-server-esbuild';
import { playwrightLauncher } from '@web/test-runner-playwright';
import { chromiumArgs, chromiumPath } from './scripts/chromium.mjs';

/** Asks the OS for a free port. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts client/test-server.ts and resolves with its port once it listens. */
function startTestServer(allowedOrigins) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'client/test-server.ts'], {
      env: { ...process.env, BACKJOB_TEST_ORIGINS: allowedOrigins.join(',') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = output.match(/listening on (\d+)/);
      if (match) resolve({ child, port: Number(match[1]) });
    });
    child.on('exit', (code) => reject(new Error(`client/test-server.ts exited with ${code} before listening`)));
    process.on('exit', () => child.kill());
  });
}

const port = await freePort();
const testServer = await startTestServer([`http://localhost:${port}`, `http://127.0.0.1:${port}`]);

/** Forwards `/backjob/…` and `/test/…` to the test server, as the same origin would. */
async function proxyToTestServer(ctx, next) {
  if (!/^\/(backjob|test)\//.test(ctx.path)) return next();
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  const { host: _host, 'content-length': _length, connection: _connection, 'transfer-encoding': _encoding, ...headers } = ctx.headers;
  // The pages' origin is on the server's `allowedOrigins`: forwarded headers would not count (it trusts no proxy).
  const response = await fetch(`http://127.0.0.1:${testServer.port}${ctx.url}`, {
    method: ctx.method,
    headers,
    body: chunks.length ? Buffer.concat(chunks) : undefined,
  });
  ctx.status = response.status;
  const type = response.headers.get('content-type');
  if (type) ctx.type = type;
  ctx.body = Buffer.from(await response.arrayBuffer());
}

/**
 * Serves client/strict-csp.test.html with a strict style policy (no
 * 'unsafe-inline'), as helmet does once inline styles are switched off, so
 * the page proves the elements need no inline style.
 */
async function strictCsp(ctx, next) {
  await next();
  if (ctx.path.endsWith('/strict-csp.test.html')) ctx.set('Content-Security-Policy', "style-src 'self'");
}

export default {
  files: ['client/**/*.test.ts', 'client/**/*.test.html', '!client/**/*.node.test.ts'],
  port,
  hostname: 'localhost',
  nodeResolve: true,
  // Two cores: one browser page at a time keeps timings sane under load.
  concurrency: 1,
  concurrentBrowsers: 1,
  testsFinishTimeout: 180_000,
  testFramework: { config: { timeout: 30_000 } },
  middleware: [strictCsp, proxyToTestServer],
  plugins: [
    esbuildPlugin({ ts: true, tsconfig: new URL('./tsconfig.json', import.meta.url).pathname }),
    {
      name: 'backjob-test-server',
      serverStop() {
        testServer.child.kill();
      },
    },
  ],
  browsers: [
    playwrightLauncher({
      product: 'chromium',
      launchOptions: {
        executablePath: chromiumPath,
        headless: true,
        args: chromiumArgs,
      },
    }),
  ],
};
