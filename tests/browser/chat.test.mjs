// Two people chat through ferrochat in headless Chromium with the legacy frontend files.
//
// Run by tests/browser_e2e.rs, which starts ferrochat and passes:
//   FERROCHAT_URL       the server, e.g. http://127.0.0.1:41234
//   FERROCHAT_STOP_URL  a URL that stops the server when fetched (for "Connection lost")
//   FERROCHAT_PASSWORD  the password of the users alice and bob
//   FERROCHAT_ARTIFACTS a directory for the screenshot
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = required('FERROCHAT_URL');
const STOP_URL = required('FERROCHAT_STOP_URL');
const PASSWORD = required('FERROCHAT_PASSWORD');
const ARTIFACTS = required('FERROCHAT_ARTIFACTS');
const ROOM = 'e2e-room';
const WAIT = 10_000;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run this through tests/browser_e2e.rs)`);
  return value;
}

const people = {};
const profiles = [];
const pageErrors = [];

// One browser per person, each with a fresh profile directory: two separate cookie jars.
async function openBrowser(name) {
  const profile = mkdtempSync(join(tmpdir(), `ferrochat-chromium-${name}-`));
  profiles.push(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1000, height: 700 },
  });
  context.setDefaultTimeout(WAIT);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`));
  // Failed loads are judged by URL below (the browser's own /favicon.ico is a 404 on the
  // legacy app as well); the socket failing once the server is stopped is expected.
  page.on('console', (msg) => {
    const text = msg.text();
    if (msg.type() === 'error' && !text.includes('WebSocket') && !text.startsWith('Failed to load resource')) {
      pageErrors.push(`${name}: ${text}`);
    }
  });
  page.on('response', (response) => {
    if (response.status() >= 400 && new URL(response.url()).pathname !== '/favicon.ico') {
      pageErrors.push(`${name}: HTTP ${response.status()} for ${response.url()}`);
    }
  });
  people[name] = { context, page };
  return page;
}

async function logIn(page, username) {
  await page.goto(`${BASE}/login/`);
  await page.fill('#id_username', username);
  await page.fill('#id_password', PASSWORD);
  await Promise.all([page.waitForURL(`${BASE}/`), page.click('button[type=submit]')]);
}

// room.js drops a send while its socket is still connecting and then leaves the text in the
// input, so an emptied input means the message went out.
async function send(page, text, how) {
  const input = page.locator('#chat-message-input');
  await input.fill(text);
  const deadline = Date.now() + WAIT;
  for (;;) {
    if (how === 'enter') await input.press('Enter');
    else await page.click('#chat-message-submit');
    try {
      await page.waitForFunction(() => document.getElementById('chat-message-input').value === '', null, { timeout: 250 });
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`"${text}" was never sent (socket not open?)`);
    }
  }
}

async function logOf(page) {
  return page.$$eval('#chat-log .message', (nodes) => nodes.map((n) => ({
    user: n.querySelector('.username').textContent,
    text: n.querySelector('.content').textContent,
    datetime: n.querySelector('time').getAttribute('datetime'),
    time: n.querySelector('time').textContent,
  })));
}

async function waitForLog(page, count) {
  await page.waitForFunction((n) => document.querySelectorAll('#chat-log .message').length >= n, count);
  return logOf(page);
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  await openBrowser('alice');
  await openBrowser('bob');
});

after(async () => {
  for (const { context } of Object.values(people)) await context.close().catch(() => {});
  for (const dir of profiles) rmSync(dir, { recursive: true, force: true });
});

test('two users log in through ferrochat\'s own login page', async () => {
  await logIn(people.alice.page, 'alice');
  await logIn(people.bob.page, 'bob');
  for (const name of ['alice', 'bob']) {
    assert.equal(await people[name].page.textContent('.nav-user'), name);
  }
});

test('both open the same room (one through the join form)', async () => {
  const alice = people.alice.page;
  await alice.fill('input[name=room_name]', ROOM);
  await Promise.all([alice.waitForURL(`${BASE}/chat/${ROOM}/`), alice.click('#room-name-submit')]);
  await people.bob.page.goto(`${BASE}/chat/${ROOM}/`);
  for (const name of ['alice', 'bob']) {
    const page = people[name].page;
    assert.equal(await page.textContent('h1'), `#${ROOM}`);
    assert.equal(await page.getAttribute('#chat-message-input', 'placeholder'), `Message #${ROOM} as ${name}`);
  }
});

const sent = [
  ['alice', 'hello from alice, with Enter', 'enter'],
  ['bob', 'hi alice \u2014 bob, with the Send button', 'button'],
  ['alice', 'caf\u00e9 <b>not bold</b> \u{1f600} (button)', 'button'],
  ['bob', 'and Enter from bob', 'enter'],
];

test('each sends with Enter and with Send, and each sees every message in real time', async () => {
  for (const [i, [name, text, how]] of sent.entries()) {
    await send(people[name].page, text, how);
    for (const viewer of ['alice', 'bob']) {
      const log = await waitForLog(people[viewer].page, i + 1);
      assert.equal(log.length, i + 1, `${viewer} after message ${i}`);
      assert.deepEqual({ user: log[i].user, text: log[i].text }, { user: name, text }, `${viewer} sees message ${i}`);
      assert.match(log[i].datetime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$/);
      assert.equal(log[i].time, log[i].datetime.slice(11, 16));
    }
  }
  // User text is text, never markup.
  assert.equal(await people.alice.page.locator('#chat-log b').count(), 0);
  assert.equal(await people.alice.page.textContent('#chat-status'), '');
});

test('a reload shows the history', async () => {
  const bob = people.bob.page;
  const live = await logOf(bob);
  await bob.reload();
  const history = await logOf(bob);
  assert.deepEqual(history, live, 'the server-rendered history is what arrived live');
  assert.deepEqual(history.map((m) => [m.user, m.text]), sent.map(([name, text]) => [name, text]));
  // The reloaded page's socket works too.
  await send(bob, 'after the reload', 'enter');
  await waitForLog(people.alice.page, sent.length + 1);
  await waitForLog(bob, sent.length + 1);
});

test('screenshot of the room page', async () => {
  await people.alice.page.screenshot({ path: join(ARTIFACTS, 'room.png'), fullPage: true });
});

test('the page shows "Connection lost" when the server stops', async () => {
  const response = await fetch(STOP_URL);
  assert.equal(response.status, 200);
  for (const name of ['alice', 'bob']) {
    const page = people[name].page;
    await page.waitForFunction(() => document.getElementById('chat-status').textContent === 'Connection lost');
    assert.match(await page.getAttribute('#chat-status', 'class'), /\berror\b/);
  }
  await people.alice.page.screenshot({ path: join(ARTIFACTS, 'room-connection-lost.png'), fullPage: true });
});

test('no script errors on any page', () => {
  assert.deepEqual(pageErrors, []);
});
