// scripts/lib/oauth/server.mjs — the test stack's OAuth 2.0 authorization server (started by scripts/mailstack).
//
// A real, certified OAuth 2.0 / OpenID Connect server (npm oidc-provider 8.x, panva), configured for a mail
// client that signs in with the device authorization grant (RFC 8628):
//   - public client `postdesk` (no secret; grant types device_code + refresh_token)
//   - confidential client `dovecot` (client_secret_basic) for token introspection (RFC 7662) by Dovecot
//   - refresh tokens rotate on every use; presenting a rotated (consumed) refresh token again is detected by
//     the provider, which then revokes the whole grant (RFC 9700 refresh token replay detection)
//   - revocation (RFC 7009)
//   - login + consent pages built on the provider's interaction API: any address with the shared password
//     logs in; accountId = sub = the lowercased address; consent grants the requested scopes
// The storage adapter is in memory (state is lost on restart) and indexed by account, so that the admin
// listener (plain http, 127.0.0.1 only, for `scripts/mailstack oauth-*`) can revoke or expire an account's
// tokens and report per-account statistics.
//
// Usage: node server.mjs CONFIG.json   (written by scripts/mailstack; see the keys read below)
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import querystring from 'node:querystring';

import Provider from 'oidc-provider';

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node server.mjs CONFIG.json');
  process.exit(2);
}
const conf = JSON.parse(fs.readFileSync(configPath, 'utf8'));
const HOST = conf.host || '127.0.0.1';
const ISSUER = conf.issuer; // https://127.0.0.1:PORT
const PASSWORD = conf.password ?? 'test';
const SCOPES = conf.scopes || ['openid', 'offline_access', 'imap', 'smtp'];

const epoch = () => Math.floor(Date.now() / 1000);
function log(event, fields = {}) {
  const parts = Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : v}`);
  process.stdout.write(`${new Date().toISOString()} ${event}${parts.length ? ` ${parts.join(' ')}` : ''}\n`);
}

// ------------------------------------------------------------------ storage adapter (in memory, by account)
// key "Model:id" -> { model, id, payload, expiresAt (ms) }
const store = new Map();
const userCodes = new Map(); // userCode -> DeviceCode id
const sessionUids = new Map(); // session uid -> Session id
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest']);

function live(key) {
  const e = store.get(key);
  if (!e) return undefined;
  if (e.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return e;
}

class MemoryByAccountAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY;
    store.set(this.key(id), { model: this.model, id, payload, expiresAt });
    if (this.model === 'Session' && payload.uid) sessionUids.set(payload.uid, id);
    if (payload.userCode) userCodes.set(payload.userCode, id);
  }

  async find(id) { return live(this.key(id))?.payload; }

  async findByUserCode(userCode) {
    const id = userCodes.get(userCode);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUid(uid) {
    const id = sessionUids.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const e = live(this.key(id));
    if (e) e.payload.consumed = epoch();
  }

  async destroy(id) { store.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    for (const [key, e] of store) {
      if (GRANTABLE.has(e.model) && e.payload.grantId === grantId) store.delete(key);
    }
  }
}

setInterval(() => { // drop expired entries
  const now = Date.now();
  for (const [key, e] of store) if (e.expiresAt <= now) store.delete(key);
  for (const [code, id] of userCodes) if (!store.has(`DeviceCode:${id}`)) userCodes.delete(code);
  for (const [uid, id] of sessionUids) if (!store.has(`Session:${id}`)) sessionUids.delete(uid);
}, 30_000).unref();

// ------------------------------------------------------------------ per-account statistics
const stats = new Map();
function statsFor(account) {
  if (!stats.has(account)) {
    stats.set(account, {
      device_grants: 0, refreshes: 0, refresh_reuse_detected: 0, refresh_failures: 0,
      logins: 0, failed_logins: 0, revocations: 0, expirations: 0,
    });
  }
  return stats.get(account);
}
function tokensOf(account, model) {
  const out = [];
  for (const [key] of store) {
    const e = live(key);
    if (e && (!model || e.model === model) && e.payload.accountId === account) out.push(e);
  }
  return out;
}
function liveTokens(account, model) {
  const now = epoch();
  return tokensOf(account, model).filter((e) => !e.payload.consumed && (!e.payload.exp || e.payload.exp > now));
}

// ------------------------------------------------------------------ pages
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));
function page(title, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><h1>${esc(title)}</h1>
${body}
</body></html>
`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 65536) throw new Error('form too large');
    chunks.push(c);
  }
  return querystring.parse(Buffer.concat(chunks).toString('utf8'));
}

