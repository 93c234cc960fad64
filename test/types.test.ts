import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';

// Strict schema validation (unknown fields are errors) runs against the real API schemas
// in `npm run verify:static` (kubernetes-validate) and the real kube-apiserver in
// `npm run verify:cluster`. Here: the typed Kubernetes classes the constructs are built
// from reject a misspelt field at compile time, so such a typo cannot reach dist/.
const ROOT = path.resolve(__dirname, '..');

function compile(source: string): string[] {
  const dir = fs.mkdtempSync(path.join(ROOT, 'lib', 'typecheck-'));
  const file = path.join(dir, 'probe.ts');
  fs.writeFileSync(file, source);
  try {
    const program = ts.createProgram([file], { strict: true, noEmit: true, skipLibCheck: true, esModuleInterop: true, resolveJsonModule: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS });
    return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const IMPORT = `import * as k8s from '${path.join(ROOT, 'imports', 'k8s').replace(/\\/g, '/')}';`;

test('a misspelt securityContext field does not compile', () => {
  const errors = compile(`${IMPORT}\nexport const s: k8s.SecurityContext = { readOnlyRootFileSystem: true };\n`);
  expect(errors.join('\n')).toMatch(/'readOnlyRootFileSystem' does not exist in type 'SecurityContext'.*Did you mean.*'readOnlyRootFilesystem'/s);
});

test('the correct field compiles', () => {
  expect(compile(`${IMPORT}\nexport const s: k8s.SecurityContext = { readOnlyRootFilesystem: true };\n`)).toEqual([]);
});
