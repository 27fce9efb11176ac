import { describe, expect, it } from 'vitest';
import { completeUtf8Length } from './sessionWatches.js';
import { MAX_TOOL_CALL_LINE, ToolCallLines, parseToolCallLine } from './toolCallLines.js';

describe('tool-call lines', () => {
  it("parses the agent's lines: JSON when it parses, else the text, null when there is none", () => {
    expect(parseToolCallLine('[tool_call_start] read_file {"path":"README.md"}')).toEqual({
      kind: 'start',
      toolName: 'read_file',
      input: { path: 'README.md' },
    });
    expect(parseToolCallLine('[tool_call_result] read_file {"lines":42}\r')).toEqual({ kind: 'result', toolName: 'read_file', result: { lines: 42 } });
    expect(parseToolCallLine('[tool_call_start] shell ls -la')).toEqual({ kind: 'start', toolName: 'shell', input: 'ls -la' });
    expect(parseToolCallLine('[tool_call_result] ping')).toEqual({ kind: 'result', toolName: 'ping', result: null });
    // Colours around it do not hide it.
    expect(parseToolCallLine('\x1b[2m[tool_call_start] search {"query":"x"}\x1b[0m')).toEqual({ kind: 'start', toolName: 'search', input: { query: 'x' } });
    for (const line of ['', 'Let me look at it.', ' [tool_call_start] indented {}', '[tool_call_start]', '[tool_call_end] x {}', '[tool_call_start]  {}']) {
      expect(parseToolCallLine(line)).toBeUndefined();
    }
  });

  it('finds them in streamed text whatever the chunks, and skips what it cannot hold', () => {
    const text = 'Let me look.\r\n[tool_call_start] list_files {"path":"."}\r\n[tool_call_result] list_files {"files":3}\r\nDone.\r\n';
    const whole = new ToolCallLines().push(text);
    expect(whole).toEqual([
      { kind: 'start', toolName: 'list_files', input: { path: '.' } },
      { kind: 'result', toolName: 'list_files', result: { files: 3 } },
    ]);
    // One character at a time: the same calls.
    const lines = new ToolCallLines();
    expect([...text].flatMap((character) => lines.push(character))).toEqual(whole);
    // A line longer than the bound is skipped up to its end; the next line counts again.
    const bounded = new ToolCallLines();
    expect(bounded.push(`[tool_call_start] big ${'x'.repeat(MAX_TOOL_CALL_LINE)}`)).toEqual([]);
    expect(bounded.push(' still the same line\n[tool_call_start] small {}\n')).toEqual([{ kind: 'start', toolName: 'small', input: {} }]);
    // After a gap the cut line is not taken for a whole one.
    const gap = new ToolCallLines();
    gap.push('[tool_call_start] cut ');
    gap.reset();
    expect(gap.push('{"half":true}\n[tool_call_result] cut {}\n')).toEqual([{ kind: 'result', toolName: 'cut', result: {} }]);
  });
});

describe('cutting output between characters', () => {
  it('leaves out a UTF-8 sequence cut at the end, and nothing else', () => {
    const bytes = Buffer.from('a é ✓ 🚀');
    expect(completeUtf8Length(bytes)).toBe(bytes.length);
    // Every cut inside the 4-byte rocket (or the 3-byte check mark) stops before it.
    const rocket = bytes.indexOf(Buffer.from('🚀'));
    for (let cut = rocket + 1; cut < rocket + 4; cut++) expect(completeUtf8Length(bytes.subarray(0, cut))).toBe(rocket);
    const check = bytes.indexOf(Buffer.from('✓'));
    for (let cut = check + 1; cut < check + 3; cut++) expect(completeUtf8Length(bytes.subarray(0, cut))).toBe(check);
    expect(completeUtf8Length(Buffer.from('abc'))).toBe(3);
    expect(completeUtf8Length(Buffer.alloc(0))).toBe(0);
    // Bytes that are no UTF-8 at all are not held back for ever.
    expect(completeUtf8Length(Buffer.from([0x80, 0x80, 0x80, 0x80]))).toBe(4);
  });
});
