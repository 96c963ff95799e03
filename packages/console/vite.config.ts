import { defineConfig } from 'vite';

// React without @vitejs/plugin-react: esbuild's automatic JSX runtime is all the console needs.
export default defineConfig({
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 800,
    rollupOptions: {
      // TanStack Query marks its modules "use client" (for React Server Components); meaningless
      // in a plain SPA bundle, and Rollup warns once per module.
      onwarn(warning, warn) {
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE' && warning.message.includes('use client')) return;
        warn(warning);
      },
    },
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8060' } },
});
