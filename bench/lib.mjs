// What the benchmark runners (compare.mjs, cluster.mjs) share: servers
// pinned to a core, waiting for their "listening" line, stopping them, the
// load generator's RESULT line, and medians.
import { spawn, spawnSync } from 'node:child_process';

// As many descriptors as the machine allows a process (15k connections
// need it); `exec` keeps the pid the program's.
const ULIMIT = 'ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"';

/** The value after `--name` in `args`, or `fallback`. */
export function option(args, name, fallback) {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : fallback;
}

/** Runs `binary argv` pinned to `core`; the child's pid is the program's. */
export function pinned(core, binary, argv, env = {}) {
  return spawn('bash', ['-c', `${ULIMIT}; exec taskset -c "$@"`, 'bash', core, binary, ...argv], {
    env: { ...process.env, RUST_LOG: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Resolves with the first match of `pattern` in the child's output. */
export function waitFor(child, pattern, what) {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${seen}`)), 15_000);
    const look = (chunk) => {
      seen += chunk;
      const match = pattern.exec(seen);
      if (match) {
        clearTimeout(timer);
        child.stdout.off('data', look);
        child.stderr.off('data', look);
        child.stdout.resume();
        child.stderr.resume();
        resolve(match);
      }
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.on('exit', (code) => reject(new Error(`${what} exited (${code}): ${seen}`)));
  });
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the child is gone. */
export function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

/** Runs rookery-bench pinned to `core` and returns its RESULT object. */
export function runBench(core, bench, argv) {
  const result = spawnSync('bash', ['-c', `${ULIMIT}; exec taskset "$@"`, 'taskset', '-c', core, bench, ...argv], {
    encoding: 'utf8', maxBuffer: 1 << 20,
  });
  const line = result.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`load generator failed: ${result.stderr}${result.stdout}`);
  return JSON.parse(line.slice('RESULT '.length));
}

export const median = (values) => {
  const sorted = values.filter((v) => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

export const fmt = (value, digits) => (value === null || value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits));
