// The app: finds out whether ferryd wants a token, then routes the URL to a
// page. Pages are plain modules: mount(root, params, app) returns a
// function that stops their timers and streams when the page is left.
import {session, getJSON, ApiError, setUnauthorizedHandler} from './api.js';
import {h, clear} from './dom.js';
import * as executions from './executions.js';
import * as execution from './execution.js';
import * as pipelines from './pipelines.js';
import * as pipeline from './pipeline.js';
import * as environments from './environments.js';
import * as signin from './signin.js';

const routes = [
  {re: /^\/(?:executions\/?)?$/, page: executions, section: 'executions'},
  {re: /^\/executions\/([^/]+)$/, page: execution, section: 'executions'},
  {re: /^\/pipelines\/?$/, page: pipelines, section: 'pipelines'},
  {re: /^\/pipelines\/([^/]+)$/, page: pipeline, section: 'pipelines'},
  {re: /^\/environments\/?$/, page: environments, section: 'environments'},
  {re: /^\/signin$/, page: signin, open: true},
];

const main = document.getElementById('main');
let unmount = null;

export function navigate(url, {replace = false} = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
}

// Asks the API who we are, with the token of this tab if it has one.
// `user` is null only on the unauthenticated loopback default (no users
// configured): then there is no sign-in at all.
async function whoami() {
  const token = session.token;
  try {
    const me = await getJSON('/v1/whoami', {token: token || null});
    Object.assign(session, {required: me.user !== null, user: me.user, admin: me.admin});
    return;
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
  }
  session.required = true;
  session.token = null; // refused: a token of another ferryd, or revoked
}

function signedIn() {
  return !session.required || (session.token && session.user);
}

function renderWho() {
  const who = document.getElementById('who');
  clear(who);
  document.getElementById('nav').hidden = !signedIn();
  if (!session.required) {
    who.append(h('span', {title: 'ferryd has no users configured: it listens on loopback only and needs no token'}, 'local, no sign-in'));
  } else if (signedIn()) {
    who.append(
      h('span', {class: 'user'}, session.user, session.admin ? ' (admin)' : ''),
      h('button', {class: 'signout', onclick: signOut}, 'Sign out'),
    );
  }
}

function signOut() {
  session.token = null;
  session.user = null;
  navigate('/signin', {replace: true});
}

function render() {
  if (unmount) unmount();
  unmount = null;
  clear(main);
  const path = location.pathname;
  const route = routes.find((r) => r.re.test(path));
  renderWho();
  if (route && !route.open && !signedIn()) {
    const next = location.pathname + location.search;
    history.replaceState(null, '', `/signin?next=${encodeURIComponent(next)}`);
    return render();
  }
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', route && a.dataset.section === route.section);
  }
  if (!route) {
    main.append(h('div', {class: 'panel empty'}, 'No such page. ', h('a', {href: '/executions'}, 'Executions')));
    document.title = 'ferry';
    return;
  }
  const params = path.match(route.re).slice(1).map(decodeURIComponent);
  unmount = route.page.mount(main, params, {navigate, onSignedIn}) || null;
}

async function onSignedIn(user, admin) {
  Object.assign(session, {user, admin});
}

// In-app links: plain <a href="/...">; a click with no modifier routes here.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[href]');
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  if (a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/v1/') || url.pathname.startsWith('/assets/')) return;
  ev.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
});
window.addEventListener('popstate', render);

setUnauthorizedHandler(() => {
  if (!session.token) return;
  session.token = null;
  session.user = null;
  render();
});

async function boot() {
  try {
    await whoami();
  } catch (e) {
    clear(main);
    main.append(h('div', {class: 'panel error-box'}, `ferryd does not answer: ${e.message}`));
    return;
  }
  if (location.pathname === '/signin' && signedIn()) history.replaceState(null, '', '/executions');
  render();
}

boot();
