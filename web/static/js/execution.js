// One execution: what it is, its live log, its metadata charts, its
// outputs, a Stop button and a Run again button. The object is fetched again every two seconds
// while it runs, and at once when the log shows a status change.
import {session, getJSON, postJSON, download, execPath, ApiError} from './api.js';
import {h, clear, statusBadge, fmtTime, fmtDuration, execDuration, fmtBytes, fmtValue, TERMINAL} from './dom.js';
import {LogView} from './logview.js';
import {MetaCharts} from './charts.js';

const POLL_MS = 2000;

export function mount(root, [id], app) {
  document.title = 'Execution · ferry';
  let stopped = false;
  let timer = null;
  let log = null;
  let charts = null;
  let exec = null;

  const head = h('div', {class: 'exec-head'});
  const error = h('div', {class: 'error-box', hidden: true});
  const facts = h('section', {class: 'panel'}, h('h2', {}, 'Details'));
  const params = h('section', {class: 'panel'}, h('h2', {}, 'Parameters'));
  const inputs = h('section', {class: 'panel'}, h('h2', {}, 'Inputs'));
  const outputs = h('section', {class: 'panel outputs'}, h('h2', {}, 'Outputs'));
  const mainCol = h('div', {class: 'exec-main'});
  const side = h('div', {class: 'exec-side'}, facts, params, inputs, outputs);
  root.append(head, error, h('div', {class: 'exec-grid'}, mainCol, side));

  // --- the Stop button: a second click within 4 s confirms ---
  const stopButton = h('button', {class: 'danger stop', onclick: () => onStop()}, 'Stop');
  let confirmTimer = null;
  async function onStop() {
    if (!stopButton.classList.contains('confirm')) {
      stopButton.classList.add('confirm');
      stopButton.textContent = 'Click again to stop';
      confirmTimer = setTimeout(resetStop, 4000);
      return;
    }
    clearTimeout(confirmTimer);
    stopButton.disabled = true;
    stopButton.textContent = 'Stopping…';
    try {
      show(await postJSON(`${execPath(exec.id)}/stop`));
    } catch (e) {
      error.textContent = `Cannot stop: ${e.message}`;
      error.hidden = false;
    }
    resetStop();
    refresh();
  }
  // --- Run again: a copy of what it ran (POST .../rerun), then its page ---
  const rerunButton = h('button', {class: 'rerun', title: 'the same step, code, parameters and inputs',
    onclick: () => onRerun()}, 'Run again');
  async function onRerun() {
    rerunButton.disabled = true;
    try {
      const copy = await postJSON(`${execPath(exec.id)}/rerun`, {});
      app.navigate(`/executions/${copy.id}`);
    } catch (e) {
      error.textContent = `Cannot run it again: ${e.message}`;
      error.hidden = false;
      rerunButton.disabled = false;
    }
  }

  function resetStop() {
    stopButton.classList.remove('confirm');
    if (exec) updateStop();
  }
  function updateStop() {
    const active = !TERMINAL.has(exec.status);
    stopButton.hidden = !active;
    stopButton.disabled = exec.status === 'stopping';
    if (!stopButton.classList.contains('confirm')) {
      stopButton.textContent = exec.status === 'stopping' ? 'Stopping…' : 'Stop';
    }
  }

  function renderHead(e) {
    document.title = `#${e.counter} ${e.step} · ferry`;
    clear(head);
    const reason = e.status_reason ? h('div', {class: 'reason status-reason'}, e.status_reason) : null;
    head.append(
      h('div', {class: 'title'},
        h('div', {class: 'muted'}, h('a', {href: '/executions'}, 'Executions'), ' / ', e.project),
        h('h1', {}, h('span', {}, `#${e.counter} ${e.step}`), statusBadge(e.status)),
        reason),
      h('div', {class: 'actions'}, rerunButton, stopButton));
    updateStop();
  }

  function fact(dt, dd) {
    return dd === null || dd === undefined || dd === '' ? [] : [h('dt', {}, dt), h('dd', {}, dd)];
  }

  // What ran: a commit (sha, the ref as given, the message's first line),
  // or an ad-hoc snapshot and the commit its working copy was on.
  function commitFacts(e) {
    const c = e.commit;
    if (c) {
      const sha = h('code', {class: 'commit-sha', title: c.sha}, c.sha.slice(0, 7));
      return [
        ...fact('commit', h('span', {class: 'commit'}, sha, ' ',
          c.ref && c.ref !== c.sha ? h('span', {class: 'tag commit-ref'}, c.ref) : null,
          ' ', h('span', {class: 'commit-message'}, c.message))),
        ...fact('author', c.author),
        ...fact('repository', c.repository ? h('code', {}, c.repository) : null),
      ];
    }
    const base = e.adhoc && e.adhoc.based_on;
    return fact('ad hoc', base
      ? h('span', {class: 'adhoc'}, 'based on ', h('code', {title: base}, base.slice(0, 7)))
      : 'uploaded snapshot');
  }

  function renderFacts(e) {
    const dur = execDuration(e);
    const dl = h('dl', {class: 'facts'},
      fact('project', e.project),
      fact('environment', e.environment),
      fact('image', e.image ? h('code', {}, e.image) : null),
      ...commitFacts(e),
      fact('snapshot', e.snapshot ? h('code', {title: e.snapshot}, e.snapshot.slice(0, 12)) : null),
      fact('owner', session.required ? e.owner : null),
      fact('exit code', e.exit_code === null ? null : String(e.exit_code)),
      fact('created', h('span', {title: e.created_at}, fmtTime(e.created_at))),
      fact('queued', e.queued_at && h('span', {title: e.queued_at}, fmtTime(e.queued_at))),
      fact('started', e.started_at && h('span', {title: e.started_at}, fmtTime(e.started_at))),
      fact('ended', e.ended_at && h('span', {title: e.ended_at}, fmtTime(e.ended_at))),
      fact('duration', dur === null ? null : fmtDuration(dur)),
      fact('gpus', e.gpus),
      fact('priority', e.priority ? 'high' : null),
      fact('time limit', e.time_limit ? fmtDuration(e.time_limit * 1000) : null),
      fact('tags', (e.tags || []).length ? (e.tags || []).map((t) => h('span', {class: 'tag'}, t)) : null),
      fact('id', h('code', {}, e.id)));
    facts.replaceChildren(h('h2', {}, 'Details'), dl,
      h('h2', {class: 'gap'}, 'Command'), h('pre', {class: 'command'}, e.command || ''));
  }

  function renderParams(e) {
    const entries = Object.entries(e.parameters || {});
    params.replaceChildren(h('h2', {}, 'Parameters'), entries.length
      ? h('table', {class: 'kv params'}, h('tbody', {}, entries.map(([k, v]) =>
        h('tr', {}, h('td', {}, k), h('td', {class: 'value'}, fmtValue(v))))))
      : h('p', {class: 'muted'}, 'none'));
    const ins = Object.entries(e.inputs || {});
    inputs.replaceChildren(h('h2', {}, 'Inputs'), ins.length
      ? h('table', {class: 'kv inputs'}, h('tbody', {}, ins.map(([k, urls]) =>
        h('tr', {}, h('td', {}, k), h('td', {class: 'value'},
          (Array.isArray(urls) ? urls : [urls]).map((u) => h('div', {}, String(u), inputLineage(e, k, u))))))))
      : h('p', {class: 'muted'}, 'none'));
  }

  // Lineage: a datum:// input links to the execution that produced it
  // (and names the alias it came through).
  function inputLineage(e, name, url) {
    const d = (e.input_datums || []).find((x) => x.input === name && x.datum === url);
    if (!d || !d.producer) return null;
    return h('div', {class: 'lineage muted'},
      d.alias ? `alias ${d.alias} · ` : '', 'from ',
      h('a', {href: `/executions/${d.producer.id}`}, `#${d.producer.counter} ${d.producer.step}`),
      ` (${d.output})`);
  }

  // Lineage: an output's datum, and on demand the executions that used it.
  function outputLineage(o) {
    if (!o.datum) return null;
    const list = h('span', {});
    const more = h('a', {href: '#', class: 'consumers'}, 'used by…');
    more.addEventListener('click', async (ev) => {
      ev.preventDefault();
      try {
        const d = await getJSON(`/v1/datums/${encodeURIComponent(o.datum.slice('datum://'.length))}`);
        const cs = d.consumers || [];
        list.replaceChildren(cs.length ? '' : 'no execution yet', ...cs.flatMap((c, i) =>
          [i ? ', ' : '', h('a', {href: `/executions/${c.id}`}, `#${c.counter} ${c.step}`)]));
        more.remove();
      } catch (err) {
        list.textContent = err.message;
      }
    });
    return h('div', {class: 'lineage muted', title: o.datum}, `${o.datum.slice(0, 16)}… `, more, list);
  }

  // An output's properties (valohai.metadata.jsonl, <file>.metadata.json)
  // on one short line under its name: alias, tags, then the other keys;
  // the whole of them in its title.
  function outputProps(o) {
    const meta = o.metadata || {};
    const keys = Object.keys(meta).filter((k) => k !== 'valohai.tags' && k !== 'valohai.alias');
    const parts = [];
    if (o.alias) parts.push(`alias ${o.alias}`);
    if (o.tags && o.tags.length) parts.push(o.tags.map((t) => `#${t}`).join(' '));
    for (const k of keys) parts.push(`${k}=${typeof meta[k] === 'string' ? meta[k] : JSON.stringify(meta[k])}`);
    if (!parts.length) return null;
    const text = parts.join(', ');
    return h('div', {class: 'props muted', title: JSON.stringify(meta, null, 1)},
      text.length > 120 ? `${text.slice(0, 117)}...` : text);
  }

  function renderOutputs(e) {
    const list = e.outputs || [];
    const title = h('h2', {}, 'Outputs', list.length ? h('span', {class: 'muted'}, `${list.length}`) : null);
    if (!list.length) {
      outputs.replaceChildren(title, h('p', {class: 'muted'},
        TERMINAL.has(e.status) ? 'No outputs.' : 'Files written to the outputs folder appear here when the execution ends.'));
      return;
    }
    const rows = list.map((o) => {
      const url = `${execPath(e.id)}/outputs/${o.name.split('/').map(encodeURIComponent).join('/')}`;
      const base = o.name.split('/').pop();
      // Without a token a plain link downloads it; with one the bytes come
      // through fetch (a link cannot carry the Authorization header).
      const link = h('a', {class: 'download', href: url, download: base, dataset: {name: o.name}, title: `sha256 ${o.sha256}`}, o.name);
      if (session.required) {
        link.addEventListener('click', async (ev) => {
          ev.preventDefault();
          try {
            await download(url, base);
          } catch (err) {
            error.textContent = `Cannot download ${o.name}: ${err.message}`;
            error.hidden = false;
          }
        });
      }
      return h('tr', {}, h('td', {class: 'name'}, link, outputProps(o), outputLineage(o)), h('td', {class: 'num'}, fmtBytes(o.size)));
    });
    outputs.replaceChildren(title, h('table', {class: 'outputs'}, h('tbody', {}, rows)));
  }

  function show(e) {
    const first = !exec;
    exec = e;
    renderHead(e);
    renderFacts(e);
    renderParams(e);
    renderOutputs(e);
    if (first) {
      // The uuid from now on: a counter may name executions of several projects.
      if (id !== e.id) history.replaceState(null, '', `/executions/${e.id}`);
      const running = () => !stopped && !TERMINAL.has(exec.status);
      charts = new MetaCharts(e.id, {running});
      log = new LogView(e.id, {running, onStatusEvent: () => { clearTimeout(timer); timer = setTimeout(refresh, 200); }});
      mainCol.append(charts.el, log.el);
      charts.start();
      log.start();
    }
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const e = await getJSON(execPath(exec ? exec.id : id));
      if (stopped) return;
      error.hidden = true;
      show(e);
      if (TERMINAL.has(e.status)) return; // it will not change again
    } catch (e) {
      if (stopped) return;
      if (e instanceof ApiError && e.status === 404 && !exec) {
        head.replaceChildren(h('h1', {}, 'No such execution'));
        error.textContent = e.message;
        error.hidden = false;
        return;
      }
      error.textContent = `Cannot load the execution: ${e.message}`;
      error.hidden = false;
    }
    timer = setTimeout(refresh, POLL_MS);
  }

  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(confirmTimer);
    if (log) log.stop();
    if (charts) charts.stop();
  };
}
