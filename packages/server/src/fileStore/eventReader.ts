import type { StoredEvent } from '../eventStore.js';
import { CorruptLogError } from './CorruptLogError.js';
import type { EventLocation } from './logState.js';
import { RECORD_HEADER_BYTES, checkBody, checkHeader, splitPayload } from './records.js';

/** Records closer than this in one file are read with one call. */
const MAX_GAP_BYTES = 64 * 1024;
/** Largest single read when coalescing. */
const MAX_RUN_BYTES = 8 * 1024 * 1024;

/**
 * Reads the events `from … to` held by `locations` (in version order): nearby records of one file
 * are read with one call, every record's checksum is verified again, and every event is parsed from
 * the file, so callers never share objects with the store.
 */
export async function readEvents(locations: readonly EventLocation[], from: number, to: number): Promise<StoredEvent[]> {
  const files = new Set(locations.map((location) => location.file));
  for (const file of files) file.acquire();
  try {
    const events: StoredEvent[] = [];
    let index = 0;
    while (index < locations.length) {
      const first = locations[index]!;
      let end = index + 1;
      let runEnd = first.offset + first.size;
      while (end < locations.length) {
        const next = locations[end]!;
        if (next.file !== first.file || next.offset < runEnd || next.offset - runEnd > MAX_GAP_BYTES || next.offset + next.size - first.offset > MAX_RUN_BYTES)
          break;
        runEnd = next.offset + next.size;
        end++;
      }
      const bytes = Buffer.allocUnsafe(runEnd - first.offset);
      let read = 0;
      while (read < bytes.length) {
        const { bytesRead } = await first.file.handle.read(bytes, read, bytes.length - read, first.offset + read);
        if (bytesRead === 0) throw new CorruptLogError(first.file.path, first.offset + read, 'the file ends before a record the index points to');
        read += bytesRead;
      }
      for (let i = index; i < end; i++) {
        const location = locations[i]!;
        for (const event of parseRecord(bytes, location.offset - first.offset, location)) {
          if (event.version >= from && event.version <= to) events.push(event);
        }
      }
      index = end;
    }
    return events;
  } finally {
    for (const file of files) file.release();
  }
}

function parseRecord(bytes: Buffer, at: number, location: EventLocation): StoredEvent[] {
  const header = checkHeader(bytes, at, location.size);
  const bad = header.ok ? (header.length + RECORD_HEADER_BYTES === location.size ? checkBody(bytes, at, header.length) : 'record size changed') : header.reason;
  if (bad !== undefined) throw new CorruptLogError(location.file.path, location.offset, `${bad} (found when reading it back)`);
  const events = JSON.parse(splitPayload(bytes.subarray(at + RECORD_HEADER_BYTES, at + location.size)).body.toString('utf8')) as StoredEvent[];
  if (events.length !== location.count || events[0]?.version !== location.first) {
    throw new CorruptLogError(
      location.file.path,
      location.offset,
      `the record holds other events than its index says (versions ${location.first} …, ${location.count} events)`,
    );
  }
  return events;
}
