// A standard Yjs editor (npm yjs + y-websocket, on /yjs/{note}) and a
// Rookery /ws client edit one note at once and converge. No browser.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import { startServer } from '../support/server.mjs';
import { RookeryClient, fromBase64, toBase64 } from '../support/rookery-client.mjs';

const WAIT_MS = 15_000;

/** Resolves when `condition()` holds, checking after every change of `doc`. */
function when(doc, condition, what) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (condition()) {
        doc.off('update', check);
        clearTimeout(timer);
        resolve();
      }
    };
    const timer = setTimeout(() => {
      doc.off('update', check);
      reject(new Error(`timed out waiting for ${what}`));
    }, WAIT_MS);
    doc.on('update', check);
    check();
  });
}

/** Joins a note over /ws and keeps `doc` in sync with it both ways. */
async function joinOverWs(client, note, doc) {
  const channel = `notes:${note}`;
  client.onPush((message) => {
    if (message.type === 'doc_updated' && message.channel === channel) {
      Y.applyUpdate(doc, fromBase64(message.update), 'remote');
    }
  });
  const synced = await client.request({ type: 'doc_sync', channel, state_vector: toBase64(Y.encodeStateVector(doc)) });
  assert.equal(synced.type, 'doc_synced', JSON.stringify(synced));
  Y.applyUpdate(doc, fromBase64(synced.update), 'remote');
  const missing = Y.encodeStateAsUpdate(doc, fromBase64(synced.state_vector));
  const saves = [];
  const send = (update) => {
    saves.push(client.request({ type: 'doc_update', channel, update: toBase64(update) }));
  };
  if (missing.length > 2) send(missing);
  doc.on('update', (update, origin) => {
    if (origin !== 'remote') send(update);
  });
  return { saves };
}

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

test('a y-websocket editor and a /ws editor type into one note at once and converge', async () => {
  const note = `interop-${Date.now()}`;
  const yjsDoc = new Y.Doc();
  const provider = new WebsocketProvider(`${server.url.replace(/^http/, 'ws')}/yjs`, note, yjsDoc, {
    WebSocketPolyfill: WebSocket,
    // Providers in one process would also talk over BroadcastChannel: test
    // only what goes through the server.
    disableBc: true,
  });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('y-websocket did not sync')), WAIT_MS);
    provider.once('sync', (synced) => {
      clearTimeout(timer);
      if (synced) resolve();
    });
  });

  const wsDoc = new Y.Doc();
  const client = await RookeryClient.connect(server.url, 'Node editor');
  const { saves } = await joinOverWs(client, note, wsDoc);

  // Both type at once: the y-websocket one into body and title, the /ws one into body.
  yjsDoc.getText('title').insert(0, 'Shared plan');
  yjsDoc.getText('body').insert(0, 'from yjs; ');
  wsDoc.getText('body').insert(0, 'from ws; ');

  const bothIn = (doc) => () => {
    const body = doc.getText('body').toString();
    return body.includes('from yjs; ') && body.includes('from ws; ');
  };
  await when(yjsDoc, bothIn(yjsDoc), 'the y-websocket editor to see both edits');
  await when(wsDoc, bothIn(wsDoc), 'the /ws editor to see both edits');
  await when(wsDoc, () => wsDoc.getText('title').toString() === 'Shared plan', 'the title');
  assert.equal(yjsDoc.getText('body').toString(), wsDoc.getText('body').toString());

  // Every /ws edit was acknowledged as stored.
  for (const reply of await Promise.all(saves)) assert.equal(reply.type, 'doc_saved', JSON.stringify(reply));

  // A third editor, joining later over /ws, gets the merged note from the server.
  const lateDoc = new Y.Doc();
  const late = await RookeryClient.connect(server.url, 'Late');
  await joinOverWs(late, note, lateDoc);
  assert.equal(lateDoc.getText('body').toString(), yjsDoc.getText('body').toString());
  assert.equal(lateDoc.getText('title').toString(), 'Shared plan');

  provider.destroy();
  provider.awareness.destroy();
  client.close();
  late.close();
});

test('a y-websocket client sees the others\' awareness and its removal', async () => {
  const note = `awareness-${Date.now()}`;
  const base = `${server.url.replace(/^http/, 'ws')}/yjs`;
  const docA = new Y.Doc();
  const docB = new Y.Doc();
  // disableBc: in one process the providers would otherwise also talk over
  // BroadcastChannel, around the server.
  const a = new WebsocketProvider(base, note, docA, { WebSocketPolyfill: WebSocket, disableBc: true });
  const b = new WebsocketProvider(base, note, docB, { WebSocketPolyfill: WebSocket, disableBc: true });
  a.awareness.setLocalStateField('user', { name: 'Ada', color: '#d1495b' });
  const sawAda = () => [...b.awareness.getStates().values()].some((state) => state.user?.name === 'Ada');
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no awareness from Ada')), WAIT_MS);
    const check = () => {
      if (sawAda()) {
        clearTimeout(timer);
        b.awareness.off('change', check);
        resolve();
      }
    };
    b.awareness.on('change', check);
    check();
  });
  // Ada's connection ends: the server tells B her cursor is gone.
  a.disconnect();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("Ada's awareness was not removed")), WAIT_MS);
    const check = () => {
      if (!sawAda()) {
        clearTimeout(timer);
        b.awareness.off('change', check);
        resolve();
      }
    };
    b.awareness.on('change', check);
    check();
  });
  for (const provider of [a, b]) {
    provider.destroy();
    // The awareness keeps a timer of its own.
    provider.awareness.destroy();
  }
});
