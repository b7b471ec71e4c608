// Metadata charts. A stdout line that is a JSON object is a metadata point
// (core/logstore.c); ferryd hands out just those lines with
// logs?metadata=1, and follows new ones. Every numeric key gets a chart,
// plotted against time, the log line, or another key (loss by epoch).
import {execPath, streamNDJSON} from './api.js';
import {h} from './dom.js';

const MAX_POINTS = 50000; // the last points of a log that prints many
const REDRAW_MS = 250;
const X_KEYS = ['epoch', 'step', 'global_step', 'iteration', 'iter', 'batch'];
const COLORS = ['#1f6fd1', '#d9730d', '#2e8540', '#8e44ad', '#c62828', '#00838f', '#6d4c41', '#ad1457'];

export class MetaCharts {
  // `running()`: whether the execution still runs (see LogView).
  constructor(id, {running} = {}) {
    this.id = id;
    this.running = running || (() => false);
    this.points = []; // {i, t (unix seconds), v: {key: number}}
    this.keys = []; // numeric keys, in the order first seen
    this.x = 'time';
    this.xChosen = false; // once the user picks an x axis, it stays
    this.charts = new Map(); // key -> {card, plot, latest, u}
    this.abort = null;
    this.timer = 0;

    this.xSelect = h('select', {class: 'chart-x', onchange: () => {
      this.x = this.xSelect.value;
      this.xChosen = true;
      this.rebuild();
    }});
    this.summary = h('span', {class: 'muted chart-summary'});
    this.xLabel = h('label', {class: 'muted', hidden: true}, 'x axis ', this.xSelect);
    this.grid = h('div', {class: 'charts'});
    this.empty = h('div', {class: 'empty'},
      'No metadata yet. Each stdout line that is a JSON object, such as ',
      h('code', {}, '{"epoch": 1, "loss": 0.52}'), ', becomes a point here.');
    this.el = h('section', {class: 'panel metadata', dataset: {points: 0}},
      h('h2', {}, 'Metadata', this.summary, h('span', {class: 'spacer'}),
        this.xLabel),
      this.empty, this.grid);
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(this.grid);
    this.fillXSelect();
  }

  start() {
    const ctl = new AbortController();
    this.abort = ctl;
    const last = this.points.length ? this.points[this.points.length - 1].i : 0;
    const range = last ? `after=${last}` : `tail=${MAX_POINTS}`;
    const url = `${execPath(this.id)}/logs?metadata=1&${range}&follow=1`;
    const retry = (why) => {
      this.summary.textContent = `(connection lost: ${why}; retrying)`;
      this.retry = setTimeout(() => this.start(), 2000);
    };
    streamNDJSON(url, (events) => this.add(events), ctl.signal).then(() => {
      // The stream ends with the execution (the page learns of it a moment
      // later), or early when ferryd goes away.
      this.retry = setTimeout(() => {
        if (ctl.signal.aborted) return;
        if (this.running()) this.start();
        else if (!this.points.length) this.empty.textContent = 'This execution printed no metadata.';
      }, 1000);
    }, (e) => {
      if (!ctl.signal.aborted) retry(e.message);
    });
  }

  stop() {
    if (this.abort) this.abort.abort();
    clearTimeout(this.timer);
    clearTimeout(this.retry);
    cancelAnimationFrame(this.fitFrame);
    this.resize.disconnect();
    for (const c of this.charts.values()) if (c.u) c.u.destroy();
  }

  add(events) {
    let newKeys = false;
    for (const ev of events) {
      let obj;
      try { obj = JSON.parse(ev.text); } catch { continue; }
      if (!obj || typeof obj !== 'object' || Array.isArray(obj)) continue;
      const v = {};
      for (const [k, val] of Object.entries(obj)) {
        if (typeof val !== 'number' || !Number.isFinite(val)) continue;
        v[k] = val;
        if (!this.keys.includes(k)) { this.keys.push(k); newKeys = true; }
      }
      this.points.push({i: ev.i, t: Date.parse(ev.time) / 1000, v});
    }
    if (this.points.length > MAX_POINTS) this.points.splice(0, this.points.length - MAX_POINTS);
    if (newKeys) {
      this.fillXSelect();
      // What a training loop counts by is the x axis people want (loss by
      // epoch); time otherwise.
      const counter = X_KEYS.find((k) => this.keys.includes(k));
      if (!this.xChosen && counter && this.x !== counter) {
        this.x = counter;
        this.xSelect.value = counter;
        this.rebuild();
      }
    }
    if (!this.timer) this.timer = setTimeout(() => { this.timer = 0; this.draw(); }, this.charts.size ? REDRAW_MS : 0);
  }

