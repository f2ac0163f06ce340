// Runs the MCP conformance suite's authorization-server scenarios (`conformance authorization`)
// against a started oauth-server, once per kind of client an MCP client may be: a registered
// public client (RFC 7591) and a Client ID Metadata Document served here on loopback. The
// suite prints an authorization URL and waits for its callback; this driver plays the user
// through the server's own sign-in and consent pages and then delivers the redirect to the
// suite's callback server, as the browser would.
//
// Fails (exit 1) when the suite exits non-zero, when a scenario did not run, when any check in
// its results (checks.json) is anything but SUCCESS or INFO (a FAILURE, a WARNING, a SKIPPED),
// or when its output names a FAILURE or a WARNING.
//
// Environment (set by compat/mcp/run): MCP_ISSUER, MCP_RESOURCE, MCP_EMAIL, MCP_PASSWORD.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { signInAndConsent, serveJson, freePort, registerPublicClient } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const suite = join(here, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
const { MCP_ISSUER: issuer, MCP_RESOURCE: resource, MCP_EMAIL: email, MCP_PASSWORD: password } =
  process.env;
if (!issuer || !resource || !email || !password) {
  console.error('set MCP_ISSUER, MCP_RESOURCE, MCP_EMAIL and MCP_PASSWORD');
  process.exit(2);
}

// The scenarios the suite has for an authorization server; each must run and pass.
const SCENARIOS = ['authorization-server-metadata-endpoint', 'authorization-code-grant'];
// The revision of the MCP authorization profile this server implements (docs/mcp.md).
const SPEC_VERSION = '2026-07-28';

/** Runs the suite for one client; returns the list of problems found. */
async function runSuite(label, clientId, port, extraArgs) {
  const out = await mkdtemp(join(tmpdir(), 'mcp-conformance-'));
  const args = [
    suite, 'authorization',
    '--url', issuer,
    '--client-id', clientId,
    '--port', String(port),
    '--spec-version', SPEC_VERSION,
    '--output-dir', out,
    ...extraArgs,
  ];
  console.log(`== MCP conformance suite, authorization server: ${label}`);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const problems = [];
  const timer = setTimeout(() => {
    problems.push('the suite did not finish within 90 s');
    child.kill();
  }, 90_000);
  child.stderr.pipe(process.stderr);
  const browsing = [];
  const lines = createInterface({ input: child.stdout });
  const authorizePrefix = `${issuer}/oauth/authorize?`;
  for await (const line of lines) {
    console.log(`   ${line}`);
    if (/\b(FAILURE|WARNING)\b/.test(line)) problems.push(`the suite printed: ${line.trim()}`);
    if (line.startsWith(authorizePrefix)) {
      // The suite's "open this URL in your browser" step.
      browsing.push(
        (async () => {
          const callback = await signInAndConsent(line, { email, password });
          const r = await fetch(callback);
          await r.text();
          if (r.status !== 200) problems.push(`the suite's callback answered ${r.status}`);
        })().catch((e) => {
          problems.push(`the browser step failed: ${e.message}`);
          child.kill();
        }),
      );
    }
  }
  const code = await new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.on('exit', (c) => resolve(c));
  });
  clearTimeout(timer);
  await Promise.all(browsing);
  if (browsing.length !== 1) problems.push(`the suite asked for ${browsing.length} browser steps, not 1`);
  if (code !== 0) problems.push(`the suite exited with ${code}`);

  const seen = new Set();
  for (const dir of await readdir(out)) {
    let checks;
    try {
      checks = JSON.parse(await readFile(join(out, dir, 'checks.json'), 'utf8'));
    } catch {
      continue;
    }
    // A scenario counts as run when it passed at least one check.
    const scenario = SCENARIOS.find((s) => dir.includes(s));
    if (scenario && checks.some((c) => c.status === 'SUCCESS')) seen.add(scenario);
    for (const c of checks) {
      if (c.status === 'SUCCESS' || c.status === 'INFO') continue;
      problems.push(`${dir}: ${c.id} ${c.status}: ${c.errorMessage ?? c.description}`);
    }
  }
  for (const s of SCENARIOS) if (!seen.has(s)) problems.push(`scenario ${s} did not run`);
  await rm(out, { recursive: true, force: true });
  return problems;
}

const problems = [];

// A client registered by RFC 7591, no resource indicator: the token is for the issuer.
{
  const port = await freePort();
  const reg = await registerPublicClient(issuer, `http://127.0.0.1:${port}/callback`, 'MCP conformance (registered)');
  for (const p of await runSuite('registered public client', reg.client_id, port, [])) problems.push(p);
}

// A Client ID Metadata Document on loopback (OAUTH_CIMD_ALLOW_HTTP_LOOPBACK), with the MCP
// server's resource indicator.
{
  const port = await freePort();
  const docs = await serveJson({
    '/client.json': (origin) => ({
      client_id: `${origin}/client.json`,
      client_name: 'MCP conformance (metadata document)',
      redirect_uris: [`http://127.0.0.1:${port}/callback`],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
    }),
  });
  try {
    const found = await runSuite('client id metadata document', `${docs.origin}/client.json`, port, [
      '--resource', resource,
    ]);
    problems.push(...found);
    if (!docs.hits.get('/client.json')) problems.push('the server never fetched the metadata document');
  } finally {
    await docs.close();
  }
}

if (problems.length > 0) {
  console.error(`MCP conformance: ${problems.length} problem(s):`);
  for (const p of problems) console.error(`  - ${p}`);
  process.exit(1);
}
console.log('MCP conformance: every authorization-server scenario passed, no warnings');
