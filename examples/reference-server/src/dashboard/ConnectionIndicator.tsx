import { useConnectionStatus } from '@lockstep/react';

const LABELS = { connecting: 'Connecting…', online: 'Live', resyncing: 'Catching up…', offline: 'Offline', closed: 'Closed' } as const;

/** The connection to the hub and the commands not yet confirmed by it. */
export function ConnectionIndicator() {
  const { status, pending, attempt, lastError, storage } = useConnectionStatus();
  const title =
    status === 'offline' && lastError
      ? `Retrying (attempt ${attempt}): ${lastError.message}`
      : storage === 'failed' && lastError
        ? `Not kept in this browser: ${lastError.message}`
        : undefined;
  return (
    <div className={`connection connection-${status}`} data-testid="connection" data-status={status} data-storage={storage} title={title}>
      <span className="dot" aria-hidden="true" />
      <span data-testid="connection-status">{LABELS[status]}</span>
      <span className="pending" data-testid="pending-count" data-pending={pending}>
        {pending === 0 ? 'all saved' : `${pending} pending`}
      </span>
    </div>
  );
}
