// Imports every entry point (`exports` subpath) of every installed @lockstep package in plain Node
// ESM and prints { specifier: [export names] } as one JSON line.
import { readdirSync, readFileSync } from 'node:fs';

const result = {};
for (const dir of readdirSync('node_modules/@lockstep').sort()) {
  const manifest = JSON.parse(readFileSync(`node_modules/@lockstep/${dir}/package.json`, 'utf8'));
  for (const subpath of Object.keys(manifest.exports)) {
    if (subpath === './package.json') continue;
    const specifier = manifest.name + subpath.slice(1);
    result[specifier] = Object.keys(await import(specifier)).sort();
  }
}
console.log(JSON.stringify(result));
