// What the live frontend's browser tests share: one Chromium per person (separate cookie jars),
// logging in, sending, and waiting for the log, the member list and the connection state.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const WAIT = 15_000;

export function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run this through tests/browser_live.rs)`);
  return value;
}

export async function logOf(page) {
  return page.$$eval('#chat-log .message', (nodes) => nodes.map((n) => ({
    id: Number(n.dataset.id),
    user: n.querySelector('.username').textContent,
    text: n.querySelector('.content').textContent,
  })));
}

export async function members(page) {
  return page.$$eval('#chat-members li', (items) => items.map((li) => li.textContent));
}

export class Cast {
  constructor(password, room) {
    this.password = password;
    this.room = room;
    this.people = {};
    this.profiles = [];
    this.pageErrors = [];
    // [username, text] of every message sent, in send order (one sender at a time).
    this.expected = [];
  }

  page(name) {
    return this.people[name].page;
  }

  async open(name, base) {
    const profile = mkdtempSync(join(tmpdir(), `ferrochat-chromium-${name}-`));
    this.profiles.push(profile);
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
    page.on('pageerror', (err) => this.pageErrors.push(`${name}: ${err.message}`));
    // Sockets failing while a node is down are expected, and so are the handshakes the legacy
    // fallback starts from.
    page.on('console', (msg) => {
      const text = msg.text();
      if (msg.type() === 'error' && !text.includes('WebSocket') && !text.startsWith('Failed to load resource')) {
        this.pageErrors.push(`${name}: ${text}`);
      }
    });
    page.on('response', (response) => {
      if (response.status() >= 400 && new URL(response.url()).pathname !== '/favicon.ico') {
        this.pageErrors.push(`${name}: HTTP ${response.status()} for ${response.url()}`);
      }
    });
    this.people[name] = { context, page, base };
    return page;
  }

  async close() {
    for (const { context } of Object.values(this.people)) await context.close().catch(() => {});
    for (const dir of this.profiles) rmSync(dir, { recursive: true, force: true });
  }

  async logIn(name) {
    const { page, base } = this.people[name];
    await page.goto(`${base}/login/`);
    await page.fill('#id_username', name);
    await page.fill('#id_password', this.password);
    await Promise.all([page.waitForURL(`${base}/`), page.click('button[type=submit]')]);
  }

  async openRoom(name, protocol = 'ferrochat.v1') {
    const { page, base } = this.people[name];
    await page.goto(`${base}/chat/${this.room}/`);
    assert.equal(await page.getAttribute('script[src*="live.js"]', 'src'), '/static/ferrochat/live/live.js');
    await this.waitForConnection(name, protocol);
  }

  // The script says on #chat-status which protocol its socket speaks once it is open.
  async waitForConnection(name, want, timeout = WAIT) {
    const page = this.page(name);
    try {
      await page.waitForFunction((w) => document.getElementById('chat-status').dataset.connection === w, want, { timeout });
    } catch (err) {
      const state = await page.getAttribute('#chat-status', 'data-connection');
      assert.fail(`${name}'s socket is ${state}, not ${want}`);
    }
    assert.equal(await page.textContent('#chat-status'), '');
  }

  // The page keeps the text in the input while its socket is down, so an emptied input means
  // the message went out.
  async send(name, text) {
    const page = this.page(name);
    const input = page.locator('#chat-message-input');
    await input.fill(text);
    await input.press('Enter');
    await page.waitForFunction(() => document.getElementById('chat-message-input').value === '');
    this.expected.push([name, text]);
  }

  // Waits until the log holds exactly what was sent, in order, each once, ids ascending.
  async waitForExpected(name, timeout = WAIT) {
    const page = this.page(name);
    const want = this.expected.map(([user, text]) => ({ user, text }));
    try {
      await page.waitForFunction((n) => document.querySelectorAll('#chat-log .message').length >= n, want.length, { timeout });
    } catch (err) {
      assert.fail(`${name} never had ${want.length} messages: ${JSON.stringify(await logOf(page))}`);
    }
    const log = await logOf(page);
    assert.deepEqual(log.map(({ user, text }) => ({ user, text })), want, `${name}'s log`);
    const ids = log.map((m) => m.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), `${name}'s ids are in order`);
    assert.equal(new Set(ids).size, ids.length, `${name} shows each id once`);
    return log;
  }

  async waitForMembers(name, want, timeout = WAIT) {
    const page = this.page(name);
    try {
      await page.waitForFunction((w) => {
        const list = document.getElementById('chat-members');
        const names = Array.from(list.querySelectorAll('li'), (li) => li.textContent);
        return !list.parentElement.hidden && JSON.stringify(names) === JSON.stringify(w);
      }, want, { timeout });
    } catch (err) {
      assert.fail(`${name}'s member list is ${JSON.stringify(await members(page))}, not ${JSON.stringify(want)}`);
    }
  }
}
