// Environments: each pool's workers (idle, busy, launching) and queue,
// refreshed every three seconds.
import {getJSON} from './api.js';
import {h} from './dom.js';

const POLL_MS = 3000;

function card(env) {
  const w = env.workers || {};
  const max = Math.max(env.max_workers || 0, w.total || 0, 1);
  const bar = h('div', {class: 'workerbar', title: `${w.total || 0} of at most ${env.max_workers} workers`},
    ['busy', 'idle', 'launching'].map((k) => h('span', {class: k, style: `width: ${(100 * (w[k] || 0)) / max}%`})));
  const count = (k, label) => h('div', {class: k, dataset: {count: k}}, h('b', {}, w[k] ?? 0), h('small', {}, label));
  const queued = env.queued ?? 0;
  return h('section', {class: 'panel env', dataset: {name: env.name}},
    h('h2', {}, h('span', {}, env.name), h('span', {class: 'sub'}, `${env.compute} · ${env.runtime}`)),
    bar,
    h('div', {class: 'counts'},
      count('busy', 'busy'), count('idle', 'idle'), count('launching', 'launching'),
      h('div', {class: 'queued', dataset: {count: 'queued'}}, h('b', {}, queued), h('small', {}, 'queued'))),
    h('p', {class: 'muted'},
      `pool ${env.min_workers}–${env.max_workers} workers`,
      env.gpus ? ` · ${env.gpus} GPU${env.gpus === 1 ? '' : 's'} each` : '',
      env.queued_priority ? ` · ${env.queued_priority} of the queue with priority` : ''),
    env.last_launch_error ? h('div', {class: 'error-box'}, 'last launch failed: ', env.last_launch_error) : null);
}

export function mount(root) {
  document.title = 'Environments · ferry';
  const grid = h('div', {class: 'envs'});
  const error = h('div', {class: 'error-box', hidden: true});
  root.append(h('div', {class: 'toolbar'}, h('h1', {}, 'Environments')), error, grid);
  let stopped = false;
  let timer = null;
  async function refresh() {
    try {
      const body = await getJSON('/v1/environments');
      if (stopped) return;
      error.hidden = true;
      grid.replaceChildren(...body.environments.map(card));
    } catch (e) {
      if (stopped) return;
      error.textContent = `Cannot list environments: ${e.message}`;
      error.hidden = false;
    }
    timer = setTimeout(refresh, POLL_MS);
  }
  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
