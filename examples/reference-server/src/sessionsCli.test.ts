import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AGENT_PROFILES } from './agentProfiles.js';
import { TEST_TOKEN, call, startTestServer, until } from './testing.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../../packages/cli/src/main.ts', import.meta.url));

/** `lockstep …` as a process, against a test server. */
function lockstep(args: string[], server: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--conditions=lockstep-source', '--import', 'tsx', CLI, ...args, '--server', server], {
    cwd: ROOT,
    env: { ...process.env, LOCKSTEP_TOKEN: TEST_TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('the lockstep CLI runs profiles (seed 003)', () => {
  it('creates a session that runs a profile with a prompt, and is told when the profile is unknown', async () => {
    const server = await startTestServer({ profiles: AGENT_PROFILES });
    const created = await lockstep(['session', 'create', '--id', 'cli-agent', '--profile', 'agent', '--prompt', 'Write the changelog'], server.wsUrl);
    expect([created.code, created.stdout.trim(), created.stderr]).toEqual([0, 'cli-agent', '']);
    await until(async () => (await call(server.url, 'GET', '/api/sessions/cli-agent')).json.status === 'exited', 'the agent to finish');
    expect(server.terminals.get('cli-agent')!.read().toString()).toContain('[agent] prompt from argv: "Write the changelog"');
    const list = await lockstep(['session', 'list'], server.wsUrl);
    expect(list.stdout).toMatch(/cli-agent\s+agent\s+exited \(0\)/);

    const unknown = await lockstep(['session', 'create', '--profile', 'claude-code'], server.wsUrl);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('no profile "claude-code" on this server: one of shell, agent, agent-stdin, agent-stay');
    const patched = await lockstep(['session', 'update', 'cli-agent', '--status', 'running'], server.wsUrl);
    expect(patched.code).not.toBe(0);
    expect(patched.stderr).toMatch(/session\.statusOwnedByProcess|its program's to record/);
  });
});
