/**
 * The demo's pages, rendered on the server. Each page is plain HTML with
 * BackJob's elements in it; `/client/index.ts` registers them.
 */
import type { JobRecord } from '../server/types.js';
import { html, type SafeHtml } from './html.js';
import { DEMO_USERS } from './session.js';

/** Who is looking at a page, and where they are. */
export interface PageContext {
  user: string | null;
  path: string;
}

const NAV: Array<[path: string, label: string]> = [
  ['/', 'Launch'],
  ['/as-you', 'Run as you'],
  ['/failures', 'Fail & cancel'],
  ['/import', 'POST body'],
  ['/rendered', 'Server-started'],
  ['/steps', 'Steps'],
  ['/children', 'Child jobs'],
  ['/batch', 'Batch'],
  ['/jobs', 'Your jobs'],
];

function layout(ctx: PageContext, title: string, body: SafeHtml): string {
  const who = ctx.user
    ? html`<form class="who" method="post" action="/logout">
        <span>Signed in as <strong>${DEMO_USERS[ctx.user]!.name}</strong></span>
        <button type="submit" class="secondary">Sign out</button>
      </form>`
    : html`<p class="who"><span>Not signed in</span> <a class="button secondary" href="/login">Sign in</a></p>`;
  return html`<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${title} · BackJob demo</title>
  <link rel="stylesheet" href="/demo.css">
  <script type="module" src="/client/index.ts"></script>
</head>
<body>
  <a class="skip" href="#main">Skip to content</a>
  <header class="site">
    <a class="brand" href="/"><span aria-hidden="true">▶</span> BackJob <span class="tag">demo</span></a>
    ${who}
    <nav aria-label="Demo pages">
      <ul>
        ${NAV.map(([path, label]) => html`<li><a href="${path}"${path === ctx.path ? html` aria-current="page"` : null}>${label}</a></li>`)}
      </ul>
    </nav>
  </header>
  <main id="main">
    <h1>${title}</h1>
    ${body}
  </main>
  <footer class="site"><p>Jobs run on this server and are kept in SQLite; every change reaches this page over one WebSocket.</p></footer>
</body>
</html>`.value;
}

/** The home page: one launcher for an in-process job. */
export function launchPage(ctx: PageContext): string {
  return layout(
    ctx,
    'Launch a background job',
    html`<p class="lead">Press the button: the server runs <code>reports/quarterly</code> in the background
      and this page follows it live — progress, status text and log — with no polling code.</p>
    <section class="card" aria-labelledby="quarterly-h">
      <h2 id="quarterly-h">Quarterly report</h2>
      <p>An in-process handler (<code>backjob.define('reports/quarterly', …)</code>) that totals ten regions twice.</p>
      <backjob-launcher name="reports/quarterly" show-log>Build the quarterly report</backjob-launcher>
    </section>
    <section class="card" aria-labelledby="markup-h">
      <h2 id="markup-h">The markup</h2>
      <pre><code>&lt;backjob-launcher name="reports/quarterly" show-log&gt;
  Build the quarterly report
&lt;/backjob-launcher&gt;</code></pre>
    </section>`,
  );
}

/** A route dispatched as the signed-in user, and the same route run anonymously. */
export function asYouPage(ctx: PageContext): string {
  const name = ctx.user ? DEMO_USERS[ctx.user]!.name : null;
  return layout(
    ctx,
    'Run a route as you',
    html`<p class="lead">BackJob can run one of the app's own routes in the background. It calls
      <code>GET /jobs/team-report</code> over loopback HTTP with your cookies and a signed job header;
      the route checks who you are like any other route.</p>
    <section class="card" aria-labelledby="as-you-h">
      <h2 id="as-you-h">As ${name ?? 'whoever is signed in'}</h2>
      ${name ? null : html`<p class="note"><a href="/login">Sign in</a> first — launched while signed out, the route refuses.</p>`}
      <backjob-launcher id="team-report" route="/jobs/team-report" label="Team report" show-log>Build my team report</backjob-launcher>
    </section>
    <section class="card" aria-labelledby="anon-h">
      <h2 id="anon-h">Anonymously</h2>
      <p>The same route, started by the server with <code>{ as: 'anonymous' }</code>: no cookies go along,
        so the route answers <code>403</code> and the job fails, saying so.</p>
      <form method="post" action="/as-you/anonymous">
        <button type="submit">Run the team report anonymously</button>
      </form>
    </section>`,
  );
}

