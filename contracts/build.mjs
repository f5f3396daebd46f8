// Compiles contracts/src/**/*.sol with solc-js and writes one artifact per contract to out/:
// { contractName, sourceName, abi, bytecode, deployedBytecode, solcVersion, sourcesHash }.
// `sourcesHash` = sha256 over every source file, sorted by path: `path \0 content \0`. The Rust
// test `artifacts_are_fresh` recomputes it, so a .sol edited without rebuilding fails the tests.
// Usage: node build.mjs          rebuild out/
//        node build.mjs --check  exit 1 if out/ differs from a fresh build
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync, rmSync } from 'node:fs';
import { join, relative, sep, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import solc from 'solc';

const here = fileURLToPath(new URL('.', import.meta.url));
const srcDir = join(here, 'src');
const outDir = join(here, 'out');
const check = process.argv.includes('--check');

function listSol(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return listSol(p);
    return e.name.endsWith('.sol') ? [p] : [];
  });
}

const files = listSol(srcDir)
  .map((p) => relative(srcDir, p).split(sep).join('/'))
  .sort();
const sources = {};
const hash = createHash('sha256');
for (const f of files) {
  const content = readFileSync(join(srcDir, f), 'utf8');
  sources[f] = { content };
  hash.update(f + '\0' + content + '\0');
}
const sourcesHash = '0x' + hash.digest('hex');

const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'cancun',
    viaIR: true,
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
let failed = false;
for (const e of output.errors ?? []) {
  if (e.severity === 'error') failed = true;
  console.error(e.formattedMessage);
}
if (failed) process.exit(1);

const artifacts = {};
for (const [sourceName, contracts] of Object.entries(output.contracts)) {
  for (const [contractName, c] of Object.entries(contracts)) {
    if (c.evm.bytecode.object.length === 0) continue; // interfaces
    const artifact = {
      contractName,
      sourceName,
      solcVersion: solc.version(),
      sourcesHash,
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    };
    artifacts[contractName + '.json'] = JSON.stringify(artifact, null, 2) + '\n';
  }
}

if (check) {
  let stale = false;
  for (const [name, text] of Object.entries(artifacts)) {
    const p = join(outDir, name);
    if (!existsSync(p) || readFileSync(p, 'utf8') !== text) {
      console.error(`stale: out/${name}`);
      stale = true;
    }
  }
  process.exit(stale ? 1 : 0);
}
mkdirSync(outDir, { recursive: true });
for (const f of readdirSync(outDir)) if (f.endsWith('.json') && !(f in artifacts)) rmSync(join(outDir, f));
for (const [name, text] of Object.entries(artifacts)) {
  writeFileSync(join(outDir, name), text);
  const size = (JSON.parse(text).deployedBytecode.length - 2) / 2;
  console.log(`out/${name}: ${size} bytes deployed`);
}
