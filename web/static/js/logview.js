// An execution's live log. It loads only the tail of the log (a 1M-line log
// must not freeze the page), follows new lines as ferryd stores them
// (logs?follow=1), and fetches earlier lines on demand (logs?before=I).
// The view always shows one contiguous range of events, firstI..lastI.
import {execPath, streamNDJSON} from './api.js';
import {h, fmtClock} from './dom.js';

const TAIL = 1000; // events loaded at first, and by each "load earlier"
const MAX_LINES = 10000; // while following, older lines leave the page
const MAX_READING = 3 * MAX_LINES; // ... also while the user reads above
const MAX_BURST = 2000; // lines made in one frame; a flood shows its newest
const MAX_TEXT = 20000; // characters of one line shown

export class LogView {
  // `running()` says whether the execution still runs: a stream that ends
  // before it did (ferryd restarted) is opened again.
  constructor(id, {onStatusEvent, running} = {}) {
    this.id = id;
    this.onStatusEvent = onStatusEvent || (() => {});
    this.running = running || (() => false);
    this.firstI = 0; // lowest i on the page (0: none yet)
    this.lastI = 0; // highest i on the page
    this.paused = false;
    this.ended = false;
    this.pending = []; // events waiting for the next frame
    this.frame = 0;
    this.abort = null;

    this.state = h('span', {class: 'log-state'});
    this.pauseButton = h('button', {class: 'pause', onclick: () => this.togglePause()}, 'Pause');
    this.endButton = h('button', {class: 'to-end', hidden: true, onclick: () => this.scrollToEnd()}, 'Jump to end ↓');
    this.earlierButton = h('button', {class: 'load-earlier', onclick: () => this.loadEarlier()}, `Load ${TAIL} earlier lines`);
    this.earlier = h('div', {class: 'more', hidden: true}, this.earlierButton);
    this.lines = h('div', {class: 'lines'});
    this.note = h('div', {class: 'note muted'}, 'Loading the log…');
    this.box = h('div', {class: 'log-box', tabindex: 0}, this.earlier, this.lines, this.note);
    this.box.addEventListener('scroll', () => this.onScroll());
    this.el = h('section', {class: 'panel log'},
      h('h2', {}, 'Log', this.state, h('span', {class: 'spacer'}), this.endButton, this.pauseButton),
      this.box);
  }

  start() {
    this.follow(`tail=${TAIL}`);
  }

  stop() {
    if (this.abort) this.abort.abort();
    this.abort = null;
    cancelAnimationFrame(this.frame);
  }

  atBottom() {
    const b = this.box;
    return b.scrollHeight - b.scrollTop - b.clientHeight < 24;
  }

  scrollToEnd() {
    this.box.scrollTop = this.box.scrollHeight;
    this.endButton.hidden = true;
  }

  onScroll() {
    this.endButton.hidden = this.atBottom();
  }

  setState(text, cls) {
    this.state.textContent = text;
    this.state.className = `log-state ${cls || ''}`;
  }

  // Streams events after `lastI` (or the tail) until the execution ends.
  async follow(range) {
    this.stop();
    const ctl = new AbortController();
    this.abort = ctl;
    const from = this.lastI;
    let first = true;
    this.setState('live', 'live');
    try {
      await streamNDJSON(`${execPath(this.id)}/logs?${range}&follow=1`, (events) => {
        if (first && from && events[0].i > from + 1) {
          // Lines were skipped (paused through a flood): start the view
          // afresh at the tail; "load earlier" reaches the rest.
          this.reset();
        }
        first = false;
        this.queue(events);
      }, ctl.signal);
      if (ctl.signal.aborted) return;
      // The response ends after the terminal status event; the page learns
      // the new status a moment later. Still running then: ferryd went away.
      setTimeout(() => {
        if (this.abort !== ctl || this.paused) return;
        if (this.running()) return this.follow(this.resumeRange());
        this.ended = true;
        this.setState('ended', '');
        this.pauseButton.hidden = true;
      }, 1000);
    } catch (e) {
      if (ctl.signal.aborted) return;
      this.retry(ctl, e.message);
    } finally {
      if (this.note.textContent.startsWith('Loading') && this.lastI === 0 && !this.pending.length) {
        this.note.textContent = this.ended ? 'The log is empty.' : 'No lines yet.';
      }
    }
  }

