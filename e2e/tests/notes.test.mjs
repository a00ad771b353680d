// Collaborative notes in the browser: the list (create, rename, delete,
// live), two people typing into one note at once, the preview, and edits
// made offline merging on reconnect.
import { after, before } from 'node:test';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import { startServer } from '../support/server.mjs';
import { forEachEngine } from '../support/browsers.mjs';
import {
  assert, body, createNote, listedTitles, openList, openNote, placeCaret, waitEditorLoaded,
  waitForBody, waitForPeer, waitForTitles, waitListLoaded, waitSaved, WAIT_MS,
} from '../support/notes.mjs';

const SCREENSHOTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'screenshots');
const PHONE = { width: 390, height: 844 };

forEachEngine('notes', ({ scenario }) => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  scenario('the list creates, renames and deletes notes, newest edit first, live for everyone', async (browser) => {
    const alice = await browser.newPerson();
    const bob = await browser.newPerson();
    await openList(alice, server.url, 'Alice');
    // Bob follows on a phone-sized screen.
    await bob.setViewport(PHONE);
    await openList(bob, server.url, 'Bob');

    await createNote(alice, 'Groceries');
    assert.equal(await alice.value('Title'), 'Groceries');
    await waitForTitles(bob, ['Groceries']);

    await alice.goto(`${server.url}/notes`);
    await waitListLoaded(alice);
    await createNote(alice, 'Ideas');
    await waitForTitles(bob, ['Ideas', 'Groceries']);

    // Renaming is an edit: the renamed note moves to the top for both.
    await bob.click('Rename Groceries');
    await bob.fill('New title', 'Shopping');
    await bob.click('Save title');
    await waitForTitles(bob, ['Shopping', 'Ideas']);
    await alice.goto(`${server.url}/notes`);
    await waitListLoaded(alice);
    await waitForTitles(alice, ['Shopping', 'Ideas']);

    // Deleting asks first; keeping it changes nothing.
    await bob.click('Delete Shopping');
    await bob.waitFor('.confirm p', { text: 'Delete “Shopping”? This cannot be undone.', timeout: WAIT_MS });
    await bob.click('Keep it');
    assert.deepEqual(await listedTitles(bob), ['Shopping', 'Ideas']);
    await bob.click('Delete Shopping');
    await bob.click('Delete for good');
    await waitForTitles(bob, ['Ideas']);
    await waitForTitles(alice, ['Ideas']);

    assert.ok(
      await bob.evaluate('document.documentElement.scrollWidth <= window.innerWidth'),
      'the list fits a phone screen without sideways scrolling',
    );
  });

  scenario('two people type into one note at once, see each other, and keep the same text after a reload', async (browser) => {
    const alice = await browser.newPerson();
    const bob = await browser.newPerson();
    await openList(alice, server.url, 'Alice');
    const id = await createNote(alice, 'Together');
    await alice.fill('Note text', 'The plan:');
    await waitSaved(alice);
    await openNote(bob, server.url, 'Bob', id);
    await waitForBody(bob, 'The plan:');
    assert.equal(await bob.value('Title'), 'Together');
    await waitForPeer(alice, 'Bob');
    await waitForPeer(bob, 'Alice');

    // Alice types at the start while Bob types at the end, at the same
    // time. Each one's caret must stay in their own text while the other's
    // keystrokes arrive, so each insertion ends up whole.
    await placeCaret(alice, 0);
    await placeCaret(bob, -1);
    await Promise.all([
      alice.type('Alice first. '),
      bob.type(' Bob adds this.'),
    ]);
    const expected = 'Alice first. The plan: Bob adds this.';
    await waitForBody(alice, expected);
    await waitForBody(bob, expected);
    await waitSaved(alice);
    await waitSaved(bob);

    // Alice sees where Bob's caret is: at the end of his text.
    await alice.waitUntil(() => {
      const caret = document.querySelector('.remote-caret[data-name="Bob"]');
      return caret && Number(caret.dataset.offset) === document.getElementById('note-body').value.length;
    }, { what: "Bob's caret at the end" });
    if (browser.engine === 'chromium') {
      await placeCaret(bob, 'Alice first. '.length);
      await alice.waitFor('.remote-caret[data-name="Bob"][data-offset="13"]', { visible: false, timeout: WAIT_MS });
      // The README's picture of a note.
      await alice.screenshot(join(SCREENSHOTS, 'notes.png'));
    }

    await bob.reload();
    await waitEditorLoaded(bob);
    await waitForBody(bob, expected);
    assert.equal(await body(alice), expected);

    // Leaving takes Bob off Alice's list of who is here.
    await bob.goto(`${server.url}/notes`);
    await alice.waitUntil(() => ![...document.querySelectorAll('.peer-list .peer')]
      .some((peer) => peer.textContent.trim() === 'Bob'), { what: 'Bob to leave' });
  });

  scenario('the preview renders Markdown but never the HTML written in a note', async (browser) => {
    const carol = await browser.newPerson();
    await openList(carol, server.url, 'Carol');
    await createNote(carol, 'Preview');
    const markdown = '# Plan\n\n- **milk**\n\n<img src=x onerror="window.pwned=1"> [x](javascript:window.pwned=2)';
    await carol.fill('Note text', markdown);
    await waitForBody(carol, markdown);
    await waitSaved(carol);
    await carol.click('Preview');
    await carol.waitFor('.note-preview h1', { text: 'Plan', timeout: WAIT_MS });
    await carol.waitFor('.note-preview li strong', { text: 'milk', timeout: WAIT_MS });
    assert.equal(await carol.count('.note-preview img'), 0, 'raw HTML is text');
    assert.equal(await carol.evaluate("document.querySelector('.note-preview a')?.getAttribute('href') ?? ''"), '');
    assert.equal(await carol.evaluate('window.pwned ?? null'), null);
    await carol.click('Edit');
    await carol.waitFor('#note-body', { timeout: WAIT_MS });
  });

  scenario('a standard Yjs editor (npm y-websocket on /yjs) edits along with the web app, names and cursors included', async (browser) => {
    const dora = await browser.newPerson();
    await openList(dora, server.url, 'Dora');
    const id = await createNote(dora, 'Interop');
    await dora.fill('Note text', 'middle');
    await waitSaved(dora);

    const doc = new Y.Doc();
    const provider = new WebsocketProvider(`${server.url.replace(/^http/, 'ws')}/yjs`, id, doc, {
      WebSocketPolyfill: WebSocket,
      disableBc: true,
    });
    try {
      provider.awareness.setLocalStateField('user', { name: 'Yjs editor', color: '#aa3300' });
      await waitForPeer(dora, 'Yjs editor');
      await waitForYjs(doc, () => doc.getText('body').toString() === 'middle', 'the note to reach the Yjs editor');
      assert.equal(doc.getText('title').toString(), 'Interop');

      doc.getText('body').insert(0, 'Yjs: ');
      await waitForBody(dora, 'Yjs: middle');
      await placeCaret(dora, -1);
      await dora.type(' :browser');
      await waitForYjs(doc, () => doc.getText('body').toString() === 'Yjs: middle :browser', "the browser's typing");

      // Dora's cursor, as the Yjs editor reads it: a relative position in
      // `body` that resolves to where her caret is.
      const caretOf = () => {
        const state = [...provider.awareness.getStates().values()].find((s) => s.user?.name === 'Dora');
        if (!state?.cursor) return null;
        const position = Y.createAbsolutePositionFromRelativePosition(
          Y.decodeRelativePosition(Buffer.from(state.cursor.head, 'base64')), doc);
        return position?.type === doc.getText('body') ? position.index : null;
      };
      await waitForAwareness(provider, () => caretOf() === 'Yjs: middle :browser'.length, "Dora's cursor at the end");
    } finally {
      provider.destroy();
      provider.awareness.destroy();
    }
  });

  // WebKitGTK's WebDriver cannot take a page offline, so this runs in Chromium and Firefox.
  scenario('edits made offline merge with others’ edits when the connection is back', async (browser) => {
    const alice = await browser.newPerson();
    const bob = await browser.newPerson();
    await openList(alice, server.url, 'Alice');
    const id = await createNote(alice, 'Offline');
    await alice.fill('Note text', 'shared start');
    await waitSaved(alice);
    await openNote(bob, server.url, 'Bob', id);
    await waitForBody(bob, 'shared start');

    await bob.setOffline(true);
    await bob.waitFor('.save-state[data-state="offline"]', { timeout: WAIT_MS });
    await placeCaret(alice, -1);
    await alice.type(' + Alice online');
    await waitSaved(alice);
    await placeCaret(bob, 0);
    await bob.type('Bob offline: ');
    await bob.waitFor('.save-state', { text: 'Offline — edits kept here', timeout: WAIT_MS });
    assert.equal(await body(bob), 'Bob offline: shared start');
    // Leaving the note and coming back (still offline) keeps the edit.
    await bob.evaluate("document.querySelector('a.back').click()");
    await bob.waitFor('main.notes', { timeout: WAIT_MS });
    await bob.evaluate('history.back()');
    await waitForBody(bob, 'Bob offline: shared start');

    await bob.setOffline(false);
    const merged = 'Bob offline: shared start + Alice online';
    await waitForBody(bob, merged);
    await waitForBody(alice, merged);
    await waitSaved(bob);
    await alice.reload();
    await waitEditorLoaded(alice);
    await waitForBody(alice, merged);
  }, { engines: ['chromium', 'firefox'] });
});

/** Resolves when `condition()` holds, checked after every change of `doc`. */
function waitForYjs(doc, condition, what) {
  return waitForEvents(doc, 'update', condition, what);
}

/** Resolves when `condition()` holds, checked after every awareness change. */
function waitForAwareness(provider, condition, what) {
  return waitForEvents(provider.awareness, 'change', condition, what);
}

function waitForEvents(emitter, event, condition, what) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (condition()) {
        emitter.off(event, check);
        clearTimeout(timer);
        resolve();
      }
    };
    const timer = setTimeout(() => {
      emitter.off(event, check);
      reject(new Error(`timed out waiting for ${what}`));
    }, WAIT_MS);
    emitter.on(event, check);
    check();
  });
}
