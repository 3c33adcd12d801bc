// Validate an AsyncAPI document with the official parser: node validate-asyncapi.mjs FILE
// Prints one JSON object: {"errors": [...], "warnings": N, "channels": [...], "operations": [...]}
// and exits 1 when the parser reports any error.
import { readFile } from 'node:fs/promises';
import { Parser } from '@asyncapi/parser';

const file = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(file, 'utf8'));
const errors = diagnostics.filter((d) => d.severity === 0)
  .map((d) => ({ message: d.message, path: d.path.join('/') }));
const summary = {
  errors,
  warnings: diagnostics.filter((d) => d.severity === 1).length,
  version: document ? document.version() : null,
  channels: document ? document.channels().all().map((c) => c.address()) : [],
  operations: document ? document.operations().all().map((o) => o.id()) : [],
  messages: document ? document.allMessages().all().length : 0,
};
console.log(JSON.stringify(summary));
process.exit(errors.length || !document ? 1 : 0);
