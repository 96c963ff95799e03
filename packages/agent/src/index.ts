export * from './collectors/index.js';
export * from './run.js';
export * from './state.js';
export { request, normalizeServerUrl } from './transport.js';
export * from './catalog.js';
export * from './installers/index.js';
