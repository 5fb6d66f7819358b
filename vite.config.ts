/**
 * The single-file browser bundle: `dist/backjob.js`, the client with Lit
 * included, for pages that load BackJob with one
 * `<script type="module" src="…/backjob.js">` and no build step of their own.
 * (ESM imports with types come from `tsc -p tsconfig.build.json`.)
 */
import { defineConfig } from 'vite';

export default defineConfig({
  // Only the library build: nothing from public/ or an index.html.
  publicDir: false,
  build: {
    lib: {
      entry: 'client/index.ts',
      formats: ['es'],
      fileName: () => 'backjob.js',
    },
    outDir: 'dist',
    // tsc writes the modules and their .d.ts into dist/ as well: keep them.
    emptyOutDir: false,
    target: 'es2022',
    sourcemap: true,
  },
});
