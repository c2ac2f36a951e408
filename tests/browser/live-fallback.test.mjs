// The live frontend behind a load balancer whose node may not speak ferrochat.v1: alice's
// handshakes go through a balancer that, in "legacy" mode, answers as a Daphne node does (no
// subprotocol selected); bob talks to ferrochat directly. Alice's page falls back to the legacy
// protocol, catches up from the room page after a reconnect, and goes back to ferrochat.v1 when
// the node speaks it again.
//
// Run by tests/browser_live.rs, which passes:
//   FERROCHAT_BALANCED_URL  the balancer in front of ferrochat (alice)
//   FERROCHAT_URL           ferrochat itself (bob)
//   FERROCHAT_CONTROL_URL   GET /down (drop every connection, refuse new ones), /legacy (pass
//                           through without Sec-WebSocket-Protocol), /v1 (pass through)
//   FERROCHAT_PASSWORD      the password of the users alice and bob
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cast, required } from './live-common.mjs';

const BALANCED = required('FERROCHAT_BALANCED_URL');
const DIRECT = required('FERROCHAT_URL');
const CONTROL = required('FERROCHAT_CONTROL_URL');
const RECONNECT_WAIT = 45_000;

const cast = new Cast(required('FERROCHAT_PASSWORD'), 'fallback-room');

async function balancer(mode) {
  const response = await fetch(`${CONTROL}/${mode}`);
  assert.equal(response.status, 200, mode);
}

before(async () => {
  await cast.open('alice', BALANCED);
  await cast.open('bob', DIRECT);
});

after(() => cast.close());

test('on a node that does not select ferrochat.v1, the page speaks the legacy protocol', async () => {
  await balancer('legacy');
  await cast.logIn('alice');
  await cast.logIn('bob');
  await cast.openRoom('alice', 'legacy');
  await cast.openRoom('bob', 'ferrochat.v1');
  // No presence on the legacy protocol: the member list is hidden, not wrong.
  assert.equal(await cast.page('alice').isVisible('#chat-members'), false);
  await cast.send('bob', 'bob on ferrochat.v1');
  await cast.send('alice', 'alice on the legacy protocol');
  await cast.waitForExpected('alice');
  await cast.waitForExpected('bob');
  // Her legacy socket is on a ferrochat node: she counts as present.
  await cast.waitForMembers('bob', ['alice', 'bob']);
});

test('after a reconnect on the legacy protocol, the missed messages come from the room page', async () => {
  await balancer('down');
  await cast.page('alice').waitForFunction(() => document.getElementById('chat-status').dataset.connection === 'reconnecting');
  for (let i = 1; i <= 3; i += 1) {
    await cast.send('bob', `missed by alice, ${i}`);
  }
  await balancer('legacy');
  await cast.waitForConnection('alice', 'legacy', RECONNECT_WAIT);
  await cast.waitForExpected('alice');
});

test('when the node speaks ferrochat.v1 again, the next reconnect uses it and catches up', async () => {
  await balancer('down');
  await cast.page('alice').waitForFunction(() => document.getElementById('chat-status').dataset.connection === 'reconnecting');
  await cast.send('bob', 'missed again');
  await balancer('v1');
  await cast.waitForConnection('alice', 'ferrochat.v1', RECONNECT_WAIT);
  await cast.waitForExpected('alice');
  await cast.waitForMembers('alice', ['alice', 'bob']);
  await cast.send('alice', 'alice back on ferrochat.v1');
  await cast.waitForExpected('bob');
});

test('no script errors on any page', () => {
  assert.deepEqual(cast.pageErrors, []);
});
