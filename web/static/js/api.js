// ferryd's user API (docs/api.md) from the browser: the token, JSON calls
// and NDJSON log streams.

const TOKEN_KEY = 'ferry.token';

// Who the API says we are. `required` is false on the unauthenticated
// loopback default (no users configured), where there is no sign-in.
export const session = {
  required: true,
  user: null,
  admin: false,
  // Kept for this tab's session only: closing the tab forgets it.
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(t) {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

// Called when a call answers 401 with a token we thought good (revoked,
// or ferryd restarted with other users): app.js sends the user to sign in.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

function headers(extra = {}) {
  const hd = {...extra};
  const t = session.token;
  if (t) hd.Authorization = `Bearer ${t}`;
  return hd;
}

async function failure(res) {
  let msg = `${res.status} ${res.statusText}`;
  let field;
  try {
    const body = await res.json();
    if (body && body.error) { msg = body.error; field = body.field; }
  } catch { /* not JSON */ }
  return new ApiError(res.status, msg, field);
}

// fetch() with the token; throws ApiError on a non-2xx answer.
export async function request(path, {method = 'GET', body, signal, token} = {}) {
  const hd = token !== undefined ? (token ? {Authorization: `Bearer ${token}`} : {}) : headers();
  const init = {method, headers: hd, signal, cache: 'no-store'};
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (!res.ok) {
    const err = await failure(res);
    if (res.status === 401 && session.required && token === undefined) onUnauthorized(err);
    throw err;
  }
  return res;
}

export async function getJSON(path, opts) {
  return (await request(path, opts)).json();
}

export async function postJSON(path, body, opts = {}) {
  return (await request(path, {...opts, method: 'POST', body})).json();
}

// Reads an NDJSON response as it arrives and hands over the events of each
// chunk at once (one call per chunk, not per line: a long log comes in
// large chunks). Resolves when the response ends.
export async function streamNDJSON(path, onEvents, signal) {
  const res = await request(path, {signal});
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let rest = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    rest += decoder.decode(value, {stream: true});
    const cut = rest.lastIndexOf('\n');
    if (cut < 0) continue;
    const lines = rest.slice(0, cut).split('\n');
    rest = rest.slice(cut + 1);
    const events = [];
    for (const line of lines) {
      if (!line) continue;
      try { events.push(JSON.parse(line)); } catch { /* a line we cannot read is skipped */ }
    }
    if (events.length) onEvents(events);
  }
}

// Saves a response body as a file. With a token a plain link cannot carry
// the Authorization header, so the bytes come through fetch and a blob URL.
export async function download(path, filename) {
  const res = await request(path);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// The id of an execution as it goes in a path.
export const execPath = (id) => `/v1/executions/${encodeURIComponent(id)}`;
