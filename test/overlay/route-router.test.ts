/**
 * route.send made a supernode connect wherever a phone said, and passed the
 * OS error back (found in review: a port scanner). Forwarding to unknown
 * supernodes is the IndexService's call (index-service.test.ts); here: why a
 * forward failed stays in the supernode's log.
 */
import { expect, it } from 'vitest';
import { Router } from '../../src/overlay/route/router.js';
import { memoryLogger } from '../helpers/log.js';

it('answers a failed forward with a generic ERR_ROUTE_UNREACHABLE, without the reason', async () => {
  const router = new Router({
    log: memoryLogger().log,
    self: () => '192.0.2.1:4000',
    attached: () => undefined,
    toSupernode: () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:22'), { code: 'ECONNREFUSED' })),
  });
  const from = { user: 'mallory', deviceId: 'mmmmmmmmmmmmmmmm', supernode: '192.0.2.1:4000' };
  const to = { user: 'bob', deviceId: 'bbbbbbbbbbbbbbbb', supernode: '10.1.2.3:22' };
  const err = await router.route(from, to, 'c2VhbGVk').then(() => undefined, (e: unknown) => e as Error & { code: string });
  expect(err).toMatchObject({ code: 'ERR_ROUTE_UNREACHABLE' });
  expect(err!.message).not.toMatch(/ECONNREFUSED|refused/i);
  expect(router.stats().failed).toBe(1);
});
