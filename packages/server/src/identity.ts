/** Who is on the other end of a connection, as decided by `authenticate`. */
export interface Identity {
  /** A stable id for the principal (user, service, agent). */
  id: string;
  [claim: string]: unknown;
}

export type StreamAction = 'read' | 'write';
/** What the `authorize` hook is asked about: a stream (`read`, `write`) or a service method (`call`). */
export type AccessAction = StreamAction | 'call';
