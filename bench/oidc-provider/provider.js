// node-oidc-provider as the benchmark's peer: client credentials with JWT access tokens through
// resource indicators (RFC 8707), introspection (RFC 7662) and dynamic registration (RFC 7591).
// Started by `oauth-bench` on 127.0.0.1 with a random port; prints one line
// `oidc-provider listening on 127.0.0.1:<port>` once it accepts connections.
//
// Environment: BENCH_CLIENT_ID, BENCH_CLIENT_SECRET (the confidential client the scenarios use).
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const clientId = process.env.BENCH_CLIENT_ID;
const clientSecret = process.env.BENCH_CLIENT_SECRET;
if (!clientId || !clientSecret) {
  console.error('BENCH_CLIENT_ID and BENCH_CLIENT_SECRET are required');
  process.exit(2);
}

// One key per algorithm, generated at start (the provider parses them once).
function jwk(type, options, alg, kid) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, kid, use: 'sig' };
}
const keys = [
  jwk('ec', { namedCurve: 'P-256' }, 'ES256', 'es256'),
  jwk('ed25519', {}, 'EdDSA', 'eddsa'),
  jwk('rsa', { modulusLength: 2048 }, 'RS256', 'rs256'),
];

// The resource servers: the default one gets ES256 JWTs; the others are asked for with
// `resource=` by the scenarios. `opaque` exists because oidc-provider refuses to introspect
// structured (JWT) tokens, so its introspection scenario uses an opaque one.
const RESOURCES = {
  'https://api.bench.example/es256': { format: 'jwt', alg: 'ES256' },
  'https://api.bench.example/eddsa': { format: 'jwt', alg: 'EdDSA' },
  'https://api.bench.example/rs256': { format: 'jwt', alg: 'RS256' },
  'https://api.bench.example/opaque': { format: 'opaque' },
};
const DEFAULT_RESOURCE = 'https://api.bench.example/es256';

const provider = new Provider('http://127.0.0.1', {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'api:read',
    },
  ],
  jwks: { keys },
  scopes: ['api:read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    registration: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? DEFAULT_RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => {
        const rs = RESOURCES[resource];
        if (!rs) throw new Provider.errors.InvalidTarget();
        const info = { scope: 'api:read', audience: resource, accessTokenFormat: rs.format };
        if (rs.alg) info.jwt = { sign: { alg: rs.alg } };
        return info;
      },
    },
  },
});
provider.proxy = false;

const server = provider.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  console.log(`oidc-provider listening on 127.0.0.1:${port}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
