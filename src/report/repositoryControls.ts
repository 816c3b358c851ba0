/**
 * Controls judged per repository of a job: encryption (lifeboat always encrypts; the evidence is
 * that the repository opened with a key and its snapshot list authenticated), immutability (the
 * state src/app/immutability.ts reads from the storage's object lock) and integrity (a recent
 * successful `check`, reading pack data when the policy asks for it). Pure.
 */
import { formatDuration } from '../policy/duration.js';
import { stateOfRatio } from '../policy/rpo.js';
import { formatAgo } from '../policy/timeText.js';
import type { RepositoryEvidence, RunEvidence } from './evidence.js';
import { newestIn, percent, runRef, snapshotRef, type JobEvidence } from './jobEvidence.js';
import {
  CONTROL_TITLES,
  statusOfState,
  worstStatus,
  type Control,
  type ControlStatus,
  type EvidenceRef,
} from './model.js';

interface RepoVerdict {
  status: ControlStatus;
  text: string;
  evidence: EvidenceRef[];
}

function combine(
  base: Pick<Control, 'id' | 'title' | 'target'>,
  verdicts: RepoVerdict[],
  values: Control['values'],
): Control {
  return {
    ...base,
    status: worstStatus(verdicts.map((v) => v.status)),
    measured: verdicts.map((v) => v.text).join('; '),
    evidence: verdicts.flatMap((v) => v.evidence),
    values,
  };
}

function unreadable(r: RepositoryEvidence): RepoVerdict {
  return {
    status: 'unknown',
    text: `${r.name}: could not be read (${r.error?.message ?? 'unknown error'})`,
    evidence: [],
  };
}

/** encryption: every repository of the job opened with a key and authenticated its snapshots. */
export function encryptionControl(ev: JobEvidence): Control {
  const verdicts = ev.repositories.map((r): RepoVerdict => {
    if (!r.opened || !r.encryption) return unreadable(r);
    const newest = newestIn(ev, r.name);
    const how = `${r.name}: opened with key slot ${r.encryption.keyId.slice(0, 8)} (AES-256-GCM, key wrapped with scrypt)`;
    const evidence = newest ? [snapshotRef(newest)] : [];
    if (r.encryption.passwordSource === 'literal') {
      return {
        status: 'warning',
        text: `${how}; the password is written in the configuration file`,
        evidence,
      };
    }
    return { status: 'pass', text: how, evidence };
  });
  return combine(
    {
      id: 'encryption',
      title: CONTROL_TITLES['encryption'],
      target: 'every repository encrypted and authenticated (AES-256-GCM); opened only with a key',
    },
    verdicts,
    {
      repositories: ev.repositories.length,
      opened: ev.repositories.filter((r) => r.opened).length,
      literalPasswords: ev.repositories.filter((r) => r.encryption?.passwordSource === 'literal').length,
    },
  );
}

/** immutability: the newest restore point in every repository is locked for immutableFor. */
export function immutabilityControl(ev: JobEvidence, immutableForMs: number): Control {
  const verdicts = ev.repositories.map((r): RepoVerdict => {
    if (!r.opened) return unreadable(r);
    const state = r.immutability[ev.targets.job];
    const point = state?.snapshotId ? ev.snapshots.find((s) => s.id === state.snapshotId) : undefined;
    const evidence = point ? [snapshotRef(point)] : [];
    if (!state) {
      return {
        status: 'fail',
        text: `${r.name}: immutability unavailable (the lock state could not be read)`,
        evidence,
      };
    }
    switch (state.state) {
      case 'ok':
        if (state.lockedUntil !== undefined)
          return { status: 'pass', text: `${r.name}: ${state.reason}`, evidence };
        if (state.snapshotId !== undefined) {
          return {
            status: 'warning',
            text: `${r.name}: ${state.reason}; no restore point is locked now`,
            evidence,
          };
        }
        return { status: 'unknown', text: `${r.name}: ${state.reason}`, evidence };
      case 'unavailable':
        // immutabilityState's reason already says "immutability unavailable for repository …".
        return {
          status: 'fail',
          text: /immutability unavailable/.test(state.reason)
            ? state.reason
            : `${r.name}: immutability unavailable: ${state.reason}`,
          evidence,
        };
      case 'not-locked':
        return { status: 'fail', text: `${r.name}: ${state.reason}`, evidence };
      case 'unknown':
      case 'not-required':
        return { status: 'unknown', text: `${r.name}: ${state.reason}`, evidence };
    }
  });
  return combine(
    {
      id: 'immutability',
      title: CONTROL_TITLES['immutability'],
      target: `newest restore point undeletable for ${formatDuration(immutableForMs)} after it was taken`,
    },
    verdicts,
    {
      immutableForMs,
      locked: ev.repositories.filter((r) => r.immutability[ev.targets.job]?.lockedUntil !== undefined).length,
      repositories: ev.repositories.length,
    },
  );
}

