// The OpenID Provider ciam's federation tests talk to, on loopback, built on panva's
// certified `oidc-provider` (npm). No mock logic: discovery, /auth, /token,
// /jwks, /me, revocation, introspection, end_session are the library's own.
//
// The only test-specific part is the *interaction* (login/consent UI):
// it is completed without any HTML form. The account id is taken from the
// authorization request's `login_hint` (default OP_DEFAULT_USER), consent is
// auto-granted for every requested scope. `login_hint=__deny__` makes the
// OP answer `error=access_denied` (to test the RP's error path).
//
// Env:
//   OP_HOST          bind address            (default 127.0.0.1)
//   OP_PORT          port, 0 = ephemeral     (default 0)
//   OP_READY_FILE    if set, "ISSUER=<url>" is written there once listening
//   OP_DEFAULT_USER  account when no login_hint (default alice@example.test)
//   OP_REDIRECT_PATHS comma-separated callback paths of the default clients
//                    (default /callback,/auth/oidc/oidc/callback: the tests' and the quickstart's);
//                    each is registered as http://127.0.0.1<path> and http://localhost<path>, and
//                    since the clients are `native`, ANY port on those hosts matches (RFC 8252 7.3)
//   OP_CLIENTS_JSON  JSON array of oidc-provider client metadata, replaces the defaults
//
// Accounts: any login_hint is accepted as an account id. Claims:
//   sub = login_hint, email = login_hint, name = local part,
//   email_verified = false if the local part starts with "unverified", else true.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const host = process.env.OP_HOST || '127.0.0.1';
const wantPort = Number(process.env.OP_PORT || 0);
const defaultUser = process.env.OP_DEFAULT_USER || 'alice@example.test';
const paths = (process.env.OP_REDIRECT_PATHS || '/callback,/auth/oidc/oidc/callback').split(',').map((p) => p.trim()).filter(Boolean);
const redirectUris = paths.flatMap((p) => [`http://127.0.0.1${p}`, `http://localhost${p}`]);

const defaultClients = [
  {
    // confidential client, HTTP Basic auth at /token
    client_id: 'ciam-test',
    client_secret: 'ciam-test-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    application_type: 'native', // => loopback redirect_uri matches on ANY port (RFC 8252 7.3)
    redirect_uris: redirectUris,
    post_logout_redirect_uris: ['http://127.0.0.1/logged-out', 'http://localhost/logged-out'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  },
  {
    // confidential client, secret in the POST body
    client_id: 'ciam-test-post',
    client_secret: 'ciam-test-post-secret',
    token_endpoint_auth_method: 'client_secret_post',
    application_type: 'native',
    redirect_uris: redirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  },
  {
    // public client (PKCE only)
    client_id: 'ciam-public',
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    redirect_uris: redirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  },
];
const clients = process.env.OP_CLIENTS_JSON ? JSON.parse(process.env.OP_CLIENTS_JSON) : defaultClients;

// Fresh signing keys each start (tests must fetch /jwks, never pin a key).
function jwk(type, opts, alg) {
  const { privateKey } = generateKeyPairSync(type, opts);
  return { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg, kid: `${alg}-${randomBytes(6).toString('hex')}` };
}
const jwks = { keys: [jwk('rsa', { modulusLength: 2048 }, 'RS256'), jwk('ec', { namedCurve: 'P-256' }, 'ES256')] };

function accountFor(id) {
  const local = String(id).split('@')[0];
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        email: id,
        email_verified: !local.startsWith('unverified'),
        name: local,
      };
    },
  };
}

const server = createServer();
await new Promise((resolve) => server.listen(wantPort, host, resolve));
const { port } = server.address();
const issuer = `http://${host}:${port}`;

const provider = new Provider(issuer, {
  clients,
  jwks,
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true }, // S256 only (the library's default methods)
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // put scope-requested claims (email, email_verified, name) into the id_token too,
  // as Google & co. do; the library's default (true) puts them only in /me.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    introspection: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // auto-consent: a grant covering whatever scopes/claims were requested
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    let grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
    if (!grant) {
      grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    }
    const scopes = [...ctx.oidc.requestParamOIDCScopes];
    if (scopes.length) grant.addOIDCScope(scopes.join(' '));
    const claims = [...ctx.oidc.requestParamClaims];
    if (claims.length) grant.addOIDCClaims(claims);
    await grant.save();
    return grant;
  },
  findAccount: async (ctx, id) => accountFor(id),
});

// Headless interaction endpoint: no form, no HTML, just a redirect back.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (process.env.OP_DEBUG) console.error('interaction', details.uid, prompt.name, prompt.reasons, JSON.stringify(prompt.details));
  let result;
  if (prompt.name === 'login') {
    const hint = params.login_hint || defaultUser;
    result = hint === '__deny__'
      ? { error: 'access_denied', error_description: 'test user denied' }
      : { login: { accountId: hint } };
  } else if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [ind, sc] of Object.entries(d.missingResourceScopes)) grant.addResourceScope(ind, sc.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  } else {
    result = { error: 'login_required', error_description: `unhandled prompt ${prompt.name}` };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
server.on('request', (req, res) => {
  if (req.method === 'GET' && /^\/interaction\/[^/?]+/.test(req.url)) {
    interaction(req, res).catch((err) => {
      res.statusCode = 400;
      res.setHeader('content-type', 'text/plain');
      res.end(`interaction error: ${err.message}\n`);
    });
    return;
  }
  callback(req, res);
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));
console.log(`oidc-provider listening, issuer ${issuer}`);
if (process.env.OP_READY_FILE) writeFileSync(process.env.OP_READY_FILE, `ISSUER=${issuer}\n`);

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
