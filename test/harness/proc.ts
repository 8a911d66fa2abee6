/**
 * Child processes, temp dirs and free ports for integration tests.
 *
 * Every child started here and every temp dir made here is recorded in one cleanup stack.
 * `cleanupAll()` (call it from a test file's `after()`) unwinds it in reverse order, so a process is
 * stopped before the directory it lives in is removed. Children never outlive the test process:
 * they run in their own process group under `setpriv --pdeathsig KILL` (when available), and an
 * `exit` / SIGINT / SIGTERM hook kills every group that is still alive and removes leftover temp dirs.
 *
 * Temp dirs are named `rmh-<pid>-<prefix>XXXXXX` under the OS temp dir; the first `tmpDir()` of a
 * process removes those whose owner process is gone (left by a SIGKILLed run).
 * Set `HARNESS_KEEP_TMP=1` to keep temp dirs (their paths are printed) for debugging.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

/** How a child ended: exit code, or the signal that killed it. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One captured output line. */
export interface OutputLine {
  stream: 'stdout' | 'stderr';
  text: string;
}

/** Options for {@link spawnProc}. */
export interface SpawnOptions {
  /** Label used in log file names and error messages (default: basename of the command). */
  name?: string;
  /** Environment of the child (default: `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Variables removed from the child's environment (e.g. `AWS_CA_BUNDLE`). */
  unsetEnv?: string[];
  /** Working directory of the child. */
  cwd?: string;
  /** Directory for the log file (default: one shared temp dir per test process). */
  logDir?: string;
  /** Data written to the child's stdin, which is then closed (default: stdin is /dev/null). */
  stdin?: string | Buffer;
  /** If given, `spawnProc` resolves only once a line matches (see {@link Proc.waitFor}). */
  ready?: RegExp;
  /** Timeout for `ready` in ms (default 15000). */
  readyTimeoutMs?: number;
  /** Lines kept in memory for `waitFor`/`output` (default 20000; the log file keeps everything). */
  maxLines?: number;
}

/** Options for {@link Proc.waitFor}. */
export interface WaitForOptions {
  /** Give up after this many ms (default 15000). */
  timeoutMs?: number;
  /** Only look at lines with an index >= this (see {@link Proc.lineCount}); default 0 = all output so far. */
  fromLine?: number;
  /** Only look at this stream. */
  stream?: 'stdout' | 'stderr';
}

/** Options for {@link Proc.stop}. */
export interface StopOptions {
  /** First signal (default SIGTERM). */
  signal?: NodeJS.Signals;
  /** Time allowed after the first signal before SIGKILL, in ms (default 5000). */
  graceMs?: number;
}

/** Raised when a process fails to produce expected output or exits with an error. */
export class ProcError extends Error {
  override readonly name = 'ProcError';
}

interface CleanupEntry {
  label: string;
  run: () => Promise<void>;
}

const cleanupStack: CleanupEntry[] = [];
const liveSet = new Set<Proc>();
const tmpDirs = new Set<string>();
const keepTmp = process.env.HARNESS_KEEP_TMP === '1';
let hooksInstalled = false;
let setprivPath: string | null | undefined;

function findSetpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  setprivPath = null;
  for (const p of ['/usr/bin/setpriv', '/bin/setpriv']) {
    if (existsSync(p)) {
      // Older util-linux lacks --pdeathsig; check once.
      const r = spawnSync(p, ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore' });
      if (r.status === 0) setprivPath = p;
      break;
    }
  }
  return setprivPath;
}

/** Signals a child's process group (children are group leaders: spawned detached). */
function killGroupSync(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* group already gone */
  }
}

function emergencyCleanup(): void {
  for (const p of liveSet) killGroupSync(p.pid, 'SIGKILL');
  liveSet.clear();
  if (!keepTmp) {
    for (const d of tmpDirs) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch {
        /* best effort while exiting */
      }
    }
  }
  tmpDirs.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', emergencyCleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      emergencyCleanup();
      // Re-raise with the default disposition so the exit status tells what happened.
      process.kill(process.pid, sig);
    });
  }
}

/**
 * Registers an async cleanup action run by {@link cleanupAll} (last registered runs first).
 * @returns a function that unregisters the action without running it.
 */
export function registerCleanup(label: string, run: () => Promise<void> | void): () => void {
  installHooks();
  const entry: CleanupEntry = { label, run: async () => run() };
  cleanupStack.push(entry);
  return () => {
    const i = cleanupStack.indexOf(entry);
    if (i >= 0) cleanupStack.splice(i, 1);
  };
}

