/**
 * Whether this tab's hub connection is shared with the other tabs of the browser (main.tsx,
 * `@lockstep/client/cross-tab`). The hub keeps a terminal attachment per connection, so with one
 * connection for all tabs, a tab that detached a terminal would stop its output in every tab that
 * shows it: a shared connection's terminals stay attached until the connection ends.
 */
export const sharedConnection = { shared: false };
