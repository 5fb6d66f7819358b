// An Express app as its author writes it, against the installed packages: type-checked with
// `tsc --strict` and no skipLibCheck by e2e/packages.test.ts (never run).
import http from 'node:http';
import express from 'express';
import session from 'express-session';
import { createBackJob, memory, type BackJob, type JobContext } from 'backjob';
import { configureBackjob, type BackjobCompletedDetail } from '@backjob/client';

declare module 'express-session' {
  interface SessionData {
    user: string;
  }
}

const app = express();
app.use(session({ secret: 'a secret of the app', resave: false, saveUninitialized: false }));

const backjob: BackJob = createBackJob({ backend: memory(), identify: (req) => req.session?.user, routes: ['/exports/*'] });
backjob.define('reports/build', async (job: JobContext, params: { month: string }) => {
  job.update({ progress: 50, text: `Building ${params.month}` });
  return { url: `/reports/${params.month}.pdf` };
}, { launchable: true });

app.use(backjob.router());
app.post('/exports/contacts', (req, res) => {
  req.backjob?.update(100);
  res.end('Done\n');
});

const server = http.createServer(app);
backjob.attach(server);
server.listen(0);

// The page's side, in the same project (a server-rendered app with a bundled script).
configureBackjob({ headers: () => ({ authorization: 'Bearer t' }) });
document.addEventListener('backjob-completed', (event) => {
  const detail: BackjobCompletedDetail = event.detail;
  console.log(detail.jobId, detail.result);
});