/**
 * Stops every live child, closes every registered server and removes every temp dir, in reverse
 * order of creation. Runs all actions even if some fail, then throws an AggregateError.
 */
export async function cleanupAll(): Promise<void> {
  const errors: unknown[] = [];
  while (cleanupStack.length > 0) {
    const entry = cleanupStack.pop();
    if (!entry) break;
    try {
      await entry.run();
    } catch (err) {
      errors.push(new Error(`cleanup of ${entry.label} failed: ${String(err)}`, { cause: err }));
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, `${errors.length} cleanup action(s) failed`);
}

/** Children started by {@link spawnProc} that have not exited yet. */
export function liveProcs(): readonly Proc[] {
  return [...liveSet];
}

/**
 * Creates a fresh directory under the OS temp dir, removed by {@link cleanupAll} (or at exit).
 * @param prefix - name prefix, e.g. `'registry-'`
 */
export async function tmpDir(prefix: string): Promise<string> {
  return makeTmpDirSync(prefix);
}

let swept = false;

/** True if `pid` exists and is not a zombie. */
function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return false;
  }
}

/** Removes temp dirs left by test processes that died without cleaning up (e.g. SIGKILL). */
function sweepStaleTmpDirs(): void {
  if (swept || keepTmp) return;
  swept = true;
  try {
    for (const name of readdirSync(tmpdir())) {
      const m = /^rmh-(\d+)-/.exec(name);
      if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) {
        rmSync(join(tmpdir(), name), { recursive: true, force: true });
      }
    }
  } catch {
    /* best effort */
  }
}

function makeTmpDirSync(prefix: string): string {
  installHooks();
  sweepStaleTmpDirs();
  const dir = mkdtempSync(join(tmpdir(), `rmh-${process.pid}-${prefix.replace(/[^A-Za-z0-9_.-]/g, '_')}`));
  tmpDirs.add(dir);
  registerCleanup(`tmp dir ${dir}`, async () => {
    tmpDirs.delete(dir);
    if (keepTmp) {
      process.stderr.write(`[harness] kept ${dir}\n`);
      return;
    }
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  });
  return dir;
}

/** Asks the kernel for a free TCP port on 127.0.0.1 (free at the time of the call). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('freePort: no address'));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

/** Resolves after `ms` milliseconds (for pacing, never for waiting on an event). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

let logDir: string | undefined;
let logCounter = 0;

/** One log dir per test process (made again after {@link cleanupAll} removed it). */
function sharedLogDir(): string {
  if (logDir === undefined) {
    const dir = makeTmpDirSync('logs-');
    logDir = dir;
    registerCleanup('log dir reset', () => {
      if (logDir === dir) logDir = undefined;
    });
  }
  return logDir;
}

interface Waiter {
  re: RegExp;
  stream: 'stdout' | 'stderr' | undefined;
  resolve: (m: RegExpExecArray) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

type LineListener = (line: string, stream: 'stdout' | 'stderr') => void;

/** A running (or finished) child process with captured output. Create with {@link spawnProc}. */
export class Proc {
  /** Label used in messages. */
  readonly name: string;
  /** Process id (also the process group id). */
  readonly pid: number;
  /** File receiving every output line (stdout and stderr interleaved by line). */
  readonly logFile: string;
  /** The command line, for messages. */
  readonly commandLine: string;
  /** Resolves when the child has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;

  readonly #child: ChildProcess;
  readonly #log: WriteStream;
  readonly #lines: OutputLine[] = [];
  readonly #maxLines: number;
  #dropped = 0;
  readonly #partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  readonly #listeners = new Set<LineListener>();
  readonly #waiters = new Set<Waiter>();
  #exit: ExitInfo | undefined;
  #unregister: () => void = () => undefined;

  /** @internal use {@link spawnProc} */
  constructor(child: ChildProcess, name: string, commandLine: string, logFile: string, maxLines: number) {
    if (child.pid === undefined) throw new ProcError(`${name}: spawn failed`);
    this.#child = child;
    this.pid = child.pid;
    this.name = name;
    this.commandLine = commandLine;
    this.logFile = logFile;
    this.#maxLines = maxLines;
    this.#log = createWriteStream(logFile, { flags: 'a' });
    for (const stream of ['stdout', 'stderr'] as const) {
      const s = child[stream];
      if (!s) continue;
      s.setEncoding('utf8');
      s.on('data', (chunk: string) => this.#onData(stream, chunk));
    }
    // 'close' waits for stdio to close; a grandchild that escaped the group could hold the pipes
    // open forever, so stop reading them shortly after the child itself has exited.
    child.once('exit', () => {
      const t = setTimeout(() => {
        this.#child.stdout?.destroy();
        this.#child.stderr?.destroy();
      }, 2000);
      t.unref();
      child.once('close', () => clearTimeout(t));
    });
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once('close', (code, signal) => {
        for (const stream of ['stdout', 'stderr'] as const) {
          if (this.#partial[stream] !== '') this.#onLine(stream, this.#partial[stream]);
          this.#partial[stream] = '';
        }
        this.#exit = { code, signal };
        liveSet.delete(this);
        this.#unregister();
        for (const w of this.#waiters) {
          clearTimeout(w.timer);
          w.reject(this.#error(`exited (${describeExit(this.#exit)}) before printing ${String(w.re)}`));
        }
        this.#waiters.clear();
        this.#log.end(() => resolve({ code, signal }));
      });
    });
    liveSet.add(this);
    this.#unregister = registerCleanup(`process ${name} (${this.pid})`, async () => {
      await this.stop();
    });
  }

