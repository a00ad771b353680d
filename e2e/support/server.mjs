// Starts a real Rookery server (on 127.0.0.1:0 unless told otherwise) for one
// test file, serving the built web app from ../dist, with its data in a fresh
// temporary directory (or the one given, to restart a server on its data).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function rookeryBinary() {
  const targetDir = process.env.CARGO_TARGET_DIR
    ? resolve(root, process.env.CARGO_TARGET_DIR)
    : join(root, 'target');
  const binary = process.env.ROOKERY_BIN ?? join(targetDir, 'debug', 'rookery');
  if (!existsSync(binary)) {
    throw new Error(`no server binary at ${binary}: run cargo build -p rookery first`);
  }
  return binary;
}

/**
 * Starts the server. `listen` (default `127.0.0.1:0`) may name a fixed
 * address, e.g. the one a stopped server had: while that port is still held
 * (a closing socket, a server still exiting), binding is retried for up to
 * `bindRetryMs` (10 s) instead of failing at once.
 * @param {{ args?: string[], env?: Record<string, string>, dataDir?: string, listen?: string, bindRetryMs?: number }} options
 */
export async function startServer(options = {}) {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'rookery-e2e-'));
  const listen = options.listen ?? '127.0.0.1:0';
  const args = [
    'serve',
    '--listen', listen,
    '--data-dir', dataDir,
    '--dist-dir', join(root, 'dist'),
    ...(options.args ?? []),
  ];
  const fixedPort = !/:0$/.test(listen);
  const deadline = Date.now() + (options.bindRetryMs ?? 10_000);
  let started;
  for (;;) {
    try {
      started = await spawnServer(args, options.env);
      break;
    } catch (error) {
      if (!(fixedPort && error.addressInUse && Date.now() < deadline)) {
        if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
        throw error;
      }
      // The port is still held: try again shortly, for a bounded time.
      await new Promise((resolveLater) => setTimeout(resolveLater, 100));
    }
  }
  const { child, url, logs } = started;
  return {
    url,
    dataDir,
    process: child,
    logs,
    /** Stops the server with SIGTERM (graceful) and waits for it to exit. */
    async stop({ keepData = false } = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      if (!keepData && !options.dataDir) {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}

/** Spawns one server; resolves once it prints its address. */
async function spawnServer(args, env) {
  const child = spawn(rookeryBinary(), args, {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const url = await new Promise((resolveUrl, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start in 15 s:\n${stderr}`));
    }, 15_000);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const match = stdout.match(/rookery listening on (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]);
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
  return { child, url, logs: () => stderr };
}
