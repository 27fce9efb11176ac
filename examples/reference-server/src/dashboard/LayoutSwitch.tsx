import { usePreference } from './preferences.js';

/**
 * What the main area shows: the task board, the focused sessions' terminals, or both — the board
 * above, bounded so that the terminals below it stay in the window however many tasks there are
 * (the board scrolls inside). Remembered in this browser.
 */
export const LAYOUTS = ['board', 'both', 'terminals'] as const;
export type Layout = (typeof LAYOUTS)[number];
export const DEFAULT_LAYOUT: Layout = 'both';

const LABELS: Record<Layout, string> = { board: 'Board', both: 'Both', terminals: 'Terminals' };
const parseLayout = (stored: string): Layout | undefined => LAYOUTS.find((layout) => layout === stored);

export function useLayout(): [Layout, (layout: Layout) => void] {
  return usePreference<Layout>('layout', parseLayout, DEFAULT_LAYOUT);
}

/** Three buttons in the top bar, one pressed. */
export function LayoutSwitch() {
  const [layout, setLayout] = useLayout();
  return (
    <div className="segmented" role="group" aria-label="Layout" data-testid="layout-switch" data-layout={layout}>
      {LAYOUTS.map((option) => (
        <button key={option} type="button" aria-pressed={layout === option} onClick={() => setLayout(option)} data-testid={`layout-${option}`}>
          {LABELS[option]}
        </button>
      ))}
    </div>
  );
}
