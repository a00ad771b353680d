// The one place that knows the browser engines. A scenario is written once
// against the driver-neutral person API (./person.mjs) and runs in every
// engine; each engine's driver file says how it is started and driven:
//
//   chromium  Debian Chromium via Playwright              ./driver-chromium.mjs
//   firefox   Debian Firefox ESR via puppeteer, BiDi      ./driver-firefox.mjs
//   webkit    WebKitGTK MiniBrowser via WebKitWebDriver   ./driver-webkit.mjs
//
// E2E_ENGINES=firefox,webkit (comma separated) runs a subset.
import { after, afterEach, before, describe, test } from 'node:test';
import { Person, Unsupported } from './person.mjs';

export const ALL_ENGINES = ['chromium', 'firefox', 'webkit'];

const DRIVERS = {
  chromium: () => import('./driver-chromium.mjs').then((m) => ({ launch: m.launchChromium, supports: m.supports })),
  firefox: () => import('./driver-firefox.mjs').then((m) => ({ launch: m.launchFirefox, supports: m.supports })),
  webkit: () => import('./driver-webkit.mjs').then((m) => ({ launch: m.launchWebKit, supports: m.supports })),
};

/** The engines this run covers: all, or those named in E2E_ENGINES. */
export const ENGINES = selectEngines(process.env.E2E_ENGINES);

function selectEngines(list) {
  if (!list || !list.trim()) return ALL_ENGINES;
  const names = list.split(',').map((name) => name.trim().toLowerCase()).filter(Boolean);
  for (const name of names) {
    if (!ALL_ENGINES.includes(name)) throw new Error(`E2E_ENGINES: unknown engine ${name} (known: ${ALL_ENGINES.join(', ')})`);
  }
  return ALL_ENGINES.filter((name) => names.includes(name));
}

export const DEFAULT_VIEWPORT = { width: 1280, height: 720 };

/**
 * How a browser is started, for suites that need more than the defaults.
 * @typedef {object} LaunchOptions
 * @property {boolean} [acceptInsecureCerts] accept any certificate (a test's self-signed one)
 * @property {string[]} [hostNames] names that resolve to 127.0.0.1, where the engine can
 *   (`supports.hostNames`); a page on such a name is not "localhost", so it is a secure
 *   context only over https
 */

/**
 * Starts `engine`. Its `newPerson()` opens an isolated window (own storage
 * and cookies): one per person.
 * @param {'chromium' | 'firefox' | 'webkit'} engine
 * @param {LaunchOptions} options
 */
export async function launch(engine, options = {}) {
  if (!DRIVERS[engine]) throw new Error(`engine ${engine} is not set up in this harness`);
  const { launch: launchDriver, supports } = await DRIVERS[engine]();
  const driver = await launchDriver(options);
  const people = new Set();
  return {
    engine,
    /** What this engine can emulate here: { touch, geolocation, hostNames }. */
    supports,
    /**
     * A new person in their own isolated window.
     * @param {{ viewport?: { width: number, height: number }, touch?: boolean }} options
     *   `touch`: a phone (touch screen, mobile viewport rules); throws
     *   Unsupported where the engine cannot emulate it (see `supports`).
     * @returns {Promise<Person>}
     */
    async newPerson({ viewport = DEFAULT_VIEWPORT, touch = false } = {}) {
      const page = await driver.newPage({ viewport, touch });
      const person = new Person(engine, page, { onClose: () => people.delete(person) });
      people.add(person);
      return person;
    },
    /** Closes every person still open (after each test, passed or failed). */
    async closePeople() {
      await Promise.all([...people].map((person) => person.close()));
    },
    async close() {
      try {
        await this.closePeople();
      } finally {
        await driver.close();
      }
    },
  };
}

/**
 * Defines the suite `title` once per engine of this run, each browser
 * started with `options` (see `LaunchOptions`). `define` registers
 * the scenarios with `scenario(title, fn, { engines })`: `engines` (default:
 * all three) lists where it runs; leave an engine out only with a comment
 * saying why. `fn(browser)` gets that engine's launched browser; people it
 * opens are closed after each scenario, whether it passed or not.
 *
 * @param {string} title
 * @param {(suite: { engine: string, browser: () => Awaited<ReturnType<typeof launch>>,
 *   scenario: (title: string, fn: (browser: Awaited<ReturnType<typeof launch>>) => Promise<void>,
 *     options?: { engines?: string[] }) => void }) => void} define
 * @param {LaunchOptions} [options]
 */
export function forEachEngine(title, define, options = {}) {
  for (const engine of ENGINES) {
    describe(`${title} (${engine})`, () => {
      let browser;
      before(async () => {
        browser = await launch(engine, options);
      });
      afterEach(async () => {
        await browser?.closePeople();
      });
      after(async () => {
        await browser?.close();
      });
      define({
        engine,
        browser: () => browser,
        scenario(name, fn, { engines = ALL_ENGINES } = {}) {
          for (const listed of engines) {
            if (!ALL_ENGINES.includes(listed)) throw new Error(`scenario ${name}: unknown engine ${listed}`);
          }
          if (engines.includes(engine)) test(name, () => fn(browser));
        },
      });
    });
  }
}

export { Person, Unsupported };
