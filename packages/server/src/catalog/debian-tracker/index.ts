export { importDebianTracker, importDebianTrackerValue, MAX_TRACKER_BYTES, TRACKER_URL, type TrackerImportOptions } from './read.js';
