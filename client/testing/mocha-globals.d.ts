/**
 * The Mocha globals @web/test-runner provides to the browser tests: the few
 * the tests use, typed here rather than pulling in all of @types/mocha.
 */
type MochaCallback = (this: { timeout(ms: number): void }) => void | Promise<void>;

declare function describe(title: string, suite: (this: { timeout(ms: number): void }) => void): void;
declare function it(title: string, test: MochaCallback): void;
declare function before(hook: MochaCallback): void;
declare function after(hook: MochaCallback): void;
declare function beforeEach(hook: MochaCallback): void;
declare function afterEach(hook: MochaCallback): void;
