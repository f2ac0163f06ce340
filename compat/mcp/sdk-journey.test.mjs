// The MCP TypeScript SDK's client auth module against oauth-server, as an MCP client uses it:
// discovery, a Client ID Metadata Document served here on loopback, dynamic registration,
// authorization (sign-in and consent through the server's pages, by HTTP), code exchange and
// refresh; and the `auth()` orchestrator behind an MCP server's protected resource metadata.
// Environment (set by compat/mcp/run): MCP_ISSUER, MCP_RESOURCE, MCP_EMAIL, MCP_PASSWORD; the
// server runs with OAUTH_CIMD_ALLOW_HTTP_LOOPBACK=true and MCP_RESOURCE among its resources.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import {
  auth,
  discoverAuthorizationServerMetadata,
  exchangeAuthorization,
  refreshAuthorization,
  registerClient,
  startAuthorization,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { InvalidClientError, InvalidGrantError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { decodeJwt, serveJson, signInAndConsent } from './lib.mjs';

const { MCP_ISSUER: issuer, MCP_RESOURCE: resource, MCP_EMAIL: email, MCP_PASSWORD: password } =
  process.env;
const SCOPE = 'mcp:tools';
let metadata;

before(async () => {
  assert.ok(issuer && resource && email && password, 'set MCP_ISSUER, MCP_RESOURCE, MCP_EMAIL, MCP_PASSWORD');
  metadata = await discoverAuthorizationServerMetadata(issuer);
});

/** The claims of an access token whose signature checks out against the published keys. */
async function verifiedClaims(token) {
  const { header, claims } = decodeJwt(token);
  const jwks = await (await fetch(metadata.jwks_uri)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `the token's kid ${header.kid} is published`);
  const [h, p, s] = token.split('.');
  const digest = { ES256: 'sha256', RS256: 'sha256', EdDSA: null }[header.alg];
  assert.notEqual(digest, undefined, `algorithm ${header.alg}`);
  const key = { key: createPublicKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' };
  assert.ok(verify(digest, Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url')), 'signature');
  assert.equal(header.typ, 'at+jwt');
  return claims;
}

/** Asserts an access token for `clientId` with audience `aud` and exactly `scope`. */
async function assertAccessToken(tokens, { clientId, aud }) {
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.equal(tokens.scope, SCOPE);
  assert.ok(tokens.refresh_token, 'a refresh token');
  const claims = await verifiedClaims(tokens.access_token);
  assert.equal(claims.iss, issuer);
  assert.equal(claims.aud, aud);
  assert.equal(claims.client_id, clientId);
  assert.equal(claims.scope, SCOPE);
  assert.ok(claims.sub, 'the user is the subject');
  assert.ok(claims.exp > Date.now() / 1000);
  return claims;
}

/**
 * Authorization as the SDK does it (startAuthorization, PKCE S256), the user's sign-in and
 * consent on our pages, then the code exchange. Returns the tokens, and the exchange to
 * repeat it.
 */
async function authorizeAndExchange(clientInformation, redirectUrl, resourceIndicator) {
  const state = randomBytes(16).toString('base64url');
  const { authorizationUrl, codeVerifier } = await startAuthorization(issuer, {
    metadata,
    clientInformation,
    redirectUrl,
    scope: SCOPE,
    state,
    resource: resourceIndicator,
  });
  assert.equal(authorizationUrl.searchParams.get('code_challenge_method'), 'S256');
  const back = new URL(await signInAndConsent(authorizationUrl.href, { email, password }));
  assert.equal(`${back.origin}${back.pathname}`, redirectUrl);
  assert.equal(back.searchParams.get('error'), null, back.searchParams.get('error_description') ?? '');
  assert.equal(back.searchParams.get('state'), state);
  assert.equal(back.searchParams.get('iss'), issuer, 'RFC 9207 iss in the response');
  const authorizationCode = back.searchParams.get('code');
  assert.ok(authorizationCode);
  const exchange = () =>
    exchangeAuthorization(issuer, {
      metadata,
      clientInformation,
      authorizationCode,
      codeVerifier,
      redirectUri: redirectUrl,
      resource: resourceIndicator,
    });
  const tokens = await exchange();
  return { tokens, exchange };
}

/**
 * Refresh: a new refresh token, a new access token for the same audience, and the old refresh
 * token refused. Presenting the old one again is reuse: its token family is revoked, so the new one
 * stops working too.
 */
async function assertRefreshRotates(clientInformation, tokens, aud, resourceIndicator) {
  const refreshed = await refreshAuthorization(issuer, {
    metadata,
    clientInformation,
    refreshToken: tokens.refresh_token,
    resource: resourceIndicator,
  });
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token, 'the refresh token rotates');
  assert.notEqual(refreshed.access_token, tokens.access_token);
  await assertAccessToken(refreshed, { clientId: clientInformation.client_id, aud });

  const again = (refreshToken) =>
    refreshAuthorization(issuer, { metadata, clientInformation, refreshToken, resource: resourceIndicator });
  await assert.rejects(again(tokens.refresh_token), InvalidGrantError);
  await assert.rejects(again(refreshed.refresh_token), InvalidGrantError);
}

test('discovery: RFC 8414 metadata as an MCP client reads it', () => {
  assert.equal(metadata.issuer, issuer);
  assert.equal(metadata.authorization_endpoint, `${issuer}/oauth/authorize`);
  assert.equal(metadata.token_endpoint, `${issuer}/oauth/token`);
  assert.equal(metadata.registration_endpoint, `${issuer}/oauth/register`);
  assert.equal(metadata.client_id_metadata_document_supported, true);
  assert.deepEqual(metadata.code_challenge_methods_supported, ['S256']);
  assert.ok(metadata.token_endpoint_auth_methods_supported.includes('none'));
  assert.ok(metadata.response_types_supported.includes('code'));
  assert.ok(metadata.grant_types_supported.includes('refresh_token'));
  assert.ok(metadata.scopes_supported.includes(SCOPE));
  assert.equal(metadata.authorization_response_iss_parameter_supported, true);
});

test('a Client ID Metadata Document client: authorize with the resource, exchange, refresh', async () => {
  const redirectUrl = 'http://127.0.0.1:33418/callback';
  const docs = await serveJson({
    '/oauth/client.json': (origin) => ({
      client_id: `${origin}/oauth/client.json`,
      client_name: 'MCP SDK journey (metadata document)',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
    }),
  });
  try {
    const clientInformation = { client_id: `${docs.origin}/oauth/client.json` };
    const { tokens } = await authorizeAndExchange(clientInformation, redirectUrl, new URL(resource));
    assert.ok(docs.hits.get('/oauth/client.json') >= 1, 'the server fetched the document');
    await assertAccessToken(tokens, { clientId: clientInformation.client_id, aud: resource });
    await assertRefreshRotates(clientInformation, tokens, resource, new URL(resource));
  } finally {
    await docs.close();
  }
});

test('dynamic registration, then the issuer as resource, sent as the SDK sends it (issuer/)', async () => {
  const redirectUrl = 'http://127.0.0.1:33419/callback';
  const clientInformation = await registerClient(issuer, {
    metadata,
    clientMetadata: {
      client_name: 'MCP SDK journey (registered)',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: SCOPE,
    },
  });
  assert.ok(clientInformation.client_id);
  assert.equal(clientInformation.client_secret, undefined, 'a public client has no secret');
  assert.equal(clientInformation.token_endpoint_auth_method, 'none');
  assert.deepEqual(clientInformation.redirect_uris, [redirectUrl]);

  // new URL('http://host:port') is 'http://host:port/': the issuer, after normalization.
  const issuerResource = new URL(issuer);
  assert.equal(issuerResource.href, `${issuer}/`);
  const { tokens } = await authorizeAndExchange(clientInformation, redirectUrl, issuerResource);
  await assertAccessToken(tokens, { clientId: clientInformation.client_id, aud: issuer });
  await assertRefreshRotates(clientInformation, tokens, issuer, issuerResource);

  // A code is good once; presenting it again revokes the tokens it gave (RFC 6749 §4.1.2).
  const second = await authorizeAndExchange(clientInformation, redirectUrl, issuerResource);
  await assert.rejects(second.exchange(), InvalidGrantError);
  await assert.rejects(
    refreshAuthorization(issuer, {
      metadata,
      clientInformation,
      refreshToken: second.tokens.refresh_token,
      resource: issuerResource,
    }),
    InvalidGrantError,
  );
});

test('a registration without token_endpoint_auth_method: a secret, sent by HTTP Basic', async () => {
  // RFC 7591 §2: the default is client_secret_basic, so the client gets a secret, and the SDK
  // authenticates with it (it prefers client_secret_basic when it holds a secret).
  const redirectUrl = 'http://127.0.0.1:33422/callback';
  const clientInformation = await registerClient(issuer, {
    metadata,
    clientMetadata: {
      client_name: 'MCP SDK journey (confidential)',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: SCOPE,
    },
  });
  assert.ok(clientInformation.client_secret, 'a confidential client has a secret');
  assert.equal(clientInformation.token_endpoint_auth_method, 'client_secret_basic');
  const { tokens } = await authorizeAndExchange(clientInformation, redirectUrl, new URL(resource));
  await assertAccessToken(tokens, { clientId: clientInformation.client_id, aud: resource });
  await assertRefreshRotates(clientInformation, tokens, resource, new URL(resource));

  // Presented as a public client (client_id alone), the same client is refused.
  const { client_secret: _, token_endpoint_auth_method: __, ...withoutSecret } = clientInformation;
  const again = await authorizeAndExchange(clientInformation, redirectUrl, new URL(resource));
  await assert.rejects(
    refreshAuthorization(issuer, {
      metadata,
      clientInformation: withoutSecret,
      refreshToken: again.tokens.refresh_token,
      resource: new URL(resource),
    }),
    InvalidClientError,
  );
});

test('a resource the server does not serve is refused before anyone signs in', async () => {
  const redirectUrl = 'http://127.0.0.1:33420/callback';
  const clientInformation = await registerClient(issuer, {
    metadata,
    clientMetadata: {
      client_name: 'MCP SDK journey (other resource)',
      redirect_uris: [redirectUrl],
      token_endpoint_auth_method: 'none',
      scope: SCOPE,
    },
  });
  const { authorizationUrl } = await startAuthorization(issuer, {
    metadata,
    clientInformation,
    redirectUrl,
    scope: SCOPE,
    state: 'other-resource',
    resource: new URL('https://elsewhere.example.test/mcp'),
  });
  // RFC 8707 §2 invalid_target. The client is registered, not verified, and nobody is signed
  // in: the error is a page, not a redirect (open registration makes no open redirector).
  const r = await fetch(authorizationUrl, { redirect: 'manual' });
  assert.equal(r.status, 400);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  assert.match(await r.text(), /invalid_target/);
});

test('the auth() orchestrator behind an MCP server: discovery, registration, code, refresh', async () => {
  // The MCP server's side, as docs/mcp.md describes it: RFC 9728 metadata naming this server.
  const mcp = await serveJson({
    '/.well-known/oauth-protected-resource/mcp': {
      resource,
      authorization_servers: [issuer],
      scopes_supported: [SCOPE],
      bearer_methods_supported: ['header'],
    },
  });
  const redirectUrl = 'http://127.0.0.1:33421/callback';
  const saved = {};
  let authorizationUrl;
  const provider = {
    get redirectUrl() {
      return redirectUrl;
    },
    get clientMetadata() {
      return {
        client_name: 'MCP SDK journey (auth)',
        redirect_uris: [redirectUrl],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      };
    },
    state: () => 'auth-orchestrator',
    clientInformation: () => saved.client,
    saveClientInformation: (c) => {
      saved.client = c;
    },
    tokens: () => saved.tokens,
    saveTokens: (t) => {
      saved.tokens = t;
    },
    redirectToAuthorization: (url) => {
      authorizationUrl = url;
    },
    saveCodeVerifier: (v) => {
      saved.verifier = v;
    },
    codeVerifier: () => saved.verifier,
    // The MCP server here is a stand-in on loopback whose canonical URI is MCP_RESOURCE.
    validateResourceURL: async (_serverUrl, advertised) => new URL(advertised),
  };
  const serverUrl = `${mcp.origin}/mcp`;
  try {
    assert.equal(await auth(provider, { serverUrl }), 'REDIRECT');
    assert.ok(mcp.hits.get('/.well-known/oauth-protected-resource/mcp') >= 1);
    assert.ok(saved.client?.client_id, 'registered on the way');
    assert.equal(authorizationUrl.origin + authorizationUrl.pathname, `${issuer}/oauth/authorize`);
    assert.equal(authorizationUrl.searchParams.get('resource'), resource);
    assert.equal(authorizationUrl.searchParams.get('scope'), SCOPE);

    const back = new URL(await signInAndConsent(authorizationUrl.href, { email, password }));
    assert.equal(back.searchParams.get('state'), 'auth-orchestrator');
    const authorizationCode = back.searchParams.get('code');
    assert.equal(await auth(provider, { serverUrl, authorizationCode }), 'AUTHORIZED');
    const first = saved.tokens;
    await assertAccessToken(first, { clientId: saved.client.client_id, aud: resource });

    // With tokens stored, auth() refreshes.
    assert.equal(await auth(provider, { serverUrl }), 'AUTHORIZED');
    assert.notEqual(saved.tokens.refresh_token, first.refresh_token);
    assert.notEqual(saved.tokens.access_token, first.access_token);
    await assertAccessToken(saved.tokens, { clientId: saved.client.client_id, aud: resource });
  } finally {
    await mcp.close();
  }
});
