// One pipeline: what it is, a Stop button, its graph (a box per node,
// coloured by the node's status, linking to the node's execution, with
// Approve and Reject on a node waiting for approval) and a table of its
// nodes. Fetched again every second until it has ended; the graph is laid
// out once (nodes and edges do not change) and its boxes redrawn in place.
import {session, getJSON, postJSON, ApiError} from './api.js';
import {h, svg, statusBadge, fmtTime, fmtDuration, execDuration, TERMINAL} from './dom.js';
import {nodeProgress} from './pipelines.js';

const POLL_MS = 1000;

// The boxes' size and the gaps between them, in pixels.
const BOX_W = 210;
const BOX_H = 104;
const GAP_X = 90;
const GAP_Y = 22;
const PAD = 14;
const PAD_Y = 30; // above and below: room for the edges that go round a column

// "train.output.model*" -> {node: 'train', kind: 'output', name: 'model*'}.
// A node's name has no dot; the name after the kind may.
export function edgeEnd(text) {
  const [node, kind = '', ...rest] = String(text).split('.');
  return {node, kind, name: rest.join('.')};
}

// Where each node goes: columns by depth (the longest path to it from a
// node with no edge into it), each column in the order that keeps a node
// near the nodes it comes from (the mean of their rows), centred against
// the tallest column. Edges between the same two nodes are drawn as one
// line. Pure: nodes' names and the edges in, boxes and lines out.
export function layout(names, edges) {
  const known = new Set(names);
  const links = []; // {from, to, edges: [{source, target}]}
  const byPair = new Map();
  for (const e of edges) {
    const from = edgeEnd(e.source).node;
    const to = edgeEnd(e.target).node;
    if (!known.has(from) || !known.has(to) || from === to) continue;
    const key = `${from}\n${to}`;
    let l = byPair.get(key);
    if (!l) { l = {from, to, edges: []}; byPair.set(key, l); links.push(l); }
    l.edges.push(e);
  }
  // Longest path: relax every link as often as there are nodes (ferryd
  // refuses loops; the bound only keeps a bad graph from hanging the page).
  const depth = new Map(names.map((n) => [n, 0]));
  for (let round = 0; round < names.length; round++) {
    let moved = false;
    for (const l of links) {
      if (depth.get(l.to) < depth.get(l.from) + 1) { depth.set(l.to, depth.get(l.from) + 1); moved = true; }
    }
    if (!moved) break;
  }
  const columns = [];
  for (const n of names) (columns[depth.get(n)] ||= []).push(n);
  const row = new Map();
  columns.forEach((col, c) => {
    if (c > 0) {
      const order = new Map(col.map((n, i) => [n, i]));
      const mean = (n) => {
        const rs = links.filter((l) => l.to === n && row.has(l.from)).map((l) => row.get(l.from));
        return rs.length ? rs.reduce((a, b) => a + b, 0) / rs.length : order.get(n);
      };
      col.sort((a, b) => mean(a) - mean(b) || order.get(a) - order.get(b));
    }
    col.forEach((n, i) => row.set(n, i));
  });
  const tallest = Math.max(1, ...columns.map((col) => (col ? col.length : 0)));
  const boxes = new Map();
  columns.forEach((col, c) => {
    const offset = ((tallest - col.length) * (BOX_H + GAP_Y)) / 2;
    col.forEach((n, i) => boxes.set(n, {
      x: PAD + c * (BOX_W + GAP_X), y: PAD_Y + offset + i * (BOX_H + GAP_Y), w: BOX_W, h: BOX_H, column: c,
    }));
  });
  return {
    boxes,
    links,
    width: PAD * 2 + columns.length * BOX_W + Math.max(0, columns.length - 1) * GAP_X,
    height: PAD_Y * 2 + tallest * BOX_H + (tallest - 1) * GAP_Y,
  };
}

// A button that asks for a second click within 4 s before it acts.
function confirmButton(cls, label, again, action) {
  let timer = null;
  const b = h('button', {class: cls, onclick: async () => {
    if (!b.classList.contains('confirm')) {
      b.classList.add('confirm');
      b.textContent = again;
      timer = setTimeout(reset, 4000);
      return;
    }
    clearTimeout(timer);
    b.disabled = true;
    try { await action(); } finally { reset(); b.disabled = false; }
  }}, label);
  function reset() {
    clearTimeout(timer);
    b.classList.remove('confirm');
    b.textContent = label;
  }
  b.reset = reset;
  return b;
}

