// A moderator uses ferrochat's admin in headless Chromium: logs in as staff, finds a message by
// search, deletes it through the confirmation page, deactivates its author, whose open room
// page loses its socket and, on reload, is logged out.
//
// Run by tests/browser_e2e.rs, which starts ferrochat and passes:
//   FERROCHAT_URL       the server, e.g. http://127.0.0.1:41234
//   FERROCHAT_PASSWORD  the password of the users `moderator` (staff) and `carol`
//   FERROCHAT_ARTIFACTS a directory for the screenshots
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = required('FERROCHAT_URL');
const PASSWORD = required('FERROCHAT_PASSWORD');
const ARTIFACTS = required('FERROCHAT_ARTIFACTS');
const ROOM = 'moderated';
const SPAM = 'buy cheap watches now';
const WAIT = 10_000;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run this through tests/browser_e2e.rs)`);
  return value;
}

const people = {};
const profiles = [];
const pageErrors = [];

async function openBrowser(name, viewport) {
  const profile = mkdtempSync(join(tmpdir(), `ferrochat-chromium-${name}-`));
  profiles.push(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport,
  });
  context.setDefaultTimeout(WAIT);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`));
  people[name] = { context, page };
  return page;
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  await openBrowser('carol', { width: 1000, height: 700 });
  // The moderator works on a phone-width screen.
  await openBrowser('moderator', { width: 390, height: 800 });
});

after(async () => {
  for (const { context } of Object.values(people)) await context.close().catch(() => {});
  for (const dir of profiles) rmSync(dir, { recursive: true, force: true });
});

test('carol posts a message in a room and keeps the page open', async () => {
  const page = people.carol.page;
  await page.goto(`${BASE}/login/`);
  await page.fill('#id_username', 'carol');
  await page.fill('#id_password', PASSWORD);
  await Promise.all([page.waitForURL(`${BASE}/`), page.click('button[type=submit]')]);
  await page.goto(`${BASE}/chat/${ROOM}/`);
  const input = page.locator('#chat-message-input');
  await input.fill(SPAM);
  const deadline = Date.now() + WAIT;
  for (;;) {
    await input.press('Enter');
    try {
      await page.waitForFunction(() => document.getElementById('chat-message-input').value === '', null, { timeout: 250 });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error('the message was never sent');
    }
  }
  await page.waitForFunction(() => document.querySelectorAll('#chat-log .message').length === 1);
});

test('the moderator logs in to the admin (keyboard only)', async () => {
  const page = people.moderator.page;
  await page.goto(`${BASE}/admin/`);
  assert.equal(new URL(page.url()).pathname, '/admin/login/');
  await page.keyboard.type('moderator'); // the username field has the focus
  await page.keyboard.press('Tab');
  await page.keyboard.type(PASSWORD);
  await Promise.all([page.waitForURL(`${BASE}/admin/`), page.keyboard.press('Enter')]);
  assert.equal(await page.textContent('h1'), 'Site administration');
});

test('finds the message by search and deletes it after the confirmation page', async () => {
  const page = people.moderator.page;
  await Promise.all([page.waitForURL(`${BASE}/admin/chatapp/message/`), page.click('a[href="/admin/chatapp/message/"] >> nth=0')]);
  await page.fill('#searchbar', 'cheap CAROL');
  await Promise.all([page.waitForURL(/\?q=cheap\+CAROL/), page.press('#searchbar', 'Enter')]);
  assert.match(await page.textContent('#changelist-search'), /1 result/);
  assert.equal(await page.locator('#result_list tbody tr').count(), 1);
  assert.match(await page.textContent('#result_list tbody'), new RegExp(SPAM));
  // Nothing wider than the phone's screen but the table's own scroller.
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
  await page.screenshot({ path: join(ARTIFACTS, 'admin-changelist.png'), fullPage: true });
  await page.check('input.action-select');
  await page.selectOption('select[name=action]', 'delete_selected');
  await Promise.all([page.waitForLoadState('load'), page.click('button[name=index]')]);
  assert.equal(await page.textContent('h1'), 'Are you sure?');
  assert.match(await page.textContent('.deleted-objects'), new RegExp(`carol in ${ROOM}: ${SPAM}`));
  await Promise.all([page.waitForLoadState('load'), page.click('button.danger')]);
  assert.match(await page.textContent('.messagelist'), /Successfully deleted 1 message\./);
});

test('the message is gone from the room page', async () => {
  const page = people.carol.page;
  await page.reload();
  assert.equal(await page.locator('#chat-log .message').count(), 0);
});

test('the moderator deactivates carol; her open page loses its socket and a reload logs her out', async () => {
  const page = people.moderator.page;
  await page.goto(`${BASE}/admin/auth/user/?q=carol`);
  await Promise.all([page.waitForURL(/\/change\/$/), page.click('#result_list tbody a')]);
  await page.uncheck('#id_is_active');
  await Promise.all([page.waitForURL(`${BASE}/admin/auth/user/`), page.click('button[name=_save]')]);
  assert.match(await page.textContent('.messagelist'), /The user “carol” was changed successfully\./);

  const carol = people.carol.page;
  await carol.waitForFunction(() => document.getElementById('chat-status').textContent === 'Connection lost');
  await carol.reload();
  assert.equal(new URL(carol.url()).pathname, '/login/');
  assert.equal(new URL(carol.url()).searchParams.get('next'), `/chat/${ROOM}/`);
});

test('no script errors on any page', () => {
  assert.deepEqual(pageErrors, []);
});
