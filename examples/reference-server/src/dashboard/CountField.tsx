import { MAX_WORKSPACE_COUNT } from '@lockstep/core';
import { useState, type KeyboardEvent } from 'react';

interface CountFieldProps {
  value: number;
  label: string;
  onCommit: (value: number) => void;
  testId: string;
}

/**
 * A count the user can edit: − and + step it, the field takes a number (Enter or leaving the field
 * commits it, Escape reverts). While the field is not being edited it shows the live value.
 */
export function CountField({ value, label, onCommit, testId }: CountFieldProps) {
  const [draft, setDraft] = useState<string | undefined>(undefined);
  const commit = () => {
    if (draft === undefined) return;
    setDraft(undefined);
    const next = Number(draft);
    if (draft.trim() !== '' && Number.isInteger(next) && next >= 0 && next <= MAX_WORKSPACE_COUNT && next !== value) onCommit(next);
  };
  const onKeyDown = (event: KeyboardEvent<HTMLInputElement>) => {
    if (event.key === 'Enter') commit();
    else if (event.key === 'Escape') setDraft(undefined);
  };
  return (
    <span className="count-field" data-testid={testId} data-value={value}>
      <button
        type="button"
        className="icon"
        aria-label={`${label} minus one`}
        disabled={value <= 0}
        onClick={() => onCommit(value - 1)}
        data-testid={`${testId}-dec`}
      >
        −
      </button>
      <input
        type="number"
        min={0}
        max={MAX_WORKSPACE_COUNT}
        aria-label={label}
        value={draft ?? String(value)}
        onChange={(event) => setDraft(event.target.value)}
        onBlur={commit}
        onKeyDown={onKeyDown}
        data-testid={`${testId}-input`}
      />
      <button
        type="button"
        className="icon"
        aria-label={`${label} plus one`}
        disabled={value >= MAX_WORKSPACE_COUNT}
        onClick={() => onCommit(value + 1)}
        data-testid={`${testId}-inc`}
      >
        +
      </button>
    </span>
  );
}