  fillXSelect() {
    const options = [['time', 'time'], ['i', 'log line'], ...this.keys.map((k) => [k, k])];
    this.xSelect.replaceChildren(...options.map(([value, label]) => h('option', {value}, label)));
    this.xSelect.value = this.x;
  }

  xOf(p) {
    if (this.x === 'time') return p.t;
    if (this.x === 'i') return p.i;
    return p.v[this.x];
  }

  // [xs, ys] of one key: the points that have both values, by x.
  series(key) {
    const pairs = [];
    for (const p of this.points) {
      const x = this.xOf(p);
      const y = p.v[key];
      if (x !== undefined && y !== undefined) pairs.push([x, y]);
    }
    if (this.x !== 'time' && this.x !== 'i') pairs.sort((a, b) => a[0] - b[0]); // stable
    return [pairs.map((p) => p[0]), pairs.map((p) => p[1])];
  }

  rebuild() {
    for (const c of this.charts.values()) if (c.u) c.u.destroy();
    this.charts.clear();
    this.grid.replaceChildren();
    this.draw();
  }

  chart(key) {
    let c = this.charts.get(key);
    if (c) return c;
    const latest = h('span', {class: 'latest'});
    const plot = h('div', {class: 'plot'});
    const card = h('div', {class: 'chart', dataset: {key, points: 0}},
      h('div', {class: 'chart-title'}, h('span', {}, key), latest), plot);
    this.grid.append(card);
    c = {card, plot, latest, u: null, color: COLORS[this.charts.size % COLORS.length]};
    this.charts.set(key, c);
    return c;
  }

  draw() {
    const total = this.points.length;
    this.el.dataset.points = total;
    this.summary.textContent = total ? `${total} point${total === 1 ? '' : 's'}` : '';
    this.empty.hidden = total > 0;
    this.xLabel.hidden = total === 0;
    for (const key of this.keys) {
      if (key === this.x) continue;
      const data = this.series(key);
      if (!data[0].length) continue;
      const c = this.chart(key);
      c.card.dataset.points = data[0].length;
      c.latest.textContent = String(Number(data[1][data[1].length - 1].toPrecision(6)));
      if (c.u) c.u.setData(data);
      else c.u = this.plot(key, c, data);
    }
  }

  plot(key, c, data) {
    if (!window.uPlot) {
      c.plot.textContent = 'The chart library did not load.';
      return null;
    }
    const xLabel = this.x === 'time' ? 'time' : this.x === 'i' ? 'log line' : this.x;
    return new window.uPlot({
      width: Math.max(c.plot.clientWidth, 200),
      height: 200,
      padding: [null, 24, null, null], // room for the last x label
      // One x value (a burst of lines stored at once) is no range: widen it.
      scales: {x: {time: this.x === 'time', range: (u, min, max) => (min === max ? [min - 1, max + 1] : [min, max])}},
      series: [
        {label: xLabel},
        {label: key, stroke: c.color, width: 1.5, points: {size: 5, fill: c.color}},
      ],
      axes: [{}, {size: 64}],
      cursor: {drag: {x: true, y: false}},
    }, data, c.plot);
  }

  // On the next frame, and only when the width changed: resizing inside the
  // observer's callback would make it report a loop.
  fit() {
    cancelAnimationFrame(this.fitFrame);
    this.fitFrame = requestAnimationFrame(() => {
      for (const c of this.charts.values()) {
        const width = c.plot.clientWidth;
        if (c.u && width && width !== c.u.width) c.u.setSize({width, height: 200});
      }
    });
  }
}
