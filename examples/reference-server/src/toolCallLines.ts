/**
 * Tool calls in an agent's terminal output: the lines the scripted agent (`agent/agent.mjs`) prints
 * around each tool it "calls" —
 *
 *     [tool_call_start] read_file {"path":"README.md"}
 *     [tool_call_result] read_file {"lines":42}
 *
 * — found in the text as it streams, whatever the chunks' boundaries. Seed 003's `tool_call_start` and
 * `tool_call_result` messages are made from them (`daemon.toolCallStart`, `daemon.toolCallResult`).
 * Browser-safe: no Node imports.
 */

/** One tool-call line: `kind` `start` carries the tool's `input`, `result` its `result` (JSON when the rest of the line parses, else the text; `null` when there is none). */
export type ToolCallLine = { kind: 'start'; toolName: string; input: unknown } | { kind: 'result'; toolName: string; result: unknown };

/** Longer lines are not tool calls: what is held of a line stops here (and the line is skipped). */
export const MAX_TOOL_CALL_LINE = 16 * 1024;

const LINE = /^\[tool_call_(start|result)\] ([A-Za-z0-9_.:/-]{1,128})(?: (.*))?$/s;
/** Colours, cursor moves and other CSI sequences a terminal line may carry. */
// eslint-disable-next-line no-control-regex -- ESC starts the sequences this removes
const CSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

/** The tool call `line` (without its newline) announces, if it is one. */
export function parseToolCallLine(line: string): ToolCallLine | undefined {
  const match = LINE.exec(line.replace(CSI, '').trimEnd());
  if (!match) return undefined;
  const [, kind, toolName = '', rest] = match;
  const value = parseValue(rest);
  return kind === 'start' ? { kind: 'start', toolName, input: value } : { kind: 'result', toolName, result: value };
}

function parseValue(text: string | undefined): unknown {
  if (text === undefined || text.trim() === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * Splits streamed text into lines (`\n`, with a `\r` before it dropped, as a terminal writes them) and
 * answers the tool calls among the complete ones. Holds at most {@link MAX_TOOL_CALL_LINE} characters
 * of an unfinished line.
 */
export class ToolCallLines {
  #partial = '';
  /** The current line grew past the bound: everything up to its end is skipped. */
  #skipping = false;

  /** The tool calls completed by `text`. */
  push(text: string): ToolCallLine[] {
    const calls: ToolCallLine[] = [];
    let start = 0;
    for (let newline = text.indexOf('\n'); newline >= 0; newline = text.indexOf('\n', start)) {
      const piece = text.slice(start, newline);
      start = newline + 1;
      if (!this.#skipping) {
        const call = parseToolCallLine(this.#partial + piece);
        if (call) calls.push(call);
      }
      this.#partial = '';
      this.#skipping = false;
    }
    if (!this.#skipping) {
      this.#partial += text.slice(start);
      if (this.#partial.length > MAX_TOOL_CALL_LINE) {
        this.#partial = '';
        this.#skipping = true;
      }
    }
    return calls;
  }

  /** Output was skipped (a gap): the unfinished line is dropped, and the rest of it up to the next newline too. */
  reset(): void {
    this.#partial = '';
    this.#skipping = true;
  }
}