  retry(ctl, why) {
    this.setState(`connection lost (${why}); retrying`, '');
    setTimeout(() => { if (this.abort === ctl && !this.paused) this.follow(this.resumeRange()); }, 2000);
  }

  resumeRange() {
    return this.lastI ? `after=${this.lastI}&tail=${TAIL}` : `tail=${TAIL}`;
  }

  togglePause() {
    this.paused = !this.paused;
    this.pauseButton.textContent = this.paused ? 'Resume' : 'Pause';
    this.pauseButton.classList.toggle('primary', this.paused);
    if (this.paused) {
      this.stop();
      this.flush();
      this.setState('paused', 'paused');
    } else {
      this.follow(this.resumeRange());
    }
  }

  reset() {
    this.lines.replaceChildren();
    this.pending = [];
    this.firstI = this.lastI = 0;
  }

  queue(events) {
    for (const ev of events) {
      if (ev.stream === 'status') this.onStatusEvent(ev);
    }
    this.pending.push(...events);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  line(ev) {
    let text = ev.text;
    if (text.length > MAX_TEXT) text = `${text.slice(0, MAX_TEXT)} … (${text.length - MAX_TEXT} more characters)`;
    return h('div', {class: `line stream-${ev.stream}`, dataset: {i: ev.i}},
      h('span', {class: 'ln'}, ev.i),
      h('span', {class: 'ts', title: ev.time}, fmtClock(ev.time)),
      h('span', {class: 'tx'}, text));
  }

  // One DOM update per frame, however many events arrived.
  flush() {
    this.frame = 0;
    let events = this.pending.filter((ev) => ev.i > this.lastI);
    this.pending = [];
    if (!events.length) return;
    const stick = this.atBottom();
    if (events.length > MAX_BURST) {
      // A flood: making every line would freeze the page, and no one reads
      // that fast. The view starts afresh at the newest lines ("load
      // earlier" has the rest).
      events = events.slice(-MAX_BURST);
      this.lines.replaceChildren();
      this.firstI = 0;
    }
    const frag = document.createDocumentFragment();
    for (const ev of events) frag.append(this.line(ev));
    this.lines.append(frag);
    if (!this.firstI) this.firstI = events[0].i;
    this.lastI = events[events.length - 1].i;
    this.note.textContent = '';
    // Keep the page light by letting the oldest lines go (the browser's
    // scroll anchoring keeps a reader's place).
    const extra = this.lines.childElementCount - (stick ? MAX_LINES : MAX_READING);
    if (extra > 0) {
      for (let k = 0; k < extra; k++) this.lines.firstElementChild.remove();
      this.firstI = Number(this.lines.firstElementChild.dataset.i);
    }
    if (stick) this.scrollToEnd();
    this.earlier.hidden = this.firstI <= 1;
  }

  async loadEarlier() {
    if (this.firstI <= 1) return;
    this.earlierButton.disabled = true;
    const events = [];
    try {
      await streamNDJSON(`${execPath(this.id)}/logs?before=${this.firstI}&tail=${TAIL}`, (evs) => events.push(...evs));
    } catch (e) {
      this.earlierButton.textContent = `Could not load: ${e.message}. Retry`;
      this.earlierButton.disabled = false;
      return;
    }
    const older = events.filter((ev) => ev.i < this.firstI);
    if (older.length) {
      // Keep the lines in view where they are while the page grows above.
      const before = this.box.scrollHeight;
      const frag = document.createDocumentFragment();
      for (const ev of older) frag.append(this.line(ev));
      this.lines.prepend(frag);
      this.box.scrollTop += this.box.scrollHeight - before;
      this.firstI = older[0].i;
    } else {
      this.firstI = 1;
    }
    this.earlierButton.textContent = `Load ${TAIL} earlier lines`;
    this.earlierButton.disabled = false;
    this.earlier.hidden = this.firstI <= 1;
  }
}
