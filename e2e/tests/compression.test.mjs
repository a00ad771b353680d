// permessage-deflate against each engine's own implementation: a server
// started with --websocket-compression, people chatting through it.
import { after, before } from 'node:test';
import { startServer } from '../support/server.mjs';
import { forEachEngine } from '../support/browsers.mjs';
import {
  assert, joinByLink, messageTexts, say, waitForMember, waitForMessage,
} from '../support/chat.mjs';

forEachEngine('websocket compression', ({ scenario }) => {
  let server;
  before(async () => {
    server = await startServer({ args: ['--websocket-compression', 'true'] });
  });
  after(async () => {
    await server?.stop();
  });

  scenario('long and short messages cross a compressed socket both ways', async (browser) => {
    const alice = await browser.newPerson();
    const bob = await browser.newPerson();
    await joinByLink(alice, server.url, 'Alice', 'deflate-room');
    await joinByLink(bob, server.url, 'Bob', 'deflate-room');
    await waitForMember(alice, 'Bob');

    // Over the server's 256-byte threshold: compressed by Alice's browser
    // on the way in and by the server on the way out to Bob.
    const long = 'A message long enough to be worth compressing. '.repeat(30).trim();
    await say(alice, long);
    await waitForMessage(bob, long);
    await say(bob, 'short reply');
    await waitForMessage(alice, 'short reply');
    assert.deepEqual(await messageTexts(alice), [long, 'short reply']);

    // The browser did agree to deflate (a socket of the page's own says
    // what was negotiated), so the messages above really went compressed.
    const extensions = await alice.evaluate(() => new Promise((resolve, reject) => {
      const url = `${location.origin.replace(/^http/, 'ws')}/ws`;
      const socket = new WebSocket(url, 'rookery.v1.json');
      socket.onopen = () => {
        resolve(socket.extensions);
        socket.close();
      };
      socket.onerror = () => reject(new Error('the socket failed to open'));
    }));
    // Firefox reports the name alone, Chromium and WebKit the parameters.
    assert.match(extensions, /^permessage-deflate\b/);
  });
});
