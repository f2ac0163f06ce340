// Helpers shared by the conformance driver and the SDK journey: a person's browser, reduced to
// HTTP (sign in and consent through the server's own pages), a small loopback HTTP server for
// the documents a client publishes, and JWT reading.
import { createServer } from 'node:http';
import assert from 'node:assert/strict';

const entities = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** The text of an HTML attribute value, entities decoded. */
export function unescapeHtml(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (all, e) => {
    if (e[0] === '#') {
      const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return entities[e.toLowerCase()] ?? all;
  });
}

/** The hidden inputs of the form whose action is `action` in `html`. */
export function formFields(html, action) {
  const start = html.indexOf(`action="${action}"`);
  if (start < 0) return undefined;
  const form = html.slice(start, html.indexOf('</form>', start));
  const fields = {};
  for (const m of form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[m[1]] = unescapeHtml(m[2]);
  }
  return fields;
}

/** A page's title and alert, for a message about where the browser got stuck. */
export function pageSummary(html) {
  const title = html.match(/<title>([^<]*)<\/title>/)?.[1] ?? '';
  const alert = html.match(/role="alert"[^>]*>([^<]*)</)?.[1] ?? '';
  return unescapeHtml(`${title}: ${alert}`.trim());
}

/** Cookies as a browser keeps them for one origin (no attributes other than deletion). */
class CookieJar {
  #cookies = new Map();
  take(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }
  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/**
 * Plays the user's browser from an authorization URL to the client's redirect URI: follows
 * the server's redirects, signs in on /login (the form's CSRF token and cookie), allows the
 * request on the consent page, and returns the URL the server sends the browser to outside
 * its own origin (the client's redirect URI with `code` or `error`). Every step asserts what
 * a browser would see.
 */
export async function signInAndConsent(authorizeUrl, { email, password, decision = 'allow' }) {
  const origin = new URL(authorizeUrl).origin;
  const jar = new CookieJar();
  const steps = [];
  let url = new URL(authorizeUrl);
  let pending = null; // a form to post: { action, body }
  for (let i = 0; i < 12; i++) {
    const init = { redirect: 'manual', headers: { cookie: jar.header() } };
    if (pending) {
      init.method = 'POST';
      init.headers['content-type'] = 'application/x-www-form-urlencoded';
      init.headers.origin = origin;
      init.body = new URLSearchParams(pending.body).toString();
      url = new URL(pending.action, origin);
      pending = null;
    }
    const r = await fetch(url, init);
    jar.take(r);
    steps.push(`${init.method ?? 'GET'} ${url.pathname} -> ${r.status}`);
    if (r.status >= 300 && r.status < 400) {
      const next = new URL(r.headers.get('location'), url);
      if (next.origin !== origin) return next.href;
      url = next;
      continue;
    }
    const html = await r.text();
    assert.equal(r.status, 200, `${steps.join(', ')}: ${pageSummary(html)}`);
    const login = formFields(html, '/login');
    const consent = formFields(html, '/oauth/grants');
    if (login) {
      assert.ok(login.csrf_token, 'the sign-in form carries a CSRF token');
      pending = { action: '/login', body: { ...login, email, password } };
    } else if (consent) {
      assert.ok(consent.consent_token && consent.csrf_token, 'the consent form carries its tokens');
      pending = { action: '/oauth/grants', body: { ...consent, decision } };
    } else {
      assert.fail(`${steps.join(', ')}: neither the sign-in nor the consent page`);
    }
  }
  assert.fail(`no redirect to the client after ${steps.join(', ')}`);
}

/**
 * Serves `routes` (path -> JSON value, or a function of the listening origin returning one) on
 * 127.0.0.1 at a free port. Returns { origin, hits, close }; `hits` counts requests per path.
 */
export async function serveJson(routes) {
  const hits = new Map();
  let origin = '';
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://127.0.0.1').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const route = routes[path];
    if (route === undefined) {
      res.writeHead(404).end();
      return;
    }
    const value = typeof route === 'function' ? route(origin) : route;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(value));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    hits,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** A port free on 127.0.0.1 now (for a program that binds it itself right after). */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The header and claims of a JWT (not verified). */
export function decodeJwt(token) {
  const [header, payload] = token.split('.');
  const part = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  return { header: part(header), claims: part(payload) };
}

/** Registers a public client (RFC 7591) with `redirectUri`; returns the registration. */
export async function registerPublicClient(issuer, redirectUri, name) {
  const r = await fetch(`${issuer}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: name,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
    }),
  });
  const body = await r.json();
  assert.equal(r.status, 201, JSON.stringify(body));
  return body;
}
