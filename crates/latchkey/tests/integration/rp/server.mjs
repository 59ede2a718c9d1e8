// A relying party as a third party would write one, on openid-client (not on
// any Latchkey code), for the browser tests in ../rp_browser.rs. Everything it
// checks is the library's doing: discovery, PKCE (S256), state, nonce, the ID
// token's signature (against the JWKS), iss, aud, exp, and RFC 9207's iss
// parameter. The test reads what it renders.
//
// Environment:
//   ISSUER         Latchkey's public URL (its discovery document is under it)
//   CLIENT_ID      the app's client ID
//   CLIENT_SECRET  the app's secret (client_secret_basic); unset: a public client
//   PORT           where to listen on 127.0.0.1; 0 (the default) picks a free port
//   SCOPE          what /login asks for (default "openid profile")
//
// The first line on stdout is `listening <port>`: the test registers the app's
// redirect URI, http://127.0.0.1:<port>/callback, only once it knows the port.
// Everything else goes to stderr.
//
// Pages:
//   GET /login     starts a sign-in; `prompt`, `max_age` and `login_hint` in its
//                  query are passed on to the authorization request, so tests of
//                  other sign-in methods reuse this app as it is
//   GET /callback  finishes it: #claims (JSON), #userinfo (JSON) when the server
//                  has a userinfo endpoint; or #error with the error code

import * as client from 'openid-client';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

const env = (name, fallback) => {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (fallback === undefined) {
      throw new Error(`${name} is not set`);
    }
    return fallback;
  }
  return value;
};

const issuer = new URL(env('ISSUER'));
const clientId = env('CLIENT_ID');
const clientSecret = process.env.CLIENT_SECRET || undefined;
const port = Number(env('PORT', '0'));
const scope = env('SCOPE', 'openid profile');

// The test server speaks plain HTTP on loopback; openid-client refuses that
// unless told. Nothing else about its checks is relaxed.
const config = await client.discovery(
  issuer,
  clientId,
  undefined,
  clientSecret ? client.ClientSecretBasic(clientSecret) : client.None(),
  { execute: [client.allowInsecureRequests] },
);
// openid-client trusts an ID token from the token endpoint on the strength of
// TLS alone unless asked; ask, so the EdDSA signature is checked against the JWKS.
client.enableNonRepudiationChecks(config);

/** Sign-ins under way, by the value of this browser's `rp_flow` cookie. */
const flows = new Map();

/** Authorization request parameters a test may pass through /login. */
const PASSED_ON = ['prompt', 'max_age', 'login_hint'];

const escape = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function page(res, status, title, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title></head>` +
    `<body><main><h1>${escape(title)}</h1>${body}</main></body></html>`);
}

function errorPage(res, err) {
  // An error the server sent back (access_denied, invalid_grant…) leads with its code.
  const code = err?.error ? `${err.error}: ${err.error_description ?? ''}` : '';
  // The library's messages are terse ("invalid response encountered"); its causes say which check failed.
  const causes = [];
  for (let c = err?.cause; c && causes.length < 5; c = c.cause) {
    if (c.message) causes.push(c.message);
  }
  const text = [`${code}${code ? ' — ' : ''}${err?.message ?? err}`, ...causes].join(' ← ');
  console.error(`rp: ${text}`);
  page(res, 400, 'Sign-in failed', `<p id="error">${escape(text)}</p>`);
}

function cookie(req, name) {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

async function login(req, res, base, url) {
  const flow = {
    verifier: client.randomPKCECodeVerifier(),
    state: client.randomState(),
    nonce: client.randomNonce(),
  };
  const params = {
    redirect_uri: `${base}/callback`,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(flow.verifier),
    code_challenge_method: 'S256',
    state: flow.state,
    nonce: flow.nonce,
  };
  for (const name of PASSED_ON) {
    const value = url.searchParams.get(name);
    if (value !== null) params[name] = value;
  }
  const id = randomBytes(16).toString('hex');
  flows.set(id, flow);
  // Cookies do not tell ports apart, and Latchkey runs on this host too: the
  // name must not be one of its (they all start with `latchkey_`).
  res.writeHead(302, {
    location: client.buildAuthorizationUrl(config, params).href,
    'set-cookie': `rp_flow=${id}; Path=/; HttpOnly; SameSite=Lax`,
  });
  res.end();
}

async function callback(req, res, base, url) {
  const id = cookie(req, 'rp_flow');
  const flow = id && flows.get(id);
  if (!flow) {
    throw new Error('no sign-in under way in this browser (no rp_flow cookie, or it was used)');
  }
  // One use: a replayed callback must not redeem anything.
  flows.delete(id);
  // Throws on an error response (access_denied on Deny), a wrong state or iss,
  // and any ID token that does not validate.
  const tokens = await client.authorizationCodeGrant(config, url, {
    pkceCodeVerifier: flow.verifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const header = JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url').toString());
  const shown = {
    id_token: claims,
    id_token_alg: header.alg,
    // The library compared it already (and would have thrown); said here so the test sees it.
    nonce_valid: claims.nonce === flow.nonce,
  };
  let userinfo = '';
  if (config.serverMetadata().userinfo_endpoint) {
    // expectedSubject: the library refuses userinfo about anyone but the ID token's subject.
    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    userinfo = `<h2>Userinfo</h2><pre id="userinfo">${escape(JSON.stringify(info, null, 2))}</pre>`;
  }
  page(
    res,
    200,
    'Signed in',
    `<p id="who">Signed in as ${escape(claims.preferred_username ?? claims.name ?? claims.sub)}</p>` +
      `<h2>ID token</h2><pre id="claims">${escape(JSON.stringify(shown, null, 2))}</pre>${userinfo}`,
    { 'set-cookie': 'rp_flow=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0' },
  );
}

const server = createServer(async (req, res) => {
  const base = `http://127.0.0.1:${server.address().port}`;
  const url = new URL(req.url, base);
  try {
    if (req.method === 'GET' && url.pathname === '/login') {
      await login(req, res, base, url);
    } else if (req.method === 'GET' && url.pathname === '/callback') {
      await callback(req, res, base, url);
    } else {
      page(res, 404, 'Not found', '<p>Try <a href="/login">/login</a>.</p>');
    }
  } catch (err) {
    errorPage(res, err);
  }
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
