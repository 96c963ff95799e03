/**
 * Prints one plain closing line ("tests: N passed, N failed, N skipped") that any CI reads, and
 * says loudly which suites did not run on this machine.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<unknown>) {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const s = t.result().state;
        if (s === 'passed') passed++;
        else if (s === 'failed') failed++;
        else skipped++;
      }
      if (m.state() === 'failed' && [...m.children.allTests()].length === 0) failed++;
    }
    failed += errors.length;
    const notRun = [
      process.env.PATCHWARDEN_PG_SUITE_SKIPPED && `the PostgreSQL suite did NOT run (${process.env.PATCHWARDEN_PG_SUITE_SKIPPED})`,
      process.env.PATCHWARDEN_BROWSER_SUITE_SKIPPED && `the console's browser suite did NOT run (${process.env.PATCHWARDEN_BROWSER_SUITE_SKIPPED})`,
    ].filter(Boolean);
    for (const n of notRun) console.log(`\nNOTE: ${n}`);
    console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  }
}
