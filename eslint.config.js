// ESLint flat config. Beyond the recommended rules it enforces the layer
// boundaries of docs/architecture.md, so a dependency cannot leak into a
// layer that should not know about it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const restrict = (patterns, message) => ({ group: patterns, message });

const heavy = {
  commander: restrict(['commander', 'ora'], 'commander and ora belong in src/cli/ only.'),
  aws: restrict(['@aws-sdk/*'], '@aws-sdk is imported only by src/storage/s3/.'),
  pg: restrict(['pg', 'pg-*'], 'pg is imported only by src/sources/postgres/ and src/scratch/.'),
  mysql: restrict(['mysql2', 'mysql2/*'], 'mysql2 is imported only by src/sources/mysql/ and src/scratch/.'),
};

function boundaries(...allowed) {
  const groups = Object.entries(heavy)
    .filter(([name]) => !allowed.includes(name))
    .map(([, g]) => g);
  return { 'no-restricted-imports': ['error', { patterns: groups }] };
}

const noDateNow = {
  'no-restricted-syntax': [
    'error',
    {
      selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']",
      message: 'Read the time through src/platform/clock.ts so tests can control it.',
    },
    {
      selector: "NewExpression[callee.name='Date'][arguments.length=0]",
      message: 'Read the time through src/platform/clock.ts so tests can control it.',
    },
  ],
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test/bench/work/**', 'fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        structuredClone: 'readonly',
        fetch: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  { files: ['src/**/*.ts'], rules: { ...boundaries(), ...noDateNow } },
  { files: ['src/cli/**/*.ts'], rules: { ...boundaries('commander'), ...noDateNow } },
  { files: ['src/storage/s3/**/*.ts'], rules: { ...boundaries('aws'), ...noDateNow } },
  { files: ['src/sources/postgres/**/*.ts'], rules: { ...boundaries('pg'), ...noDateNow } },
  { files: ['src/sources/mysql/**/*.ts'], rules: { ...boundaries('mysql'), ...noDateNow } },
  { files: ['src/scratch/**/*.ts'], rules: { ...boundaries('pg', 'mysql'), ...noDateNow } },
  { files: ['src/platform/clock.ts'], rules: { 'no-restricted-syntax': 'off' } },
);
