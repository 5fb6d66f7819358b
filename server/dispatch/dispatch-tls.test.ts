/**
 * Behind TLS: an app served over HTTPS alone, with a certificate for its host
 * names, dispatches route jobs to itself over loopback, to a learned baseUrl
 * (an IP address) or a configured one, and the certificate is checked against
 * the right name: the configured host, else the name the app is reached by.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

/** Runs the child with a certificate for app.test and localhost; its printed jobs. */
async function runChild(env: Record<string, string> = {}): Promise<Array<{ status: string; error?: string; log: string[] }>> {
  const dir = mkdtempSync(join(tmpdir(), 'backjob-tls-'));
  try {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=app.test', '-addext', 'subjectAltName=DNS:app.test,DNS:localhost', '-keyout', key, '-out', cert,
    ], { stdio: 'ignore' });
    const child = spawn(process.execPath, ['--import', 'tsx', new URL('../testing/tls-child.ts', import.meta.url).pathname], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: cert, TLS_CERT: cert, TLS_KEY: key, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (output += chunk));
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(code, 0);
    return output.trim().split('\n').map((line) => JSON.parse(line));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('route jobs dispatch over HTTPS to a learned IP baseUrl, checking the certificate against the name the app is reached by', async () => {
  const [asUser, anonymous] = await runChild();
  assert.equal(asUser!.status, 'completed', `as-user job failed: ${asUser!.error}`);
  assert.match(asUser!.log[0]!, /^host=app\.test:\d+$/);
  assert.deepEqual(asUser!.log.slice(1), ['proto=https', 'secure-cookie=sid=abc']);
  // No Host of its own: checked against the name of the first request the app served.
  assert.equal(anonymous!.status, 'completed', `anonymous job failed: ${anonymous!.error}`);
});

test("with a configured https baseUrl, the certificate is checked against its host, whatever name the user's browser asked for", async () => {
  const [job] = await runChild({ TLS_BASE_URL: 'localhost' });
  assert.equal(job!.status, 'completed', `job failed: ${job!.error}`);
  assert.match(job!.log[0]!, /^host=www\.example\.com:\d+$/, 'the app still sees the Host the user asked for');
});