// ------------------------------------------------------------------ provider
function rsaJwk() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: crypto.randomBytes(6).toString('hex') };
}

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

const configuration = {
  adapter: MemoryByAccountAdapter,
  clients: [
    {
      client_id: conf.client_id || 'postdesk',
      client_name: 'postdesk',
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      grant_types: [DEVICE_GRANT, 'refresh_token'],
      response_types: [],
      redirect_uris: [],
      scope: SCOPES.join(' '),
    },
    {
      client_id: conf.introspection_client_id || 'dovecot',
      client_secret: conf.introspection_client_secret,
      client_name: 'Dovecot (token introspection)',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
  ],
  scopes: SCOPES,
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() { return { sub, email: sub, email_verified: true }; },
    };
  },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  jwks: { keys: [rsaJwk()] },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: Number(conf.access_ttl) || 3600,
    DeviceCode: 600,
    Grant: 14 * 24 * 3600,
    IdToken: 3600,
    Interaction: 3600,
    RefreshToken: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
  },
  features: {
    devInteractions: { enabled: false },
    deviceFlow: {
      enabled: true,
      charset: 'base-20',
      mask: '****-****',
      async userCodeInputSource(ctx, form, out, err) {
        let msg = '<p>Enter the code displayed on your device</p>';
        if (err && (err.userCode || err.name === 'NoCodeError')) {
          msg = '<p class="error" id="error">The code you entered is incorrect. Try again</p>';
        } else if (err && err.name === 'AbortedError') {
          msg = '<p class="error" id="error">The sign-in request was interrupted</p>';
        } else if (err) {
          msg = `<p class="error" id="error">There was an error processing your request: ${esc(out?.error_description || out?.error)}</p>`;
        }
        ctx.body = page('Device sign-in', `${msg}\n${form}\n<button type="submit" form="op.deviceInputForm">Continue</button>`);
      },
      async userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
        ctx.body = page('Confirm device', `<p><strong>${esc(client.clientName || client.clientId)}</strong> asks to sign in.
The code shown on your device should be <code id="user_code">${esc(userCode)}</code>.</p>
${form}
<button type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">Abort</button>`);
      },
      async successSource(ctx) {
        ctx.body = page('Sign-in success', '<p id="success">Your device is signed in; you can close this page.</p>');
      },
    },
    introspection: {
      enabled: true,
      // only the confidential introspection client (Dovecot) may introspect, and any client's tokens
      async allowedPolicy(ctx, client) { return client.clientAuthMethod !== 'none'; },
    },
    revocation: { enabled: true },
    userinfo: { enabled: true },
  },
  interactions: {
    url(ctx, interaction) { return `/interaction/${interaction.uid}`; },
  },
  // public client refresh tokens rotate anyway; keep them from ever being sender-constrained surprises
  pkce: { required: () => false },
  renderError(ctx, out, error) {
    ctx.type = 'html';
    ctx.body = page('Error', `<p class="error" id="error">${esc(out.error)}: ${esc(out.error_description)}</p>`);
  },
};

const provider = new Provider(ISSUER, configuration);

// RFC 8628 says clients poll every 5 s when the device authorization response names no interval; this
// provider never answers slow_down, so tell clients they may poll faster.
const POLL_INTERVAL = Number(conf.poll_interval) || 1;
provider.use(async (ctx, next) => {
  // The provider accepts form bodies only; a POST without Content-Type (Dovecot 2.3.19 does send one) is read as one.
  let typeAdded = false;
  if (ctx.method === 'POST' && ctx.path === '/token/introspection' && !ctx.get('content-type')) {
    ctx.req.headers['content-type'] = 'application/x-www-form-urlencoded';
    typeAdded = true;
  }
  await next();
  if (ctx.path === '/token/introspection' && ctx.body && typeof ctx.body === 'object') {
    log('introspection', {
      client: ctx.oidc?.client?.clientId,
      active: ctx.body.active,
      sub: ctx.body.sub,
      content_type_added: typeAdded ? 'yes' : undefined,
    });
  }
  if (ctx.oidc?.route === 'device_authorization' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
    ctx.body.interval = POLL_INTERVAL;
  }
});

