/**
 * The Lua scripts of the Redis backend, kept as `.lua` files in `lua/` (the
 * build copies them beside the compiled modules) and read once, when this
 * module loads. A script may begin with helper files it shares with others:
 * Lua scripts sent to Redis cannot `require` anything.
 */
import { readFileSync } from 'node:fs';

/** The text of `lua/<name>.lua`, after that of each of `helpers` (file names without `.lua`). */
export function luaScript(name: string, ...helpers: string[]): string {
  return [...helpers, name].map((file) => readFileSync(new URL(`./lua/${file}.lua`, import.meta.url), 'utf8')).join('\n');
}
