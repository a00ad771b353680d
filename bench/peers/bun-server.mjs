// A Bun WebSocket broadcast server speaking the fan-out benchmark's subset
// of Rookery's protocol (connect, subscribe, publish; anything else is
// ignored). Fan-out is uWebSockets' native pub/sub: `ws.subscribe(channel)`
// and `server.publish(channel, frame)`, one frame built per publish.
//
//   bun bun-server.mjs --port 0      (or PORT=0 bun bun-server.mjs)
//
// Prints `listening on 127.0.0.1:<port>` once ready; SIGTERM/SIGINT stop it.

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

const server = Bun.serve({
  hostname: '127.0.0.1',
  port: portArg(),
  fetch(request, server) {
    if (server.upgrade(request)) return undefined;
    return new Response('WebSocket only', { status: 426 });
  },
  websocket: {
    perMessageDeflate: false,
    maxPayloadLength: 64 * 1024,
    message(ws, message) {
      if (typeof message !== 'string') return; // binary frames are ignored
      let command;
      try {
        command = JSON.parse(message);
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
        ws.subscribe(channel);
        ws.send(JSON.stringify({ type: 'subscribed', id, channel }));
      } else if (type === 'publish') {
        const frame = JSON.stringify({ type: 'publication', channel, data: command.data ?? null });
        server.publish(channel, frame);
        if (id !== undefined) ws.send(JSON.stringify({ type: 'published', id, channel }));
      }
    },
  },
});

console.log(`listening on 127.0.0.1:${server.port}`);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.stop(true);
    process.exit(0);
  });
}
