/**
 * The server-rendered pages of the Express example apps: a sign-in form, the
 * launchers, and a job's own page that carries only the job's id.
 */

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A whole page that loads the client from the shim's router (`/backjob/client.js`), on the app's own origin. */
function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>${escapeHtml(title)}</title>
  <script type="module" src="/backjob/client.js"></script>
</head>
<body>
  <main>
    <h1>${escapeHtml(title)}</h1>
    ${body}
  </main>
</body>
</html>`;
}

/** The sign-in form, with what went wrong the last time. */
export function signInPage(error?: string): string {
  return page(
    'Reports',
    `${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
    <form method="post" action="/login">
      <label>User <input name="user" autocomplete="username" required></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
      <button>Sign in</button>
    </form>`,
  );
}

/** What a signed-in user sees: the two launchers. */
export function launchersPage(user: string): string {
  return page(
    'Reports',
    `<p>Signed in as ${escapeHtml(user)}.</p>
    <backjob-launcher name="report" show-log>Build the report</backjob-launcher>
    <backjob-launcher name="import" cancelable>Import the contacts</backjob-launcher>`,
  );
}

/** A job's own page: its id only. Its owner needs no watch token, the session says who they are. */
export function jobPage(id: string): string {
  const escaped = escapeHtml(id);
  return page('Job', `<backjob-progress job-id="${escaped}" cancelable></backjob-progress><backjob-log job-id="${escaped}"></backjob-log>`);
}