/** Did a check read pack data (all, a share, or a group of packs)? */
export function checkReadData(run: RunEvidence): boolean {
  const rd = run.details.readData;
  if (typeof rd === 'string') return !['none', 'no pack data', ''].includes(rd);
  return (run.stats?.packsRead ?? 0) > 0;
}

/** integrity: a successful check (with read-data when the policy asks) within check.every. */
export function integrityControl(ev: JobEvidence, check: { everyMs: number; readData: number }): Control {
  const { everyMs } = check;
  const needsData = check.readData > 0;
  const oldEnough = ev.firstSeen !== undefined && ev.now - ev.firstSeen >= everyMs;
  const ages: number[] = [];
  const verdicts = ev.repositories.map((r): RepoVerdict => {
    if (!r.opened) return unreadable(r);
    const checks = ev.runs('check').filter((c) => c.repository === r.name && c.outcome !== 'interrupted');
    const good = checks.filter((c) => c.outcome === 'success' && (!needsData || checkReadData(c)));
    const lastGood = good[good.length - 1];
    const last = checks[checks.length - 1];
    if (last && last.outcome !== 'success' && (!lastGood || last.startedAt > lastGood.startedAt)) {
      const problems = last.stats?.problems;
      return {
        status: 'fail',
        text:
          `${r.name}: the last check ${formatAgo(last.startedAt, ev.now)} failed` +
          (problems ? ` with ${problems} ${problems === 1 ? 'problem' : 'problems'}` : '') +
          (last.error ? `: ${last.error.message}` : ''),
        evidence: [runRef(last), ...(lastGood ? [runRef(lastGood)] : [])],
      };
    }
    if (lastGood) {
      const age = Math.max(0, ev.now - lastGood.startedAt);
      ages.push(age);
      const rd = typeof lastGood.details.readData === 'string' ? ` (read ${lastGood.details.readData})` : '';
      return {
        status: statusOfState(stateOfRatio(age / everyMs)),
        text: `${r.name}: last good check ${formatAgo(lastGood.startedAt, ev.now)}${rd}`,
        evidence: [runRef(lastGood)],
      };
    }
    const structural = checks.filter((c) => c.outcome === 'success').at(-1);
    const what = needsData ? 'check reading pack data' : 'check';
    const note = structural
      ? `; only structural checks (last ${formatAgo(structural.startedAt, ev.now)})`
      : '';
    return {
      status: oldEnough ? 'fail' : 'unknown',
      text:
        `${r.name}: no successful ${what} in the last ${formatDuration(ev.now - r.journalSince)}${note}` +
        (oldEnough ? '' : `; the job is younger than ${formatDuration(everyMs)}`),
      evidence: structural ? [runRef(structural)] : [],
    };
  });
  return combine(
    {
      id: 'integrity',
      title: CONTROL_TITLES['integrity'],
      target:
        `a successful check every ${formatDuration(everyMs)}` +
        (needsData ? `, reading pack data (policy: ${percent(check.readData)})` : ''),
    },
    verdicts,
    {
      everyMs,
      readData: check.readData,
      oldestCheckAgeMs: ages.length === ev.repositories.length && ages.length > 0 ? Math.max(...ages) : null,
    },
  );
}
