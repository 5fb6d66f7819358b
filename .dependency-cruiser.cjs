/**
 * The direction of dependencies, checked by `npm run check:deps` (and by
 * `npm test`, one test per rule): a transport-neutral core; doors (HTTP,
 * live, dispatch) and concrete backends wired only by the composition root;
 * no cycles; test support kept out of product code and benchmarks.
 */

/** The composition root: the entries that wire core, doors and backends together. */
const ROOTS = '^server/(backjob|shim|index|redis|worker|fastify)\\.ts$';
/** Test support, which may reach anything (it builds real servers with real backends). */
const TEST_SUPPORT = ['\\.test\\.ts$', '^server/testing/', '^client/testing/', '^client/test-server\\.ts$'];
/** Libraries of a transport, a framework or a concrete backend (and their types). */
const FRAMEWORKS = '(^|/)node_modules/(@types/)?(ws|express|fastify|bullmq|ioredis|better-sqlite3)/';

module.exports = {
  forbidden: [
    {
      name: 'core-is-transport-neutral',
      comment: 'server/core/ imports no transport, framework or concrete backend library: the composition root hands it what it needs.',
      severity: 'error',
      from: { path: '^server/core/', pathNot: TEST_SUPPORT },
      to: { path: FRAMEWORKS },
    },
    {
      name: 'core-imports-no-door-or-backend',
      comment: 'server/core/ imports nothing of http/, live/, dispatch/, backends/local/ or backends/redis/ (contracts and core/records.ts are its own).',
      severity: 'error',
      from: { path: '^server/core/', pathNot: TEST_SUPPORT },
      to: { path: '^server/(http|live|dispatch|backends/local|backends/redis)/' },
    },
    {
      name: 'job-rules-stand-alone',
      comment: 'server/core/records.ts (the fold and row rules stores, hub and router share) imports only shared/ and the contracts, so a backend that uses it pulls in nothing else of core.',
      severity: 'error',
      from: { path: '^server/core/records\\.ts$' },
      to: { pathNot: ['^shared/', '^server/(types|errors)\\.ts$'] },
    },
    {
      name: 'only-the-root-wires-doors-and-backends',
      comment:
        'A door (http/, live/, dispatch/) or a concrete backend is imported only by its own folder, the composition root and test support: doors and backends never reach into each other.',
      severity: 'error',
      from: { path: '^server/([^/]+(?:/(?:local|redis))?)', pathNot: [ROOTS, '^server/core/', ...TEST_SUPPORT] },
      to: { path: '^server/(http|live|dispatch|backends/local|backends/redis)/', pathNot: '^server/$1/' },
    },
    {
      name: 'no-cycles',
      comment: 'No module reaches itself again through its imports.',
      severity: 'error',
      from: { path: '^(server|shared|client|bench)/' },
      to: { circular: true },
    },
    {
      name: 'product-code-imports-no-test-support',
      comment: 'What ships never imports a harness or fixture of server/testing/ or client/testing/.',
      severity: 'error',
      from: { path: '^(server|shared|client)/', pathNot: TEST_SUPPORT },
      to: { path: '^(server|client)/testing/' },
    },
    {
      name: 'benchmarks-import-no-test-support',
      comment: "bench/ measures the product through its public API: what it needs to set up is bench's own, not a test harness.",
      severity: 'error',
      from: { path: '^bench/' },
      to: { path: '^(server|client)/testing/' },
    },
    {
      name: 'shared-imports-neither-side',
      comment: 'shared/ (the wire protocol) imports nothing of server/ or client/.',
      severity: 'error',
      from: { path: '^shared/' },
      to: { path: '^(server|client)/' },
    },
    {
      name: 'client-imports-no-server',
      comment: "client/ (the browser package) imports nothing of server/; only its test support starts a real server.",
      severity: 'error',
      from: { path: '^client/', pathNot: TEST_SUPPORT },
      to: { path: '^server/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a type from express in core is a dependency on express all the same.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'types', 'default'], extensions: ['.ts', '.d.ts', '.js', '.mjs'] },
    exclude: { path: '(^|/)dist/' },
  },
};
