/**
 * `@lockstep/client/cross-tab`: one hub connection for all tabs of an origin (browsers).
 *
 * ```ts
 * import { createClient } from '@lockstep/client';
 * import { crossTabConnection } from '@lockstep/client/cross-tab';
 *
 * const tabs = crossTabConnection({ connect: webSocketConnector(url), domains: [tasksDomain] });
 * const client = createClient({ connect: tabs.connect });
 * tabs.serve(client);
 * ```
 */
export { CROSS_TAB_DEFAULTS, crossTabConnection, type CrossTabConnection, type CrossTabOptions } from './crossTab/crossTabConnection.js';
