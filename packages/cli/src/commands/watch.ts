import { streamNameSchema } from '@lockstep/core';
import { parseValue, type Subcommand } from './spec.js';

const watch: Subcommand = {
  words: ['watch'],
  summary: "Print a stream's events as they are committed, one line each, until Ctrl-C.",
  positionals: [{ name: 'stream', help: 'the stream, <domain>/<key>: tasks/default, focus/default, orchestration/default, …' }],
  flags: {},
  build(input) {
    return { kind: 'watch', stream: parseValue(streamNameSchema, input['stream'], 'STREAM') };
  },
};

export const watchSubcommands: readonly Subcommand[] = [watch];