/** A job that fails with a reason, and a long job that can be cancelled. */
export function failuresPage(ctx: PageContext): string {
  return layout(
    ctx,
    'Failures and cancelling',
    html`<section class="card" aria-labelledby="broken-h">
      <h2 id="broken-h">A job that fails</h2>
      <p><code>reports/broken</code> throws after a few rows; the reason is shown, not just a red bar.</p>
      <backjob-launcher id="broken" name="reports/broken" show-log>Run the broken report</backjob-launcher>
    </section>
    <section class="card" aria-labelledby="archive-h">
      <h2 id="archive-h">A long job you can cancel</h2>
      <p><code>archive/rebuild</code> takes a while. Cancel it: its handler's <code>AbortSignal</code> fires and it stops.</p>
      <backjob-launcher id="archive" name="archive/rebuild" show-log cancelable>Rebuild the archive</backjob-launcher>
    </section>`,
  );
}

/** A route job started with a POST body taken from a form. */
export function importPage(ctx: PageContext): string {
  return layout(
    ctx,
    'Start a job with a POST body',
    html`<p class="lead">The launcher sends <code>POST /jobs/import</code> with this form as its body; the route
      reads <code>req.body</code> like any form post and writes one log line per row.</p>
    <section class="card" aria-labelledby="import-h">
      <h2 id="import-h">Import contacts</h2>
      <form id="import-form" class="stack">
        <label for="import-list">List name</label>
        <input id="import-list" name="list" value="Conference 2025" required>
        <label for="import-rows">Rows, one per line</label>
        <textarea id="import-rows" name="rows" rows="5">Ada Lovelace, ada@example.org
Grace Hopper, grace@example.org
Katherine Johnson, katherine@example.org
Alan Turing, alan@example.org</textarea>
      </form>
      <backjob-launcher id="import" route="/jobs/import" method="POST" label="Contact import" show-log>Import rows</backjob-launcher>
    </section>
    <script type="module">
      // Keep the launcher's body in step with the form.
      const form = document.getElementById('import-form');
      const launcher = document.getElementById('import');
      const sync = () => { launcher.body = Object.fromEntries(new FormData(form)); };
      form.addEventListener('input', sync);
      sync();
    </script>`,
  );
}

/**
 * Opens a child from a family's list on its own watch page, with the
 * parent's watch token: the server lets that token watch the parent's
 * children, so it works signed out too (a signed-in owner needs no token).
 */
const OPEN_CHILD_WITH_TOKEN = html`<script type="module">
      document.addEventListener('backjob-open', (event) => {
        const { jobId, token } = event.detail;
        if (!token) return;
        event.preventDefault();
        location.assign('/watch/' + encodeURIComponent(jobId) + '?token=' + encodeURIComponent(token));
      });
    </script>`;

/** A job with named steps, each with its own progress. */
export function stepsPage(ctx: PageContext): string {
  return layout(
    ctx,
    'A job with steps',
    html`<p class="lead"><code>imports/run</code> declares three steps with <code>job.steps([…])</code> and moves
      through them with <code>job.step(name, { progress })</code>. Its progress is derived from theirs, and the
      element says which step it is at.</p>
    <section class="card" aria-labelledby="steps-h">
      <h2 id="steps-h">Nightly import</h2>
      <p>Download, Transform, Upload: each step fills the bar by its share.</p>
      <backjob-launcher id="import-run" name="imports/run" show-steps show-log>Run the nightly import</backjob-launcher>
    </section>
    <section class="card" aria-labelledby="steps-markup-h">
      <h2 id="steps-markup-h">The markup</h2>
      <pre><code>&lt;backjob-launcher name="imports/run" show-steps show-log&gt;
  Run the nightly import
&lt;/backjob-launcher&gt;</code></pre>
    </section>`,
  );
}

/** A parent job whose children run as jobs of their own. */
export function childrenPage(ctx: PageContext): string {
  return layout(
    ctx,
    'A job with child jobs',
    html`<p class="lead"><code>exports/all</code> spawns one child job per file with <code>job.spawn()</code> and
      waits for them. Each child has its own log and progress; the parent's bar is theirs together.</p>
    <section class="card" aria-labelledby="children-h">
      <h2 id="children-h">Export everything</h2>
      <p>Five files, five child jobs. Open one to see its own log.</p>
      <backjob-launcher id="export-all" name="exports/all" show-children href="/watch/{id}" show-log>Export all files</backjob-launcher>
    </section>
    <section class="card" aria-labelledby="children-markup-h">
      <h2 id="children-markup-h">The markup</h2>
      <pre><code>&lt;backjob-launcher name="exports/all" show-children href="/watch/{id}"&gt;
  Export all files
&lt;/backjob-launcher&gt;</code></pre>
    </section>
    ${OPEN_CHILD_WITH_TOKEN}`,
  );
}

/** The images the batch page resizes, one batch member each. */
export const BATCH_IMAGES = Array.from({ length: 20 }, (_, i) => `photo-${String(i + 1).padStart(2, '0')}.jpg`);

