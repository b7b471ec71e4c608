// Sign-in: the user's API token (the one the CLI reads from $FERRY_TOKEN),
// checked with /v1/whoami and kept in sessionStorage for this tab.
import {session, getJSON, ApiError} from './api.js';
import {h} from './dom.js';

export function mount(root, _params, app) {
  document.title = 'Sign in · ferry';
  const next = new URLSearchParams(location.search).get('next');
  const input = h('input', {
    id: 'signin-token', type: 'password', name: 'token', autocomplete: 'off',
    placeholder: 'your token', required: true, autofocus: true,
  });
  const error = h('div', {class: 'error-box', hidden: true});
  const button = h('button', {class: 'primary', type: 'submit'}, 'Sign in');
  const form = h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      button.disabled = true;
      error.hidden = true;
      try {
        const me = await getJSON('/v1/whoami', {token});
        session.token = token;
        await app.onSignedIn(me.user, me.admin);
        // Only a path of this app: never an address elsewhere.
        const to = next && next.startsWith('/') && !next.startsWith('//') ? next : '/executions';
        app.navigate(to, {replace: true});
      } catch (e) {
        error.textContent = e instanceof ApiError && e.status === 401
          ? 'ferryd does not accept this token.'
          : `Cannot sign in: ${e.message}`;
        error.hidden = false;
        button.disabled = false;
        input.select();
      }
    },
  },
  h('label', {for: 'signin-token'}, 'API token'),
  input, error, button,
  h('p', {class: 'muted'}, 'The token your administrator gave you (the CLI reads it from FERRY_TOKEN). ',
    'It is kept for this browser tab only, and sent to ferryd alone.'));
  root.append(h('div', {class: 'panel signin'}, h('h1', {}, 'Sign in to ferry'), form));
  input.focus();
  return null;
}
