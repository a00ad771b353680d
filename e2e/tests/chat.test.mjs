// Two people chat in one room, each in their own browser context.
import { after, before, describe, test } from 'node:test';
import { startServer } from '../support/server.mjs';
import { ENGINES, launch } from '../support/browsers.mjs';
import {
  assert, joinByLink, joinFromHome, messageTexts, say, waitForMember, waitForMessage,
} from '../support/chat.mjs';

for (const engine of ENGINES) {
  describe(`chat room (${engine})`, () => {
    let server;
    let browser;
    before(async () => {
      server = await startServer();
      browser = await launch(engine);
    });
    after(async () => {
      await browser?.close();
      await server?.stop();
    });

    test('a message typed by Alice appears for Bob, and HTML shows as text', async () => {
      const alice = await browser.newPerson();
      const bob = await browser.newPerson();
      await joinFromHome(alice.page, server.url, 'Alice', 'Test Room');
      assert.match(alice.page.url(), /\/chat\/test-room$/);
      await joinByLink(bob.page, server.url, 'Bob', 'test-room');

      await waitForMember(alice.page, 'Bob');
      await waitForMember(bob.page, 'Alice');

      await say(alice.page, 'hello from alice');
      await waitForMessage(bob.page, 'hello from alice');

      await say(bob.page, '<b>html</b>');
      await waitForMessage(alice.page, '<b>html</b>');
      assert.equal(await alice.page.locator('.message-list b').count(), 0, 'no <b> element was created');
      assert.deepEqual(await messageTexts(alice.page), ['hello from alice', '<b>html</b>']);

      // The composer is cleared after sending, ready for the next message.
      assert.equal(await bob.page.getByRole('textbox', { name: 'Message', exact: true }).inputValue(), '');
      await alice.context.close();
      await bob.context.close();
    });

    test('the room shows its history to someone who arrives later, and the name is remembered', async () => {
      const alice = await browser.newPerson();
      await joinFromHome(alice.page, server.url, 'Alice', 'history-room');
      await say(alice.page, 'before you came');
      await waitForMessage(alice.page, 'before you came');

      const carol = await browser.newPerson();
      await joinByLink(carol.page, server.url, 'Carol', 'history-room');
      await waitForMessage(carol.page, 'before you came');

      // A reload keeps the name: the room opens without asking again.
      await carol.page.reload();
      await carol.page.locator('main.chat[data-joined="true"]').waitFor();
      await waitForMessage(carol.page, 'before you came');
      await alice.context.close();
      await carol.context.close();
    });

    test('the connection state is visible and the page works at phone size from the keyboard', async () => {
      const dana = await browser.newPerson({ viewport: { width: 375, height: 667 }, hasTouch: true, isMobile: true });
      await dana.page.goto(`${server.url}/`);
      await dana.page.keyboard.press('Tab');
      await dana.page.keyboard.type('Dana');
      await dana.page.keyboard.press('Tab');
      await dana.page.keyboard.press('Control+A');
      await dana.page.keyboard.type('phone room');
      await dana.page.keyboard.press('Enter');
      await dana.page.locator('main.chat[data-joined="true"]').waitFor();
      await dana.page.locator('.connection-status[data-state="live"]').waitFor();
      const overflow = await dana.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scrolling at 375 px (overflow ${overflow}px)`);
      await say(dana.page, 'typed on a phone');
      await waitForMessage(dana.page, 'typed on a phone');
      await dana.context.close();
    });
  });
}
