// A React 19 page against the installed @backjob/client: type-checked by e2e/packages.test.ts.
import type {} from '@backjob/client/react';
import type { BackjobFailedDetail } from '@backjob/client';

export function Report({ id, token }: { id: string; token: string }) {
  const failed = (event: CustomEvent<BackjobFailedDetail>) => console.log(event.detail.reason, event.detail.code);
  return (
    <section>
      <backjob-progress jobId={id} token={token} cancelable onbackjob-completed={(event) => console.log(event.detail.result)} onbackjob-failed={failed} />
      <backjob-log job-id={id} token={token} maxLines={200} live="off" />
      <backjob-launcher name="reports/build" params={{ month: '2026-01' }} showLog onbackjob-start={(event) => event.detail.request.name}>
        Build
      </backjob-launcher>
      <backjob-jobs label="Mine" status="running" pageSize={20} />
      {/* @ts-expect-error jobId is a string */}
      <backjob-progress jobId={42} />
      {/* @ts-expect-error the event's detail has no such field */}
      <backjob-progress onbackjob-completed={(event) => event.detail.nope} />
      <backjob-jobs href="/jobs/{id}" pageSize={20} status="running" />
      {/* @ts-expect-error maxLines is a number */}
      <backjob-log maxLines="many" />
      {/* @ts-expect-error status is a job status */}
      <backjob-jobs status="sleeping" />
      {/* @ts-expect-error pageSize is a number */}
      <backjob-jobs pageSize="many" />
    </section>
  );
}
