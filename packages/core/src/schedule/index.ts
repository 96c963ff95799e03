export * from './clock.js';
export { assertTimeZone, isTimeZone } from './tz.js';
export * from './windows.js';
export * from './freeze.js';
export * from './rings.js';
export * from './reboot.js';
