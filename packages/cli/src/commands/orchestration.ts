import { MAX_WORKSPACE_COUNT, orchestrationDomain, type OrchestrationState } from '@lockstep/core';
import { writeJson, writeLine } from './report.js';
import { domainRead, domainWrite, integerArgument, parseValue, table, type CommandOutcome, type Subcommand } from './spec.js';

const count = integerArgument(0, MAX_WORKSPACE_COUNT);

const describe = (state: OrchestrationState, workspaceId: string) => {
  const entry = Object.hasOwn(state.workspaces, workspaceId) ? state.workspaces[workspaceId] : undefined;
  const counts = entry ? `desired ${entry.desired}, running ${entry.running}` : 'gone';
  return `${workspaceId}: ${counts} (totals: desired ${state.totals.desired}, running ${state.totals.running})`;
};

function workspaceJson(outcome: CommandOutcome<OrchestrationState>, workspaceId: string) {
  const { workspaces, totals } = outcome.state;
  return writeJson(outcome, { workspaceId, workspace: Object.hasOwn(workspaces, workspaceId) ? workspaces[workspaceId] : null, totals });
}

const setCount = (field: 'desired' | 'running'): Subcommand => ({
  words: ['orchestration', field === 'desired' ? 'set-desired' : 'set-running'],
  summary: `Set how many agents a workspace ${field === 'desired' ? 'wants' : 'runs'}; the totals follow.`,
  positionals: [
    { name: 'workspaceId', help: 'the workspace (any text up to 512 characters, often a path)' },
    { name: field, help: `the count, 0–${MAX_WORKSPACE_COUNT}` },
  ],
  flags: {},
  scope: 'tenant',
  write: true,
  build(input, key) {
    const workspaceId = input['workspaceId'] as string;
    const value = parseValue(count, input[field], field.toUpperCase());
    const type = field === 'desired' ? 'workspace.setDesired' : 'workspace.setRunning';
    return domainWrite(orchestrationDomain, this, key, type, { workspaceId, [field]: value }, (outcome) => ({
      lines: [writeLine(outcome, describe(outcome.state, workspaceId), `${describe(outcome.state, workspaceId)}, unchanged`)],
      json: workspaceJson(outcome, workspaceId),
    }));
  },
});

const remove: Subcommand = {
  words: ['orchestration', 'remove'],
  summary: 'Remove a workspace and its counts.',
  positionals: [{ name: 'workspaceId', help: 'the workspace' }],
  flags: {},
  scope: 'tenant',
  write: true,
  build(input, key) {
    const workspaceId = input['workspaceId'] as string;
    return domainWrite(orchestrationDomain, this, key, 'workspace.remove', { workspaceId }, (outcome) => ({
      lines: [
        writeLine(
          outcome,
          `removed ${workspaceId} (totals: desired ${outcome.state.totals.desired}, running ${outcome.state.totals.running})`,
          `removed ${workspaceId}`,
        ),
      ],
      json: workspaceJson(outcome, workspaceId),
    }));
  },
};

const show: Subcommand = {
  words: ['orchestration', 'show'],
  summary: 'Show the desired and running counts per workspace, and the totals.',
  positionals: [],
  flags: {},
  scope: 'tenant',
  build(_input, key) {
    return domainRead(orchestrationDomain, key, ({ stream, version, state }) => {
      const { workspaces, totals } = state;
      const entries = Object.entries(workspaces).map(([workspaceId, entry]) => ({ workspaceId, ...entry }));
      const rows = entries.map((entry) => [entry.workspaceId, String(entry.desired), String(entry.running), entry.leasedTo ?? '']);
      rows.push(['TOTAL', String(totals.desired), String(totals.running), '']);
      return { lines: table(['WORKSPACE', 'DESIRED', 'RUNNING', 'LEASED TO'], rows), json: { stream, version, workspaces: entries, totals } };
    });
  },
};

export const orchestrationSubcommands: readonly Subcommand[] = [setCount('desired'), setCount('running'), remove, show];
