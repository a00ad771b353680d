// The soak: one Rookery (release build, SQLite in a temporary data dir)
// pinned to core 0, `rookery-bench soak` on core 1: clients leave and come
// back recovering what they missed while publications flow; the run fails
// unless every acknowledged publication reached every client exactly once
// and the server's RSS at the end stayed within --max-growth-percent of its
// size half-way through, and the server let go of every socket once the
// clients left.
//
//   node bench/soak.mjs [--seconds 600] [--clients 10000] [--churn 100]
//                       [--rate 200] [--max-growth-percent 15]
//   node bench/soak.mjs --storm-within-ms 1000 --seconds 30   (reconnect storm)
//
// The test command runs a 60-second version (`.ci/dev test`); the long
// mode is `.ci/dev soak` (600 s). Needs release builds of rookery and
// rookery-bench.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { option, pinned, waitFor, stop } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RELEASE = join(process.env.CARGO_TARGET_DIR ?? join(ROOT, 'target'), 'release');
const args = process.argv.slice(2);
const seconds = option(args, 'seconds', '600');
const clients = option(args, 'clients', '10000');
const churn = option(args, 'churn', '100');
const rate = option(args, 'rate', '200');
const maxGrowth = option(args, 'max-growth-percent', '15');
// --storm-within-ms N: a reconnect storm half-way instead of churn (every
// client drops at once and is back within N ms); memory is not judged.
const storm = option(args, 'storm-within-ms', null);

const dataDir = mkdtempSync(join(tmpdir(), 'rookery-soak-'));
// Chat-like channels (presence with joins and leaves, history) whose
// history fills within the warm-up, so that what grows after it is not
// history coming to its size.
const config = join(dataDir, 'rookery.toml');
writeFileSync(config, [
  '[namespaces.soak]', 'kind = "stream"', 'presence = true', 'join_leave = true',
  'history_size = 20', 'history_ttl = 600', '',
].join('\n'));
const server = pinned('0', join(RELEASE, 'rookery'), [
  'serve', '--listen', '127.0.0.1:0', '--data-dir', join(dataDir, 'data'), '--config', config,
  // 10k clients over 20 loopback addresses: 500 each, plus the moment a
  // reconnected client's old socket is still being closed.
  '--max-connections-per-ip', '1000',
]);
let status = 1;
try {
  const [, port] = await waitFor(server, /listening on (?:https?:\/\/)?127\.0\.0\.1:(\d+)/, 'rookery');
  const bench = spawn('bash', ['-c', 'ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec taskset -c 1 "$@"', 'bash',
    join(RELEASE, 'rookery-bench'), '--url', `ws://127.0.0.1:${port}/ws`, '--pid', String(server.pid), 'soak',
    '--clients', clients, '--seconds', seconds, '--churn', churn, '--rate', rate,
    '--sources', '20', '--namespace', 'soak',
    ...(storm ? ['--storm-within-ms', storm] : ['--max-growth-percent', maxGrowth]),
  ], { stdio: 'inherit' });
  status = await new Promise((resolve) => bench.on('exit', (code) => resolve(code ?? 1)));
} finally {
  await stop(server);
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(status);