  /** Exit information once the child has exited. */
  get exitInfo(): ExitInfo | undefined {
    return this.#exit;
  }

  /** True until the child has exited. */
  get running(): boolean {
    return this.#exit === undefined;
  }

  /** Number of lines captured so far (including lines dropped from memory); use as `fromLine`. */
  get lineCount(): number {
    return this.#dropped + this.#lines.length;
  }

  /** Captured output lines still in memory, optionally of one stream, joined with newlines. */
  output(stream?: 'stdout' | 'stderr'): string {
    return this.#lines
      .filter((l) => stream === undefined || l.stream === stream)
      .map((l) => l.text)
      .join('\n');
  }

  /** The last `n` output lines (both streams), for error messages. */
  tail(n = 30): string {
    return this.#lines
      .slice(-n)
      .map((l) => l.text)
      .join('\n');
  }

  /**
   * Calls `listener` for every complete output line from now on.
   * @returns a function that removes the listener.
   */
  onLine(listener: LineListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Resolves with the first output line (already printed or future) matching `re`.
   * Rejects with the log tail if the timeout passes or the child exits first.
   */
  waitFor(re: RegExp, opts: WaitForOptions = {}): Promise<RegExpExecArray> {
    const timeoutMs = opts.timeoutMs ?? 15_000;
    const from = Math.max(0, (opts.fromLine ?? 0) - this.#dropped);
    for (let i = from; i < this.#lines.length; i++) {
      const l = this.#lines[i];
      if (!l || (opts.stream !== undefined && l.stream !== opts.stream)) continue;
      const m = matchLine(re, l.text);
      if (m) return Promise.resolve(m);
    }
    if (this.#exit) {
      return Promise.reject(this.#error(`exited (${describeExit(this.#exit)}) before printing ${String(re)}`));
    }
    return new Promise<RegExpExecArray>((resolve, reject) => {
      const w: Waiter = {
        re,
        stream: opts.stream,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(w);
          reject(this.#error(`did not print ${String(re)} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.#waiters.add(w);
    });
  }

  /**
   * Stops the child's process group: `signal` (SIGTERM), then SIGKILL after `graceMs`.
   * Resolves once it has exited; a no-op for a finished child.
   */
  async stop(opts: StopOptions = {}): Promise<ExitInfo> {
    if (this.#exit) return this.#exit;
    const graceMs = opts.graceMs ?? 5000;
    killGroupSync(this.pid, opts.signal ?? 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        killGroupSync(this.pid, 'SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    const info = await this.exited;
    // Leftover members of the group (grandchildren) go too.
    killGroupSync(this.pid, 'SIGKILL');
    return info;
  }

  #onData(stream: 'stdout' | 'stderr', chunk: string): void {
    const text = this.#partial[stream] + chunk;
    const parts = text.split('\n');
    this.#partial[stream] = parts.pop() ?? '';
    for (const p of parts) this.#onLine(stream, p.endsWith('\r') ? p.slice(0, -1) : p);
  }

  #onLine(stream: 'stdout' | 'stderr', text: string): void {
    this.#log.write(text + '\n');
    this.#lines.push({ stream, text });
    if (this.#lines.length > this.#maxLines) {
      const drop = this.#lines.length - this.#maxLines;
      this.#lines.splice(0, drop);
      this.#dropped += drop;
    }
    for (const l of this.#listeners) l(text, stream);
    for (const w of this.#waiters) {
      if (w.stream !== undefined && w.stream !== stream) continue;
      const m = matchLine(w.re, text);
      if (m) {
        clearTimeout(w.timer);
        this.#waiters.delete(w);
        w.resolve(m);
      }
    }
  }

  #error(what: string): ProcError {
    return new ProcError(
      `${this.name} (pid ${this.pid}) ${what}\ncommand: ${this.commandLine}\nlog: ${this.logFile}\n` +
        `--- last lines ---\n${this.tail(30)}\n------------------`,
    );
  }
}

function matchLine(re: RegExp, text: string): RegExpExecArray | null {
  re.lastIndex = 0;
  return re.exec(text);
}

function describeExit(e: ExitInfo): string {
  return e.signal ? `signal ${e.signal}` : `code ${String(e.code)}`;
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Starts `cmd args` in its own process group with output captured to `<logDir>/<name>.log`.
 * Throws (with the log tail) if it cannot start, or if `opts.ready` is given and not seen in time.
 * The child is stopped by {@link cleanupAll}, and killed if the test process dies.
 */
export async function spawnProc(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Promise<Proc> {
  installHooks();
  const name = opts.name ?? basename(cmd);
  const logDir = opts.logDir ?? sharedLogDir();
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}-${++logCounter}.log`);
  const env: NodeJS.ProcessEnv = { ...(opts.env ?? process.env) };
  for (const k of opts.unsetEnv ?? []) delete env[k];
  const setpriv = findSetpriv();
  const [file, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', cmd, ...args]] : [cmd, [...args]];
  const commandLine = [cmd, ...args].map(quote).join(' ');
  const child = spawn(file, argv, {
    cwd: opts.cwd,
    env,
    detached: true,
    stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const spawnError = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (e) => resolve(e));
  });
  if (spawnError) throw new ProcError(`${name}: cannot start ${commandLine}: ${spawnError.message}`);
  if (opts.stdin !== undefined && child.stdin) child.stdin.end(opts.stdin);
  const proc = new Proc(child, name, commandLine, logFile, opts.maxLines ?? 20_000);
  if (opts.ready) {
    try {
      await proc.waitFor(opts.ready, { timeoutMs: opts.readyTimeoutMs ?? 15_000 });
    } catch (err) {
      await proc.stop({ graceMs: 1000 });
      throw err;
    }
  }
  return proc;
}

/** Result of {@link run}. */
export interface RunResult {
  stdout: string;
  stderr: string;
  /** Both streams, interleaved by line. */
  output: string;
  durationMs: number;
  logFile: string;
}

/** Options for {@link run}. */
export interface RunOptions extends Omit<SpawnOptions, 'ready' | 'readyTimeoutMs'> {
  /** Kill the command after this many ms (default 120000). */
  timeoutMs?: number;
  /** Accept a non-zero exit (default false: throw). */
  allowFailure?: boolean;
}

/** Result of {@link run} including the exit status. */
export interface RunOutcome extends RunResult, ExitInfo {}

/**
 * Runs a command to completion (for skopeo, ctr, openssl). Throws a {@link ProcError} with the
 * command line and output tail on a non-zero exit or timeout, unless `allowFailure`.
 */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunOutcome> {
  const started = performance.now();
  const proc = await spawnProc(cmd, args, opts);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void proc.stop({ graceMs: 2000 });
  }, timeoutMs);
  const exit = await proc.exited;
  clearTimeout(timer);
  const res: RunOutcome = {
    ...exit,
    stdout: proc.output('stdout'),
    stderr: proc.output('stderr'),
    output: proc.output(),
    durationMs: performance.now() - started,
    logFile: proc.logFile,
  };
  if (timedOut || (!opts.allowFailure && (exit.code !== 0 || exit.signal !== null))) {
    throw new ProcError(
      `${proc.name} ${timedOut ? `timed out after ${timeoutMs} ms` : `failed (${describeExit(exit)})`}\n` +
        `command: ${proc.commandLine}\nlog: ${proc.logFile}\n--- last lines ---\n${proc.tail(40)}\n------------------`,
    );
  }
  return res;
}

/**
 * Throws a clear error if any of `commands` is not on PATH (tests must fail, not skip, without them).
 */
export function requireCommands(...commands: string[]): void {
  const missing = commands.filter((c) => spawnSync('sh', ['-c', `command -v ${quote(c)}`], { stdio: 'ignore' }).status !== 0);
  if (missing.length > 0) {
    throw new Error(
      `required command(s) not found on PATH: ${missing.join(', ')} ` +
        `(Debian: apt-get install -y docker-registry skopeo redis-server containerd openssl)`,
    );
  }
}

/** Listens on 127.0.0.1 with an ephemeral port; resolves with the port. */
export async function listenLoopback(server: import('node:net').Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as import('node:net').AddressInfo).port;
}
