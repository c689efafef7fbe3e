// Parses AsyncAPI documents with the official parser (@asyncapi/parser: the AsyncAPI JSON
// Schema of the document's version plus its Spectral rules) and prints one JSON line per
// document: {"file", "parsed", "diagnostics": [{"severity", "code", "message", "path"}]}.
// Severity 0 is an error. Exit code 1 when any document has an error.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const parser = new Parser();
let failed = false;
for (const file of process.argv.slice(2)) {
  const { document, diagnostics } = await parser.parse(readFileSync(file, "utf8"));
  const errors = diagnostics.filter((d) => d.severity === 0);
  failed ||= errors.length > 0 || !document;
  console.log(JSON.stringify({
    file,
    parsed: Boolean(document),
    diagnostics: diagnostics.map((d) => ({
      severity: d.severity, code: String(d.code), message: d.message, path: d.path,
    })),
  }));
}
process.exit(failed ? 1 : 0);
