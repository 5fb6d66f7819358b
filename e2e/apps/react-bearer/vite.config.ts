import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [react()],
  // In an app of its own, `@backjob/client` is the installed package; here it is the repository's source.
  resolve: { alias: { '@backjob/client': fileURLToPath(new URL('../../../client/index.ts', import.meta.url)) } },
});
