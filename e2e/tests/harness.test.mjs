// The person API itself, in every engine: what later scenarios (the map's
// geolocation, phone-sized layouts) rely on.
import { after, before } from 'node:test';
import { startServer } from '../support/server.mjs';
import { forEachEngine } from '../support/browsers.mjs';
import { assert } from '../support/chat.mjs';

forEachEngine('person API', ({ scenario }) => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  scenario('the viewport can be resized, and fields are read and typed into by label', async (browser) => {
    const erin = await browser.newPerson();
    await erin.goto(`${server.url}/`);
    await erin.setViewport({ width: 600, height: 500 });
    assert.deepEqual(await erin.evaluate(() => [window.innerWidth, window.innerHeight]), [600, 500]);
    await erin.fill('Room', 'first');
    await erin.fill('Room', 'second');
    assert.equal(await erin.value('Room'), 'second', 'fill replaces what was there');
    await erin.fill('Room', '');
    assert.equal(await erin.value('Room'), '');
    assert.equal(await erin.count('form label'), 2);
    assert.deepEqual(await erin.texts('form label'), ['Your name', 'Room']);
  });

  // WebKit is left out: WebKitGTK's WebDriver has no geolocation override or permission command (the request waits on a prompt).
  scenario('a position set from the test reaches getCurrentPosition and watchPosition', async (browser) => {
    const fay = await browser.newPerson();
    await fay.goto(`${server.url}/`);
    await fay.setGeolocation({ latitude: 52.52, longitude: 13.405, accuracy: 20 });
    const first = await fay.evaluate(() => new Promise((resolve, reject) => {
      navigator.geolocation.getCurrentPosition(
        (position) => resolve([position.coords.latitude, position.coords.longitude]),
        (error) => reject(new Error(error.message)),
        { timeout: 10_000 },
      );
    }));
    assert.deepEqual(first, [52.52, 13.405]);

    await fay.evaluate(() => {
      window.seenPositions = [];
      navigator.geolocation.watchPosition((position) => {
        window.seenPositions.push([position.coords.latitude, position.coords.longitude]);
      });
    });
    await fay.setGeolocation({ latitude: 48.8566, longitude: 2.3522 });
    await fay.waitUntil(() => window.seenPositions.some(([lat, lon]) => lat === 48.8566 && lon === 2.3522), {
      what: 'watchPosition to report the new position',
    });
  }, { engines: ['chromium', 'firefox'] });
});
