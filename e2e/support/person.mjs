// The driver-neutral "person": what a scenario can do with one browser
// window, the same in every engine. Each engine's driver file provides a few
// primitives (below); everything else — finding fields by label and buttons
// by name, waiting for a condition, reading the page — is built here once, on
// top of `evaluate`, so it behaves identically in Chromium, Firefox and WebKit.
//
// Form controls are found the way a person finds them (a field by its label,
// a button by its name); everything else by CSS selector.
//
// Waiting polls a condition in the page until it holds or the timeout passes;
// nothing here sleeps to let the page "settle".

/**
 * What one engine's driver provides for one person (one isolated window).
 * @typedef {object} DriverPage
 * @property {(url: string) => Promise<void>} goto navigates and waits for the load event
 * @property {() => Promise<string>} url
 * @property {() => Promise<void>} reload reloads and waits for the load event
 * @property {(expression: string) => Promise<any>} evaluate the JSON value of a JS expression (a promise is awaited)
 * @property {(expression: string) => Promise<object | null>} element a handle on the element an expression evaluates to, or null
 * @property {(element: object) => Promise<void>} click clicks the element as a pointer would
 * @property {(element: object, text: string) => Promise<void>} fill focuses the field and replaces its content with `text`, typed
 * @property {(keys: string[]) => Promise<void>} press holds all keys but the last, presses the last: ['Enter'], ['Control', 'a']
 * @property {(text: string) => Promise<void>} type types text into the focused element
 * @property {(size: { width: number, height: number }) => Promise<void>} setViewport
 * @property {(coords: { latitude: number, longitude: number, accuracy?: number }, origin: string) => Promise<void>} setGeolocation
 * @property {(path: string) => Promise<void>} screenshot saves a PNG of the viewport
 * @property {(offline: boolean) => Promise<void>} setOffline cuts (or restores) the page's network, as the browser's offline mode does
 * @property {(element: object) => Promise<void>} [release] frees an element handle
 * @property {() => Promise<void>} close
 */

export const DEFAULT_TIMEOUT_MS = 15_000;
const POLL_INTERVAL_MS = 50;

/** Thrown for what an engine's driver cannot do here; the message says why. */
export class Unsupported extends Error {}

export class Person {
  /**
   * @param {string} engine
   * @param {DriverPage} page
   * @param {{ timeoutMs?: number, onClose?: () => void }} options
   */
  constructor(engine, page, { timeoutMs = DEFAULT_TIMEOUT_MS, onClose } = {}) {
    this.engine = engine;
    this.page = page;
    this.timeoutMs = timeoutMs;
    this.onClose = onClose;
    this.closed = false;
  }

  // --- navigation -------------------------------------------------------

  /** Opens `url` and waits for its load event. */
  async goto(url) {
    await this.page.goto(url);
  }

  async url() {
    return this.page.url();
  }

  /** Reloads the page and waits for its load event. */
  async reload() {
    await this.page.reload();
  }

  // --- reading the page --------------------------------------------------

  /**
   * The value of a JS expression (string), or of `fn(...args)` evaluated in
   * the page (args and result must be JSON values). A promise is awaited.
   */
  async evaluate(fnOrExpression, ...args) {
    return this.page.evaluate(expression(fnOrExpression, args));
  }

  /** Text contents of every element matching `selector`, in document order. */
  async texts(selector) {
    return this.page.evaluate(pageCall('texts', selector));
  }

  /** How many elements match `selector`. */
  async count(selector) {
    return this.page.evaluate(pageCall('count', selector));
  }

  /** The current value of the field labelled `label`. */
  async value(label) {
    const value = await this.page.evaluate(pageCall('value', label));
    if (value === null) throw new Error(`[${this.engine}] no field labelled ${JSON.stringify(label)}`);
    return value;
  }

  // --- waiting -------------------------------------------------------------

