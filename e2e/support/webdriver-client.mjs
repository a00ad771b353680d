// A small W3C WebDriver (classic) client over fetch: just the commands the
// WebKit driver needs. One instance talks to one session.

/** The key that marks an element reference in WebDriver JSON. */
export const ELEMENT_KEY = 'element-6066-11e4-a52e-4f735466cecf';

/** WebDriver's codes for the keys that are not characters. */
const SPECIAL_KEYS = {
  Backspace: '\uE003',
  Tab: '\uE004',
  Enter: '\uE007',
  Shift: '\uE008',
  Control: '\uE009',
  Alt: '\uE00A',
  Escape: '\uE00C',
  Space: '\uE00D',
  PageUp: '\uE00E',
  PageDown: '\uE00F',
  End: '\uE010',
  Home: '\uE011',
  ArrowLeft: '\uE012',
  ArrowUp: '\uE013',
  ArrowRight: '\uE014',
  ArrowDown: '\uE015',
  Delete: '\uE017',
  Meta: '\uE03D',
};

/** Maps a key name (`Enter`, `Control`, `a`) to a WebDriver key value. */
export function webdriverKey(name) {
  if (name in SPECIAL_KEYS) return SPECIAL_KEYS[name];
  if ([...name].length === 1) return name;
  throw new Error(`unknown key ${JSON.stringify(name)}`);
}

export class WebDriverError extends Error {
  constructor(command, error, message) {
    super(`WebDriver ${command}: ${error}: ${message}`);
    this.error = error;
  }
}

export class WebDriverSession {
  /** @param {string} baseUrl the driver's URL, e.g. http://127.0.0.1:4444 */
  constructor(baseUrl, sessionId) {
    this.baseUrl = baseUrl;
    this.sessionId = sessionId;
  }

  /** Starts a session with `capabilities` (alwaysMatch). */
  static async create(baseUrl, capabilities, { timeoutMs = 30_000 } = {}) {
    const value = await request(baseUrl, 'POST', '/session', { capabilities: { alwaysMatch: capabilities } }, timeoutMs);
    return new WebDriverSession(baseUrl, value.sessionId);
  }

  command(method, path, body, timeoutMs = 60_000) {
    return request(this.baseUrl, method, `/session/${this.sessionId}${path}`, body, timeoutMs);
  }

  navigate(url) { return this.command('POST', '/url', { url }); }
  currentUrl() { return this.command('GET', '/url'); }
  refresh() { return this.command('POST', '/refresh', {}); }
  setTimeouts(timeouts) { return this.command('POST', '/timeouts', timeouts); }
  windowRect() { return this.command('GET', '/window/rect'); }
  setWindowRect(rect) { return this.command('POST', '/window/rect', rect); }

  /** Runs `script` (a function body using `arguments`); awaits a returned promise. */
  execute(script, args = []) {
    return this.command('POST', '/execute/sync', { script, args });
  }

  clickElement(element) {
    return this.command('POST', `/element/${element[ELEMENT_KEY]}/click`, {});
  }

  /** Presses and releases each key of `keys` in order (key values, not names). */
  async typeKeys(keys) {
    const actions = keys.flatMap((value) => [{ type: 'keyDown', value }, { type: 'keyUp', value }]);
    await this.performKeys(actions);
  }

  /** Holds `modifiers` while pressing `key` (key values). */
  async chord(modifiers, key) {
    await this.performKeys([
      ...modifiers.map((value) => ({ type: 'keyDown', value })),
      { type: 'keyDown', value: key },
      { type: 'keyUp', value: key },
      ...[...modifiers].reverse().map((value) => ({ type: 'keyUp', value })),
    ]);
  }

  async performKeys(actions) {
    await this.command('POST', '/actions', { actions: [{ type: 'key', id: 'keyboard', actions }] });
    await this.command('DELETE', '/actions');
  }

  delete(timeoutMs = 10_000) {
    return request(this.baseUrl, 'DELETE', `/session/${this.sessionId}`, undefined, timeoutMs);
  }
}

/** One WebDriver HTTP request; returns `value` or throws its error. */
export async function request(baseUrl, method, path, body, timeoutMs = 60_000) {
  const response = await fetch(baseUrl + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new WebDriverError(`${method} ${path}`, `http ${response.status}`, text.slice(0, 200));
  }
  const value = parsed?.value;
  if (!response.ok) {
    throw new WebDriverError(`${method} ${path}`, value?.error ?? `http ${response.status}`, value?.message ?? text.slice(0, 200));
  }
  return value;
}
