// Chromium: Debian's /usr/bin/chromium driven by Playwright (playwright-core,
// no downloaded browser). One browser process; one context per person.
import { chromium } from 'playwright-core';

const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const supports = { touch: true, geolocation: true, hostNames: true };

/** @param {import('./browsers.mjs').LaunchOptions} options */
export async function launchChromium({ acceptInsecureCerts = false, hostNames = [] } = {}) {
  const rules = hostNames.map((name) => `MAP ${name} 127.0.0.1`).join(', ');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [...CHROMIUM_FLAGS, ...(rules ? [`--host-resolver-rules=${rules}`] : [])],
  });
  return {
    /** @returns {Promise<import('./person.mjs').DriverPage>} */
    async newPage({ viewport, touch }) {
      // `touch` is a phone: a touch screen and mobile viewport rules.
      const context = await browser.newContext({
        viewport, hasTouch: touch, isMobile: touch, ignoreHTTPSErrors: acceptInsecureCerts,
      });
      const page = await context.newPage();
      page.on('pageerror', (error) => console.error(`[chromium] page error: ${error.message}`));
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
        fill: (element, text) => element.fill(text),
        press: (keys) => page.keyboard.press(keys.join('+')),
        type: (text) => page.keyboard.type(text),
        setViewport: (size) => page.setViewportSize(size),
        setGeolocation: async (coords, origin) => {
          await context.grantPermissions(['geolocation'], { origin });
          await context.setGeolocation(coords);
        },
        setOffline: (offline) => context.setOffline(offline),
        screenshot: (path) => page.screenshot({ path }),
        release: (element) => element.dispose(),
        close: () => context.close(),
      };
    },
    close: () => browser.close(),
  };
}
