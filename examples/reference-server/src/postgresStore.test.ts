import { describePostgres } from '@lockstep/postgres/testing';
import { expect, it } from 'vitest';
import { SseReader, call, startTestServer } from './testing.js';

describePostgres('the reference server on PostgreSQL (--store postgres://…)', (db) => {
  it("runs two servers on one schema: a REST write on one reaches the other's event stream, and survives both", async () => {
    const store = `${db.url}${db.url.includes('?') ? '&' : '?'}schema=${db.schema()}`;
    const [a, b] = await Promise.all([startTestServer({ store, terminals: false }), startTestServer({ store, terminals: false })]);
    expect(a.storeDescription).toContain('schema=');

    const onB = new SseReader(b.url, '/api/streams/tasks/default/events');
    await onB.opened();
    const created = await call(a.url, 'POST', '/api/tasks', { body: { title: 'Written through server a' }, headers: { 'Idempotency-Key': 'pg-1' } });
    expect(created.status).toBe(201);
    await onB.waitFor((r) => r.events.length === 1, 'server b to stream the event');
    expect(onB.events[0]).toMatchObject({ version: 1, type: 'task.created', commandId: 'pg-1' });

    // The same key on the other server is the same command.
    const retried = await call(b.url, 'POST', '/api/tasks', { body: { title: 'Written through server a' }, headers: { 'Idempotency-Key': 'pg-1' } });
    expect(retried.json).toEqual(created.json);
    expect(retried.headers['idempotent-replayed']).toBe('true');
    await Promise.all([a.close(), b.close()]);

    const c = await startTestServer({ store, terminals: false });
    expect((await call(c.url, 'GET', '/api/tasks')).json.tasks).toEqual([expect.objectContaining({ title: 'Written through server a' })]);
  });
});
