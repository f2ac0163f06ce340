// The official Telnyx Node SDK against oauth-server: the authorization code flow's API (consent
// details, the consent decision, /oauth_grants).
// Environment (set by compat/run): COMPAT_BASE_URL, COMPAT_API_KEY, COMPAT_OTHER_API_KEY.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Telnyx, { NotFoundError, UnprocessableEntityError } from 'telnyx';

const baseURL = process.env.COMPAT_BASE_URL;
const sdk = (apiKey = process.env.COMPAT_API_KEY) => new Telnyx({ apiKey, baseURL, maxRetries: 0 });
const REDIRECT = 'https://app.example.com/callback';
const params = (clientId) => ({
  response_type: 'code',
  client_id: clientId,
  redirect_uri: REDIRECT,
  scope: 'admin',
  state: 'js-state',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  code_challenge_method: 'S256',
});

// The authorize request without following redirects, to read the consent token.
async function consentToken(clientId, apiKey = process.env.COMPAT_API_KEY) {
  const url = `${baseURL}/oauth/authorize?${new URLSearchParams(params(clientId))}`;
  const r = await fetch(url, { headers: { Authorization: `Bearer ${apiKey}` }, redirect: 'manual' });
  assert.equal(r.status, 302);
  const location = new URL(r.headers.get('location'), baseURL);
  return location.searchParams.get('consent_token');
}

async function newClient() {
  const { data } = await sdk().oauthClients.create({
    name: `js-authz-${randomUUID().slice(0, 10)}`,
    client_type: 'confidential',
    allowed_grant_types: ['authorization_code', 'refresh_token'],
    allowed_scopes: ['admin'],
    redirect_uris: [REDIRECT],
    require_pkce: true,
  });
  return data;
}

test('consent details, decision and grants', async () => {
  const client = sdk();
  const created = await newClient();
  const token = await consentToken(created.client_id);

  const { data: details } = await client.oauth.retrieve(token);
  assert.equal(details.client_id, created.client_id);
  assert.equal(details.redirect_uri, REDIRECT);
  assert.deepEqual(details.requested_scopes.map((s) => s.name), ['admin']);

  const decided = await client.oauth.grants({ allowed: true, consent_token: token });
  const back = new URL(decided.redirect_uri);
  assert.equal(back.searchParams.get('state'), 'js-state');
  assert.equal(back.searchParams.get('code').length, 43);
  await assert.rejects(client.oauth.grants({ allowed: true, consent_token: token }), UnprocessableEntityError);

  const grants = [];
  for await (const g of client.oauthGrants.list({ 'page[size]': 1 })) {
    if (g.client_id === created.client_id) grants.push(g);
  }
  assert.equal(grants.length, 1);
  assert.equal(grants[0].record_type, 'oauth_grant');
  const { data: got } = await client.oauthGrants.retrieve(grants[0].id);
  assert.deepEqual(got.scopes, ['admin']);

  await assert.rejects(sdk(process.env.COMPAT_OTHER_API_KEY).oauthGrants.retrieve(got.id), NotFoundError);

  const { data: deleted } = await client.oauthGrants.delete(got.id);
  assert.equal(deleted.id, got.id);
  await assert.rejects(client.oauthGrants.retrieve(got.id), NotFoundError);
});

test('denial and the authorize call itself', async () => {
  const client = sdk();
  const created = await newClient();
  const decided = await client.oauth.grants({ allowed: false, consent_token: await consentToken(created.client_id) });
  assert.equal(new URL(decided.redirect_uri).searchParams.get('error'), 'access_denied');
  // The SDK follows the redirects: to the consent page, which sends a browser without a session
  // to sign in. It gets that page as text.
  const page = await client.oauth.retrieveAuthorize(params(created.client_id));
  assert.match(String(page), /Sign in/);
});
