/**
 * Behind TLS: an app served over HTTPS alone, with a certificate for its host
 * name, dispatches an as-user route job to itself over loopback with the
 * learned baseUrl (an IP address), and the certificate still checks out: Node
 * takes the TLS server name from the forwarded Host header.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

test('an as-user route job dispatches over HTTPS to a learned IP baseUrl, verifying the certificate against the host the user asked for', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'backjob-tls-'));
  try {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=app.test', '-addext', 'subjectAltName=DNS:app.test', '-keyout', key, '-out', cert,
    ], { stdio: 'ignore' });
    const child = spawn(process.execPath, ['--import', 'tsx', new URL('./test-tls-child.ts', import.meta.url).pathname], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: cert, TLS_CERT: cert, TLS_KEY: key },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (output += chunk));
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(code, 0);
    const job = JSON.parse(output.trim().split('\n').at(-1)!);
    assert.equal(job.status, 'completed', `job failed: ${job.error}`);
    assert.match(job.log[0], /^host=app\.test:\d+$/);
    assert.deepEqual(job.log.slice(1), ['proto=https', 'secure-cookie=sid=abc']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
