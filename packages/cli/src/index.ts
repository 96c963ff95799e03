export { run, buildProgram } from './main.js';