/** A batch started from the browser: one job whose members are ordinary jobs. */
export function batchPage(ctx: PageContext): string {
  const batch = JSON.stringify(BATCH_IMAGES.map((image) => ({ name: 'images/resize', params: { image } })));
  return layout(
    ctx,
    'A batch of jobs',
    html`<p class="lead">The launcher sends ${BATCH_IMAGES.length} jobs in one request,
      <code>{ batch: [...], title }</code>. The server starts them as members of one batch job; the
      concurrency limit and your quota apply to each, and the batch's bar is theirs together.</p>
    <section class="card" aria-labelledby="batch-h">
      <h2 id="batch-h">Resize ${BATCH_IMAGES.length} photos</h2>
      <backjob-launcher id="resize-batch" batch="${batch}" label="Resize ${BATCH_IMAGES.length} photos" show-children children-limit="${BATCH_IMAGES.length}" href="/watch/{id}">Resize the photos</backjob-launcher>
    </section>
    <section class="card" aria-labelledby="batch-markup-h">
      <h2 id="batch-markup-h">The markup</h2>
      <pre><code>${`<backjob-launcher label="Resize ${BATCH_IMAGES.length} photos" show-children href="/watch/{id}"
  batch='[{"name":"images/resize","params":{"image":"photo-01.jpg"}}, …]'>
  Resize the photos
</backjob-launcher>`}</code></pre>
    </section>
    ${OPEN_CHILD_WITH_TOKEN}`,
  );
}

/** A page whose job the server started while rendering it. */
export function renderedPage(ctx: PageContext, job: { id: string; token: string }): string {
  return layout(
    ctx,
    'A job started while rendering',
    html`<p class="lead">The server called <code>backjob.start()</code> while building this page and put the
      job's id and watch token in the HTML. Nothing else is needed.</p>
    <section class="card" aria-labelledby="digest-h">
      <h2 id="digest-h">Daily digest</h2>
      <backjob-progress job-id="${job.id}" token="${job.token}"></backjob-progress>
      <backjob-log job-id="${job.id}" token="${job.token}" live="summary"></backjob-log>
    </section>
    <section class="card" aria-labelledby="rendered-markup-h">
      <h2 id="rendered-markup-h">The markup the server wrote</h2>
      <pre><code>${`<backjob-progress job-id="${job.id}" token="…"></backjob-progress>\n<backjob-log job-id="${job.id}" token="…" live="summary"></backjob-log>`}</code></pre>
    </section>`,
  );
}

/** One job, watched: where the job list links to and where anonymous runs land. */
export function watchPage(ctx: PageContext, job: JobRecord, token: string): string {
  return layout(
    ctx,
    `Job ${job.name}`,
    html`<section class="card" aria-labelledby="watch-h">
      <h2 id="watch-h">${job.name} <small>(${job.id})</small></h2>
      <backjob-progress job-id="${job.id}" token="${token}" cancelable show-steps show-children href="/watch/{id}"></backjob-progress>
      <backjob-log job-id="${job.id}" token="${token}" live="summary"></backjob-log>
    </section>
    <p><a href="/jobs">All your jobs</a></p>
    ${OPEN_CHILD_WITH_TOKEN}`,
  );
}

/** The signed-in user's jobs, live: `<backjob-jobs>` lists them over the shared connection and the server pushes every change. */
export function jobsPage(ctx: PageContext): string {
  return layout(
    ctx,
    'Your jobs',
    ctx.user
      ? html`<p class="lead">Jobs you started, live from <code>&lt;backjob-jobs&gt;</code>: new jobs, progress and ends arrive as they happen. Other users' jobs never show here.</p>
        <backjob-jobs href="/watch/{id}"></backjob-jobs>`
      : html`<p class="lead"><a href="/login">Sign in</a> to see the jobs you started.</p>`,
  );
}

/** The login form. */
export function loginPage(ctx: PageContext, error?: string): string {
  return layout(
    ctx,
    'Sign in',
    html`<section class="card narrow" aria-labelledby="login-h">
      <h2 id="login-h">Demo users</h2>
      <p>Two users, so you can check that one never sees the other's jobs:</p>
      <ul>${Object.entries(DEMO_USERS).map(([id, u]) => html`<li><strong>${id}</strong> (${u.name}), password <code>${u.password}</code></li>`)}</ul>
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
      <form method="post" action="/login" class="stack">
        <label for="login-user">User</label>
        <input id="login-user" name="user" autocomplete="username" required>
        <label for="login-password">Password</label>
        <input id="login-password" name="password" type="password" autocomplete="current-password" required>
        <button type="submit">Sign in</button>
      </form>
    </section>`,
  );
}

/** Not found, or not yours: the same page, so a guessed id learns nothing. */
export function notFoundPage(ctx: PageContext): string {
  return layout(ctx, 'No such job', html`<p class="lead">There is no job with that id that you may watch.</p><p><a href="/jobs">Your jobs</a></p>`);
}
