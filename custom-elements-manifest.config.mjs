// `cem analyze` reads this (`npm run build` runs it): the public elements'
// sources, not their tests, styles or the test helpers. It writes
// packages/client/custom-elements.json, the "customElements" of
// @backjob/client, where every path names a module the package ships
// (`dist/client/backjob-progress.js`, not the source it came from) and every
// event has its type, as client/events.ts declares it in BackjobEventMap.
import { readFileSync } from 'node:fs';

/** `backjob-progress` → `CustomEvent<BackjobProgressDetail>`, read from the interface the elements' events are typed by. */
function eventTypes() {
  const source = readFileSync(new URL('client/events.ts', import.meta.url), 'utf8');
  const map = /export interface BackjobEventMap \{([^}]*)\}/.exec(source)?.[1];
  if (!map) throw new Error('client/events.ts: no BackjobEventMap interface to read the event types from');
  return new Map([...map.matchAll(/'([a-z-]+)':\s*([^;]+);/g)].map(([, name, type]) => [name, type.trim()]));
}

/**
 * `client/backjob-log.ts` → `dist/client/backjob-log.js`: where tsc puts the
 * module in the package. A re-export from a module the analyzer does not read
 * keeps its specifier (`./progress-words.js`): every such module is a sibling in client/.
 */
function shippedPath(path) {
  return path.replace(/^client\/(.+)\.ts$/, 'dist/client/$1.js').replace(/^\.\/([\w-]+)\.js$/, 'dist/client/$1.js');
}

/** Rewrites every module path of the manifest to the shipped module, and types every event. */
function shippedModules() {
  const types = eventTypes();
  return {
    name: 'backjob-shipped-modules',
    packageLinkPhase({ customElementsManifest }) {
      const visit = (node) => {
        if (Array.isArray(node)) return node.forEach(visit);
        if (typeof node !== 'object' || node === null) return;
        for (const [key, value] of Object.entries(node)) {
          if ((key === 'path' || key === 'module') && typeof value === 'string') node[key] = shippedPath(value);
          else visit(value);
        }
      };
      visit(customElementsManifest.modules);
      for (const declaration of customElementsManifest.modules.flatMap((m) => m.declarations ?? [])) {
        for (const event of declaration.events ?? []) {
          const type = types.get(event.name);
          if (!type) throw new Error(`Event ${event.name} of ${declaration.name} is not in BackjobEventMap (client/events.ts)`);
          event.type = { text: type };
        }
      }
    },
  };
}

export default {
  globs: ['client/backjob-progress.ts', 'client/backjob-log.ts', 'client/backjob-launcher.ts', 'client/backjob-jobs.ts'],
  outdir: 'packages/client',
  litelement: true,
  // Not the repository's package.json: packages/client/package.json names the manifest itself.
  packagejson: false,
  plugins: [shippedModules()],
};
