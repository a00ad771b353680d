// Starts a real Rookery server (on 127.0.0.1:0 unless told otherwise) for one
// test file, serving the built web app from ../dist, with its data in a fresh
// temporary directory (or the one given, to restart a server on its data).
// By default it is the debug build; a test may start another binary (the
// release build with the app inside) in a directory of its choice.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function targetDir() {
  return process.env.CARGO_TARGET_DIR
    ? resolve(root, process.env.CARGO_TARGET_DIR)
    : join(root, 'target');
}

export function rookeryBinary() {
  const binary = process.env.ROOKERY_BIN ?? join(targetDir(), 'debug', 'rookery');
  if (!existsSync(binary)) {
    throw new Error(`no server binary at ${binary}: run cargo build -p rookery first`);
  }
  return binary;
}

/**
 * The single binary: the release build with the web app inside (the
 * `embed` feature). Throws, saying how to build it, when it is missing or
 * was built without the app.
 */
export function singleBinary() {
  const binary = process.env.ROOKERY_RELEASE_BIN ?? join(targetDir(), 'release', 'rookery');
  const build = 'cargo build --release -p rookery --features embed (after trunk build --release)';
  if (!existsSync(binary)) throw new Error(`no release binary at ${binary}: run ${build}`);
  const version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
  if (!/features: [^)]*\bembed\b/.test(version)) {
    throw new Error(`${binary} (${version}) has no web app inside: run ${build}`);
  }
  return binary;
}

/**
 * Starts the server. `listen` (default `127.0.0.1:0`) may name a fixed
 * address, e.g. the one a stopped server had: while that port is still held
 * (a closing socket, a server still exiting), binding is retried for up to
 * `bindRetryMs` (10 s) instead of failing at once.
 *
 * `binary` (default: the debug build) runs in `cwd` (default: this
 * process's). `distDir: null` passes no `--dist-dir` (the binary serves the
 * app it carries) and `dataDir: null` no `--data-dir` (it uses `./data`).
 * With `--redirect-http` among `args`, `redirectUrl` is where it listens.
 * @param {{ args?: string[], env?: Record<string, string>, dataDir?: string | null, distDir?: string | null,
 *   listen?: string, bindRetryMs?: number, binary?: string, cwd?: string }} options
 */
export async function startServer(options = {}) {
  const dataDir = options.dataDir === null
    ? null
    : options.dataDir ?? mkdtempSync(join(tmpdir(), 'rookery-e2e-'));
  const distDir = options.distDir === undefined ? join(root, 'dist') : options.distDir;
  const listen = options.listen ?? '127.0.0.1:0';
  const args = [
    'serve',
    '--listen', listen,
    ...(dataDir === null ? [] : ['--data-dir', dataDir]),
    ...(distDir === null ? [] : ['--dist-dir', distDir]),
    ...(options.args ?? []),
  ];
  const removeData = () => {
    if (!options.dataDir && dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  const spawnOptions = {
    binary: options.binary ?? rookeryBinary(),
    cwd: options.cwd,
    env: options.env,
    redirect: args.includes('--redirect-http'),
  };
  const fixedPort = !/:0$/.test(listen);
  const deadline = Date.now() + (options.bindRetryMs ?? 10_000);
  let started;
  for (;;) {
    try {
      started = await spawnServer(args, spawnOptions);
      break;
    } catch (error) {
      if (!(fixedPort && error.addressInUse && Date.now() < deadline)) {
        removeData();
        throw error;
      }
      // The port is still held: try again shortly, for a bounded time.
      await new Promise((resolveLater) => setTimeout(resolveLater, 100));
    }
  }
  const { child, url, redirectUrl, logs } = started;
  return {
    url,
    redirectUrl,
    dataDir,
    process: child,
    logs,
    /** Stops the server with SIGTERM (graceful) and waits for it to exit. */
    async stop({ keepData = false } = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      if (!keepData) removeData();
    },
  };
}

/** Spawns one server; resolves once it prints its address (and its redirect's). */
async function spawnServer(args, { binary, cwd, env, redirect }) {
  const child = spawn(binary, args, {
    cwd,
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const [url, redirectUrl] = await new Promise((resolveUrl, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start in 15 s:\n${stderr}`));
    }, 15_000);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const listening = stdout.match(/rookery listening on (https?:\/\/\S+)/);
      const redirecting = stdout.match(/rookery redirecting (http:\/\/\S+)/);
      if (listening && (redirecting || !redirect)) {
        clearTimeout(timer);
        resolveUrl([listening[1], redirecting?.[1]]);
      }
    });
    // 'close' comes after 'exit' and after stderr has been read to the end.
    child.once('close', (code) => {
      clearTimeout(timer);
      const error = new Error(`server exited with ${code} before listening:\n${stderr}`);
      error.addressInUse = /address already in use|os error 98/i.test(stderr);
      reject(error);
    });
  });
  return { child, url, redirectUrl, logs: () => stderr };
}
