import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';

/**
 * The HTTP status a WebSocket upgrade of `url` (its host, port and path) is answered with, 101 when
 * it succeeds (the socket is closed at once): for checking a server's upgrade-time refusals (Host,
 * Origin, token) with exactly the headers a test chooses.
 */
export function upgradeStatus(url: string, headers: Record<string, string>, subprotocols: readonly string[] = ['lockstep.v1.json']): Promise<number> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const request = httpRequest({
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        'Sec-WebSocket-Protocol': subprotocols.join(', '),
        ...headers,
      },
    });
    request.on('upgrade', (response, socket) => {
      socket.destroy();
      resolve(response.statusCode ?? 0);
    });
    request.on('response', (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('error', reject);
    request.end();
  });
}
