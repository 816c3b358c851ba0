/**
 * Inline SVG charts of the HTML report: a job's restore points per repository with its RPO
 * exposure (the age of the newest restore point over time, against the RPO), and its drills'
 * measured restore times against the RTO. Plain markup, no script; every text escaped.
 */
import { formatDuration } from '../../policy/duration.js';
import { formatInstant } from '../../policy/timeText.js';
import type { JobReport } from '../model.js';
import { escapeXml as x } from './escape.js';

export const CHART_COLOURS = {
  pass: '#1a7f37',
  warning: '#9a6700',
  fail: '#cf222e',
  unknown: '#6e7781',
  grid: '#d0d7de',
  text: '#24292f',
};

const WIDTH = 960;
const LEFT = 130;
const RIGHT = 24;

/** Numbers in markup: one decimal, so output is stable. */
const n = (v: number) => String(Math.round(v * 10) / 10);

function scale(from: number, to: number): (t: number) => number {
  const span = Math.max(1, to - from);
  return (t) => LEFT + (Math.min(Math.max(t, from), to) - from) * ((WIDTH - LEFT - RIGHT) / span);
}

function timeAxis(from: number, to: number, y: number, zone: string): string {
  const sx = scale(from, to);
  const parts: string[] = [
    `<line x1="${LEFT}" y1="${n(y)}" x2="${WIDTH - RIGHT}" y2="${n(y)}" stroke="${CHART_COLOURS.grid}"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const t = from + ((to - from) * i) / 4;
    const anchor = i === 0 ? 'start' : i === 4 ? 'end' : 'middle';
    parts.push(
      `<line x1="${n(sx(t))}" y1="${n(y)}" x2="${n(sx(t))}" y2="${n(y + 4)}" stroke="${CHART_COLOURS.grid}"/>`,
      `<text x="${n(sx(t))}" y="${n(y + 16)}" text-anchor="${anchor}" class="axis">${x(formatInstant(t, zone))}</text>`,
    );
  }
  return parts.join('');
}

/** Restore points per repository, and the RPO exposure below them. */
export function timelineChart(job: JobReport, zone: string): string {
  const tl = job.timeline;
  const from = Date.parse(tl.from);
  const to = Date.parse(tl.to);
  const sx = scale(from, to);
  const points = tl.points.map((p) => ({ ...p, t: Date.parse(p.time) }));
  const forgotten = points.some((p) => p.repositories.length === 0);
  const lanes = [...job.repositories, ...(forgotten ? ['(forgotten)'] : [])];
  const laneH = 18;
  const top = 8;
  const expTop = top + lanes.length * laneH + 16;
  const expH = 110;
  const height = expTop + expH + 30;
  const parts: string[] = [];
  const label = `Restore points and RPO exposure of job ${job.job}`;
  parts.push(
    `<svg class="chart timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${height}" width="100%" role="img" aria-label="${x(label)}">`,
    `<title>${x(label)}</title>`,
  );
  lanes.forEach((lane, i) => {
    const y = top + i * laneH;
    const name = lane === '(forgotten)' ? 'forgotten (journal)' : lane;
    parts.push(
      `<text x="${LEFT - 8}" y="${n(y + laneH / 2 + 4)}" text-anchor="end" class="lane">${x(name)}</text>`,
      `<line x1="${LEFT}" y1="${n(y + laneH / 2)}" x2="${WIDTH - RIGHT}" y2="${n(y + laneH / 2)}" stroke="${CHART_COLOURS.grid}" stroke-dasharray="2 3"/>`,
    );
    const mine = points.filter((p) =>
      lane === '(forgotten)' ? p.repositories.length === 0 : p.repositories.includes(lane),
    );
    const colour = lane === '(forgotten)' ? CHART_COLOURS.unknown : CHART_COLOURS.pass;
    const ticks = mine.map((p) => `M${n(sx(p.t))} ${n(y + 3)}V${n(y + laneH - 3)}`).join('');
    if (ticks) parts.push(`<path class="points" d="${ticks}" stroke="${colour}" stroke-width="1.5"/>`);
  });

  const rpo = tl.rpoMs;
  const judged = tl.judgedFrom === null ? undefined : Date.parse(tl.judgedFrom);
  parts.push(
    `<text x="${LEFT - 8}" y="${n(expTop + expH * 0.65)}" text-anchor="end" class="lane">data at risk</text>`,
  );
  if (rpo === null || judged === undefined || points.length === 0) {
    // Unreadable repositories are not evidence of absence: say which it is.
    const unknown = job.controls.find((c) => c.id === 'rpo-now')?.status === 'unknown';
    const emptyText = unknown
      ? 'restore points unknown: the repositories could not be read'
      : 'no restore point: the whole window is exposed';
    parts.push(
      `<text x="${n((LEFT + WIDTH) / 2)}" y="${n(expTop + expH / 2)}" text-anchor="middle" class="empty">${x(emptyText)}</text>`,
    );
  } else {
    const times = points.map((p) => p.t).sort((a, b) => a - b);
    // The age of the newest restore point, as a saw tooth: rising with time, dropping at each point.
    const vertices: Array<[number, number]> = [];
    let prev = times.filter((t) => t <= judged).at(-1) ?? judged;
    vertices.push([judged, judged - prev]);
    for (const t of times.filter((t) => t > judged)) {
      vertices.push([t, t - prev], [t, 0]);
      prev = t;
    }
    vertices.push([to, to - prev]);
    const maxAge = Math.max(...vertices.map(([, a]) => a));
    const yMax = Math.max(rpo * 1.25, Math.min(maxAge, rpo * 3));
    const sy = (a: number) => expTop + expH - (Math.min(a, yMax) / yMax) * expH;
    for (const p of tl.exposed) {
      const a = sx(Date.parse(p.from));
      const b = sx(Date.parse(p.to));
      parts.push(
        `<rect class="exposed" x="${n(a)}" y="${n(expTop)}" width="${n(Math.max(1, b - a))}" height="${expH}" fill="${CHART_COLOURS.fail}" fill-opacity="0.15"/>`,
      );
    }
    parts.push(
      // Filled to the base line, so a dense saw tooth reads as an area, not as a black block.
      `<path class="exposure" d="M${n(sx(judged))} ${n(sy(0))}L${vertices.map(([t, a]) => `${n(sx(t))} ${n(sy(a))}`).join('L')}L${n(sx(to))} ${n(sy(0))}Z" fill="#57606a" fill-opacity="0.25" stroke="#57606a" stroke-width="0.8"/>`,
      `<line class="rpo" x1="${LEFT}" y1="${n(sy(rpo))}" x2="${WIDTH - RIGHT}" y2="${n(sy(rpo))}" stroke="${CHART_COLOURS.fail}" stroke-dasharray="6 4"/>`,
      `<text x="${LEFT - 8}" y="${n(sy(rpo) + 4)}" text-anchor="end" class="limit">RPO ${x(formatDuration(rpo))}</text>`,
    );
  }
  parts.push(timeAxis(from, to, expTop + expH, zone), '</svg>');
  return parts.join('\n');
}

const VERDICT_COLOUR: Record<string, string> = {
  pass: CHART_COLOURS.pass,
  breach: CHART_COLOURS.fail,
  fail: CHART_COLOURS.warning,
};

/** Measured restore times of the job's drills against its RTO. */
export function drillChart(job: JobReport, zone: string): string {
  const tl = job.timeline;
  const from = Date.parse(tl.from);
  const to = Date.parse(tl.to);
  const sx = scale(from, to);
  const top = 10;
  const h = 110;
  const height = top + h + 30;
  const label = `Drill restore times of job ${job.job} against the RTO`;
  const parts = [
    `<svg class="chart drills" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${height}" width="100%" role="img" aria-label="${x(label)}">`,
    `<title>${x(label)}</title>`,
  ];
  const timed = tl.drills.filter((d) => d.measuredMs !== null);
  const rto = tl.rtoMs;
  const yMax = Math.max(rto === null ? 0 : rto * 1.25, ...timed.map((d) => d.measuredMs! * 1.1), 1000);
  const sy = (ms: number) => top + h - (Math.min(ms, yMax) / yMax) * h;
  parts.push(`<text x="${LEFT - 8}" y="${n(top + h + 4)}" text-anchor="end" class="axis">0</text>`);
  if (rto !== null) {
    parts.push(
      `<line class="rto" x1="${LEFT}" y1="${n(sy(rto))}" x2="${WIDTH - RIGHT}" y2="${n(sy(rto))}" stroke="${CHART_COLOURS.fail}" stroke-dasharray="6 4"/>`,
      `<text x="${LEFT - 8}" y="${n(sy(rto) + 4)}" text-anchor="end" class="limit">RTO ${x(formatDuration(rto))}</text>`,
    );
  }
  if (tl.drills.length === 0) {
    parts.push(
      `<text x="${n((LEFT + WIDTH) / 2)}" y="${n(top + h / 2)}" text-anchor="middle" class="empty">no drill in the window</text>`,
    );
  }
  for (const d of tl.drills) {
    const t = sx(Date.parse(d.time));
    const when = formatInstant(Date.parse(d.time), zone);
    if (d.measuredMs === null) {
      const y = top + h;
      parts.push(
        `<path class="drill untimed" d="M${n(t - 4)} ${n(y - 4)}L${n(t + 4)} ${n(y + 4)}M${n(t - 4)} ${n(y + 4)}L${n(t + 4)} ${n(y - 4)}" stroke="${CHART_COLOURS.fail}" stroke-width="2"><title>${x(`drill ${d.id} ${when}: ${d.verdict}, no restore timed`)}</title></path>`,
      );
      continue;
    }
    const colour = VERDICT_COLOUR[d.verdict] ?? CHART_COLOURS.unknown;
    parts.push(
      `<line x1="${n(t)}" y1="${n(top + h)}" x2="${n(t)}" y2="${n(sy(d.measuredMs))}" stroke="${colour}" stroke-opacity="0.4" stroke-width="3"/>`,
      `<circle class="drill" cx="${n(t)}" cy="${n(sy(d.measuredMs))}" r="5" fill="${colour}"><title>${x(`drill ${d.id} ${when}: restore ${formatDuration(d.measuredMs)}, ${d.verdict}`)}</title></circle>`,
    );
  }
  parts.push(timeAxis(from, to, top + h, zone), '</svg>');
  return parts.join('\n');
}
