// The real-time client in the browser: going offline and coming back,
// and notifications an app's backend publishes through the HTTP API.
import { after, before } from 'node:test';
import { startServer } from '../support/server.mjs';
import { forEachEngine } from '../support/browsers.mjs';
import {
  assert, joinByLink, messageTexts, say, waitForMember, waitForMessage, waitJoined, waitLive, WAIT_MS,
} from '../support/chat.mjs';

const API_KEY = 'e2e-api-key-0123456789';

forEachEngine('real-time client', ({ scenario }) => {
  let server;
  before(async () => {
    server = await startServer({ args: ['--api-key', API_KEY] });
  });
  after(async () => {
    await server?.stop();
  });

  // WebKitGTK's WebDriver cannot take a page offline, so this runs in Chromium and Firefox.
  scenario('messages sent while a tab was offline appear when it is back, in order, once', async (browser) => {
    const alice = await browser.newPerson();
    const bob = await browser.newPerson();
    await joinByLink(alice, server.url, 'Alice', 'offline-room');
    await joinByLink(bob, server.url, 'Bob', 'offline-room');
    await waitForMember(alice, 'Bob');
    await say(alice, 'one');
    await waitForMessage(bob, 'one');

    await bob.setOffline(true);
    await bob.waitFor('.connection-status[data-state="offline"]', { timeout: WAIT_MS });
    await bob.waitFor('main.chat[data-joined="false"]', { timeout: WAIT_MS });
    for (const text of ['two', 'three', 'four']) {
      await say(alice, text);
      await waitForMessage(alice, text);
    }
    // Bob writes while offline: it is kept and sent once he is back.
    await say(bob, 'written offline');

    await bob.setOffline(false);
    await waitLive(bob);
    await waitForMessage(bob, 'four');
    await waitForMessage(alice, 'written offline');
    await waitForMessage(bob, 'written offline');
    assert.deepEqual(await messageTexts(bob), ['one', 'two', 'three', 'four', 'written offline']);
    assert.deepEqual(await messageTexts(alice), ['one', 'two', 'three', 'four', 'written offline']);
  }, { engines: ['chromium', 'firefox'] });

  scenario('a notification published through the HTTP API appears as a toast in every tab of that user', async (browser) => {
    const carol = await browser.newPerson();
    await joinByLink(carol, server.url, 'Carol', 'toast-room');
    await carol.waitFor('.connection-status[data-state="live"]', { timeout: WAIT_MS });
    const anonymousId = await carol.evaluate("localStorage.getItem('rookery.anonymous_id')");
    assert.ok(anonymousId, 'the browser keeps an anonymous id');
    // A second person must not see Carol's notification.
    const dave = await browser.newPerson();
    await joinByLink(dave, server.url, 'Dave', 'toast-room');
    await waitForMember(carol, 'Dave');

    const response = await fetch(`${server.url}/api/v1/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        channel: `notify:anon-${anonymousId}`,
        data: { title: 'Build passed', body: '<i>main</i> is green' },
      }),
    });
    assert.equal(response.status, 200, await response.text());

    await carol.waitFor('.toast .toast-title', { text: 'Build passed', timeout: WAIT_MS });
    await carol.waitFor('.toast .toast-body', { text: '<i>main</i> is green', timeout: WAIT_MS });
    assert.equal(await carol.count('.toast i'), 0, 'the body is text, not HTML');
    await carol.click('Dismiss notification');
    await carol.waitUntil(() => document.querySelectorAll('.toast').length === 0, { what: 'the toast to go' });
    assert.equal(await dave.count('.toast'), 0, "Dave does not get Carol's notification");
    await waitJoined(carol);
  });
});
