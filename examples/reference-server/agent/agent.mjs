#!/usr/bin/env node
/**
 * A scripted "agent" for the reference server's session profiles (docs/terminals.md, "Profiles"):
 * it reads a prompt — its arguments, or else standard input up to end-of-file — then streams its
 * work to the terminal with tool-call-like lines, and exits 0. Nothing real happens: it is there to
 * show a profile running a non-shell program from the dashboard, the CLI and curl.
 *
 *   node agent.mjs [--delay MS] [--stay] [--exit N] [PROMPT…]
 *
 *   --delay MS  pause between streamed chunks (default 30)
 *   --stay      keep running once done, until a signal ends it (to try `stop`)
 *   --exit N    exit with N instead of 0
 *
 * Profile: `--profile 'agent:argv=node examples/reference-server/agent/agent.mjs'` (the prompt as the
 * last argument), or `agent:stdin=…` (the prompt typed into its terminal, then end-of-file).
 */
import { setTimeout as sleep } from 'node:timers/promises';

const args = process.argv.slice(2);
const options = { delay: 30, stay: false, exit: 0 };
while (args.length > 0 && args[0].startsWith('--')) {
  const flag = args.shift();
  if (flag === '--') break;
  if (flag === '--stay') options.stay = true;
  else if (flag === '--delay') options.delay = Number(args.shift());
  else if (flag === '--exit') options.exit = Number(args.shift());
  else {
    console.error(`agent: unknown option ${flag}`);
    process.exit(2);
  }
}

async function readPrompt() {
  if (args.length > 0) return { prompt: args.join(' '), from: 'argv' };
  let text = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) text += chunk;
  return { prompt: text.trim(), from: 'stdin' };
}

/** Writes `text` a few characters at a time, as a model streams tokens. */
async function stream(text) {
  for (const word of text.split(/(\s+)/)) {
    process.stdout.write(word);
    if (word.trim() !== '') await sleep(options.delay);
  }
  process.stdout.write('\n');
}

async function tool(name, input, result) {
  console.log(`[tool_call_start] ${name} ${JSON.stringify(input)}`);
  await sleep(options.delay * 2);
  console.log(`[tool_call_result] ${name} ${JSON.stringify(result)}`);
}

const { prompt, from } = await readPrompt();
const words = prompt.split(/\s+/).filter(Boolean);
console.log(`[agent] prompt from ${from}: ${JSON.stringify(prompt)}`);
await stream(`Let me look at what "${words.slice(0, 6).join(' ')}" needs.`);
await tool('list_files', { path: '.' }, { files: 3 });
await tool('read_file', { path: 'README.md' }, { lines: 42 });
await tool('search', { query: words[0] ?? '' }, { matches: words.length });
await stream(`Done: ${words.length} words read, 3 tools called.`);
console.log(`[agent] done (exit ${options.exit})`);
if (options.stay) {
  console.log('[agent] staying until stopped');
  setInterval(() => {}, 60_000);
} else {
  process.exitCode = options.exit;
}
