// A Node WebSocket broadcast server (the `ws` library) speaking the fan-out
// benchmark's subset of Rookery's protocol (connect, subscribe, publish;
// anything else is ignored). The usual idiom: a map of channel → set of
// sockets, the frame built once per publish and `send` per subscriber.
//
//   node node-ws-server.mjs --port 0      (or PORT=0 node node-ws-server.mjs)
//
// Prints `listening on 127.0.0.1:<port>` once ready; SIGTERM/SIGINT stop it.
import { WebSocketServer, WebSocket } from 'ws';

function portArg() {
  const index = process.argv.indexOf('--port');
  const value = index >= 0 ? process.argv[index + 1] : process.env.PORT ?? '0';
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`bad port: ${value}`);
    process.exit(2);
  }
  return port;
}

/** @type {Map<string, Set<WebSocket>>} */
const channels = new Map();

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: portArg(),
  perMessageDeflate: false,
  maxPayload: 64 * 1024,
});

wss.on('connection', (ws) => {
  /** @type {Set<string>} */
  const subscribed = new Set();
  ws.on('message', (message, isBinary) => {
    if (isBinary) return; // binary frames are ignored
    let command;
    try {
      command = JSON.parse(message.toString());
    } catch {
      return;
    }
    if (command === null || typeof command !== 'object') return;
    const { type, id, channel } = command;
    if (type === 'connect') {
      ws.send(JSON.stringify({ type: 'connected', id }));
      return;
    }
    if (typeof channel !== 'string') return;
    if (type === 'subscribe') {
      let subscribers = channels.get(channel);
      if (!subscribers) channels.set(channel, (subscribers = new Set()));
      subscribers.add(ws);
      subscribed.add(channel);
      ws.send(JSON.stringify({ type: 'subscribed', id, channel }));
    } else if (type === 'publish') {
      const frame = JSON.stringify({ type: 'publication', channel, data: command.data ?? null });
      const subscribers = channels.get(channel);
      if (subscribers) {
        for (const client of subscribers) {
          if (client.readyState === WebSocket.OPEN) client.send(frame);
        }
      }
      if (id !== undefined) ws.send(JSON.stringify({ type: 'published', id, channel }));
    }
  });
  ws.on('close', () => {
    for (const channel of subscribed) {
      const subscribers = channels.get(channel);
      subscribers?.delete(ws);
      if (subscribers?.size === 0) channels.delete(channel);
    }
  });
  ws.on('error', () => {});
});

wss.on('listening', () => {
  console.log(`listening on 127.0.0.1:${wss.address().port}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
