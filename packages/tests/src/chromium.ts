import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/**
 * Headless Chromium for the browser tests: Debian's package (never `playwright install`: no internet
 * for browsers), with the flags TOOLCHAIN.md lists. Tests that need it skip only outside CI; in CI a
 * missing browser is a failure.
 */
export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

const haveChromium = existsSync(CHROMIUM);
const inCi = Boolean(process.env.CI);

/** True when the browser test named `what` must be skipped (no Chromium, not in CI); says so once. */
export function skipWithoutChromium(what: string): boolean {
  if (haveChromium || inCi) return false;
  console.warn(`[${what}] skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium). In CI this is a failure.`);
  return true;
}

/** First thing in a browser test that runs: without Chromium (in CI), fails with what to install. */
export function requireChromium(): void {
  if (!haveChromium) throw new Error(`CI needs Chromium at ${CHROMIUM}: apt-get install -y chromium`);
}

/** Launches it headless with those flags, and `extraArgs` after them (e.g. `--host-resolver-rules=…`). */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs], headless: true });
}
