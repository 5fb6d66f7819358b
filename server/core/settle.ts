/**
 * Waits for `work` to settle (resolve or reject), at most `ms`: whether it
 * did. For shutdown steps that depend on something outside the process (a
 * store, a queue) which may never answer; the work itself goes on.
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(resolve, ms, false)));
  try {
    return await Promise.race([work.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
