// Firefox: Debian's firefox-esr, headless, driven by puppeteer-core over
// WebDriver BiDi (no geckodriver, no downloaded browser). One browser
// process; one browser context (its own storage and cookies) per person,
// each in its own window so that no person is a throttled background tab.
import puppeteer from 'puppeteer-core';
import { Unsupported } from './person.mjs';

// Firefox 153 ESR has no `emulation.setTouchOverride` (BiDi answers
// "unknown command"), so a context cannot be made a touch device.
export const supports = { touch: false, geolocation: true, hostNames: true };

/** @param {import('./browsers.mjs').LaunchOptions} options */
export async function launchFirefox({ acceptInsecureCerts = false, hostNames = [] } = {}) {
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr',
    headless: true,
    defaultViewport: null,
    acceptInsecureCerts,
    // These names resolve to the loopback address.
    extraPrefsFirefox: hostNames.length ? { 'network.dns.localDomains': hostNames.join(',') } : {},
  });
  return {
    /** @returns {Promise<import('./person.mjs').DriverPage>} */
    async newPage({ viewport, touch }) {
      if (touch) throw new Unsupported('Firefox 153 ESR cannot emulate a touch screen over WebDriver BiDi');
      const context = await browser.createBrowserContext();
      const page = await context.newPage({ type: 'window' });
      page.on('pageerror', (error) => console.error(`[firefox] page error: ${error.message}`));
      await page.setViewport(viewport);
      return {
        goto: async (url) => { await page.goto(url); },
        url: async () => page.url(),
        reload: async () => { await page.reload(); },
        evaluate: (expression) => page.evaluate(expression),
        element: async (expression) => {
          const handle = await page.evaluateHandle(expression);
          const element = handle.asElement();
          if (!element) await handle.dispose();
          return element;
        },
        click: (element) => element.click(),
        fill: async (element, text) => {
          await element.evaluate((field) => { field.focus(); field.select?.(); });
          if (text === '') await page.keyboard.press('Backspace');
          else await page.keyboard.type(text);
        },
        press: async (keys) => {
          const modifiers = keys.slice(0, -1);
          for (const key of modifiers) await page.keyboard.down(key);
          await page.keyboard.press(keys.at(-1));
          for (const key of modifiers.reverse()) await page.keyboard.up(key);
        },
        type: (text) => page.keyboard.type(text),
        setViewport: (size) => page.setViewport(size),
        setGeolocation: async (coords, origin) => {
          await context.overridePermissions(origin, ['geolocation']);
          await page.setGeolocation(coords);
        },
        release: (element) => element.dispose(),
        setOffline: (offline) => page.setOfflineMode(offline),
        screenshot: (path) => page.screenshot({ path }),
        close: () => context.close(),
      };
    },
    close: () => browser.close(),
  };
}
