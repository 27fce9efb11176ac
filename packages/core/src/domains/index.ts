import { focusDomain, type FocusDomain } from './focus.js';
import { orchestrationDomain, type OrchestrationDomain } from './orchestration.js';
import { tasksDomain, type TasksDomain } from './tasks.js';

export {
  DEFAULT_MAX_FOCUSED,
  MAX_FOCUSED_LIMIT,
  evictionOrder,
  focusDomain,
  isFocused,
  nextEviction,
  type FocusDomain,
  type FocusLossReason,
  type FocusState,
} from './focus.js';
export { ENTITY_ID_PATTERN, own } from './keys.js';
export {
  MAX_WORKSPACE_COUNT,
  MAX_WORKSPACE_ID_LENGTH,
  orchestrationDomain,
  type OrchestrationDomain,
  type OrchestrationState,
  type OrchestrationTotals,
  type WorkspaceEntry,
  type WorkspaceRemovalReason,
} from './orchestration.js';
export {
  SESSION_KINDS,
  SESSION_PROFILE_PATTERN,
  SESSION_STATUSES,
  SIGNAL_NAME_PATTERN,
  TASK_LIMITS,
  TASK_PRIORITIES,
  TASK_STATUSES,
  sessionCount,
  sessionsOfTask,
  taskCount,
  tasksByStatus,
  tasksDomain,
  tasksOfSession,
  type LinkRemovalReason,
  type Session,
  type SessionChanges,
  type SessionKind,
  type SessionStatus,
  type Task,
  type TaskChanges,
  type TaskPriority,
  type TaskStatus,
  type TasksDomain,
  type TasksState,
} from './tasks.js';

/** The three built-in domains, ready to hand to a hub. */
export const builtInDomains: readonly [OrchestrationDomain, FocusDomain, TasksDomain] = [orchestrationDomain, focusDomain, tasksDomain];
