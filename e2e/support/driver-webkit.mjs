// WebKit (Safari's engine): Debian's WebKitGTK MiniBrowser driven by
// WebKitWebDriver over W3C WebDriver classic (our own fetch client), on one
// Xvfb display for the whole run. WebKitWebDriver serves one session at a
// time, so every person gets their own driver process and browser (which
// also isolates their storage).
//
// Every process started here runs in its own process group and is killed
// with its group: when a person or the browser closes, and on exit or a
// signal if a test failed or the run was interrupted.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { Unsupported } from './person.mjs';
import { WebDriverSession, ELEMENT_KEY, request, webdriverKey } from './webdriver-client.mjs';

const DRIVER = process.env.WEBKIT_WEBDRIVER_PATH ?? 'WebKitWebDriver';
const MINIBROWSER = process.env.WEBKIT_MINIBROWSER_PATH ?? '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
const START_TIMEOUT_MS = 15_000;

// WebKitGTK's WebDriver has no touch emulation (navigator.maxTouchPoints
// stays 0) and no geolocation override or permission command: a
// geolocation request waits on a permission prompt forever.
// Nor can it map a host name to an address (no resolver switch).
export const supports = { touch: false, geolocation: false, hostNames: false };

/** @param {import('./browsers.mjs').LaunchOptions} options */
export async function launchWebKit({ acceptInsecureCerts = false } = {}) {
  const xvfb = await startXvfb();
  const people = new Set();
  return {
    /** @returns {Promise<import('./person.mjs').DriverPage>} */
    async newPage({ viewport, touch }) {
      if (touch) throw new Unsupported("WebKitGTK's WebDriver cannot emulate a touch screen");
      const driver = await startDriver(xvfb.display);
      let session;
      try {
        session = await WebDriverSession.create(driver.url, {
          browserName: 'MiniBrowser',
          acceptInsecureCerts,
          'webkitgtk:browserOptions': {
            binary: MINIBROWSER,
            // Full screen hides MiniBrowser's toolbar, so the window is the
            // viewport and can be made narrower than the toolbar (447 px).
            args: ['--automation', '--full-screen'],
          },
        });
        await session.setTimeouts({ pageLoad: 30_000, script: 30_000 });
        await setViewport(session, viewport);
      } catch (error) {
        await driver.stop();
        throw error;
      }
      const page = {
        goto: async (url) => { await session.navigate(url); },
        url: () => session.currentUrl(),
        reload: async () => { await session.refresh(); },
        evaluate: (expression) => session.execute(`return (${expression});`),
        element: async (expression) => {
          const value = await session.execute(`const found = (${expression}); return found instanceof Element ? found : null;`);
          return value && value[ELEMENT_KEY] ? value : null;
        },
        click: async (element) => { await session.clickElement(element); },
        fill: async (element, text) => {
          await session.execute('arguments[0].focus(); if (arguments[0].select) arguments[0].select();', [element]);
          await session.typeKeys(text === '' ? [webdriverKey('Backspace')] : keysOf(text));
        },
        press: async (keys) => {
          const values = keys.map(webdriverKey);
          if (values.length === 1) await session.typeKeys(values);
          else await session.chord(values.slice(0, -1), values.at(-1));
        },
        type: (text) => session.typeKeys(keysOf(text)),
        setViewport: (size) => setViewport(session, size),
        setGeolocation: async () => {
          throw new Unsupported("WebKitGTK's WebDriver has no geolocation override or permission command");
        },
        screenshot: async () => {
          throw new Unsupported('screenshots are taken in Chromium and Firefox only');
        },
        setOffline: async () => {
          throw new Unsupported('WebKitGTK\'s WebDriver cannot take the page offline');
        },
        close: async () => {
          people.delete(page);
          await session.delete().catch(() => {});
          await driver.stop();
        },
      };
      people.add(page);
      return page;
    },
    async close() {
      await Promise.all([...people].map((page) => page.close()));
      await xvfb.stop();
    },
  };
}

/**
 * Sizes the window so that the viewport is `width`×`height` CSS pixels (full
 * screen, the window is all viewport), and waits until the page sees it:
 * the resize reaches the page asynchronously.
 */
async function setViewport(session, { width, height }) {
  await session.setWindowRect({ width, height });
  const deadline = Date.now() + 5_000;
  for (;;) {
    const [innerWidth, innerHeight] = await session.execute('return [window.innerWidth, window.innerHeight];');
    if (innerWidth === width && innerHeight === height) return;
    if (Date.now() > deadline) {
      throw new Unsupported(`MiniBrowser's viewport stays ${innerWidth}×${innerHeight}, not ${width}×${height}`);
    }
    await delay(20);
  }
}

// --- processes -------------------------------------------------------------

const running = new Set();
let exitHooked = false;

/** Starts a process in its own group and remembers it until it exits. */
function startProcess(command, args, options) {
  const child = spawn(command, args, { ...options, detached: true });
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', killAll);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.once(signal, () => {
        killAll();
        process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 })[signal]);
      });
    }
  }
  return child;
}

function killGroup(child, signal = 'SIGKILL') {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone already.
  }
}

function killAll() {
  for (const child of running) killGroup(child);
}

/** Stops a process group: SIGTERM, then SIGKILL for whatever is left. */
async function stopProcess(child) {
  if (child.exitCode === null && child.signalCode === null) {
    killGroup(child, 'SIGTERM');
    // An unref'd timer: it bounds the wait without keeping node alive.
    await Promise.race([once(child, 'exit'), delay(3_000, undefined, { ref: false })]);
  }
  killGroup(child, 'SIGKILL');
}

/** One Xvfb for the run; it picks a free display number itself. */
async function startXvfb() {
  const child = startProcess('Xvfb', ['-displayfd', '3', '-nolisten', 'tcp', '-screen', '0', '1920x1080x24'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000); });
  const display = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`Xvfb did not start in ${START_TIMEOUT_MS} ms:\n${stderr}`)), START_TIMEOUT_MS);
    child.stdio[3].on('data', (chunk) => {
      out += chunk;
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(`:${out.trim()}`);
      }
    });
    child.once('error', (error) => { clearTimeout(timer); reject(error); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`Xvfb exited with ${code}:\n${stderr}`)); });
  });
  return { display, stop: () => stopProcess(child) };
}

/** A WebKitWebDriver on a free local port, ready for a session. */
async function startDriver(display) {
  const port = await freePort();
  const child = startProcess(DRIVER, [`--port=${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DISPLAY: display },
  });
  let output = '';
  const keep = (chunk) => { output = (output + chunk).slice(-4000); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let failed;
  child.once('error', (error) => { failed = error; });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (failed) throw failed;
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`WebKitWebDriver exited with ${child.exitCode ?? child.signalCode}:\n${output}`);
    }
    const status = await request(url, 'GET', '/status', undefined, 1_000).catch(() => null);
    if (status?.ready) break;
    if (Date.now() > deadline) {
      await stopProcess(child);
      throw new Error(`WebKitWebDriver was not ready in ${START_TIMEOUT_MS} ms:\n${output}`);
    }
    await delay(50);
  }
  return { url, stop: () => stopProcess(child) };
}

async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** WebDriver key values for typing `text`: a newline is the Enter key (a bare "\n" types nothing). */
function keysOf(text) {
  return [...text].map((character) => (character === '\n' ? webdriverKey('Enter') : character));
}