  /**
   * Waits until an element matching `selector` is visible (non-empty box,
   * not `visibility: hidden`), and with `text`, one whose text (whitespace
   * collapsed and trimmed) is exactly `text`. `visible: false` accepts any
   * attached element.
   */
  async waitFor(selector, { text, visible = true, timeout = this.timeoutMs } = {}) {
    const what = `${visible ? 'a visible' : 'an'} element matching ${selector}${text === undefined ? '' : ` with text ${JSON.stringify(text)}`}`;
    await this.poll(() => this.page.evaluate(pageCall('matches', selector, text ?? null, visible)), { timeout, what });
  }

  /** Waits until `fn(...args)` (or a JS expression) is truthy in the page; returns its value. */
  async waitUntil(fnOrExpression, { args = [], timeout = this.timeoutMs, what } = {}) {
    const source = expression(fnOrExpression, args);
    return this.poll(() => this.page.evaluate(source), { timeout, what: what ?? source });
  }

  /**
   * Polls `check` until it returns a truthy value, which it returns. Errors
   * while the page navigates count as "not yet"; the last one is reported
   * if the time runs out.
   */
  async poll(check, { timeout = this.timeoutMs, what = 'a condition' } = {}) {
    const deadline = Date.now() + timeout;
    let lastError;
    for (;;) {
      try {
        const result = await check();
        if (result) return result;
        lastError = undefined;
      } catch (error) {
        lastError = error;
      }
      if (Date.now() >= deadline) {
        const url = await this.page.url().catch(() => '?');
        throw new Error(
          `[${this.engine}] timed out after ${timeout} ms waiting for ${what} (at ${url})`
            + (lastError ? `; last error: ${lastError.message}` : ''),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
  }

  // --- acting ---------------------------------------------------------------

  /** Replaces the content of the field labelled `label` with `text`, typed. */
  async fill(label, text, { timeout = this.timeoutMs } = {}) {
    const field = await this.findElement(pageCall('field', label), `a field labelled ${JSON.stringify(label)}`, timeout);
    try {
      await this.page.fill(field, text);
    } finally {
      await this.page.release?.(field);
    }
  }

  /** Clicks the button whose accessible name (or text) is `name`. */
  async click(name, { timeout = this.timeoutMs } = {}) {
    const button = await this.findElement(pageCall('button', name), `a button named ${JSON.stringify(name)}`, timeout);
    try {
      await this.page.click(button);
    } finally {
      await this.page.release?.(button);
    }
  }

  /** Clicks the checkbox (or radio) labelled `label`, as a pointer would. */
  async toggle(label, { timeout = this.timeoutMs } = {}) {
    const box = await this.findElement(pageCall('field', label), `a control labelled ${JSON.stringify(label)}`, timeout);
    try {
      await this.page.click(box);
    } finally {
      await this.page.release?.(box);
    }
  }

  /** Presses a key or a chord on the focused element: 'Enter', 'Tab', 'Control+A'. */
  async press(key) {
    const keys = key === '+' ? ['+'] : key.split('+');
    const last = keys.length - 1;
    // With a modifier held, a letter names the key, not a capital: 'Control+A' is Control and 'a'.
    if (last > 0 && keys[last].length === 1) keys[last] = keys[last].toLowerCase();
    await this.page.press(keys);
  }

  /** Types `text` into the focused element, key by key. */
  async type(text) {
    await this.page.type(text);
  }

  // --- the window --------------------------------------------------------------

  /** Sets the size of the page's viewport (CSS pixels). */
  async setViewport({ width, height }) {
    await this.page.setViewport({ width, height });
  }

  /**
   * Grants `origin` (default: the current page's) the geolocation permission
   * and reports this position to the page, now and to `watchPosition`.
   * Throws `Unsupported` where the engine cannot.
   */
  async setGeolocation({ latitude, longitude, accuracy = 10 }, { origin } = {}) {
    const target = origin ?? new URL(await this.url()).origin;
    if (!/^https?:/.test(target)) throw new Error(`[${this.engine}] open a page before setGeolocation, or pass { origin }`);
    await this.page.setGeolocation({ latitude, longitude, accuracy }, target);
  }

  /**
   * Takes this person's browser offline (its sockets drop and `offline`
   * fires) or back online. Throws `Unsupported` where the engine cannot.
   */
  async setOffline(offline) {
    await this.page.setOffline(offline);
  }

  /** Saves a PNG of what the person sees. Throws `Unsupported` where the engine cannot. */
  async screenshot(path) {
    await this.page.screenshot(path);
  }

  /** URLs of every resource the page loaded (Resource Timing), for checking where requests went. */
  async resourceUrls() {
    return this.evaluate(() => performance.getEntriesByType('resource').map((entry) => entry.name));
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    this.onClose?.();
    await this.page.close();
  }

  async findElement(source, what, timeout) {
    return this.poll(() => this.page.element(source), { timeout, what });
  }
}

function expression(fnOrExpression, args) {
  if (typeof fnOrExpression === 'function') {
    return `(${fnOrExpression.toString()})(...${JSON.stringify(args)})`;
  }
  if (args.length) throw new Error('arguments need a function, not an expression string');
  return fnOrExpression;
}

/** An expression calling `pageLibrary(name, ...args)` in the page. */
function pageCall(name, ...args) {
  return `(${pageLibrary.toString()})(${JSON.stringify(name)}, ...${JSON.stringify(args)})`;
}

/**
 * Runs in the page (serialised with toString, so it must be self-contained):
 * the finders and conditions every engine shares.
 */
function pageLibrary(name, ...args) {
  const normalize = (text) => (text ?? '').replace(/\s+/g, ' ').trim();
  const isVisible = (element) => {
    const box = element.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(element).visibility !== 'hidden';
  };
  const labelledBy = (element) => (element.getAttribute('aria-labelledby') ?? '')
    .split(/\s+/)
    .map((id) => document.getElementById(id)?.textContent ?? '')
    .join(' ');
  // A form control by its label: <label> (for= or wrapping), aria-labelledby, aria-label.
  const field = (label) => {
    const candidates = [];
    for (const element of document.querySelectorAll('label')) {
      if (normalize(element.textContent) === label && element.control) candidates.push(element.control);
    }
    for (const element of document.querySelectorAll('[aria-labelledby]')) {
      if (normalize(labelledBy(element)) === label) candidates.push(element);
    }
    for (const element of document.querySelectorAll('[aria-label]')) {
      if (normalize(element.getAttribute('aria-label')) === label) candidates.push(element);
    }
    return candidates.find((element) => isVisible(element) && !element.disabled) ?? null;
  };
  // A button by its accessible name: aria-labelledby, aria-label, value or text.
  const button = (buttonName) => {
    const buttons = document.querySelectorAll(
      'button, [role="button"], input[type="submit"], input[type="button"], input[type="reset"]',
    );
    for (const element of buttons) {
      const accessibleName = element.hasAttribute('aria-labelledby')
        ? labelledBy(element)
        : element.getAttribute('aria-label') ?? (element instanceof HTMLInputElement ? element.value : element.textContent);
      if (normalize(accessibleName) === buttonName && isVisible(element) && !element.disabled) return element;
    }
    return null;
  };
  switch (name) {
    case 'field': return field(args[0]);
    case 'button': return button(args[0]);
    case 'value': {
      const element = field(args[0]);
      return element ? element.value : null;
    }
    case 'texts': return [...document.querySelectorAll(args[0])].map((element) => element.textContent);
    case 'count': return document.querySelectorAll(args[0]).length;
    case 'matches': {
      const [selector, text, visible] = args;
      return [...document.querySelectorAll(selector)].some((element) => (
        (!visible || isVisible(element)) && (text === null || normalize(element.textContent) === text)
      ));
    }
    default: throw new Error(`unknown page call ${name}`);
  }
}
