// Pipelines, newest first, refreshed every two seconds while the tab is
// visible: each one's status and how many of its nodes are done.
import {session, getJSON} from './api.js';
import {h, statusBadge, fmtTime, fmtDuration, execDuration} from './dom.js';

const LIMIT = 200;
const POLL_MS = 2000;

// A node that will not run again: what "done" counts in "done/total".
export const NODE_DONE = new Set(['complete', 'error', 'stopped', 'skipped']);

// "3/5", with each status's count in its title.
export function nodeProgress(p) {
  const nodes = p.nodes || [];
  const by = {};
  for (const n of nodes) by[n.status] = (by[n.status] || 0) + 1;
  const done = nodes.filter((n) => NODE_DONE.has(n.status)).length;
  return h('span', {class: 'progress', title: Object.entries(by).map(([s, c]) => `${c} ${s}`).join(', ')},
    `${done}/${nodes.length}`);
}

export function mount(root, _params, app) {
  document.title = 'Pipelines · ferry';
  const showOwner = session.required && session.admin;
  const error = h('div', {class: 'error-box', hidden: true});
  const tbody = h('tbody');
  const table = h('table', {class: 'pipelines'},
    h('thead', {}, h('tr', {},
      h('th', {class: 'num'}, '#'), h('th', {}, 'name'), h('th', {}, 'project'), h('th', {}, 'status'),
      h('th', {class: 'num', title: 'nodes ended (complete, error, stopped or skipped) of all'}, 'nodes'),
      showOwner && h('th', {}, 'owner'),
      h('th', {}, 'created'), h('th', {class: 'num'}, 'duration'))),
    tbody);
  const empty = h('div', {class: 'empty', hidden: true}, 'No pipelines yet. Create one with ',
    h('code', {}, 'POST /v1/pipelines'), ' (docs/api.md, "Pipelines").');
  const summary = h('span', {class: 'muted'});
  root.append(
    h('div', {class: 'toolbar'}, h('h1', {}, 'Pipelines')),
    error,
    h('div', {class: 'panel flush'}, table, empty),
    h('p', {class: 'muted'}, summary));

  const rows = new Map(); // id -> <tr>

  function cells(p) {
    return [
      h('td', {class: 'num'}, h('a', {href: `/pipelines/${p.id}`, class: 'counter'}, `#${p.counter}`)),
      h('td', {class: 'name'}, p.name, p.title ? h('span', {class: 'muted'}, ` ${p.title}`) : null),
      h('td', {}, p.project),
      h('td', {title: p.reason || ''}, statusBadge(p.status)),
      h('td', {class: 'num'}, nodeProgress(p)),
      showOwner && h('td', {}, p.owner || ''),
      h('td', {class: 'time', title: p.created_at || ''}, fmtTime(p.created_at)),
      h('td', {class: 'num'}, fmtDuration(execDuration(p))),
    ].filter(Boolean);
  }

  function show(list) {
    const seen = new Set();
    for (const p of list) {
      seen.add(p.id);
      let tr = rows.get(p.id);
      if (!tr) {
        tr = h('tr', {dataset: {id: p.id}, onclick: (ev) => {
          if (!ev.target.closest('a')) app.navigate(`/pipelines/${tr.dataset.id}`);
        }});
        rows.set(p.id, tr);
      }
      tr.dataset.status = p.status;
      tr.replaceChildren(...cells(p));
      tbody.append(tr); // in the order of the list
    }
    for (const [id, tr] of rows) {
      if (!seen.has(id)) { tr.remove(); rows.delete(id); }
    }
    empty.hidden = list.length > 0;
    summary.textContent = list.length >= LIMIT ? `The newest ${LIMIT} are shown.` : '';
  }

  let timer = null;
  let stopped = false;
  async function refresh() {
    clearTimeout(timer);
    try {
      const body = await getJSON(`/v1/pipelines?limit=${LIMIT}`);
      if (stopped) return;
      error.hidden = true;
      show(body.pipelines);
    } catch (e) {
      if (stopped) return;
      error.textContent = `Cannot list pipelines: ${e.message}`;
      error.hidden = false;
    }
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  }
  function tick() {
    if (document.hidden) timer = setTimeout(tick, POLL_MS);
    else refresh();
  }
  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
