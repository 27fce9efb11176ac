import { fileURLToPath } from 'node:url';
import type { ProfileConfig } from './profiles.js';

/** The scripted agent of `examples/reference-server/agent` (a Node script: prompt in, streamed tool calls out). */
export const AGENT_SCRIPT = fileURLToPath(new URL('../agent/agent.mjs', import.meta.url));

/**
 * Profiles that run the scripted agent with this Node: the prompt as its last argument (`agent`), typed
 * into its terminal (`agent-stdin`), and one that stays once done, until stopped (`agent-stay`). The
 * tests use them; so can `startReferenceServer({ profiles: AGENT_PROFILES })`.
 */
export const AGENT_PROFILES: Record<string, ProfileConfig> = {
  agent: { description: 'The scripted agent', program: process.execPath, args: [AGENT_SCRIPT, '--delay', '1'], prompt: 'argv' },
  'agent-stdin': { program: process.execPath, args: [AGENT_SCRIPT, '--delay', '1'], prompt: 'stdin' },
  'agent-stay': { program: process.execPath, args: [AGENT_SCRIPT, '--delay', '1', '--stay'], prompt: 'argv' },
};
