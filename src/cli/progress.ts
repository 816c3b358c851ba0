import ora, { type Ora } from 'ora';
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

/** A progress view for this command's context. */
export function createProgress(ctx: CommandContext): ProgressView {
  if (!ctx.interactive) return silent;
  let spinner: Ora | undefined;
  let label = '';
  let started = monotonicMs();
  let lastDraw = 0;
  const ensure = () => (spinner ??= ora({ stream: process.stderr, color: 'cyan', isEnabled: true }).start());
  return {
    step(text) {
      label = text;
      started = monotonicMs();
      ensure().text = text;
    },
    update(p) {
      const now = monotonicMs();
      if (now - lastDraw < 100) return; // redraw at most 10 times a second
      lastDraw = now;
      ensure().text = `${label}: ${progressLine(p, now - started)}`;
    },
    succeed(text) {
      ensure().succeed(text);
      spinner = undefined;
    },
    fail(text) {
      ensure().fail(text);
      spinner = undefined;
    },
    stop() {
      spinner?.stop();
      spinner = undefined;
    },
  };
}
