import { FileEventStore, type RepairReport } from '@lockstep/server';

/** Where `lockstep repair` writes and how it asks. */
export interface RepairIo {
  out: (line: string) => void;
  /** Asks a yes/no question (an interactive terminal); absent when nobody can answer. */
  confirm?: (question: string) => Promise<boolean>;
}

/**
 * `lockstep repair <dir> [--yes]`: reports the damage of a file store's data directory and, once
 * confirmed (`--yes`, or a "y" at the prompt), cuts the log at the first bad record, keeping a copy
 * of the cut part. Answers the exit code: 0 clean or repaired, 1 damage left in place.
 */
export async function repair(directory: string, yes: boolean, io: RepairIo): Promise<number> {
  const found = await FileEventStore.repair(directory, { dryRun: true });
  printReport(found, io.out);
  if (found.status === 'clean') {
    io.out('nothing to repair');
    return 0;
  }
  if (!found.damage && found.snapshots.every((snapshot) => snapshot.action.startsWith('kept'))) {
    io.out('nothing a repair can fix: restore the streams above from a backup');
    return 1;
  }
  let confirmed = yes;
  if (!confirmed && io.confirm) confirmed = await io.confirm('Cut the log there (a copy of what is cut is kept)? [y/N] ');
  if (!confirmed) {
    io.out(io.confirm ? 'not repaired' : 'not repaired: run again with --yes to cut the log there (a copy of what is cut is kept)');
    return 1;
  }
  const done = await FileEventStore.repair(directory, { dryRun: false });
  if (done.status !== 'repaired') {
    printReport(done, io.out);
    return 1;
  }
  io.out(`repaired: the cut part is kept in ${done.backup}; new epoch ${done.epoch} (clients resync)`);
  if (done.unrecoverable.length > 0) {
    io.out(`still unrecoverable: ${done.unrecoverable.join(', ')} (restore from a backup)`);
    return 1;
  }
  return 0;
}

function printReport(report: RepairReport, out: (line: string) => void): void {
  out(`data directory ${report.directory}`);
  if (report.tornTail) {
    out(`  torn tail: ${report.tornTail.bytes} bytes at byte ${report.tornTail.offset} of ${report.tornTail.file} (an unfinished write; every open cuts it)`);
  }
  if (report.damage) {
    out(`  damage: ${report.damage.file} at byte ${report.damage.offset}: ${report.damage.reason}`);
  } else {
    out('  log: no damage');
  }
  if (report.cut) {
    out(`  a repair cuts ${report.cut.bytes} bytes, ${report.cut.validRecordsLost} whole records among them, from:`);
    for (const file of report.cut.files) out(`    ${file}`);
  }
  for (const snapshot of report.snapshots) out(`  snapshot ${snapshot.file}: ${snapshot.reason} — ${snapshot.action}`);
  for (const stream of report.unrecoverable) out(`  unrecoverable: ${stream}`);
}
