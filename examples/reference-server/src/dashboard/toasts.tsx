import { LockstepError, TransportError } from '@lockstep/core';
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react';

export interface Toast {
  id: number;
  kind: 'error' | 'info';
  text: string;
}

interface Toasts {
  toasts: readonly Toast[];
  push: (kind: Toast['kind'], text: string, ttlMs?: number) => void;
  dismiss: (id: number) => void;
}

const ToastContext = createContext<Toasts | null>(null);
let nextId = 1;

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<readonly Toast[]>([]);
  const dismiss = useCallback((id: number) => setToasts((list) => list.filter((toast) => toast.id !== id)), []);
  const push = useCallback(
    (kind: Toast['kind'], text: string, ttlMs = 8_000) => {
      const id = nextId++;
      setToasts((list) => [...list.slice(-4), { id, kind, text }]);
      setTimeout(() => dismiss(id), ttlMs);
    },
    [dismiss],
  );
  const value = useMemo(() => ({ toasts, push, dismiss }), [toasts, push, dismiss]);
  return <ToastContext.Provider value={value}>{children}</ToastContext.Provider>;
}

export function useToasts(): Toasts {
  const toasts = useContext(ToastContext);
  if (!toasts) throw new Error('useToasts needs a <ToastProvider>');
  return toasts;
}

/** Explains a refusal in one line: the stable code, the domain's reason, the message. */
export function describeError(error: unknown): string {
  if (error instanceof LockstepError) {
    const reason = (error.data as { reason?: unknown } | undefined)?.reason;
    return `${error.code}${typeof reason === 'string' ? ` (${reason})` : ''}: ${error.message}`;
  }
  if (error instanceof TransportError) return `connection: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs a command and reports its refusal as a toast. The command's effect is already on screen
 * (optimistic); a refusal takes it back and says why.
 */
export function useReport(): (action: Promise<unknown>) => void {
  const { push } = useToasts();
  return useCallback((action: Promise<unknown>) => void action.catch((error: unknown) => push('error', describeError(error))), [push]);
}

export function ToastList() {
  const { toasts, dismiss } = useToasts();
  return (
    <div className="toasts" aria-live="polite">
      {toasts.map((toast) => (
        <div key={toast.id} className={`toast toast-${toast.kind}`} data-testid={`toast-${toast.kind}`} role={toast.kind === 'error' ? 'alert' : 'status'}>
          <span>{toast.text}</span>
          <button type="button" className="icon" aria-label="Dismiss" onClick={() => dismiss(toast.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
