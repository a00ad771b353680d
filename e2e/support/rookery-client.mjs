// A small Node client of Rookery's /ws protocol (JSON frames), for tests
// that pair it with standard Yjs clients.
import WebSocket from 'ws';

export class RookeryClient {
  static async connect(baseUrl, name) {
    const socket = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/ws`, 'rookery.v1.json');
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    const client = new RookeryClient(socket);
    const reply = await client.request({ type: 'connect', name });
    if (reply.type !== 'connected') throw new Error(`connect refused: ${JSON.stringify(reply)}`);
    return client;
  }

  constructor(socket) {
    this.socket = socket;
    this.nextId = 1;
    this.waiting = new Map();
    this.listeners = new Set();
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (message.type === 'ping') {
        this.send({ type: 'pong' });
        return;
      }
      if (message.id !== undefined && this.waiting.has(message.id)) {
        this.waiting.get(message.id)(message);
        this.waiting.delete(message.id);
        return;
      }
      for (const listener of this.listeners) listener(message);
    });
  }

  send(message) {
    this.socket.send(JSON.stringify(message));
  }

  /** Sends a command with an id; resolves with its one reply. */
  request(command) {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.send({ ...command, id });
    });
  }

  onPush(listener) {
    this.listeners.add(listener);
  }

  close() {
    this.socket.close();
  }
}

export const toBase64 = (bytes) => Buffer.from(bytes).toString('base64');
export const fromBase64 = (text) => new Uint8Array(Buffer.from(text, 'base64'));
