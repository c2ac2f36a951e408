// The live frontend (FERROCHAT_FRONTEND=live) in headless Chromium: alice on node A, bob on
// node B (one database, one Redis). Node A is killed and restarted mid-conversation while bob
// keeps sending; alice's page reconnects by itself and shows every message once, in order.
//
// Run by tests/browser_live.rs, which starts both nodes and passes:
//   FERROCHAT_URL_A        alice's node, e.g. http://127.0.0.1:41234
//   FERROCHAT_URL_B        bob's node
//   FERROCHAT_CONTROL_URL  GET /kill kills node A (SIGKILL); GET /start starts it again (answers
//                          once it is healthy)
//   FERROCHAT_PASSWORD     the password of the users alice and bob
//   FERROCHAT_ARTIFACTS    a directory for the screenshots
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Cast, logOf, required } from './live-common.mjs';

const NODE_A = required('FERROCHAT_URL_A');
const NODE_B = required('FERROCHAT_URL_B');
const CONTROL = required('FERROCHAT_CONTROL_URL');
const ARTIFACTS = required('FERROCHAT_ARTIFACTS');
// Node A is down for about 10 s; the backoff's next try comes at most 16 s after it is back.
const RECONNECT_WAIT = 45_000;

const cast = new Cast(required('FERROCHAT_PASSWORD'), 'live-room');

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  await cast.open('alice', NODE_A);
  await cast.open('bob', NODE_B);
});

after(() => cast.close());

test('alice on node A and bob on node B open the live room page', async () => {
  await cast.logIn('alice');
  await cast.logIn('bob');
  await cast.openRoom('alice');
  await cast.openRoom('bob');
  for (const name of ['alice', 'bob']) {
    const page = cast.page(name);
    assert.equal(await page.textContent('h1'), '#live-room');
    assert.equal(await page.getAttribute('#chat-message-input', 'placeholder'), `Message #live-room as ${name}`);
  }
});

test('each sees both in the member list, across the two nodes', async () => {
  await cast.waitForMembers('alice', ['alice', 'bob']);
  await cast.waitForMembers('bob', ['alice', 'bob']);
  assert.equal(await cast.page('alice').textContent('#chat-members li.me'), 'alice');
  assert.equal(await cast.page('bob').textContent('#chat-members li.me'), 'bob');
});

test('the typing line shows who is typing, and clears when their message arrives', async () => {
  const alice = cast.page('alice');
  const bob = cast.page('bob');
  const typing = (page) => page.textContent('#chat-typing');
  await alice.locator('#chat-message-input').pressSequentially('hel', { delay: 30 });
  await bob.waitForFunction(() => document.getElementById('chat-typing').textContent === 'alice is typing…');
  // Nobody sees their own typing.
  assert.equal(await typing(alice), '');
  await alice.locator('#chat-message-input').pressSequentially('lo from alice', { delay: 10 });
  await alice.locator('#chat-message-input').press('Enter');
  cast.expected.push(['alice', 'hello from alice']);
  await cast.waitForExpected('bob');
  await bob.waitForFunction(() => document.getElementById('chat-typing').textContent === '');

  await bob.locator('#chat-message-input').pressSequentially('hi', { delay: 30 });
  await alice.waitForFunction(() => document.getElementById('chat-typing').textContent === 'bob is typing…');
  await bob.locator('#chat-message-input').fill('');
  // Without another typing frame the line empties by itself.
  await alice.waitForFunction(() => document.getElementById('chat-typing').textContent === '', null, { timeout: 8_000 });
});

test('they chat across the nodes, user text shown as text', async () => {
  await cast.send('bob', 'hi alice, bob here on node B');
  await cast.send('alice', 'caf\u00e9 <b>not bold</b> \u{1f600}');
  await cast.send('bob', 'and back to bob');
  await cast.waitForExpected('alice');
  await cast.waitForExpected('bob');
  assert.equal(await cast.page('alice').locator('#chat-log b').count(), 0);
  await cast.page('alice').screenshot({ path: join(ARTIFACTS, 'live-room.png'), fullPage: true });
});

test('node A is killed: alice\'s page quietly reconnects while bob keeps sending', async () => {
  const alice = cast.page('alice');
  const response = await fetch(`${CONTROL}/kill`);
  assert.equal(response.status, 200);
  await alice.waitForFunction(() => document.getElementById('chat-status').textContent === 'reconnecting…');
  assert.equal(await alice.getAttribute('#chat-status', 'data-connection'), 'reconnecting');
  assert.match(await alice.getAttribute('#chat-status', 'class'), /\breconnecting\b/);
  assert.doesNotMatch(await alice.getAttribute('#chat-status', 'class'), /\berror\b/);
  await alice.screenshot({ path: join(ARTIFACTS, 'live-reconnecting.png'), fullPage: true });

  for (let i = 1; i <= 5; i += 1) {
    await cast.send('bob', `bob while node A is down, ${i}`);
  }
  await cast.waitForExpected('bob');
  // Alice's presence on the dead node expires: bob sees her leave.
  await cast.waitForMembers('bob', ['bob'], 20_000);
  assert.equal(await alice.textContent('#chat-status'), 'reconnecting…');
});

test('node A is back: alice\'s page catches up by itself, every message once and in order', async () => {
  const response = await fetch(`${CONTROL}/start`);
  assert.equal(response.status, 200);
  await cast.waitForConnection('alice', 'ferrochat.v1', RECONNECT_WAIT);
  const log = await cast.waitForExpected('alice');
  assert.deepEqual(log, await logOf(cast.page('bob')), 'alice and bob hold the same messages, same ids');
  await cast.waitForMembers('alice', ['alice', 'bob']);
  await cast.waitForMembers('bob', ['alice', 'bob']);

  await cast.send('alice', 'alice is back');
  await cast.send('bob', 'welcome back');
  await cast.waitForExpected('alice');
  await cast.waitForExpected('bob');
});

test('a reload shows the same history, ids and all', async () => {
  const alice = cast.page('alice');
  const live = await logOf(alice);
  await alice.reload();
  await cast.waitForConnection('alice', 'ferrochat.v1');
  assert.deepEqual(await logOf(alice), live);
  // The reloaded page resumes after its highest id: nothing is added twice.
  await cast.send('bob', 'after the reload');
  await cast.waitForExpected('alice');
});

test('on a phone-width screen the page still fits and works', async () => {
  const bob = cast.page('bob');
  await bob.setViewportSize({ width: 360, height: 740 });
  const overflow = await bob.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  for (const selector of ['#chat-message-input', '#chat-message-submit', '#chat-members', '#chat-log', '#chat-typing']) {
    const box = await bob.locator(selector).boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 360, `${selector} fits: ${JSON.stringify(box)}`);
  }
  await bob.locator('#chat-message-input').fill('sent from a phone-width screen');
  await bob.click('#chat-message-submit');
  await bob.waitForFunction(() => document.getElementById('chat-message-input').value === '');
  cast.expected.push(['bob', 'sent from a phone-width screen']);
  await cast.waitForExpected('alice');
  await cast.waitForExpected('bob');
  await bob.screenshot({ path: join(ARTIFACTS, 'live-phone.png'), fullPage: true });
});

test('no script errors on any page', () => {
  assert.deepEqual(cast.pageErrors, []);
});
