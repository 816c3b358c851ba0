import type { Ora } from 'ora';
import type { CommandContext } from './context.js';
import { monotonicMs } from '../platform/clock.js';

/** Progress of long work as reported by app/ use cases. */
export interface ProgressSnapshot {
  files: number;
  bytes: number;
  totalFiles?: number;
  totalBytes?: number;
  currentPath?: string;
}

/** Shows steps (spinner) and long-work progress on a TTY; silent otherwise or with --quiet/--json. */
export interface ProgressView {
  step(text: string): void;
  update(p: ProgressSnapshot): void;
  succeed(text: string): void;
  fail(text: string): void;
  stop(): void;
}

const KiB = 1024;
/** Bytes as a short human string (binary units). */
export function formatBytes(n: number): string {
  if (n < KiB) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / KiB;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Seconds as `1h02m`, `3m05s`, `12s`. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** One progress line: files, bytes, rate and ETA when totals are known. */
export function progressLine(p: ProgressSnapshot, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? (p.bytes / elapsedMs) * 1000 : 0;
  const parts = [
    p.totalFiles ? `${p.files}/${p.totalFiles} files` : `${p.files} files`,
    p.totalBytes ? `${formatBytes(p.bytes)}/${formatBytes(p.totalBytes)}` : formatBytes(p.bytes),
    `${formatBytes(rate)}/s`,
  ];
  if (p.totalBytes && rate > 0) parts.push(`ETA ${formatEta((p.totalBytes - p.bytes) / rate)}`);
  return parts.join(', ');
}

const silent: ProgressView = { step() {}, update() {}, succeed() {}, fail() {}, stop() {} };

/**
 * A progress view for this command's context. The spinner library is imported only on a
 * TTY, in the background: until it is there, steps are remembered (the spinner starts with
 * the latest one) and final lines are printed plainly.
 */
export function createProgress(ctx: CommandContext): ProgressView {
  if (!ctx.interactive) return silent;
  let makeSpinner: (() => Ora) | undefined;
  let spinner: Ora | undefined;
  let shown: string | undefined; // the text to show, while a step is running
  let label = '';
  let started = monotonicMs();
  let lastDraw = 0;
  const show = (text: string) => {
    shown = text;
    if (!makeSpinner) return;
    spinner ??= makeSpinner();
    spinner.text = text;
  };
  const finish = (text: string, how: 'succeed' | 'fail') => {
    if (spinner) spinner[how](text);
    else process.stderr.write(`${how === 'succeed' ? '✔' : '✖'} ${text}\n`);
    spinner = undefined;
    shown = undefined;
  };
  void import('ora').then(
    ({ default: ora }) => {
      makeSpinner = () => ora({ stream: process.stderr, color: 'cyan', isEnabled: true }).start();
      if (shown !== undefined) show(shown);
    },
    () => {}, // no spinner then; the result is printed all the same
  );
  return {
    step(text) {
      label = text;
      started = monotonicMs();
      show(text);
    },
    update(p) {
      const now = monotonicMs();
      if (now - lastDraw < 100) return; // redraw at most 10 times a second
      lastDraw = now;
      show(`${label}: ${progressLine(p, now - started)}`);
    },
    succeed(text) {
      finish(text, 'succeed');
    },
    fail(text) {
      finish(text, 'fail');
    },
    stop() {
      spinner?.stop();
      spinner = undefined;
      shown = undefined;
    },
  };
}
