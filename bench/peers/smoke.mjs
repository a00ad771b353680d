// Smoke test for a fan-out peer (or Rookery itself): three subscribers on
// one channel, a fourth connection publishes ten stamped messages, and every
// subscriber must get all ten, in order, with equal data; the
// publisher must get a `published` reply per publish and no publication.
// Only `type`, `id`, `channel` and `data` are checked, so Rookery's extra
// fields pass.
//
//   node smoke.mjs ws://127.0.0.1:PORT/ws [--channel bench:fanout] [--timeout-ms 5000]
//
// Exits 0 and prints `smoke ok: ...` on success, non-zero otherwise.
import { WebSocket } from 'ws';
import { isDeepStrictEqual } from 'node:util';

const args = process.argv.slice(2);
function option(name, fallback) {
  const index = args.indexOf(name);
  return index >= 0 ? args[index + 1] : fallback;
}
const url = args.find((arg, index) => !arg.startsWith('--') && !args[index - 1]?.startsWith('--'));
if (!url) {
  console.error('usage: node smoke.mjs WS_URL [--channel NAME] [--timeout-ms N]');
  process.exit(2);
}
const channel = option('--channel', 'bench:fanout');
const timeoutMs = Number(option('--timeout-ms', '5000'));
const SUBSCRIBERS = 3;
const MESSAGES = 10;

function fail(message) {
  console.error(`smoke FAILED against ${url}: ${message}`);
  process.exit(1);
}
let progress = () => 'while connecting';
const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms ${progress()}`), timeoutMs);

/** A client that records every frame and lets callers wait for one. */
async function client(name) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const frames = [];
  const waiters = [];
  ws.on('message', (raw, isBinary) => {
    if (isBinary) fail(`${name} got a binary frame`);
    const frame = JSON.parse(raw.toString());
    if (frame.type === 'error') fail(`${name} got an error: ${raw}`);
    frames.push(frame);
    for (const waiter of [...waiters]) waiter();
  });
  ws.on('error', (error) => fail(`${name}: ${error.message}`));
  ws.on('close', (code) => {
    if (!done) fail(`${name} closed (${code})`);
  });
  await new Promise((resolve) => ws.once('open', resolve));
  const waitFor = (predicate) =>
    new Promise((resolve) => {
      const check = () => {
        const found = frames.find(predicate);
        if (!found) return;
        waiters.splice(waiters.indexOf(check), 1);
        resolve(found);
      };
      waiters.push(check);
      check();
    });
  const send = (message) => ws.send(JSON.stringify(message));
  send({ type: 'connect', id: 1, name });
  const connected = await waitFor((frame) => frame.type === 'connected');
  if (connected.id !== 1) fail(`${name}: connected reply has id ${connected.id}`);
  return { ws, frames, waitFor, send };
}

let done = false;
const subscribers = await Promise.all(
  Array.from({ length: SUBSCRIBERS }, (_, index) => client(`smoke-sub-${index}`)),
);
await Promise.all(
  subscribers.map(async (subscriber) => {
    subscriber.send({ type: 'subscribe', id: 2, channel });
    const reply = await subscriber.waitFor((frame) => frame.type === 'subscribed');
    if (reply.id !== 2 || reply.channel !== channel) fail(`bad subscribed reply ${JSON.stringify(reply)}`);
  }),
);

const publisher = await client('smoke-pub');
const sent = [];
for (let seq = 0; seq < MESSAGES; seq++) {
  const data = { seq, stamp: Date.now(), text: `message ${seq} "quoted" é`, nested: { z: 1, a: [seq, null] } };
  sent.push(data);
  publisher.send({ type: 'publish', id: 10 + seq, channel, data });
}

let keyOrderChanged = false;
progress = () => {
  const counts = subscribers.map((subscriber) => subscriber.frames.filter(isPublication).length);
  const acked = publisher.frames.filter((frame) => frame.type === 'published').length;
  return `(publications per subscriber: ${counts.join(', ')} of ${MESSAGES}; published replies: ${acked})`;
};
const isPublication = (frame) => frame.type === 'publication';
await Promise.all(
  subscribers.map((subscriber) =>
    subscriber.waitFor(() => subscriber.frames.filter(isPublication).length >= MESSAGES),
  ),
);
await publisher.waitFor(
  () => publisher.frames.filter((frame) => frame.type === 'published').length >= MESSAGES,
);
// Let anything extra (duplicates) arrive before checking.
await new Promise((resolve) => setTimeout(resolve, 100));

subscribers.forEach((subscriber, index) => {
  const got = subscriber.frames.filter(isPublication);
  if (got.length !== MESSAGES) fail(`subscriber ${index} got ${got.length} publications`);
  got.forEach((frame, seq) => {
    if (frame.channel !== channel) fail(`subscriber ${index}: publication on ${frame.channel}`);
    if (!isDeepStrictEqual(frame.data, sent[seq])) {
      fail(`subscriber ${index}: publication ${seq} is ${JSON.stringify(frame.data)}`);
    }
    // Equal data with its object keys in another order is allowed (Rookery
    // re-serialises `data` with sorted keys), but said.
    if (JSON.stringify(frame.data) !== JSON.stringify(sent[seq])) keyOrderChanged = true;
  });
});
const acks = publisher.frames.filter((frame) => frame.type === 'published');
acks.forEach((ack, seq) => {
  if (ack.id !== 10 + seq || ack.channel !== channel) fail(`bad published reply ${JSON.stringify(ack)}`);
});
if (publisher.frames.some(isPublication)) fail('the publisher (not subscribed) got a publication');

done = true;
clearTimeout(timer);
for (const { ws } of [...subscribers, publisher]) ws.close();
console.log(
  `smoke ok: ${url} ${SUBSCRIBERS} subscribers x ${MESSAGES} publications in order on ${channel}, ${acks.length} published replies${
    keyOrderChanged ? ' (note: data came back with its object keys reordered)' : ''
  }`,
);
