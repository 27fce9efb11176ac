import { open, readFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { snapshotJson, type Snapshot } from '../eventStore.js';
import { CorruptLogError } from './CorruptLogError.js';
import { isTemporaryName } from './fsUtil.js';
import { tightenOpenFile } from './privateModes.js';
import { RECORD_HEADER_BYTES, RecordType, checkBody, checkHeader, encodeSplitRecord, splitMeta, splitPayload } from './records.js';
import { snapshotMeta } from './recordMeta.js';
import { streamFileName } from './streamFileName.js';

export const SNAPSHOT_EXTENSION = '.snap';

/** `snapshots/<encoded stream>.snap`: the latest snapshot of a stream, replaced atomically. */
export function snapshotPath(snapshotsDirectory: string, stream: string): string {
  return join(snapshotsDirectory, `${streamFileName(stream)}${SNAPSHOT_EXTENSION}`);
}

/** One record: meta `{s, version}` and the state as JSON text (serialized now: nothing is shared). */
export function encodeSnapshot(snapshot: Snapshot): Buffer {
  return encodeSplitRecord(RecordType.Snapshot, { s: snapshot.stream, version: snapshot.version }, snapshotJson(snapshot));
}

/** Reads and verifies a whole snapshot file. */
export async function readSnapshotFile(path: string): Promise<Snapshot> {
  const bytes = await readFile(path);
  const header = checkHeader(bytes, 0, bytes.length);
  if (!header.ok) throw new CorruptLogError(path, 0, header.reason);
  const bad = checkBody(bytes, 0, header.length) ?? (header.type === RecordType.Snapshot ? undefined : `record type ${header.type} in a snapshot file`);
  if (bad !== undefined) throw new CorruptLogError(path, 0, bad);
  if (RECORD_HEADER_BYTES + header.length !== bytes.length)
    throw new CorruptLogError(path, RECORD_HEADER_BYTES + header.length, 'bytes after the snapshot record');
  try {
    const { meta, body } = splitPayload(bytes.subarray(RECORD_HEADER_BYTES));
    const { s, version } = snapshotMeta(meta);
    return { stream: s, version, state: JSON.parse(body.toString('utf8')) as unknown };
  } catch (error) {
    throw new CorruptLogError(path, 0, `unreadable snapshot: ${(error as Error).message}`);
  }
}

/**
 * Reads only the stream and version of a snapshot file (its checksum is verified when loaded); with
 * `tighten`, a file of an older version (0644) becomes private on the way (its stat is needed anyway).
 */
async function readSnapshotMeta(path: string, tighten: boolean): Promise<{ s: string; version: number }> {
  const handle = await open(path, 'r');
  try {
    const { size, mode } = await handle.stat();
    if (tighten) await tightenOpenFile(handle, mode);
    const head = Buffer.alloc(Math.min(size, RECORD_HEADER_BYTES + 4));
    await handle.read(head, 0, head.length, 0);
    const header = checkHeader(head, 0, size);
    if (!header.ok) throw new CorruptLogError(path, 0, header.reason);
    if (header.type !== RecordType.Snapshot) throw new CorruptLogError(path, 0, `record type ${header.type} in a snapshot file`);
    if (head.length < RECORD_HEADER_BYTES + 4) throw new CorruptLogError(path, 0, 'snapshot record too short');
    const metaLength = head.readUInt32LE(RECORD_HEADER_BYTES);
    if (metaLength > header.length - 4) throw new CorruptLogError(path, 0, `meta length ${metaLength} runs past the record`);
    const payload = Buffer.alloc(4 + metaLength);
    await handle.read(payload, 0, payload.length, RECORD_HEADER_BYTES);
    try {
      return snapshotMeta(splitMeta(payload));
    } catch (error) {
      throw new CorruptLogError(path, 0, `unreadable snapshot meta: ${(error as Error).message}`);
    }
  } finally {
    await handle.close();
  }
}

export interface SnapshotEntry {
  path: string;
  stream: string;
  version: number;
}

export interface SnapshotListing {
  entries: SnapshotEntry[];
  /** Files whose meta cannot be read (only collected with `collectProblems`; otherwise thrown). */
  problems: Array<{ path: string; error: CorruptLogError }>;
}

/**
 * Lists the snapshot files with their stream and version; removes temporary files and makes files of
 * older versions private (0600) when asked.
 */
export async function listSnapshots(
  directory: string,
  options: { removeTemporary: boolean; collectProblems: boolean; tighten: boolean },
): Promise<SnapshotListing> {
  const listing: SnapshotListing = { entries: [], problems: [] };
  for (const name of (await readdir(directory)).sort()) {
    const path = join(directory, name);
    if (isTemporaryName(name)) {
      if (options.removeTemporary) await unlink(path).catch(() => {});
      continue;
    }
    if (!name.endsWith(SNAPSHOT_EXTENSION)) continue;
    try {
      const meta = await readSnapshotMeta(path, options.tighten);
      listing.entries.push({ path, stream: meta.s, version: meta.version });
    } catch (error) {
      if (!(error instanceof CorruptLogError) || !options.collectProblems) throw error;
      listing.problems.push({ path, error });
    }
  }
  return listing;
}
