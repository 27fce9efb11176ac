/**
 * Writes the msgpack twin of a golden wire fixture: each JSON text frame of
 * packages/core/src/fixtures/wire-vN.json, msgpack-encoded, one hex string per line.
 *
 *   node --conditions=lockstep-source --import tsx scripts/generateWireFixtures.ts wire-v1
 *
 * Golden fixtures are written once, when a protocol version is released, and never again: every
 * later release must decode the stored bytes. The script refuses to overwrite an existing file.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { jsonCodec } from '../packages/core/src/codec.js';
import { msgpackCodec } from '../packages/core/src/msgpack.js';

const name = process.argv[2];
if (!name || !/^wire-v\d+$/.test(name)) {
  console.error('usage: generateWireFixtures.ts wire-vN');
  process.exit(2);
}
const dir = fileURLToPath(new URL('../packages/core/src/fixtures/', import.meta.url));
const target = `${dir}${name}.msgpack.hex`;
if (existsSync(target)) {
  console.error(`${target} exists; golden fixtures are never regenerated`);
  process.exit(1);
}
const fixtures = JSON.parse(readFileSync(`${dir}${name}.json`, 'utf8')) as Array<{ frame: string }>;
const lines = fixtures.map(({ frame }) => Buffer.from(msgpackCodec.encode(jsonCodec.decode(frame))).toString('hex'));
writeFileSync(target, `${lines.join('\n')}\n`);
console.log(`wrote ${lines.length} frames to ${target}`);
