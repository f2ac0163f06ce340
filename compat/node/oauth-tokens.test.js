// The official Telnyx Node SDK against oauth-server: discovery, the JWK set, the token endpoint
// with all three grants (the code from the consent decision, with PKCE), introspection, and a
// revoked grant's tokens turning inactive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Telnyx from 'telnyx';

const baseURL = process.env.COMPAT_BASE_URL;
const sdk = (apiKey = process.env.COMPAT_API_KEY) => new Telnyx({ apiKey, baseURL, maxRetries: 0 });
const REDIRECT = 'https://app.example.com/callback';
// RFC 7636 Appendix B.
const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

async function everyGrantClient() {
  const { data } = await sdk().oauthClients.create({
    name: `js-tokens-${randomUUID().slice(0, 10)}`,
    client_type: 'confidential',
    allowed_grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    allowed_scopes: ['admin', 'messaging'],
    redirect_uris: [REDIRECT],
  });
  return data;
}

async function code(clientId) {
  const query = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope: 'admin',
    state: 'js-state', code_challenge: CHALLENGE, code_challenge_method: 'S256',
  });
  const r = await fetch(`${baseURL}/oauth/authorize?${query}`, {
    headers: { Authorization: `Bearer ${process.env.COMPAT_API_KEY}` }, redirect: 'manual',
  });
  assert.equal(r.status, 302);
  const consentToken = new URL(r.headers.get('location'), baseURL).searchParams.get('consent_token');
  const details = await sdk().oauth.retrieve(consentToken);
  assert.equal(details.data.client_id, clientId);
  const { redirect_uri } = await sdk().oauth.grants({ allowed: true, consent_token: consentToken });
  const back = new URL(redirect_uri);
  assert.equal(back.searchParams.get('state'), 'js-state');
  return back.searchParams.get('code');
}

test('discovery and the JWK set', async () => {
  const client = sdk();
  const meta = await client.wellKnown.retrieveAuthorizationServerMetadata();
  assert.ok(baseURL.startsWith(meta.issuer));
  assert.equal(meta.token_endpoint, `${meta.issuer}/oauth/token`);
  assert.deepEqual([...meta.grant_types_supported].sort(), ['authorization_code', 'client_credentials', 'refresh_token']);
  const resource = await client.wellKnown.retrieveProtectedResourceMetadata();
  assert.equal(resource.resource, meta.issuer);
  const { keys } = await client.oauth.retrieveJwks();
  assert.equal(keys[0].alg, 'ES256');
  assert.ok(keys[0].kid);
});

test('client credentials and introspection', async () => {
  const c = await everyGrantClient();
  const client = sdk();
  const token = await client.oauth.token({
    grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret, scope: 'messaging',
  });
  assert.equal(token.token_type, 'Bearer');
  assert.equal(token.scope, 'messaging');
  const info = await client.oauth.introspect({ token: token.access_token });
  assert.equal(info.active, true);
  assert.equal(info.client_id, c.client_id);
  assert.equal((await client.oauth.introspect({ token: 'not-a-token' })).active, false);
  await assert.rejects(
    client.oauth.token({ grant_type: 'client_credentials', client_id: c.client_id, client_secret: 'wrong' }),
    Telnyx.AuthenticationError,
  );
});

test('authorization code, refresh, and a revoked grant', async () => {
  const c = await everyGrantClient();
  const client = sdk();
  const auth = { client_id: c.client_id, client_secret: c.client_secret };
  const tokens = await client.oauth.token({
    grant_type: 'authorization_code', code: await code(c.client_id), code_verifier: VERIFIER, redirect_uri: REDIRECT, ...auth,
  });
  assert.ok(tokens.refresh_token);
  const refreshed = await client.oauth.token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, ...auth });
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  await assert.rejects(
    client.oauth.token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, ...auth }),
    (e) => e instanceof Telnyx.BadRequestError && e.error.error === 'invalid_grant',
  );
  // Reuse revoked the family: a new authorization, then revoke its grant.
  const again = await client.oauth.token({
    grant_type: 'authorization_code', code: await code(c.client_id), code_verifier: VERIFIER, redirect_uri: REDIRECT, ...auth,
  });
  assert.equal((await client.oauth.introspect({ token: again.access_token })).active, true);
  let grantId;
  for await (const g of client.oauthGrants.list()) if (g.client_id === c.client_id) grantId = g.id;
  const { data: revoked } = await client.oauthGrants.delete(grantId);
  assert.equal(revoked.id, grantId);
  assert.equal((await client.oauth.introspect({ token: again.access_token })).active, false);
  await assert.rejects(
    client.oauth.token({ grant_type: 'refresh_token', refresh_token: again.refresh_token, ...auth }),
    (e) => e instanceof Telnyx.BadRequestError && e.error.error === 'invalid_grant',
  );
});
