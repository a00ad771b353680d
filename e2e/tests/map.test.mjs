// The live map: two people, one shares and walks; the other follows live.
// Tiles are `none` (the bundled world map) and no request may leave the
// server. WebKitGTK's WebDriver cannot grant or fake a position, so these
// run in Chromium and Firefox.
import { after, before } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../support/server.mjs';
import { forEachEngine } from '../support/browsers.mjs';
import { WAIT_MS } from '../support/chat.mjs';
import {
  assert, assertOnlyLocalRequests, markerData, openMap, waitForMarkerAt, waitForNoMarker,
} from '../support/map.mjs';

const GEO_ENGINES = ['chromium', 'firefox'];
const PHONE = { width: 375, height: 667 };
const SCREENSHOTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'screenshots');

forEachEngine('live map', ({ scenario }) => {
  let server;
  let configDir;
  before(async () => {
    // The server's minimum interval is lifted so a move shows at once; the
    // client still throttles to a quarter second.
    configDir = mkdtempSync(join(tmpdir(), 'rookery-map-'));
    const config = join(configDir, 'rookery.toml');
    writeFileSync(config, '[namespaces.map]\nkind = "latest_value"\npresence = true\nmin_interval_ms = 0\n');
    server = await startServer({ args: ['--tile-url', 'none', '--config', config] });
  });
  after(async () => {
    await server?.stop();
    rmSync(configDir, { recursive: true, force: true });
  });

  scenario('Bob sees Alice share, move and stop, live', async (browser) => {
    const alice = await browser.newPerson();
    // Bob is on a phone.
    const bob = await browser.newPerson({ viewport: PHONE, touch: browser.supports.touch });
    await openMap(alice, server.url, 'Alice Walker', 'walk');
    await openMap(bob, server.url, 'Bob', 'walk');

    await alice.setGeolocation({ latitude: 48.8566, longitude: 2.3522, accuracy: 25 });
    await alice.click('Share my location');
    await alice.waitFor('.share-status[data-sharing="on"]', { timeout: WAIT_MS });
    await waitForMarkerAt(bob, 'Alice Walker', 48.8566, 2.3522);
    const seen = await markerData(bob, 'Alice Walker');
    assert.equal(seen.own, 'false');
    assert.equal(seen.accuracy, '25');
    assert.equal(seen.approximate, 'false');
    // Alice's own marker is marked as hers.
    await waitForMarkerAt(alice, 'Alice Walker', 48.8566, 2.3522);
    assert.equal((await markerData(alice, 'Alice Walker')).own, 'true');
    await bob.waitFor('.people-list .person-name', { text: 'Alice Walker', timeout: WAIT_MS });

    await alice.setGeolocation({ latitude: 48.8584, longitude: 2.2945, accuracy: 15 });
    const followedIn = await waitForMarkerAt(bob, 'Alice Walker', 48.8584, 2.2945, { timeout: 1000 });
    console.log(`[${browser.engine}] the marker followed the move in ${followedIn} ms`);

    // Bob shares too, from London: each sees both.
    await bob.setGeolocation({ latitude: 51.5074, longitude: -0.1278, accuracy: 40 });
    await bob.click('Share my location');
    await waitForMarkerAt(alice, 'Bob', 51.5074, -0.1278);
    await alice.click('Fit everyone');
    if (browser.engine === 'chromium') {
      // The README's picture of the map.
      await alice.waitUntil(() => !document.querySelector('.leaflet-zoom-anim'), { what: 'the zoom to settle' });
      await alice.screenshot(join(SCREENSHOTS, 'map.png'));
    }

    await alice.click('Stop sharing');
    await waitForNoMarker(bob, 'Alice Walker');
    await waitForNoMarker(alice, 'Alice Walker');
    assert.deepEqual(await bob.texts('.people-list .person-name'), ['Bob']);
    await bob.click('Stop sharing');
    await bob.waitFor('.people .empty', { text: 'Nobody is sharing yet.', timeout: WAIT_MS });

    await assertOnlyLocalRequests(alice, server.url);
    await assertOnlyLocalRequests(bob, server.url);
  }, { engines: GEO_ENGINES });

  scenario('an approximate sharer is shown only on the 1 km grid', async (browser) => {
    const carol = await browser.newPerson();
    const dan = await browser.newPerson();
    await openMap(carol, server.url, 'Carol', 'coarse');
    await openMap(dan, server.url, 'Dan', 'coarse');
    await carol.setGeolocation({ latitude: 51.500_729, longitude: -0.124_625, accuracy: 10 });
    await carol.toggle('Approximate (about 1 km)');
    await carol.click('Share my location');
    await waitForMarkerAt(dan, 'Carol', 51.5, -0.12);
    const seen = await markerData(dan, 'Carol');
    assert.equal(seen.approximate, 'true');
    assert.ok(Number(seen.accuracy) >= 1000, `accuracy ${seen.accuracy}`);
    const html = await dan.evaluate('document.documentElement.outerHTML');
    assert.ok(!html.includes('500729') && !html.includes('124625'), 'the exact position never reached Dan');
  }, { engines: GEO_ENGINES });

  scenario('after a reconnect the map shows the current state, without ghosts', async (browser) => {
    const erin = await browser.newPerson();
    const finn = await browser.newPerson();
    await openMap(erin, server.url, 'Erin', 'ghosts');
    await openMap(finn, server.url, 'Finn', 'ghosts');
    await erin.setGeolocation({ latitude: 40.4168, longitude: -3.7038, accuracy: 20 });
    await erin.click('Share my location');
    await waitForMarkerAt(finn, 'Erin', 40.4168, -3.7038);

    // Finn drops off the network; meanwhile Erin stops sharing.
    await finn.setOffline(true);
    await finn.waitFor('main.map[data-joined="false"]', { timeout: WAIT_MS });
    await erin.click('Stop sharing');
    await finn.setOffline(false);
    await finn.waitFor('main.map[data-joined="true"]', { timeout: WAIT_MS });
    await waitForNoMarker(finn, 'Erin');
    assert.equal(await finn.count('.person-marker'), 0);
  }, { engines: GEO_ENGINES });

  scenario('a sharer is told when the browser paused location in a background tab', async (browser) => {
    const hana = await browser.newPerson();
    await openMap(hana, server.url, 'Hana', 'background');
    await hana.setGeolocation({ latitude: 35.6762, longitude: 139.6503, accuracy: 20 });
    await hana.click('Share my location');
    await hana.waitFor('.share-status[data-sharing="on"]', { timeout: WAIT_MS });
    assert.equal(await hana.count('.background-notice'), 0);
    // The tab goes to the background (as when the phone's screen locks).
    await hana.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await hana.waitFor('.background-notice', { timeout: WAIT_MS });
    const [notice] = await hana.texts('.background-notice');
    assert.match(notice, /pauses location updates while this tab is in the background/);
    const title = await hana.evaluate(() => document.querySelector('.person-marker[data-name="Hana"]').title);
    assert.match(title, /^Hana \(you\) · updated /);
  }, { engines: GEO_ENGINES });

  scenario('the map page fits a phone, with touch-sized controls', async (browser) => {
    // Touch is emulated in Chromium only (see chat.test.mjs); the layout is checked in every engine.
    const ivan = await browser.newPerson({ viewport: PHONE, touch: browser.supports.touch });
    await openMap(ivan, server.url, 'Ivan', 'phone');
    assert.equal(await ivan.evaluate('window.innerWidth'), PHONE.width);
    const overflow = await ivan.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling at 375 px (overflow ${overflow}px)`);
    const heights = await ivan.evaluate(() => [...document.querySelectorAll('main.map button')]
      .filter((button) => button.getBoundingClientRect().width > 0)
      .map((button) => [button.textContent.trim(), button.getBoundingClientRect().height]));
    for (const [name, height] of heights) {
      assert.ok(height >= 44, `${name} is ${height}px tall; touch targets need 44px`);
    }
    const mapBox = await ivan.evaluate(() => document.querySelector('.world-map').getBoundingClientRect().height);
    assert.ok(mapBox >= 300, `the map gets most of the screen (${mapBox}px)`);
  });

  scenario('sharing without a position source says so clearly', async (browser) => {
    // Without a granted permission the browser refuses or keeps asking; the
    // page must not claim to share. (Runs where geolocation can be denied.)
    const gina = await browser.newPerson();
    await openMap(gina, server.url, 'Gina', 'denied');
    await gina.evaluate(() => {
      // Simulate the browser's refusal: the page sees code 1 (PERMISSION_DENIED).
      navigator.geolocation.watchPosition = (_ok, fail) => { setTimeout(() => fail({ code: 1, message: 'denied' }), 0); return 1; };
    });
    await gina.click('Share my location');
    await gina.waitFor('.share-status[data-sharing="failed"]', { timeout: WAIT_MS });
    const [status] = await gina.texts('.share-status');
    assert.match(status, /permission was denied/i);
    assert.equal(await gina.count('.person-marker'), 0);
  });
});
