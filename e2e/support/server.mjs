// Starts a real Rookery server on 127.0.0.1:0 for one test file, serving the
// built web app from ../dist, with its data in a fresh temporary directory.
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
 * @param {{ args?: string[], env?: Record<string, string>, dataDir?: string, listen?: string }} options
 */
export async function startServer(options = {}) {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'rookery-e2e-'));
  const args = [
    'serve',
    '--listen', options.listen ?? '127.0.0.1:0',
    '--data-dir', dataDir,
    '--dist-dir', join(root, 'dist'),
    ...(options.args ?? []),
  ];
  const child = spawn(rookeryBinary(), args, {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const url = await new Promise((resolveUrl, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`server did not start in 15 s:\n${stderr}`)), 15_000);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const match = stdout.match(/rookery listening on (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${stderr}`));
    });
  });
  return {
    url,
    dataDir,
    process: child,
    logs: () => stderr,
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
