// A local OpenID provider for portcullis's interop test (tests/jwt_interop.rs).
//
//   node server.mjs <port>
//
// Issuer http://127.0.0.1:<port>, with discovery and a JWKS (fresh ES256 and RS256 keys each
// start), one confidential client allowed the client-credentials grant, and JWT access tokens
// (RFC 9068, `typ: at+jwt`) for the resource `urn:portcullis:api`. Prints `ready <issuer>` once
// listening. For tests only: the client secrets are fixed and nothing is persisted.
//
// Also token introspection (RFC 7662) and refresh tokens, for the introspection test: a second
// client gets a user's refresh token through CIBA in poll mode (`POST /backchannel` with
// `login_hint`, then the `ciba` grant at `/token`), which this provider approves at once, so no
// browser interaction is needed; a third client is the resource server that introspects.
//
// And DPoP (RFC 9449), for the DPoP interop test: a token request carrying a `DPoP` proof gets a
// token bound to the proof's key (`token_type: DPoP`, `cnf.jkt`), as a JWT for `urn:portcullis:api`
// or as an opaque token for `urn:portcullis:opaque` (only opaque tokens are stored, so only they
// can be introspected, and the introspection answer carries the same `cnf.jkt`).
//
// And certificate-bound tokens (RFC 8705), for tests/cert_interop.rs: client `portcullis-mtls`
// gets tokens bound to its TLS client certificate (`cnf["x5t#S256"]`). This provider serves plain
// HTTP on loopback, so `getCertificate` stands in for the TLS terminator in front of it: it takes
// the client certificate's DER, base64, from the `x-test-client-cert` header (test only). Client
// `portcullis-mtls-hex` gets the same binding spelt as a hex thumbprint, which RFC 8705 does not
// allow, so the test can show portcullis refuses it.

import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node server.mjs <port>');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const resource = 'urn:portcullis:api';
const opaqueResource = 'urn:portcullis:opaque';

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
    {
      client_id: 'portcullis-user-app',
      client_secret: 'user-app-secret-for-tests-only',
      grant_types: ['urn:openid:params:grant-type:ciba', 'refresh_token'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      backchannel_token_delivery_mode: 'poll',
      scope: 'openid offline_access',
    },
    {
      client_id: 'portcullis-mtls',
      client_secret: 'mtls-secret-for-tests-only',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      tls_client_certificate_bound_access_tokens: true,
      scope: 'orders:read',
    },
    {
      client_id: 'portcullis-mtls-hex',
      client_secret: 'mtls-secret-for-tests-only',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      tls_client_certificate_bound_access_tokens: true,
      scope: 'orders:read',
    },
    {
      client_id: 'portcullis-resource-server',
      client_secret: 'resource-server-secret-for-tests-only',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  scopes: ['openid', 'offline_access', 'orders:read', 'orders:write'],
  formats: {
    customizers: {
      // `portcullis-mtls-hex`: the binding as a hex SHA-256 thumbprint, which RFC 8705 does not
      // allow (its tokens are for the refusal test only).
      jwt: async (ctx, token, jwt) => {
        const der = ctx?.get('x-test-client-cert');
        if (token.clientId === 'portcullis-mtls-hex' && der) {
          const hex = createHash('sha256').update(Buffer.from(der, 'base64')).digest('hex');
          jwt.payload.cnf = { 'x5t#S256': hex };
        }
      },
    },
  },
  jwks: {
    keys: [
      signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
      signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
    ],
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    // DPoP-bound access tokens when the token request carries a proof; no server nonce, so a
    // proof is accepted within the provider's iat window.
    dPoP: { enabled: true },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      getCertificate: (ctx) => {
        const der = ctx.get('x-test-client-cert');
        if (!der) {
          return undefined;
        }
        const lines = der.match(/.{1,64}/g).join('\n');
        return `-----BEGIN CERTIFICATE-----\n${lines}\n-----END CERTIFICATE-----\n`;
      },
    },
    ciba: {
      enabled: true,
      deliveryModes: ['poll'],
      processLoginHint: (_ctx, loginHint) => loginHint,
      validateRequestContext: () => {},
      verifyUserCode: () => {},
      // The "user" approves at once: a grant for what was asked, handed back to the request.
      triggerAuthenticationDevice: async (_ctx, request, account, client) => {
        const grant = new provider.Grant({ clientId: client.clientId, accountId: account.accountId });
        grant.addOIDCScope(request.scope);
        await grant.save();
        await provider.backchannelResult(request, grant);
      },
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator === opaqueResource) {
          return {
            audience: opaqueResource,
            scope: 'orders:read orders:write',
            accessTokenTTL: 300,
            accessTokenFormat: 'opaque',
          };
        }
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
