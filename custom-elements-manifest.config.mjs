// `cem analyze --litelement` reads this: the public elements' sources, not
// their tests, styles or the test helpers. Output: custom-elements.json (the
// package's "customElements" field), written by `npm run build`.
export default {
  globs: ['client/backjob-progress.ts', 'client/backjob-log.ts', 'client/backjob-launcher.ts', 'client/events.ts'],
  outdir: '.',
  litelement: true,
};
