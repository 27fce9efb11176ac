/**
 * The terminal methods and notifications of lockstep/1 (`@lockstep/pty/protocol`): schemas and types
 * only, with no Node imports, so a browser client can validate what it receives.
 */
import { defineService, method, notification } from '@lockstep/core';
import * as z from 'zod';

/**
 * Terminal ids: 1–96 characters of `A-Z a-z 0-9 _ . : -`, not starting with `.`, `:` or `-`. So an
 * id is also a valid session id of the tasks and focus streams, and `terminal/<id>` (what the
 * authorize hook sees) is a valid stream name.
 */
export const TERMINAL_ID_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,95}$/;

/** Terminal sizes are whole numbers of cells in `1 … MAX_TERMINAL_SIZE`; others are refused, not clamped. */
export const MAX_TERMINAL_SIZE = 1000;

const RESERVED_IDS = new Set(['__proto__', 'constructor', 'prototype']);

export const terminalIdSchema = z
  .string()
  .regex(TERMINAL_ID_PATTERN, 'terminal ids are 1–96 characters of A-Z a-z 0-9 _ . : -, not starting with . : -')
  .refine((id) => !RESERVED_IDS.has(id), { message: '"__proto__", "constructor" and "prototype" are reserved' });

export const terminalSizeSchema = z.number().int().min(1).max(MAX_TERMINAL_SIZE);

/** The stream name the authorize hook is asked about for a terminal: `terminal/<id>`. */
export function terminalResource(terminalId: string): string {
  return `terminal/${terminalId}`;
}

/** The lockstep/1 methods of the terminal extension (client → hub requests). */
export const TerminalMethods = {
  attach: 'terminal.attach',
  detach: 'terminal.detach',
  input: 'terminal.input',
  resize: 'terminal.resize',
} as const;

/** The notifications of the terminal extension (hub → client). */
export const TerminalNotifications = {
  output: 'terminal.output',
  exit: 'terminal.exit',
  resized: 'terminal.resized',
  detached: 'terminal.detached',
} as const;

/** The largest input one `terminal.input` carries, in bytes (after decoding). */
export const MAX_INPUT_BYTES = 64 * 1024;

const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const offsetSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const attachParamsSchema = z.object({
  terminalId: terminalIdSchema,
  /** The offset the viewer already has every byte before (the sum of what it received). Default 0. */
  since: offsetSchema.optional(),
});
export type AttachParams = z.infer<typeof attachParamsSchema>;

export interface AttachResult {
  terminalId: string;
  /** Unique per spawn of the terminal: offsets from another run mean nothing in this one. */
  runId: string;
  /** Output follows from this offset: `since`, or the oldest retained byte when `truncated`. */
  offset: number;
  /** The end of the output released so far (replay runs up to here, live output follows). */
  end: number;
  /** Bytes between `since` and `offset` are no longer retained: the viewer has a gap there. */
  truncated?: true;
  cols: number;
  rows: number;
  /** The program has already exited; `terminal.exit` follows the replay. */
  exited?: true;
}

export const detachParamsSchema = z.object({ terminalId: terminalIdSchema });

export const inputParamsSchema = z
  .object({
    terminalId: terminalIdSchema,
    /** What to write: text (written as UTF-8), or bytes as base64 with `encoding: 'base64'`. */
    data: z.string().max(Math.ceil(MAX_INPUT_BYTES / 3) * 4),
    encoding: z.enum(['utf8', 'base64']).optional(),
  })
  .superRefine((params, ctx) => {
    if (params.encoding === 'base64') {
      if (!BASE64_PATTERN.test(params.data)) ctx.addIssue({ code: 'custom', path: ['data'], message: 'data is not base64' });
    } else if (utf8Length(params.data) > MAX_INPUT_BYTES) {
      ctx.addIssue({ code: 'custom', path: ['data'], message: `input is limited to ${MAX_INPUT_BYTES} bytes` });
    }
  });
export type InputParams = z.infer<typeof inputParamsSchema>;

export const resizeParamsSchema = z.object({ terminalId: terminalIdSchema, cols: terminalSizeSchema, rows: terminalSizeSchema });

/** `terminal.output`: bytes of output, base64, starting at the absolute byte offset `offset`. */
export interface OutputNotification {
  terminalId: string;
  offset: number;
  /** The bytes as base64 (standard alphabet, padded). May end or start inside a UTF-8 sequence. */
  data: string;
  /** Bytes before `offset` that this viewer had not received were skipped (it fell behind the bound). */
  truncated?: true;
}

/** `terminal.exit`: sent once per attachment, after the last output. */
export interface ExitNotification {
  terminalId: string;
  exitCode: number;
  signal?: string;
}

/** `terminal.resized`: someone resized the terminal. */
export interface ResizedNotification {
  terminalId: string;
  cols: number;
  rows: number;
}

/**
 * `terminal.detached`: the hub ended this connection's attachment (its identity may no longer read the
 * terminal: a grant was revoked and the application called `hub.reauthorize`). No more output follows;
 * `error` is the refusal as an error answer carries it (`FORBIDDEN`). Attaching again asks again.
 */
export interface DetachedNotification {
  terminalId: string;
  error: { code: number; message: string; data?: unknown };
}

export const attachResultSchema = z.object({
  terminalId: z.string(),
  runId: z.string(),
  offset: offsetSchema,
  end: offsetSchema,
  truncated: z.literal(true).optional(),
  cols: terminalSizeSchema,
  rows: terminalSizeSchema,
  exited: z.literal(true).optional(),
});

export const outputNotificationSchema = z.object({
  terminalId: z.string(),
  offset: offsetSchema,
  data: z.string().regex(BASE64_PATTERN),
  truncated: z.literal(true).optional(),
});

export const exitNotificationSchema = z.object({ terminalId: z.string(), exitCode: z.number().int(), signal: z.string().optional() });

export const resizedNotificationSchema = z.object({ terminalId: z.string(), cols: terminalSizeSchema, rows: terminalSizeSchema });

export const detachedNotificationSchema = z.object({
  terminalId: z.string(),
  error: z.object({ code: z.number().int(), message: z.string(), data: z.unknown().optional() }),
});

/** Bytes of `text` in UTF-8 (lone surrogates count 3, as the encoder writes U+FFFD for them). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

export const detachResultSchema = z.object({});
export const inputResultSchema = z.object({});
export const resizeResultSchema = z.object({ cols: terminalSizeSchema, rows: terminalSizeSchema });

/**
 * The terminal service (`terminal.*`), defined once for both sides: the hub serves its methods
 * (`createTerminalExtension`), a client calls them (`client.call(terminalService.attach, {terminalId})`)
 * and listens to its notifications (`client.on(terminalService.output, …)`), all validated with these
 * schemas. The wire names are those of {@link TerminalMethods} and {@link TerminalNotifications}.
 */
export const terminalService = defineService('terminal', '1.0.0', {
  attach: method({ params: attachParamsSchema, result: attachResultSchema }),
  detach: method({ params: detachParamsSchema, result: detachResultSchema, idempotent: true }),
  input: method({ params: inputParamsSchema, result: inputResultSchema }),
  resize: method({ params: resizeParamsSchema, result: resizeResultSchema, idempotent: true }),
  output: notification({ params: outputNotificationSchema }),
  exit: notification({ params: exitNotificationSchema }),
  resized: notification({ params: resizedNotificationSchema }),
  detached: notification({ params: detachedNotificationSchema }),
});
export type TerminalService = typeof terminalService;
