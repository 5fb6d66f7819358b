import { useState, type FormEvent } from 'react';
import '@backjob/client';
import type {} from '@backjob/client/react';
import { signIn } from './auth.js';

export function App() {
  const [user, setUser] = useState<string | null>(null);
  const [error, setError] = useState('');
  const [watched, setWatched] = useState('');
  const [ready, setReady] = useState('');

  async function onSignIn(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const name = String(form.get('user'));
    if (await signIn(name, String(form.get('password')))) setUser(name);
    else setError('Unknown user or wrong password');
  }

  function onWatch(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setWatched(String(new FormData(event.currentTarget).get('job')).trim());
  }

  return (
    <main>
      <h1>Reports</h1>
      {user === null ? (
        <form onSubmit={onSignIn}>
          {error && <p role="alert">{error}</p>}
          <label>
            User <input name="user" autoComplete="username" required />
          </label>
          <label>
            Password <input name="password" type="password" autoComplete="current-password" required />
          </label>
          <button>Sign in</button>
        </form>
      ) : (
        <>
          <p>Signed in as {user}.</p>
          <backjob-launcher name="report" show-log onbackjob-completed={(event) => setReady(event.detail.jobId)}>
            Build the report
          </backjob-launcher>
          <backjob-launcher name="import" cancelable>
            Import the contacts
          </backjob-launcher>
          <p role="status">{ready && `Report ${ready} is ready.`}</p>
          <form onSubmit={onWatch}>
            <label>
              Job id <input name="job" required />
            </label>
            <button>Watch</button>
          </form>
          {watched && <backjob-progress key={watched} job-id={watched} cancelable />}
        </>
      )}
    </main>
  );
}
