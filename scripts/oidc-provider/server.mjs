// A local OpenID provider for portcullis's interop test (tests/jwt_interop.rs).
//
//   node server.mjs <port>
//
// Issuer http://127.0.0.1:<port>, with discovery and a JWKS (fresh ES256 and RS256 keys each
// start), one confidential client allowed the client-credentials grant, and JWT access tokens
// (RFC 9068, `typ: at+jwt`) for the resource `urn:portcullis:api`. Prints `ready <issuer>` once
// listening. For tests only: the client secret is fixed and nothing is persisted.

import { generateKeyPairSync, randomUUID } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node server.mjs <port>');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const resource = 'urn:portcullis:api';

function signingKey(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: `${alg}-${randomUUID()}` };
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'portcullis-interop',
      client_secret: 'interop-secret-for-tests-only',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'orders:read orders:write',
    },
  ],
  scopes: ['orders:read', 'orders:write'],
  jwks: {
    keys: [
      signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
      signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
    ],
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== resource) {
          throw new Error(`unknown resource ${indicator}`);
        }
        return {
          audience: resource,
          scope: 'orders:read orders:write',
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
});
// Plain HTTP on loopback, for the test only.
provider.proxy = false;

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
