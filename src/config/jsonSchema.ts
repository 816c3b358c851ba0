/**
 * The JSON Schema of lifeboat.yaml, generated from the zod schema (`lifeboat config schema`).
 * Editors use it for completion and checks, e.g. with the YAML language server:
 * `# yaml-language-server: $schema=./lifeboat.schema.json`.
 */
import { z } from 'zod';
import { configSchema, jsonSchemaOverrides } from './schema.js';

/** JSON Schema (draft 2020-12) of the configuration file as people write it. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, {
    io: 'input',
    target: 'draft-2020-12',
    unrepresentable: 'any',
    override: (ctx) => {
      const replacement = jsonSchemaOverrides.get(ctx.zodSchema as unknown as z.ZodType);
      if (!replacement) return;
      // Keep what wrappers added (description, default), replace how the value is checked.
      const keep = pick(ctx.jsonSchema as Record<string, unknown>, ['description', 'default', 'title']);
      for (const key of Object.keys(ctx.jsonSchema)) delete (ctx.jsonSchema as Record<string, unknown>)[key];
      Object.assign(ctx.jsonSchema, replacement, keep);
    },
  }) as Record<string, unknown>;
}

function pick(obj: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => obj[k] !== undefined).map((k) => [k, obj[k]]));
}