export function mount(root, [id], app) {
  document.title = 'Pipeline · ferry';
  let stopped = false;
  let timer = null;
  let pipe = null;
  let graph = null; // {canvas, boxes: Map(name -> {el, key})}

  const head = h('div', {class: 'exec-head'});
  const error = h('div', {class: 'error-box', hidden: true});
  const graphPanel = h('section', {class: 'panel pgraph-panel'}, h('h2', {}, 'Graph'));
  const nodesPanel = h('section', {class: 'panel flush'});
  root.append(head, error, graphPanel, nodesPanel);

  const fail = (what, e) => {
    error.textContent = `${what}: ${e.message}`;
    error.hidden = false;
  };
  const pipePath = () => `/v1/pipelines/${encodeURIComponent(pipe ? pipe.id : id)}`;

  const stopButton = confirmButton('danger stop', 'Stop', 'Click again to stop', async () => {
    seq++; // what a poll under way brings is older than this answer
    try { show(await postJSON(`${pipePath()}/stop`)); } catch (e) { fail('Cannot stop', e); }
    refresh();
  });

  async function decide(node, verb) {
    seq++;
    try {
      show(await postJSON(`${pipePath()}/nodes/${encodeURIComponent(node)}/${verb}`));
    } catch (e) {
      fail(`Cannot ${verb} ${node}`, e);
    }
    refresh();
  }

  function fact(dt, dd) {
    return dd === null || dd === undefined || dd === '' ? [] : [h('dt', {}, dt), h('dd', {}, dd)];
  }
  const when = (iso) => iso && h('span', {class: 'time', title: iso}, fmtTime(iso));

  function renderHead(p) {
    document.title = `#${p.counter} ${p.name} · ferry`;
    const ended = TERMINAL.has(p.status);
    stopButton.hidden = ended;
    if (p.ending && !stopButton.classList.contains('confirm')) {
      stopButton.disabled = true;
      stopButton.textContent = 'Stopping…';
    } else if (!p.ending && stopButton.textContent === 'Stopping…') {
      stopButton.disabled = false;
      stopButton.reset();
    }
    const dur = execDuration(p);
    head.replaceChildren(
      h('div', {class: 'title'},
        h('div', {class: 'muted'}, h('a', {href: '/pipelines'}, 'Pipelines'), ' / ', p.project),
        h('h1', {}, h('span', {}, `#${p.counter} ${p.name}`), statusBadge(p.status)),
        p.reason ? h('div', {class: 'reason status-reason'}, p.reason) : null,
        p.ending && !ended ? h('div', {class: 'reason ending'}, `ends ${p.ending} once its running nodes have ended`) : null,
        h('dl', {class: 'facts inline'},
          fact('title', p.title),
          fact('owner', session.required ? p.owner : null),
          fact('nodes', nodeProgress(p)),
          fact('created', when(p.created_at)),
          fact('started', when(p.started_at)),
          fact('ended', when(p.ended_at)),
          fact('duration', dur === null ? null : fmtDuration(dur)),
          fact('commit', p.commit ? h('code', {title: p.commit}, p.commit.slice(0, 7)) : null),
          fact('snapshot', !p.commit && p.snapshot ? h('code', {title: p.snapshot}, p.snapshot.slice(0, 12)) : null),
          fact('tags', (p.tags || []).length ? p.tags.map((t) => h('span', {class: 'tag'}, t)) : null))),
      h('div', {class: 'actions'}, stopButton));
  }

  // --- the graph ---
  function buildGraph(p) {
    const lay = layout(p.nodes.map((n) => n.name), p.edges || []);
    const lines = svg('svg', {class: 'pgraph-edges', width: lay.width, height: lay.height,
      viewBox: `0 0 ${lay.width} ${lay.height}`},
    svg('defs', {}, svg('marker', {id: 'pgraph-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'}, svg('path', {d: 'M0 0 L10 5 L0 10 z'}))));
    for (const l of lay.links) {
      const a = lay.boxes.get(l.from);
      const b = lay.boxes.get(l.to);
      const x1 = a.x + a.w;
      const y1 = a.y + a.h / 2;
      const x2 = b.x;
      const y2 = b.y + b.h / 2;
      const bend = Math.max(30, (x2 - x1) / 2);
      const kinds = [...new Set(l.edges.map((e) => {
        const s = edgeEnd(e.source).kind;
        const t = edgeEnd(e.target).kind;
        return s === t ? s : `${s}→${t}`;
      }))].join(', ');
      const tip = l.edges.map((e) => `${e.source} → ${e.target}`).join('\n');
      // An edge over more than one column would run under the boxes of
      // the columns between: it goes along their top or bottom instead.
      const mid = b.column - a.column > 1 ? (y1 <= y2 ? Math.min(a.y, b.y) - 12 : Math.max(a.y + a.h, b.y + b.h) + 12) : null;
      const d = mid === null
        ? `M${x1} ${y1} C${x1 + bend} ${y1} ${x2 - bend} ${y2} ${x2} ${y2}`
        : `M${x1} ${y1} C${x1 + GAP_X / 2} ${y1} ${x1 + GAP_X / 4} ${mid} ${x1 + GAP_X / 2 + 20} ${mid} ` +
          `L${x2 - GAP_X / 2 - 20} ${mid} C${x2 - GAP_X / 4} ${mid} ${x2 - GAP_X / 2} ${y2} ${x2} ${y2}`;
      const lx = (x1 + x2) / 2;
      const ly = mid === null ? (y1 + y2) / 2 - 6 : mid - 4;
      lines.append(svg('g', {class: 'edge', dataset: {source: l.from, target: l.to, kinds}},
        svg('title', {}, tip),
        svg('path', {d, 'marker-end': 'url(#pgraph-arrow)'}),
        svg('text', {x: lx, y: ly, 'text-anchor': 'middle'}, kinds)));
    }
    const canvas = h('div', {class: 'pgraph-canvas', style: `width: ${lay.width}px; height: ${lay.height}px`}, lines);
    const boxes = new Map();
    for (const n of p.nodes) {
      const b = lay.boxes.get(n.name);
      const el = h('div', {class: 'pnode', dataset: {node: n.name},
        style: `left: ${b.x}px; top: ${b.y}px; width: ${b.w}px; height: ${b.h}px`});
      canvas.append(el);
      boxes.set(n.name, {el, key: null});
    }
    graphPanel.replaceChildren(h('h2', {}, 'Graph'), h('div', {class: 'pgraph'}, canvas));
    return {boxes, shape: shapeOf(p)};
  }

  // The graph is built again only if the nodes or edges differ (they do
  // not within one pipeline; the check keeps a wrong drawing impossible).
  const shapeOf = (p) => JSON.stringify([p.nodes.map((n) => n.name), p.edges]);

  function execLink(n, text) {
    return n.execution ? h('a', {href: `/executions/${n.execution.id}`, class: 'exec-link'}, text) : null;
  }

  function renderBox(el, n) {
    el.className = `pnode node-status-${n.status}`;
    el.dataset.status = n.status;
    const waiting = n.approval === 'waiting';
    // replaceChildren() would write a null as the text "null": filtered.
    el.replaceChildren(...[
      h('div', {class: 'pnode-name', title: n.name}, execLink(n, n.name) || h('span', {}, n.name)),
      h('div', {class: 'pnode-step muted', title: n.step || n.type}, n.step || n.type),
      h('div', {class: 'pnode-state'}, statusBadge(n.status),
        n.execution ? execLink(n, `#${n.execution.counter}`) : null,
        n.attempts > 1 ? h('span', {class: 'muted', title: 'attempts'}, `try ${n.attempts}`) : null,
        n.reused ? h('span', {class: 'tag'}, 'reused') : null),
      waiting ? h('div', {class: 'pnode-actions'},
        h('button', {class: 'primary approve', onclick: () => decide(n.name, 'approve')}, 'Approve'),
        confirmButton('danger reject', 'Reject', 'Again to reject', () => decide(n.name, 'reject'))) : null,
    ].filter(Boolean));
    el.title = n.reason || '';
  }

  function renderGraph(p) {
    if (!graph || graph.shape !== shapeOf(p)) graph = buildGraph(p);
    for (const n of p.nodes) {
      const box = graph.boxes.get(n.name);
      const key = JSON.stringify(n);
      if (box.key === key) continue; // unchanged: a button under the mouse stays
      box.key = key;
      renderBox(box.el, n);
    }
  }

  function renderNodes(p) {
    nodesPanel.replaceChildren(h('table', {class: 'pnodes'},
      h('thead', {}, h('tr', {},
        h('th', {}, 'node'), h('th', {}, 'step'), h('th', {}, 'status'), h('th', {class: 'num'}, 'execution'),
        h('th', {class: 'num'}, 'attempts'), h('th', {}, 'reused'), h('th', {}, 'reason'))),
      h('tbody', {}, p.nodes.map((n) => h('tr', {dataset: {node: n.name, status: n.status}},
        h('td', {class: 'name'}, n.name),
        h('td', {class: 'step'}, n.step || n.type),
        h('td', {}, statusBadge(n.status), n.approval ? h('span', {class: 'muted approval'}, ` ${n.approval}${n.approval_by ? ` by ${n.approval_by}` : ''}`) : null),
        h('td', {class: 'num'}, execLink(n, `#${n.execution && n.execution.counter}`)),
        h('td', {class: 'num'}, String(n.attempts ?? '')),
        h('td', {}, n.reused ? 'yes' : ''),
        h('td', {class: 'reason'}, n.reason || ''))))));
  }

  function show(p) {
    const first = !pipe;
    pipe = p;
    // The uuid from now on: a counter may name pipelines of several projects.
    if (first && id !== p.id) history.replaceState(null, '', `/pipelines/${p.id}`);
    renderHead(p);
    renderGraph(p);
    renderNodes(p);
  }

  let seq = 0;
  async function refresh() {
    clearTimeout(timer);
    if (stopped) return;
    if (pipe && document.hidden) { timer = setTimeout(refresh, POLL_MS); return; }
    const mine = ++seq;
    try {
      const p = await getJSON(pipePath());
      if (stopped || mine !== seq) return; // a newer fetch is on its way
      error.hidden = true;
      show(p);
      if (TERMINAL.has(p.status)) return; // it will not change again
    } catch (e) {
      if (stopped || mine !== seq) return;
      if (e instanceof ApiError && e.status === 404 && !pipe) {
        head.replaceChildren(h('h1', {}, 'No such pipeline'));
        fail('Cannot load the pipeline', e);
        return;
      }
      fail('Cannot load the pipeline', e);
    }
    timer = setTimeout(refresh, POLL_MS);
  }

  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
