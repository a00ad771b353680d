// The one place that knows how to start each browser engine. Scenarios ask
// for an engine by name and get a browser whose `newPerson()` opens an
// isolated context (its own storage and cookies): one per person.
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

export const ENGINES = ['chromium'];

/** @param {'chromium'} engine */
export async function launch(engine) {
  if (engine !== 'chromium') {
    throw new Error(`engine ${engine} is not set up in this harness`);
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: CHROMIUM_FLAGS,
  });
  return {
    engine,
    /** A person with their own browser context (storage, cookies). */
    async newPerson(contextOptions = {}) {
      const context = await browser.newContext(contextOptions);
      const page = await context.newPage();
      page.on('pageerror', (error) => console.error(`[${engine}] page error: ${error.message}`));
      return { context, page };
    },
    close: () => browser.close(),
  };
}
