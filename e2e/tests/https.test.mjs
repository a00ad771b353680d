// Rookery's own HTTPS, as a phone on the internet meets it: the app loads
// over https from a host name that is not "localhost", its socket is wss,
// and geolocation works because the page is a secure context. The
// certificate is self-signed (made here with openssl), so the browsers are
// started to accept it. Plain http on `--redirect-http` lands on https.
//
// Host names: Chromium and Firefox resolve rookery.test to 127.0.0.1;
// WebKitGTK cannot, so it uses 127.0.0.1 (and, lacking a geolocation
// override, shares no position: see ../support/driver-webkit.mjs).
import { after, before } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../support/server.mjs';
import { forEachEngine } from '../support/browsers.mjs';
import { WAIT_MS } from '../support/chat.mjs';
import { assert, openMap, waitForMarkerAt } from '../support/map.mjs';

const HOST = 'rookery.test';

/** A self-signed certificate for HOST and the loopback address. */
function selfSignedCertificate(dir) {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${HOST}`,
    '-addext', `subjectAltName=DNS:${HOST},DNS:localhost,IP:127.0.0.1`,
  ], { stdio: 'ignore' });
  return { cert, key };
}

forEachEngine('over https', ({ scenario }) => {
  let server;
  let dir;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rookery-https-'));
    const { cert, key } = selfSignedCertificate(dir);
    const config = join(dir, 'rookery.toml');
    writeFileSync(config, '[namespaces.map]\nkind = "latest_value"\npresence = true\nmin_interval_ms = 0\n');
    server = await startServer({
      args: [
        '--tls-cert', cert, '--tls-key', key, '--redirect-http', '127.0.0.1:0',
        '--tile-url', 'none', '--config', config,
      ],
    });
    assert.match(server.url, /^https:\/\//);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The server's URL under the name a phone would use, where the engine can. */
  const baseUrl = (browser, url = server.url) => {
    if (!browser.supports.hostNames) return url;
    const named = new URL(url);
    named.hostname = HOST;
    return named.origin;
  };

  scenario('the app loads over https, its socket is wss, and a shared location reaches the other', async (browser) => {
    const url = baseUrl(browser);
    const alice = await browser.newPerson();
    const bob = await browser.newPerson();
    // Joined means subscribed, over the server's only port: TLS, so wss.
    await openMap(alice, url, 'Alice', 'secure');
    await openMap(bob, url, 'Bob', 'secure');
    const page = await alice.evaluate(() => ({ protocol: location.protocol, secure: window.isSecureContext }));
    assert.deepEqual(page, { protocol: 'https:', secure: true });

    if (!browser.supports.geolocation) return;
    await alice.setGeolocation({ latitude: 59.3293, longitude: 18.0686, accuracy: 30 });
    await alice.click('Share my location');
    await alice.waitFor('.share-status[data-sharing="on"]', { timeout: WAIT_MS });
    await waitForMarkerAt(bob, 'Alice', 59.3293, 18.0686);
    const insecureNotice = await alice.evaluate(() => document.body.textContent.includes('only with secure pages'));
    assert.equal(insecureNotice, false, 'no notice that location needs https');
  });

  scenario('a link to plain http lands on the same page over https', async (browser) => {
    const carol = await browser.newPerson();
    const redirect = new URL(baseUrl(browser, server.redirectUrl));
    await carol.goto(`${redirect.origin}/map/linked`);
    const expected = `${baseUrl(browser)}/map/linked`;
    await carol.poll(async () => (await carol.url()) === expected, { what: `the page at ${expected}` });
    await carol.fill('Your name', 'Carol');
    await carol.click('Open map');
    await carol.waitFor('main.map[data-joined="true"]', { timeout: WAIT_MS });
  });
}, { acceptInsecureCerts: true, hostNames: [HOST] });
