// The admin API (docs/ADMIN_API.md), with the token the user signed in
// with. The token lives in sessionStorage: this tab only, gone when it
// closes, never in a cookie (so no request is ever authenticated by the
// browser on its own, and there is no CSRF to defend against). It is sent
// as "Authorization: Bearer" and nowhere else.

const TOKEN_KEY = 'wsmux.console.token';

// The API sits next to the console: /console/ -> /v1/..., and behind a
// proxy's prefix /p/console/ -> /p/v1/... .
const BASE = window.location.pathname.replace(/\/console(\/.*)?$/, '');

export function token() {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

export function signIn(t) {
  window.sessionStorage.setItem(TOKEN_KEY, t);
}

export function signOut() {
  window.sessionStorage.removeItem(TOKEN_KEY);
}

// The edge's URL for the CLI: wss:// when the console came over https.
export function edgeUrl() {
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${window.location.host}${BASE}`;
}

// An answer other than 2xx: status (0 when the edge could not be reached)
// and the API's own message ({"error": ...}). handled: the 401 was dealt
// with already (the user is back at the sign-in page).
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.handled = false;
  }
}

let onUnauthorized = null;

// fn(error) is called when the stored token is refused (401).
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export function seg(s) {
  return encodeURIComponent(s);
}

// One request. Resolves to the parsed JSON (or the text of a text/plain
// answer, or null for 204); rejects with an ApiError. opts.token: use
// this token instead of the stored one (signing in).
export async function request(method, path, body, opts = {}) {
  const t = opts.token !== undefined ? opts.token : token();
  const headers = {Accept: 'application/json'};
  if (t) {
    headers.Authorization = `Bearer ${t}`;
  }
  const init = {
    method, headers, cache: 'no-store', credentials: 'omit',
    redirect: 'error', referrerPolicy: 'no-referrer',
  };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(BASE + path, init);
  } catch (e) {
    throw new ApiError(0, `the edge cannot be reached (${e.message})`);
  }
  const type = res.headers.get('Content-Type') || '';
  const text = res.status === 204 ? '' : await res.text();
  let data = null;
  if (type.startsWith('application/json')) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = null;
    }
  }
  if (!res.ok) {
    const msg = data && typeof data.error === 'string' ? data.error :
      (text.trim() || `HTTP ${res.status} ${res.statusText}`);
    const err = new ApiError(res.status, msg);
    if (res.status === 401 && opts.token === undefined && onUnauthorized) {
      err.handled = true;
      onUnauthorized(err);
    }
    throw err;
  }
  if (res.status === 204) {
    return null;
  }
  return type.startsWith('application/json') ? data : text;
}

export const api = {
  projects: () => request('GET', '/v1/projects').then((d) => d.projects),
  services: (p) =>
    request('GET', `/v1/projects/${seg(p)}/services`).then((d) => d.services),
  service: (p, s) =>
    request('GET', `/v1/projects/${seg(p)}/services/${seg(s)}`),
  setSsh: (p, s, on) =>
    request('PATCH', `/v1/projects/${seg(p)}/services/${seg(s)}`, {ssh: on}),
  authorizedKeys: (p, s) => request(
    'GET', `/v1/projects/${seg(p)}/services/${seg(s)}/authorized-keys`),
  identities: () =>
    request('GET', '/v1/ssh-identities').then((d) => d.identities),
  identity: (key) => request('GET', `/v1/ssh-identities/${seg(key)}`),
  createIdentity: (body) => request('POST', '/v1/ssh-identities', body),
  updateIdentity: (key, body) =>
    request('PATCH', `/v1/ssh-identities/${seg(key)}`, body),
  deleteIdentity: (key) =>
    request('DELETE', `/v1/ssh-identities/${seg(key)}`),
  audit: () => request('GET', '/v1/audit').then((d) => d.audit),
};

// Every project with its services: [{project, services}] (services null
// and error set when that project's list could not be read).
export async function allServices() {
  const projects = await api.projects();
  return Promise.all(projects.map(async (project) => {
    try {
      return {project, services: await api.services(project.id), error: null};
    } catch (e) {
      if (e.handled) {
        throw e;
      }
      return {project, services: null, error: e};
    }
  }));
}
