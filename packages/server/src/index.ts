export * from './app.js';
export * from './config.js';
export * from './server.js';
export * from './db/database.js';
export type { DB } from './db/schema.js';
export { createAdminToken, countAdminTokens } from './auth/store.js';
export { createSecret, revokeSecret } from './enrollment/store.js';
export { createGroup } from './groups/store.js';
export * from './catalog/apt/index.js';
