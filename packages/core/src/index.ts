export * from './errors.js';
export * from './canonical.js';
export * from './facts.js';
export * from './inventory.js';
export * from './protocol.js';
export * from './states.js';
export * from './version/index.js';
export * from './defaults.js';
