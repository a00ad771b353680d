#!/usr/bin/env node
// Cross-node fan-out: the same load generator (rookery-bench fanout)
// against one standalone node, one node on Redis, and three nodes on one
// Redis (subscribers spread over the nodes in turn, the publisher on the
// first, so two thirds of every delivery crosses Redis to another node).
// Every server process (the nodes, Redis) is pinned to one core and its CPU
// is added up; the load generator runs on the other core. Rounds
// interleave the set-ups; the table gives medians.
//
//   node bench/cluster.mjs [--rounds 3] [--seconds 5] [--quick]
//
// Needs release builds of rookery and rookery-bench, and Debian's
// redis-server and postgresql (a cluster keeps its notes in Postgres).
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { fmt, median, option as optionIn, pinned as pinnedTo, runBench, stop, waitFor } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RELEASE = join(resolve(ROOT, process.env.CARGO_TARGET_DIR ?? 'target'), 'release');
const SERVER_CORE = '0';
const LOAD_CORE = '1';

const args = process.argv.slice(2);
const option = (name, fallback) => optionIn(args, name, fallback);
const quick = args.includes('--quick');
const rounds = Number(option('rounds', quick ? '1' : '3'));
const seconds = Number(option('seconds', quick ? '2' : '5'));

const SCENARIOS = quick
  ? [{ name: '1k subscribers, 64 B at 100/s', subscribers: 1000, size: 64, rate: 100 }]
  : [
    { name: '1k subscribers, 64 B at 100/s', subscribers: 1000, size: 64, rate: 100 },
    { name: '1k subscribers, 64 B at 500/s', subscribers: 1000, size: 64, rate: 500 },
    { name: '10k subscribers, 64 B at 10/s (latency)', subscribers: 10000, size: 64, rate: 10, sources: 4 },
  ];
const SETUPS = [
  { name: '1 node', nodes: 1, redis: false },
  { name: '1 node + Redis', nodes: 1, redis: true },
  { name: '3 nodes + Redis', nodes: 3, redis: true },
];

const work = mkdtempSync(join(tmpdir(), 'rookery-cluster-bench-'));
chmodSync(work, 0o755);
const config = join(work, 'rookery.toml');
writeFileSync(config, '[namespaces.bench]\nkind = "stream"\n');

const freePort = () => new Promise((resolvePort) => {
  const server = createServer();
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolvePort(port));
  });
});

/** Runs `binary argv` pinned to the server core. */
const pinned = (binary, argv) => pinnedTo(SERVER_CORE, binary, argv);

// Postgres, once for the whole run (the notes' store; idle here).
const asRoot = process.getuid?.() === 0;
const pgBin = ['15', '16', '17'].map((v) => `/usr/lib/postgresql/${v}/bin`).find((dir) => existsSync(join(dir, 'initdb')));
if (!pgBin) throw new Error('Postgres server binaries (Debian package postgresql) are needed');
const pgData = join(work, 'pg');
const asPostgres = (program, argv) => {
  const [cmd, full] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(pgBin, program), ...argv]] : [join(pgBin, program), argv];
  const result = spawnSync(cmd, full, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${program}: ${result.stderr}`);
};
if (asRoot) spawnSync('chown', ['-R', 'postgres', work]);
asPostgres('initdb', ['-D', pgData, '-A', 'trust', '-U', 'postgres', '--no-sync']);
const pgPort = await freePort();
asPostgres('pg_ctl', ['-D', pgData, '-l', join(work, 'pg.log'), '-o',
  `-p ${pgPort} -k ${work} -c listen_addresses=127.0.0.1 -c fsync=off`, '-w', 'start']);
const databaseUrl = `postgres://postgres@127.0.0.1:${pgPort}/postgres`;

async function startSetup(setup) {
  const processes = [];
  let redisUrl;
  if (setup.redis) {
    const port = await freePort();
    const redis = pinned('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
    await waitFor(redis, /Ready to accept connections/, 'redis-server');
    processes.push(redis);
    redisUrl = `redis://127.0.0.1:${port}`;
  }
  const urls = [];
  for (let n = 0; n < setup.nodes; n += 1) {
    const argv = ['serve', '--listen', '127.0.0.1:0', '--data-dir', join(work, `data-${n}`), '--config', config,
      '--max-publish-rate', '100000', '--max-command-rate', '100000', '--max-connections-per-ip', '100000'];
    if (redisUrl) argv.push('--redis-url', redisUrl, '--database-url', databaseUrl);
    const node = pinned(join(RELEASE, 'rookery'), argv);
    const [, port] = await waitFor(node, /listening on http:\/\/127\.0\.0\.1:(\d+)/, 'rookery');
    processes.push(node);
    urls.push(`ws://127.0.0.1:${port}/ws`);
  }
  return { processes, urls };
}

function runLoad({ processes, urls }, scenario) {
  return runBench(LOAD_CORE, join(RELEASE, 'rookery-bench'), [
    '--url', urls.join(','), '--pid', processes.map((p) => p.pid).join(','), '--json', 'fanout',
    '--subscribers', String(scenario.subscribers), '--size', String(scenario.size),
    '--rate', String(scenario.rate), '--seconds', String(seconds),
    '--sources', String(scenario.sources ?? 1),
  ]);
}

const results = {};
try {
  for (let round = 1; round <= rounds; round += 1) {
    for (const scenario of SCENARIOS) {
      const shift = round % SETUPS.length;
      for (const setup of [...SETUPS.slice(shift), ...SETUPS.slice(0, shift)]) {
        const running = await startSetup(setup);
        try {
          const result = runLoad(running, scenario);
          ((results[scenario.name] ??= {})[setup.name] ??= []).push(result);
          process.stderr.write(`round ${round} · ${scenario.name} · ${setup.name}: ${result.delivered}/${result.expected} delivered, `
            + `p99 ${fmt(result.p99_ms, 1)} ms, ${fmt(result.deliveries_per_cpu_s / 1e6, 3)} M/CPU-s\n`);
        } finally {
          for (const child of running.processes.reverse()) await stop(child);
        }
      }
    }
  }
} finally {
  try { asPostgres('pg_ctl', ['-D', pgData, '-m', 'immediate', 'stop']); } catch { /* already gone */ }
  rmSync(work, { recursive: true, force: true });
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(`Machine: ${cpus().length} cores (${cpu}); every server process (nodes and Redis) on core ${SERVER_CORE}, `
  + `load generator on core ${LOAD_CORE}; ${rounds} interleaved round(s) of ${seconds} s; medians.\n`);
console.log('| scenario | set-up | deliveries/s | deliveries per server CPU-second | p50 / p99 / p99.9 ms | delivered |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const scenario of SCENARIOS) {
  for (const setup of SETUPS) {
    const runs = results[scenario.name]?.[setup.name] ?? [];
    if (runs.length === 0) continue;
    const throughput = median(runs.map((r) => r.delivered / r.seconds));
    const perCpu = median(runs.map((r) => r.deliveries_per_cpu_s));
    const latency = ['p50_ms', 'p99_ms', 'p999_ms'].map((key) => fmt(median(runs.map((r) => r[key])), 1)).join(' / ');
    const delivered = runs.map((r) => `${r.delivered}/${r.expected}`).join(', ');
    console.log(`| ${scenario.name} | ${setup.name} | ${fmt(throughput / 1e3, 1)} k | ${fmt(perCpu / 1e6, 3)} M | ${latency} | ${delivered} |`);
  }
}
