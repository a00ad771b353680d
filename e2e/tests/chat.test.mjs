// People chat in one room, each in their own browser window, in every
// engine (Chromium, Firefox, WebKit): see ../support/browsers.mjs.
import { after, before } from 'node:test';
import { rmSync } from 'node:fs';
import { startServer } from '../support/server.mjs';
import { forEachEngine } from '../support/browsers.mjs';
import {
  assert, joinByLink, joinFromHome, messageTexts, say, waitForMember, waitForMessage, waitJoined, waitLive, WAIT_MS,
} from '../support/chat.mjs';

const PHONE = { width: 375, height: 667 };

forEachEngine('chat room', ({ scenario }) => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  scenario('a message typed by Alice appears for Bob, and HTML shows as text', async (browser) => {
    const alice = await browser.newPerson();
    const bob = await browser.newPerson();
    await joinFromHome(alice, server.url, 'Alice', 'Test Room');
    assert.match(await alice.url(), /\/chat\/test-room$/);
    await joinByLink(bob, server.url, 'Bob', 'test-room');

    await waitForMember(alice, 'Bob');
    await waitForMember(bob, 'Alice');

    await say(alice, 'hello from alice');
    await waitForMessage(bob, 'hello from alice');

    await say(bob, '<b>html</b>');
    await waitForMessage(alice, '<b>html</b>');
    assert.equal(await alice.count('.message-list b'), 0, 'no <b> element was created');
    assert.deepEqual(await messageTexts(alice), ['hello from alice', '<b>html</b>']);

    // The composer is cleared after sending, ready for the next message.
    assert.equal(await bob.value('Message'), '');
  });

  scenario('the room shows its history to someone who arrives later, and the name is remembered', async (browser) => {
    const alice = await browser.newPerson();
    await joinFromHome(alice, server.url, 'Alice', 'history-room');
    await say(alice, 'before you came');
    await waitForMessage(alice, 'before you came');

    const carol = await browser.newPerson();
    await joinByLink(carol, server.url, 'Carol', 'history-room');
    await waitForMessage(carol, 'before you came');

    // A reload keeps the name: the room opens without asking again.
    await carol.reload();
    await waitJoined(carol);
    await waitForMessage(carol, 'before you came');
  });

  scenario('the connection state is visible and the page works at phone size from the keyboard', async (browser) => {
    // Touch is emulated only in Chromium: Firefox 153 ESR lacks BiDi's touch override and WebKitGTK's WebDriver has none, so they run this at phone size with a mouse-less keyboard only.
    const dana = await browser.newPerson({ viewport: PHONE, touch: browser.supports.touch });
    await dana.goto(`${server.url}/`);
    // The load event does not wait for the wasm app to start: wait for its form before typing.
    await dana.waitFor('main.home form', { timeout: WAIT_MS });
    assert.equal(await dana.evaluate('window.innerWidth'), PHONE.width, 'the viewport is phone-sized');
    await dana.press('Tab');
    await dana.type('Dana');
    await dana.press('Tab');
    await dana.press('Control+A');
    await dana.type('phone room');
    await dana.press('Enter');
    await waitJoined(dana);
    await dana.waitFor('.connection-status[data-state="live"]', { timeout: WAIT_MS });
    const overflow = await dana.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling at 375 px (overflow ${overflow}px)`);
    await say(dana, 'typed on a phone');
    await waitForMessage(dana, 'typed on a phone');
  });

  scenario('both people reconnect after the server restarts, and chat goes on', async (browser) => {
    // A server of its own: this scenario stops it.
    let own = await startServer();
    const { dataDir } = own;
    try {
      const alice = await browser.newPerson();
      const bob = await browser.newPerson();
      await joinFromHome(alice, own.url, 'Alice', 'restart-room');
      await joinByLink(bob, own.url, 'Bob', 'restart-room');
      await waitForMember(alice, 'Bob');
      await waitForMember(bob, 'Alice');
      await say(alice, 'before the restart');
      await waitForMessage(bob, 'before the restart');

      await own.stop({ keepData: true });
      // Both pages notice that the room is gone before the server is back.
      for (const person of [alice, bob]) {
        await person.waitFor('main.chat[data-joined="false"]', { timeout: WAIT_MS });
        await person.waitFor('.connection-status:not([data-state="live"])', { timeout: WAIT_MS });
      }
      own = await startServer({ listen: new URL(own.url).host, dataDir });

      // The app reconnects on its own (with backoff) and subscribes again.
      await waitLive(alice);
      await waitLive(bob);
      await say(bob, 'after the restart');
      await waitForMessage(alice, 'after the restart');
      await say(alice, 'welcome back');
      await waitForMessage(bob, 'welcome back');
    } finally {
      await own.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
