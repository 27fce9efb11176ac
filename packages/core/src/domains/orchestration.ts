import type { Draft } from 'immer';
import * as z from 'zod';
import { defineDomain, type DecideContext } from '../domain.js';
import { reject } from '../errors.js';
import { own, recordKeySchema } from './keys.js';

/** The largest `desired` or `running` count a workspace may report. */
export const MAX_WORKSPACE_COUNT = 10_000;
/** Workspace ids are often absolute paths, hence the generous bound. */
export const MAX_WORKSPACE_ID_LENGTH = 512;

export interface WorkspaceEntry {
  running: number;
  desired: number;
  /** The client id holding the lease on this entry: when it is gone, the hub removes the entry. */
  leasedTo?: string;
  /** Time of the last change (ms since the epoch, from the hub's clock). */
  updatedAt: number;
}

export interface OrchestrationTotals {
  running: number;
  desired: number;
}

export interface OrchestrationState {
  workspaces: Record<string, WorkspaceEntry>;
  /** Always the sums over `workspaces`. */
  totals: OrchestrationTotals;
}

export type WorkspaceRemovalReason = 'removed' | 'leaseExpired';

const workspaceId = recordKeySchema(MAX_WORKSPACE_ID_LENGTH);
const count = z.number().int().min(0).max(MAX_WORKSPACE_COUNT);
const holder = z.string().min(1).max(128);
const time = z.number();

/** Takes the lease (`true`), releases it (`false`) or leaves it as it is (omitted). */
const lease = z.boolean().optional();

function resolveLease(lease: boolean | undefined, current: string | undefined, ctx: DecideContext): string | undefined {
  if (lease === undefined) return current;
  if (!lease) return undefined;
  return ctx.clientId ?? reject('lease.noClient', 'a lease needs a client id: send one in hello', { stream: ctx.stream });
}

function setLease(entry: Draft<WorkspaceEntry>, leasedTo: string | undefined): void {
  if (leasedTo !== undefined) entry.leasedTo = leasedTo;
  else if (entry.leasedTo !== undefined) delete entry.leasedTo;
}

/**
 * Running and desired agent counts per workspace, with global totals. One stream per tenant
 * (`orchestration/default`). Entries may be leased to the client that set them, so a closed IDE
 * stops counting once its lease expires.
 */
export const orchestrationDomain = defineDomain({
  name: 'orchestration',
  initialState: (): OrchestrationState => ({ workspaces: {}, totals: { running: 0, desired: 0 } }),
  commands: {
    'workspace.setDesired': z.strictObject({ workspaceId, desired: count, lease }),
    'workspace.setRunning': z.strictObject({ workspaceId, running: count, lease }),
    'workspace.remove': z.strictObject({ workspaceId }),
    /** Issued by the hub when a lease holder has been gone longer than the grace period. */
    'workspace.expireLease': z.strictObject({ workspaceId, holder }),
  },
  events: {
    'workspace.desiredSet': z.object({ workspaceId, desired: count, leasedTo: holder.optional(), at: time }),
    'workspace.runningSet': z.object({ workspaceId, running: count, leasedTo: holder.optional(), at: time }),
    'workspace.removed': z.object({ workspaceId, reason: z.enum(['removed', 'leaseExpired']) }),
  },
  // Literal values in returned events need `as const`: TypeScript widens them while it infers the
  // domain's types (see docs/domains.md).
  decide: {
    'workspace.setDesired': ({ workspaceId, desired, lease }, state, ctx) => {
      const entry = own(state.workspaces, workspaceId);
      const leasedTo = resolveLease(lease, entry?.leasedTo, ctx);
      if (entry && entry.desired === desired && entry.leasedTo === leasedTo) return [];
      const data = { workspaceId, desired, at: ctx.now };
      return [{ type: 'workspace.desiredSet', data: leasedTo === undefined ? data : { ...data, leasedTo } }];
    },
    'workspace.setRunning': ({ workspaceId, running, lease }, state, ctx) => {
      const entry = own(state.workspaces, workspaceId);
      const leasedTo = resolveLease(lease, entry?.leasedTo, ctx);
      if (entry && entry.running === running && entry.leasedTo === leasedTo) return [];
      const data = { workspaceId, running, at: ctx.now };
      return [{ type: 'workspace.runningSet', data: leasedTo === undefined ? data : { ...data, leasedTo } }];
    },
    'workspace.remove': ({ workspaceId }, state) => {
      if (!own(state.workspaces, workspaceId)) {
        reject('workspace.notFound', `no workspace ${JSON.stringify(workspaceId)}`, { workspaceId });
      }
      return [{ type: 'workspace.removed', data: { workspaceId, reason: 'removed' as const } }];
    },
    // Never rejects: the hub runs it unattended, possibly after the entry changed hands.
    'workspace.expireLease': ({ workspaceId, holder }, state) => {
      if (own(state.workspaces, workspaceId)?.leasedTo !== holder) return [];
      return [{ type: 'workspace.removed', data: { workspaceId, reason: 'leaseExpired' as const } }];
    },
  },
  evolve: {
    'workspace.desiredSet': (draft, { workspaceId, desired, leasedTo, at }) => {
      const entry = own(draft.workspaces, workspaceId);
      if (entry) {
        draft.totals.desired += desired - entry.desired;
        entry.desired = desired;
        entry.updatedAt = at;
        setLease(entry, leasedTo);
      } else {
        draft.totals.desired += desired;
        draft.workspaces[workspaceId] = leasedTo === undefined ? { running: 0, desired, updatedAt: at } : { running: 0, desired, leasedTo, updatedAt: at };
      }
    },
    'workspace.runningSet': (draft, { workspaceId, running, leasedTo, at }) => {
      const entry = own(draft.workspaces, workspaceId);
      if (entry) {
        draft.totals.running += running - entry.running;
        entry.running = running;
        entry.updatedAt = at;
        setLease(entry, leasedTo);
      } else {
        draft.totals.running += running;
        draft.workspaces[workspaceId] = leasedTo === undefined ? { running, desired: 0, updatedAt: at } : { running, desired: 0, leasedTo, updatedAt: at };
      }
    },
    'workspace.removed': (draft, { workspaceId }) => {
      const entry = own(draft.workspaces, workspaceId);
      if (!entry) return;
      draft.totals.running -= entry.running;
      draft.totals.desired -= entry.desired;
      delete draft.workspaces[workspaceId];
    },
  },
  leases: {
    *holders(state) {
      for (const [key, entry] of Object.entries(state.workspaces)) {
        if (entry.leasedTo !== undefined) yield { key, holder: entry.leasedTo };
      }
    },
    expire: (key, holder) => ({ type: 'workspace.expireLease', payload: { workspaceId: key, holder } }),
  },
});

export type OrchestrationDomain = typeof orchestrationDomain;
