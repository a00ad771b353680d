// The single binary: the release build with the web app inside (cargo
// feature `embed`), copied alone into an empty directory and started there
// with no flags but the map's offline tiles, serves the app and /ws in
// every engine. Its files come precompressed and with cache headers a
// phone can keep them by.
import { after, before, test } from 'node:test';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import { singleBinary, startServer } from '../support/server.mjs';
import { forEachEngine } from '../support/browsers.mjs';
import {
  assert, joinByLink, joinFromHome, say, waitForMember, waitForMessage,
} from '../support/chat.mjs';
import { openMap } from '../support/map.mjs';

let server;
let dir;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rookery-single-'));
  const binary = join(dir, 'rookery');
  copyFileSync(singleBinary(), binary);
  chmodSync(binary, 0o755);
  server = await startServer({
    binary, cwd: dir, distDir: null, dataDir: null, args: ['--tile-url', 'none'],
  });
});
after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the directory holds the binary and the data it made, nothing else', () => {
  assert.deepEqual(readdirSync(dir).sort(), ['data', 'rookery']);
});

/** GET `path` as a browser would, with the bytes as they crossed the wire. */
function fetchRaw(path, headers = { 'accept-encoding': 'gzip, br' }) {
  return new Promise((resolve, reject) => {
    request(`${server.url}${path}`, { headers }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    }).on('error', reject).end();
  });
}

test('a first page load comes compressed, pages revalidated and hashed files kept for good', async () => {
  const page = await fetchRaw('/');
  assert.equal(page.status, 200);
  assert.equal(page.headers['content-encoding'], 'br');
  assert.equal(page.headers['cache-control'], 'no-cache');
  const html = brotliDecompressSync(page.body).toString();
  const files = [...new Set([...html.matchAll(/(?:href|src)="(\/[^"]+)"|'(\/[^']+\.(?:js|wasm))'/g)]
    .map((match) => match[1] ?? match[2]))];
  assert.ok(files.some((file) => file.endsWith('.wasm')), `the page loads the wasm: ${files}`);

  let wire = page.body.length;
  let raw = html.length;
  for (const file of files) {
    const response = await fetchRaw(file);
    assert.equal(response.status, 200, file);
    const identity = await fetchRaw(file, {});
    const hashed = /-[0-9a-f]{16}(_bg)?\.[a-z]+$/.test(file);
    const expected = file.startsWith('/vendor/')
      ? 'public, max-age=3600, must-revalidate'
      : hashed ? 'public, max-age=31536000, immutable' : 'no-cache';
    assert.equal(response.headers['cache-control'], expected, file);
    if (/\.(js|wasm|css)$/.test(file)) {
      assert.equal(response.headers['content-encoding'], 'br', file);
      assert.ok(response.body.length < identity.body.length, `${file} is smaller compressed`);
    }
    wire += response.body.length;
    raw += identity.body.length;
  }
  console.log(`first page load: ${files.length + 1} files, ${wire} bytes over the wire (brotli) for ${raw} bytes`);

  const gzip = await fetchRaw(files.find((file) => file.endsWith('.wasm')), { 'accept-encoding': 'gzip' });
  assert.equal(gzip.headers['content-encoding'], 'gzip');
  const deepLink = await fetchRaw('/chat/lobby');
  assert.equal(deepLink.status, 200);
  assert.equal(deepLink.headers['cache-control'], 'no-cache');
});

forEachEngine('the single binary', ({ scenario }) => {
  scenario('Alice and Bob chat through it', async (browser) => {
    const alice = await browser.newPerson();
    const bob = await browser.newPerson();
    await joinFromHome(alice, server.url, 'Alice', 'standalone');
    await joinByLink(bob, server.url, 'Bob', 'standalone');
    await waitForMember(alice, 'Bob');
    await say(bob, 'served from one file');
    await waitForMessage(alice, 'served from one file');
  });

  scenario('the map and its bundled world map load from it', async (browser) => {
    const carol = await browser.newPerson();
    await openMap(carol, server.url, 'Carol', 'standalone');
  });
});
