// Executions, newest first, filtered by status and step (kept in the URL),
// refreshed every two seconds while the tab is visible.
import {session, getJSON} from './api.js';
import {h, clear, statusBadge, fmtTime, fmtDuration, execDuration, STATUSES} from './dom.js';

const LIMIT = 200;
const POLL_MS = 2000;

export function mount(root, _params, app) {
  document.title = 'Executions · ferry';
  const query = new URLSearchParams(location.search);
  const showOwner = session.required && session.admin;
  const stepsSeen = new Set();

  const status = h('select', {id: 'filter-status', name: 'status'},
    h('option', {value: ''}, 'any status'),
    STATUSES.map((s) => h('option', {value: s}, s)));
  status.value = query.get('status') || '';
  const stepList = h('datalist', {id: 'steps-seen'});
  const step = h('input', {id: 'filter-step', name: 'step', list: 'steps-seen', placeholder: 'any step', size: 14});
  step.value = query.get('step') || '';
  const summary = h('span', {class: 'muted'});
  const error = h('div', {class: 'error-box', hidden: true});
  const tbody = h('tbody');
  const table = h('table', {class: 'executions'},
    h('thead', {}, h('tr', {},
      h('th', {class: 'num'}, '#'), h('th', {}, 'project'), h('th', {}, 'step'), h('th', {}, 'status'),
      h('th', {}, 'environment'), h('th', {}, 'commit'), h('th', {}, 'tags'), showOwner && h('th', {}, 'owner'),
      h('th', {}, 'created'), h('th', {}, 'started'), h('th', {class: 'num'}, 'duration'))),
    tbody);
  const empty = h('div', {class: 'empty', hidden: true});

  const applyFilters = () => {
    const q = new URLSearchParams();
    if (status.value) q.set('status', status.value);
    if (step.value.trim()) q.set('step', step.value.trim());
    const qs = q.toString();
    history.replaceState(null, '', `/executions${qs ? `?${qs}` : ''}`);
    refresh();
  };
  status.addEventListener('change', applyFilters);
  step.addEventListener('change', applyFilters);
  const clearButton = h('button', {onclick: () => { status.value = ''; step.value = ''; applyFilters(); }}, 'Clear');

  root.append(
    h('div', {class: 'toolbar'},
      h('h1', {}, 'Executions'), h('span', {class: 'spacer'}),
      h('label', {}, 'Status', status), h('label', {}, 'Step', step, stepList), clearButton),
    error,
    h('div', {class: 'panel flush'}, table, empty),
    h('p', {class: 'muted'}, summary));

  const rows = new Map(); // id -> <tr>

  function cells(e) {
    return [
      h('td', {class: 'num'}, h('a', {href: `/executions/${e.id}`, class: 'counter'}, `#${e.counter}`)),
      h('td', {}, e.project),
      h('td', {class: 'step'}, e.step),
      h('td', {title: e.status_reason || ''}, statusBadge(e.status)),
      h('td', {}, e.environment),
      h('td', {class: 'commit'}, e.commit
        ? h('code', {title: `${e.commit.sha} ${e.commit.message}`}, e.commit.sha.slice(0, 7))
        : h('span', {class: 'muted', title: 'an uploaded snapshot'}, 'ad hoc')),
      h('td', {class: 'tags'}, (e.tags || []).map((t) => h('span', {class: 'tag'}, t))),
      showOwner && h('td', {}, e.owner || ''),
      h('td', {class: 'time', title: e.created_at || ''}, fmtTime(e.created_at)),
      h('td', {class: 'time', title: e.started_at || ''}, fmtTime(e.started_at)),
      h('td', {class: 'num'}, fmtDuration(execDuration(e))),
    ].filter(Boolean);
  }

  function show(list) {
    const seen = new Set();
    for (const e of list) {
      seen.add(e.id);
      stepsSeen.add(e.step);
      let tr = rows.get(e.id);
      if (!tr) {
        tr = h('tr', {dataset: {id: e.id}, onclick: (ev) => {
          if (!ev.target.closest('a')) app.navigate(`/executions/${tr.dataset.id}`);
        }});
        rows.set(e.id, tr);
      }
      tr.dataset.status = e.status;
      tr.replaceChildren(...cells(e));
      tbody.append(tr); // in the order of the list
    }
    for (const [id, tr] of rows) {
      if (!seen.has(id)) { tr.remove(); rows.delete(id); }
    }
    clear(stepList);
    for (const s of [...stepsSeen].sort()) stepList.append(h('option', {value: s}));
    const filtered = status.value || step.value.trim();
    empty.hidden = list.length > 0;
    empty.replaceChildren(...(filtered ? ['No execution matches these filters.']
      : ['No executions yet. Start one with ', h('code', {}, 'ferry run STEP'), ' in a project folder.']));
    summary.textContent = list.length >= LIMIT ? `The newest ${LIMIT} are shown.` : '';
  }

  let timer = null;
  let stopped = false;
  let seq = 0;
  async function refresh() {
    clearTimeout(timer);
    const mine = ++seq;
    const q = new URLSearchParams({limit: String(LIMIT)});
    if (status.value) q.set('status', status.value);
    if (step.value.trim()) q.set('step', step.value.trim());
    try {
      const body = await getJSON(`/v1/executions?${q}`);
      if (stopped || mine !== seq) return; // a newer refresh is on its way
      error.hidden = true;
      show(body.executions);
    } catch (e) {
      if (stopped) return;
      error.textContent = `Cannot list executions: ${e.message}`;
      error.hidden = false;
    }
    if (!stopped && mine === seq) timer = setTimeout(tick, POLL_MS);
  }
  function tick() {
    if (document.hidden) timer = setTimeout(tick, POLL_MS);
    else refresh();
  }
  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
