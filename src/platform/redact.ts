/**
 * One redaction path for every string that may hold a secret: DSNs, URLs with
 * credentials, key=value pairs and any literal secret registered at runtime
 * (resolved passwords are registered the moment they are read).
 */
const registered = new Set<string>();

/** Remember a secret value so that redact() hides it wherever it appears. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 3) registered.add(value);
}

export const REDACTED = '***';

const patterns: Array<[RegExp, string]> = [
  // scheme://user:password@host
  [/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)([^@\s]*)(@)/gi, `$1${REDACTED}$3`],
  // password=..., PGPASSWORD=..., secret=..., token=... (DSN key/value and env style); not a
  // dotted configuration path such as `repositories.local.password: <message>`
  [
    /(?<!\.)\b([A-Za-z_]*(?:password|passwd|secret|token|access[_-]?key)[A-Za-z_]*\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s&;,]+)/gi,
    `$1${REDACTED}`,
  ],
  // --password=..., -pSECRET for mysql clients
  [/(--password=)(\S+)/g, `$1${REDACTED}`],
];

/** Return `text` with every known secret replaced by ***. */
export function redact(text: string): string {
  let out = text;
  for (const secret of registered) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  for (const [re, replacement] of patterns) out = out.replace(re, replacement);
  return out;
}

/** Forget registered secrets (tests). */
export function clearRegisteredSecrets(): void {
  registered.clear();
}
