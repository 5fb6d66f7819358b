import { fileURLToPath } from 'node:url';
import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';

/** Where the API listens in development. */
const api = process.env.API_URL ?? 'http://localhost:3000';

export default defineConfig({
  plugins: [vue({ template: { compilerOptions: { isCustomElement: (tag) => tag.startsWith('backjob-') } } })],
  server: {
    proxy: {
      '/api': { target: api, changeOrigin: true },
      // The HTTP API and, with `ws: true`, the live channel's WebSocket.
      '/backjob': { target: api, changeOrigin: true, ws: true },
    },
  },
  // In an app of its own, `@backjob/client` is the installed package; here it is the repository's source.
  resolve: { alias: { '@backjob/client': fileURLToPath(new URL('../../../client/index.ts', import.meta.url)) } },
});