// ---- interactions: login, then consent (the provider's interaction API)
provider.use(async (ctx, next) => {
  const m = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/.exec(ctx.path);
  if (!m) return next();
  const [, uid, action] = m;
  ctx.set('cache-control', 'no-store');
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Error', `<p class="error" id="error">interaction not found or expired (${esc(err.message)})</p>`);
    return undefined;
  }
  if (details.uid !== uid) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Error', '<p class="error" id="error">interaction mismatch</p>');
    return undefined;
  }
  const { prompt, params } = details;
  const client = await provider.Client.find(params.client_id);

  if (ctx.method === 'GET' && !action) {
    ctx.type = 'html';
    if (prompt.name === 'login') {
      ctx.body = page('Sign in', `<p>Sign in to authorize <strong>${esc(client?.clientName || params.client_id)}</strong>.</p>
<form id="login" method="post" action="/interaction/${esc(uid)}/login">
<input type="email" name="login" placeholder="address" autofocus>
<input type="password" name="password" placeholder="password">
<button type="submit">Sign in</button>
</form>`);
    } else {
      ctx.body = page('Authorize', `<p><strong>${esc(client?.clientName || params.client_id)}</strong> asks for:
<span id="scopes">${esc(params.scope)}</span> on behalf of <span id="account">${esc(details.session?.accountId)}</span>.</p>
<form id="consent" method="post" action="/interaction/${esc(uid)}/confirm">
<button type="submit">Allow</button>
</form>
<form id="abort" method="post" action="/interaction/${esc(uid)}/abort"><button type="submit">Deny</button></form>`);
    }
    return undefined;
  }
  if (ctx.method !== 'POST' || !action) {
    ctx.status = 405;
    return undefined;
  }
  const form = await readForm(ctx.req);
  if (action === 'login') {
    if (prompt.name !== 'login') {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = page('Error', '<p class="error" id="error">not at the login step</p>');
      return undefined;
    }
    const address = String(form.login || '').trim().toLowerCase();
    if (!/^[^@\s]+@[^@\s]+$/.test(address) || form.password !== PASSWORD) {
      if (address) statsFor(address).failed_logins += 1;
      log('login.failed', { account: address || '-' });
      ctx.status = 200;
      ctx.type = 'html';
      ctx.body = page('Sign in', `<p class="error" id="error">Invalid address or password.</p>
<form id="login" method="post" action="/interaction/${esc(uid)}/login">
<input type="email" name="login" value="${esc(address)}">
<input type="password" name="password">
<button type="submit">Sign in</button>
</form>`);
      return undefined;
    }
    statsFor(address).logins += 1;
    log('login', { account: address });
    ctx.respond = false;
    await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: address } },
      { mergeWithLastSubmission: false });
    return undefined;
  }
  if (action === 'abort') {
    ctx.respond = false;
    await provider.interactionFinished(ctx.req, ctx.res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return undefined;
  }
  // confirm (consent): grant what is missing
  if (prompt.name !== 'consent') {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Error', '<p class="error" id="error">not at the consent step</p>');
    return undefined;
  }
  const { accountId } = details.session;
  let { grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  const d = prompt.details || {};
  if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
  if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
  if (d.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  grantId = await grant.save();
  log('consent', { account: accountId, client: params.client_id, scope: grant.getOIDCScope() });
  ctx.respond = false;
  await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  return undefined;
});

// ---- token endpoint log + statistics
provider.on('grant.success', (ctx) => {
  const grantType = ctx.oidc.params?.grant_type;
  const account = ctx.oidc.entities?.Account?.accountId;
  const body = ctx.body || {};
  if (account) {
    const s = statsFor(account);
    if (grantType === DEVICE_GRANT) s.device_grants += 1;
    if (grantType === 'refresh_token') s.refreshes += 1;
  }
  log('token', {
    grant_type: grantType === DEVICE_GRANT ? 'device_code' : grantType,
    account,
    client: ctx.oidc.client?.clientId,
    refresh_token_reused: grantType === 'refresh_token' ? 'no' : undefined,
    rotated: grantType === 'refresh_token' ? (body.refresh_token ? 'yes' : 'no') : undefined,
    refresh_token: body.refresh_token ? 'issued' : 'none',
    expires_in: body.expires_in,
  });
});
provider.on('grant.error', (ctx, err) => {
  const grantType = ctx.oidc?.params?.grant_type;
  if (err.error === 'authorization_pending') return; // a polling client; not worth a line per poll
  const rt = ctx.oidc?.entities?.RefreshToken;
  const account = ctx.oidc?.entities?.Account?.accountId || rt?.accountId;
  // InvalidGrant keeps the public description generic and puts the reason in error_detail
  const detail = err.error_detail || err.error_description;
  const reused = grantType === 'refresh_token' && detail === 'refresh token already used';
  if (account && grantType === 'refresh_token') {
    const s = statsFor(account);
    s.refresh_failures += 1;
    if (reused) s.refresh_reuse_detected += 1;
  }
  log('token.error', {
    grant_type: grantType === DEVICE_GRANT ? 'device_code' : grantType,
    account,
    client: ctx.oidc?.client?.clientId,
    refresh_token_reused: grantType === 'refresh_token' ? (reused ? 'YES (grant revoked)' : 'no') : undefined,
    error: err.error,
    description: detail,
  });
});
provider.on('device_authorization.success', (ctx, body) => {
  log('device_authorization', { client: ctx.oidc.client?.clientId, user_code: body.user_code, scope: ctx.oidc.params?.scope });
});
provider.on('introspection.error', (ctx, err) => log('introspection.error', { error: err.error, description: err.error_description }));
provider.on('revocation.success', (ctx, token) => log('revocation', { kind: token?.kind, account: token?.accountId }));
provider.on('revocation.error', (ctx, err) => log('revocation.error', { error: err.error, description: err.error_description }));
provider.on('server_error', (ctx, err) => log('server_error', { path: ctx.path, error: err.stack || String(err) }));

// ------------------------------------------------------------------ admin listener (plain http, loopback)
function adminAccount(url) {
  const a = (url.searchParams.get('account') || '').trim().toLowerCase();
  if (!a) throw Object.assign(new Error('account=ADDRESS missing'), { status: 400 });
  return a;
}
async function admin(req, res) {
  const url = new URL(req.url, `http://${HOST}`);
  const reply = (status, obj) => {
    const body = `${JSON.stringify(obj)}\n`;
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  try {
    if (req.method === 'GET' && url.pathname === '/health') {
      return reply(200, { ok: true, service: 'postdesk-mailstack-oauth', issuer: ISSUER, pid: process.pid });
    }
    if (req.method === 'GET' && url.pathname === '/stats') {
      const account = adminAccount(url);
      return reply(200, {
        account,
        ...statsFor(account),
        active_access_tokens: liveTokens(account, 'AccessToken').length,
        active_refresh_tokens: liveTokens(account, 'RefreshToken').length,
        grants: liveTokens(account, 'Grant').length,
      });
    }
    if (req.method === 'POST' && url.pathname === '/revoke') {
      const account = adminAccount(url);
      const removed = {};
      const grantIds = new Set();
      for (const e of tokensOf(account)) {
        if (e.model === 'Grant') grantIds.add(e.id);
        if (e.payload.grantId) grantIds.add(e.payload.grantId);
      }
      for (const [key, e] of store) {
        if (e.payload.accountId === account || (e.payload.grantId && grantIds.has(e.payload.grantId))) {
          if (e.model === 'Interaction') continue;
          removed[e.model] = (removed[e.model] || 0) + 1;
          store.delete(key);
        }
      }
      statsFor(account).revocations += 1;
      log('admin.revoke', { account, grants: grantIds.size, removed: JSON.stringify(removed) });
      return reply(200, { account, grants_revoked: grantIds.size, removed });
    }
    if (req.method === 'POST' && url.pathname === '/expire') {
      const account = adminAccount(url);
      const now = epoch();
      let n = 0;
      for (const e of liveTokens(account, 'AccessToken')) {
        e.payload.exp = now - 1;
        n += 1;
      }
      statsFor(account).expirations += 1;
      log('admin.expire', { account, access_tokens: n });
      return reply(200, { account, expired_access_tokens: n });
    }
    return reply(404, { error: 'not found', endpoints: ['GET /health', 'GET /stats?account=', 'POST /revoke?account=', 'POST /expire?account='] });
  } catch (err) {
    return reply(err.status || 500, { error: err.message });
  }
}

// ------------------------------------------------------------------ listen
const tls = { cert: fs.readFileSync(conf.cert_file), key: fs.readFileSync(conf.key_file) };
const main = https.createServer(tls, provider.callback());
const adminServer = http.createServer((req, res) => { admin(req, res); });
const listen = (srv, port) => new Promise((resolve, reject) => {
  srv.once('error', reject);
  srv.listen(port, HOST, () => resolve());
});
try {
  await listen(main, Number(conf.port));
  await listen(adminServer, Number(conf.admin_port));
} catch (err) {
  log('fatal', { error: err.message });
  process.exit(1);
}
if (conf.pid_file) fs.writeFileSync(conf.pid_file, `${process.pid}\n`);
log('listening', {
  issuer: ISSUER, admin: `http://${HOST}:${conf.admin_port}`, access_ttl: configuration.ttl.AccessToken,
  node: process.version, pid: process.pid,
});
const shutdown = (sig) => {
  log('stopping', { signal: sig });
  if (conf.pid_file) { try { fs.unlinkSync(conf.pid_file); } catch { /* gone */ } }
  process.exit(0);
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
