// What a person does on the live map, in the words of the page's labels.
import assert from 'node:assert/strict';
import { WAIT_MS } from './chat.mjs';

/** Opens a room's map and answers the name prompt; waits until subscribed. */
export async function openMap(person, baseUrl, name, room) {
  await person.goto(`${baseUrl}/map/${room}`);
  await person.fill('Your name', name);
  await person.click('Open map');
  await person.waitFor('main.map[data-joined="true"]', { timeout: WAIT_MS });
  // The offline basemap has loaded when its country shapes are drawn.
  await person.waitFor('.world-map path.leaflet-interactive, .world-map svg path', { visible: false, timeout: WAIT_MS });
}

const markerOf = (name) => `.person-marker[data-name="${name}"]`;

/** Waits until `name`'s marker is at (lat, lon); returns how long it took. */
export async function waitForMarkerAt(person, name, lat, lon, { timeout = WAIT_MS } = {}) {
  const started = Date.now();
  await person.waitUntil(
    (selector, lat, lon) => {
      const marker = document.querySelector(selector);
      return marker
        && Math.abs(Number(marker.dataset.lat) - lat) < 1e-9
        && Math.abs(Number(marker.dataset.lon) - lon) < 1e-9;
    },
    { args: [markerOf(name), lat, lon], timeout, what: `${name}'s marker at ${lat}, ${lon}` },
  );
  return Date.now() - started;
}

export async function waitForNoMarker(person, name) {
  await person.waitUntil((selector) => !document.querySelector(selector), {
    args: [markerOf(name)],
    what: `${name}'s marker to go`,
  });
}

export async function markerData(person, name) {
  return person.evaluate((selector) => ({ ...document.querySelector(selector)?.dataset }), markerOf(name));
}

/** Every resource the page loaded came from the server itself. */
export async function assertOnlyLocalRequests(person, baseUrl) {
  const urls = await person.resourceUrls();
  const foreign = urls.filter((url) => !url.startsWith(baseUrl));
  assert.deepEqual(foreign, [], 'no request left the server');
  assert.ok(urls.some((url) => url.includes('/vendor/world-atlas/')), 'the offline basemap came from the server');
}

export { assert };
