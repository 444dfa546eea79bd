// The OpenID Connect provider the portal's browser tests sign in with: the npm package
// oidc-provider (its devInteractions login form: any password), on a free loopback port, with
// one client the test describes and a few accounts. Prints `oidc-provider listening on
// 127.0.0.1:PORT` once it answers; its issuer is http://127.0.0.1:PORT.
//
// The client comes from the environment, as JSON in OIDC_TEST_CLIENT:
//   {"client_id": "...", "client_secret": "...", "redirect_uris": ["..."],
//    "post_logout_redirect_uris": ["..."]}
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const ACCOUNTS = {
  user_a: { name: 'Ada Lovelace', email: 'ada@example.com' },
  user_b: { name: 'Brian Kernighan', email: 'brian@example.com' },
  user_c: { name: 'Grace Hopper', email: 'grace@example.com' },
};

const client = JSON.parse(process.env.OIDC_TEST_CLIENT || '{}');
if (!client.client_id || !client.redirect_uris) {
  console.error('OIDC_TEST_CLIENT must hold client_id, client_secret and redirect_uris');
  process.exit(2);
}

function signingKey() {
  // A key of this run alone: nothing to keep, nothing committed.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };
}

const configuration = {
  clients: [{
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    post_logout_redirect_uris: [],
    ...client,
  }],
  jwks: { keys: [signingKey()] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
  // The portal reads the person's name and email from the ID token (as Clerk's carries them),
  // not from the userinfo endpoint.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    const account = ACCOUNTS[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: account.name, email: account.email, email_verified: true };
      },
    };
  },
  // A first-party application: no consent screen, the scopes it asks for are granted.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email');
    await grant.save();
    return grant;
  },
};

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, configuration);
  // Its built-in pages @import a web font from the internet: the tests reach loopback only.
  provider.use(async (ctx, next) => {
    await next();
    if (typeof ctx.body === 'string' && ctx.body.includes('@import url(')) {
      ctx.body = ctx.body.replace(/@import url\([^)]*\);/g, '');
    }
  });
  server.on('request', provider.callback());
  console.log(`oidc-provider listening on 127.0.0.1:${port}`);
});

process.on('SIGTERM', () => process.exit(0));
