// The official Telnyx Node SDK against oauth-server: the client registry and registration.
// Environment (set by compat/run): COMPAT_BASE_URL, COMPAT_API_KEY, COMPAT_OTHER_API_KEY,
// COMPAT_LIMITED_BASE_URL and COMPAT_LIMITED_API_KEY (a second instance with a management-API
// limit of 2 requests at once, then 2 per second, per key).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Telnyx from 'telnyx';

const baseURL = process.env.COMPAT_BASE_URL;
assert.ok(!process.env.TELNYX_CLIENT_ID && !process.env.TELNYX_CLIENT_SECRET, 'never set client credentials here');

const sdk = (apiKey = process.env.COMPAT_API_KEY) => new Telnyx({ apiKey, baseURL, maxRetries: 0 });
const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 10)}`;

test('create, retrieve, update, delete', async () => {
  const client = sdk();
  const name = unique('js-crud');
  const { data: created } = await client.oauthClients.create({
    name,
    client_type: 'confidential',
    allowed_grant_types: ['client_credentials', 'authorization_code'],
    allowed_scopes: ['admin'],
    redirect_uris: ['https://app.example.com/callback'],
  });
  assert.equal(created.record_type, 'oauth_client');
  assert.equal(created.client_secret.length, 43);
  const { data: got } = await client.oauthClients.retrieve(created.client_id);
  assert.equal(got.client_id, created.client_id);
  assert.equal(got.client_secret, null);
  const { data: updated } = await client.oauthClients.update(created.client_id, { name: `${name}-renamed` });
  assert.equal(updated.name, `${name}-renamed`);
  assert.deepEqual(updated.allowed_grant_types, ['client_credentials', 'authorization_code']);
  await client.oauthClients.delete(created.client_id);
  await assert.rejects(client.oauthClients.retrieve(created.client_id), Telnyx.NotFoundError);
});

test('auto-paging keeps every filter', async () => {
  const client = sdk();
  const prefix = unique('js-page');
  const ids = [];
  for (let i = 0; i < 7; i++) {
    const pub = i % 3 === 0;
    const { data } = await client.oauthClients.create({
      name: `${prefix}-${i}`,
      client_type: pub ? 'public' : 'confidential',
      allowed_grant_types: pub ? ['authorization_code'] : ['client_credentials'],
      allowed_scopes: ['messaging'],
      redirect_uris: ['http://127.0.0.1/callback'],
    });
    ids.push(data.client_id);
  }
  const collect = async (query) => {
    const out = [];
    for await (const c of client.oauthClients.list(query)) out.push(c.client_id);
    return out;
  };
  assert.deepEqual(await collect({ 'filter[name][contains]': prefix, 'page[size]': 2 }), ids);
  assert.deepEqual(await collect({ 'filter[name][contains]': prefix, 'filter[client_type]': 'public', 'page[size]': 1 }), [ids[0], ids[3], ids[6]]);
  assert.deepEqual(
    await collect({ 'filter[name][contains]': prefix, 'filter[allowed_grant_types][contains]': 'client_credentials' }),
    [ids[1], ids[2], ids[4], ids[5]],
  );
  assert.deepEqual(await collect({ 'filter[name][contains]': prefix, 'filter[verified]': true }), []);
  assert.deepEqual(await collect({ 'filter[name][contains]': prefix, 'filter[verified]': false }), ids);
  assert.deepEqual(await collect({ 'filter[name]': `${prefix}-4` }), [ids[4]]);
  assert.deepEqual(await collect({ 'filter[client_id]': ids[5] }), [ids[5]]);
  const page = await client.oauthClients.list({ 'filter[name][contains]': prefix, 'page[size]': 3 });
  assert.equal(page.meta.total_pages, 3);
  assert.ok(page.hasNextPage());
  const next = await page.getNextPage();
  assert.deepEqual(next.data.map((c) => c.client_id), ids.slice(3, 6));
});

test('register', async () => {
  const r = await sdk().oauth.register({
    client_name: unique('js-mcp'),
    redirect_uris: ['http://127.0.0.1:33418/callback'],
    token_endpoint_auth_method: 'none',
  });
  assert.ok(r.client_id);
  assert.equal(typeof r.client_id_issued_at, 'number');
  assert.equal(r.client_secret, undefined);
});

test('errors by status', async () => {
  await assert.rejects(sdk('KEYnot-a-real-key').oauthClients.list(), Telnyx.AuthenticationError);
  const client = sdk();
  await assert.rejects(client.oauthClients.retrieve('00000000-0000-0000-0000-000000000000'), Telnyx.NotFoundError);
  await assert.rejects(
    client.oauthClients.create({ name: 'x', client_type: 'confidential', allowed_grant_types: ['authorization_code'], allowed_scopes: ['admin'] }),
    (e) => e instanceof Telnyx.UnprocessableEntityError && e.error.errors[0].source.pointer === '/redirect_uris',
  );
  await assert.rejects(client.oauthClients.list({ 'page[size]': 0 }), Telnyx.BadRequestError);
});

test('another organization sees nothing', async () => {
  const { data: mine } = await sdk().oauthClients.create({
    name: unique('js-tenant'),
    client_type: 'confidential',
    allowed_grant_types: ['client_credentials'],
    allowed_scopes: ['admin'],
  });
  const other = sdk(process.env.COMPAT_OTHER_API_KEY);
  await assert.rejects(other.oauthClients.retrieve(mine.client_id), Telnyx.NotFoundError);
  await assert.rejects(other.oauthClients.delete(mine.client_id), Telnyx.NotFoundError);
  const seen = [];
  for await (const c of other.oauthClients.list({ 'filter[client_id]': mine.client_id })) seen.push(c);
  assert.deepEqual(seen, []);
});

test('a burst ends in the rate limit error', async () => {
  // Twenty concurrent calls against 2 at once and 2 per second: even after the SDK's one retry
  // (which waits for the server's Retry-After of 1 s) most of them are refused.
  const client = new Telnyx({
    apiKey: process.env.COMPAT_LIMITED_API_KEY,
    baseURL: process.env.COMPAT_LIMITED_BASE_URL,
    maxRetries: 1,
  });
  const results = await Promise.allSettled(Array.from({ length: 20 }, () => client.oauthClients.list()));
  const refused = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
  const served = results.length - refused.length;
  assert.ok(served >= 1 && served <= 10, `${served} served`);
  assert.ok(refused.length > 0);
  for (const e of refused) assert.ok(e instanceof Telnyx.RateLimitError, String(e));
  assert.equal(refused[0].status, 429);
  assert.equal(refused[0].headers.get('retry-after'), '1');
  assert.equal(refused[0].error.error, 'rate_limited');
});
