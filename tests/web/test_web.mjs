// The web UI in headless Chromium (Debian's), driven by playwright-core.
// Run by tests/integration/test_web.sh, which starts ferryd, creates the
// executions and passes what it made in the environment.
import {chromium} from 'playwright-core';
import {readFileSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run tests/integration/test_web.sh)`);
  return v;
}
const URL_ = need('FERRY_URL');
const OPEN_URL = need('FERRY_OPEN_URL');
const TOKEN = need('FERRY_WEB_TOKEN');
const TRAIN = need('TRAIN_ID');
const SLEEPER = need('SLEEPER_ID');
const FLOOD = need('FLOOD_ID');
const MARKERS = need('MARKERS');
const MODEL = need('MODEL');
const SHOTS = need('SHOTS');
const COMMIT_ID = need('COMMIT_ID'); // on the open ferryd: an execution of a git commit
const COMMIT_SHA = need('COMMIT_SHA');
const SNAPSHOT = need('SNAPSHOT'); // webproj's, with the pipelines web-flow and web-slow
const PROJECT = need('PROJECT');

let passed = 0;
let failed = 0;
function check(what, ok, detail = '') {
  if (ok) passed++;
  else {
    failed++;
    console.log(`FAIL: ${what}${detail ? `: ${detail}` : ''}`);
  }
}

// Without these flags Chromium keeps trying to reach Google's services,
// and on a machine with no network that floods it with closed connections.
const context = await chromium.launchPersistentContext(need('PROFILE'), {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  acceptDownloads: true,
  viewport: {width: 1400, height: 900},
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = context.pages()[0] || await context.newPage();
page.setDefaultTimeout(15000);
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));
page.on('console', (m) => { if (m.type() === 'error') console.log(`browser console: ${m.text()}`); });

// page.goto, once more when the app did not start: the test machine makes
// and removes network interfaces (other tests' network namespaces), and
// Chromium drops what it is loading when they change (ERR_NETWORK_CHANGED),
// the page's scripts included, which leaves it at index.html's "Loading…".
async function open(url) {
  for (let tries = 1; ; tries++) {
    await page.goto(url);
    try {
      await page.waitForFunction(() => !document.querySelector('#main > p.muted.pad'), null,
        {timeout: 5000});
      return;
    } catch (e) {
      if (tries >= 3) throw e;
      console.log(`the app did not start at ${url}; loading it again`);
    }
  }
}

// ferryd's API from the test itself, as alice.
async function api(method, path, body) {
  const res = await fetch(`${URL_}${path}`, {method, headers: {Authorization: `Bearer ${TOKEN}`,
    'Content-Type': 'application/json'}, body: body === undefined ? undefined : JSON.stringify(body)});
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

const shot = (name) => page.screenshot({path: join(SHOTS, `${name}.png`), fullPage: true});

// A step of the scenario: a failure is counted, screenshotted, and the
// next step still runs (each starts from a URL of its own).
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
  } catch (e) {
    check(name, false, e.message.split('\n')[0]);
    await shot(`failed-${name.replace(/\W+/g, '-')}`).catch(() => {});
  }
  console.log(`${name}: ${Date.now() - t0} ms`);
}

// A log line whose text is exactly `text` ("tick 3", not "tick 30").
const exactly = (text) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
const lineText = (text) => page.locator('.log-box .line .tx', {hasText: exactly(text)});
const badge = () => page.locator('.exec-head .status');
const logEnded = () => page.waitForFunction(() => document.querySelector('.log-state').textContent === 'ended');

await step('sign in', async () => {
  // The app's script lost once, as a network change makes Chromium lose
  // it: open() sees the app did not start and loads the page again.
  let appLoads = 0;
  const isApp = (u) => u.pathname === '/assets/js/app.js';
  await page.route(isApp, (route) => (appLoads++ === 0 ? route.abort('internetdisconnected') : route.continue()));
  await open(`${URL_}/executions`);
  await page.unroute(isApp);
  check('a page whose script was lost is loaded again', appLoads === 2, `${appLoads} loads`);
  await page.waitForSelector('#signin-token');
  check('a ferryd with users asks for a token', new URL(page.url()).pathname === '/signin');
  await shot('01-signin');
  await page.fill('#signin-token', 'not-the-token');
  await page.click('form button[type=submit]');
  await page.waitForSelector('.signin .error-box:not([hidden])');
  check('a wrong token is refused', (await page.textContent('.signin .error-box')).includes('does not accept'));
  await page.fill('#signin-token', TOKEN);
  await page.click('form button[type=submit]');
  await page.waitForSelector(`table.executions tr[data-id="${TRAIN}"]`);
  check('signed in, back to the executions', new URL(page.url()).pathname === '/executions');
  check('the header names the user', (await page.textContent('#who')).includes('alice'));
  check('the token is kept for the session',
    await page.evaluate((t) => sessionStorage.getItem('ferry.token') === t, TOKEN));
});

await step('executions list', async () => {
  const rows = page.locator('table.executions tbody tr');
  await page.waitForFunction(() => document.querySelectorAll('table.executions tbody tr').length === 3);
  check('three executions listed', (await rows.count()) === 3);
  const train = page.locator(`tr[data-id="${TRAIN}"]`);
  const text = await train.textContent();
  check('a row shows step, environment and tags', text.includes('train') && text.includes('local') && text.includes('try-1'), text);
  await page.waitForSelector(`tr[data-id="${TRAIN}"] .status.started`);
  // The list updates by itself: flood ends without a reload.
  await page.waitForSelector(`tr[data-id="${FLOOD}"] .status.complete`);
  check('the list updated by itself', true);
  await shot('02-executions');
  await page.fill('#filter-step', 'sleeper');
  await page.press('#filter-step', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('table.executions tbody tr').length === 1);
  check('filter by step', (await page.getAttribute('table.executions tbody tr', 'data-id')) === SLEEPER);
  check('the filter is in the URL', page.url().includes('step=sleeper'));
  await page.click('text=Clear');
  await page.waitForFunction(() => document.querySelectorAll('table.executions tbody tr').length === 3);
});

await step('live log and chart', async () => {
  await page.click(`tr[data-id="${TRAIN}"] a.counter`);
  await page.waitForURL(`**/executions/${TRAIN}`);
  await lineText('hello from train').waitFor();
  const stderr = page.locator('.log-box .line.stream-stderr .tx', {hasText: exactly('warming up on stderr')});
  await stderr.waitFor();
  check('stderr lines are marked apart', (await stderr.count()) === 1);
  check('stdout lines are not', (await page.locator('.log-box .line.stream-stdout .tx', {hasText: 'hello from train'}).count()) === 1);
  await lineText('epoch 5 done').waitFor();
  check('the execution still runs', (await badge().getAttribute('data-status')) === 'started');
  const loss = page.locator('.chart[data-key="loss"]');
  await page.waitForSelector('.chart[data-key="loss"][data-points="5"]');
  check('the loss chart has the 5 points printed so far', (await loss.getAttribute('data-points')) === '5');
  check('it is drawn', (await loss.locator('canvas').count()) > 0);
  check('loss is plotted by epoch', (await page.inputValue('.metadata select.chart-x')) === 'epoch');
  check('a non-numeric key gets no chart', (await page.locator('.chart[data-key="phase"]').count()) === 0);
  check('parameters are shown', (await page.textContent('table.params')).includes('epochs'));
  check('an uploaded snapshot is shown as ad hoc', (await page.textContent('dl.facts')).includes('uploaded snapshot'));
  check('the tags are shown', (await page.textContent('.exec-side')).includes('try-1'));
  await shot('03-execution-running');
  // New lines and points arrive while the page is open.
  writeFileSync(join(MARKERS, 'open-train'), '');
  await page.waitForSelector('.chart[data-key="loss"][data-points="7"]');
  check('the chart took the new points', (await loss.getAttribute('data-points')) === '7');
  await lineText('training done').waitFor();
  await page.waitForSelector('.exec-head .status.complete');
  check('the status became complete', true);
  await logEnded();
});

await step('download an output', async () => {
  const link = page.locator('.outputs a.download[data-name="model.bin"]');
  await link.waitFor();
  check('the nested output is listed', (await page.locator('.outputs a.download[data-name="sub/notes.txt"]').count()) === 1);
  check('sizes are shown', (await page.textContent('.outputs')).includes('97.7 KiB'));
  const props = await page.locator('.outputs tr:has(a.download[data-name="model.bin"]) .props').textContent();
  check('its properties are shown', props === 'alias best-model, #web, stage=prod', props);
  check('the sidecar is no output', (await page.locator('.outputs a.download[data-name="model.bin.metadata.json"]').count()) === 0);
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const got = readFileSync(await download.path());
  check('the downloaded bytes are the output', Buffer.compare(got, readFileSync(MODEL)) === 0,
    `${got.length} bytes`);
  check('it is named after the output', download.suggestedFilename() === 'model.bin', download.suggestedFilename());
  await shot('04-execution-complete');
});

await step('load earlier lines', async () => {
  await open(`${URL_}/executions/${FLOOD}`);
  await lineText('flood line 2500').waitFor();
  const first = Number(await page.getAttribute('.log-box .line >> nth=0', 'data-i'));
  check('only the tail is loaded', first > 1000, `first line ${first}`);
  check('at most 1000 lines', (await page.locator('.log-box .line').count()) <= 1000);
  for (let k = 0; k < 5 && await page.isVisible('.log-box .load-earlier'); k++) {
    const before = await page.locator('.log-box .line').count();
    await page.click('.log-box .load-earlier');
    await page.waitForFunction((n) => document.querySelectorAll('.log-box .line').length > n, before);
  }
  check('the earliest line is there', (await page.locator('.log-box .line[data-i="1"]').count()) === 1);
  check('and the first flood line', (await lineText('flood line 1').count()) === 1);
  check('no line twice', (await page.locator('.log-box .line').count()) ===
    Number(await page.getAttribute('.log-box .line >> nth=-1', 'data-i')));
});

await step('pause, resume and stop', async () => {
  await open(`${URL_}/executions/${SLEEPER}`);
  await lineText('tick 3').waitFor();
  await page.click('.log button.pause');
  check('paused', (await page.textContent('.log-state')).includes('paused'));
  const held = await page.locator('.log-box .line').count();
  await page.waitForTimeout(800);
  check('a paused log takes no lines', (await page.locator('.log-box .line').count()) === held);
  await page.click('.log button.pause');
  await page.waitForFunction((n) => document.querySelectorAll('.log-box .line').length > n, held);
  check('resumed, the lines come again', true);
  await page.click('button.stop');
  check('stop asks to confirm', (await page.textContent('button.stop')).includes('again'));
  await page.click('button.stop');
  await page.waitForSelector('.exec-head .status.stopped', {timeout: 30000});
  check('the execution became stopped', true);
  await logEnded();
  await page.locator('.metadata', {hasText: 'printed no metadata'}).waitFor();
  check('the chart panel says there was no metadata', true);
  await shot('05-execution-stopped');
  check('no stop button once stopped', !(await page.isVisible('button.stop')));
});

await step('filter by status', async () => {
  await page.click('nav a[href="/executions"]');
  await page.selectOption('#filter-status', 'stopped');
  await page.waitForFunction(() => document.querySelectorAll('table.executions tbody tr').length === 1);
  check('filter by status', (await page.getAttribute('table.executions tbody tr', 'data-id')) === SLEEPER);
});

await step('environments', async () => {
  await page.click('nav a[href="/environments"]');
  const env = page.locator('.env[data-name="local"]');
  await env.waitFor();
  const text = await env.textContent();
  check('the pool is shown', text.includes('local-process') && text.includes('0–3 workers'), text);
  for (const k of ['busy', 'idle', 'launching', 'queued']) {
    check(`it counts ${k}`, /^\d+$/.test(await env.locator(`[data-count="${k}"] b`).textContent()));
  }
  await shot('06-environments');
});

// The pipelines are made here, after the checks that count executions:
// their nodes are executions too.
let FLOW = null;
let SLOW = null;
await step('pipelines list', async () => {
  FLOW = await api('POST', '/v1/pipelines', {project: PROJECT, pipeline: 'web-flow', snapshot: SNAPSHOT});
  SLOW = await api('POST', '/v1/pipelines', {project: PROJECT, pipeline: 'web-slow', snapshot: SNAPSHOT});
  await page.click('nav a[href="/pipelines"]');
  check('the nav marks Pipelines', (await page.getAttribute('nav a[href="/pipelines"]', 'class')) === 'active');
  const row = page.locator(`table.pipelines tr[data-id="${FLOW.id}"]`);
  await row.waitFor();
  check('both pipelines are listed', (await page.locator('table.pipelines tbody tr').count()) === 2);
  const text = await row.textContent();
  check('a row shows the counter, name and project', text.includes(`#${FLOW.counter}`) &&
    text.includes('web-flow') && text.includes(PROJECT), text);
  check('newest first', (await page.getAttribute('table.pipelines tbody tr >> nth=0', 'data-id')) === SLOW.id);
  // It updates by itself: prep and fit complete, publish waits.
  await page.waitForFunction((id) => {
    const tr = document.querySelector(`table.pipelines tr[data-id="${id}"]`);
    return tr && tr.querySelector('.progress').textContent === '2/3';
  }, FLOW.id, {timeout: 30000});
  check('the nodes done/total follow the pipeline', true);
  check('the status is a badge', (await row.locator('.status').getAttribute('data-status')) === 'started');
  await shot('10-pipelines');
});

await step('pipeline graph and approval', async () => {
  await page.click(`table.pipelines tr[data-id="${FLOW.id}"] a.counter`);
  await page.waitForURL(`**/pipelines/${FLOW.id}`);
  const box = (n) => page.locator(`.pgraph .pnode[data-node="${n}"]`);
  await page.waitForSelector('.pgraph .pnode[data-node="publish"].node-status-approval');
  check('one box per node', (await page.locator('.pgraph .pnode').count()) === 3);
  check('prep is complete', (await box('prep').getAttribute('class')).includes('node-status-complete'));
  check('fit is complete', (await box('fit').getAttribute('class')).includes('node-status-complete'));
  const [bp, bf, bu] = [await box('prep').boundingBox(), await box('fit').boundingBox(), await box('publish').boundingBox()];
  check('columns by depth: prep, fit, publish', bp.x < bf.x && bf.x < bu.x, `${bp.x} ${bf.x} ${bu.x}`);
  const edges = await page.$$eval('.pgraph-edges .edge', (es) => es.map((e) => `${e.dataset.source}>${e.dataset.target}:${e.dataset.kinds}`).sort());
  check('the edges are drawn, with their kinds',
    JSON.stringify(edges) === JSON.stringify(['fit>publish:parameter', 'prep>fit:output→input', 'prep>publish:output→input']),
    JSON.stringify(edges));
  check('an edge has its path and tooltip', (await page.locator('.pgraph-edges .edge[data-source="prep"][data-target="fit"] path').count()) === 1 &&
    (await page.textContent('.pgraph-edges .edge[data-source="prep"][data-target="fit"] title')) === 'prep.output.model* → fit.input.model');
  const api1 = await api('GET', `/v1/pipelines/${FLOW.id}`);
  const node = (p, n) => p.nodes.find((x) => x.name === n);
  for (const n of ['prep', 'fit']) {
    check(`${n}'s box links to its execution`,
      (await box(n).locator(`a[href="/executions/${node(api1, n).execution.id}"]`).count()) > 0);
  }
  check('a box writes no empty value', !/null|undefined/.test(await page.textContent('.pgraph')),
    await page.textContent('.pgraph'));
  const top = await page.locator('.pgraph').boundingBox();
  const label = await page.locator('.pgraph-edges .edge[data-source="prep"][data-target="publish"] text').boundingBox();
  check('the edge around a column keeps its label inside the graph', label.y >= top.y, `${label.y} < ${top.y}`);
  check('a node not yet created links nowhere', (await box('publish').locator('a').count()) === 0);
  check('only the waiting node has Approve and Reject',
    (await page.locator('.pgraph button.approve').count()) === 1 && (await box('publish').locator('button.approve').count()) === 1 &&
    (await box('publish').locator('button.reject').count()) === 1);
  check('the table has a row per node', (await page.locator('table.pnodes tbody tr').count()) === 3);
  check('the table shows the waiting node', (await page.getAttribute('table.pnodes tr[data-node="publish"]', 'data-status')) === 'approval');
  check('the table links an execution', (await page.locator(`table.pnodes tr[data-node="prep"] a[href="/executions/${node(api1, 'prep').execution.id}"]`).count()) === 1);
  check('a running pipeline has a Stop button', await page.isVisible('.exec-head button.stop'));
  await shot('11-pipeline-approval');
  await page.evaluate(() => { window.notReloaded = true; });
  await box('publish').locator('button.approve').click();
  await page.waitForSelector('.pgraph .pnode[data-node="publish"].node-status-complete', {timeout: 30000});
  await page.waitForSelector('.exec-head .status.complete', {timeout: 30000});
  check('approved, the node ran and the pipeline completed, live', await page.evaluate(() => window.notReloaded === true));
  const api2 = await api('GET', `/v1/pipelines/${FLOW.id}`);
  check('the node\'s box now links to its execution',
    (await box('publish').locator(`a[href="/executions/${node(api2, 'publish').execution.id}"]`).count()) > 0);
  check('no Approve once approved', (await page.locator('.pgraph button.approve').count()) === 0);
  check('no Stop once ended', !(await page.isVisible('.exec-head button.stop')));
  await shot('12-pipeline-complete');
  await box('prep').locator('a.exec-link >> nth=0').click();
  await page.waitForURL(`**/executions/${node(api2, 'prep').execution.id}`);
  await page.waitForSelector('.exec-head .status.complete');
  check('a node\'s link opens its execution', true);
});

await step('pipeline stop', async () => {
  await open(`${URL_}/pipelines/${SLOW.counter}`);
  await page.waitForSelector('.pgraph .pnode[data-node="hold"].node-status-started', {timeout: 30000});
  check('a counter opens the pipeline, at its uuid', new URL(page.url()).pathname === `/pipelines/${SLOW.id}`);
  check('a node behind a running one is pending',
    (await page.getAttribute('.pgraph .pnode[data-node="last"]', 'data-status')) === 'pending');
  // It polls while shown, and not once left.
  let polls = 0;
  const count = (req) => { if (new URL(req.url()).pathname === `/v1/pipelines/${SLOW.id}`) polls++; };
  page.on('request', count);
  await page.waitForTimeout(2500);
  check('a running pipeline is fetched every second', polls >= 2, `${polls} fetches`);
  await page.click('nav a[href="/executions"]');
  await page.waitForSelector('table.executions');
  polls = 0;
  await page.waitForTimeout(2500);
  page.off('request', count);
  check('left, its page fetches it no more', polls === 0, `${polls} fetches`);
  await page.goBack();
  await page.waitForSelector('.pgraph .pnode[data-node="hold"].node-status-started');
  await page.click('.exec-head button.stop');
  check('stop asks to confirm', (await page.textContent('.exec-head button.stop')).includes('again'));
  await page.click('.exec-head button.stop');
  await page.waitForSelector('.exec-head .status.stopped', {timeout: 30000});
  check('the pipeline became stopped', true);
  await page.waitForSelector('.pgraph .pnode[data-node="hold"].node-status-stopped', {timeout: 30000});
  check('its running node was stopped', true);
  check('no Stop once stopped', !(await page.isVisible('.exec-head button.stop')));
  await shot('13-pipeline-stopped');
});

await step('sign out', async () => {
  await page.click('button.signout');
  await page.waitForSelector('#signin-token');
  check('signed out, the token is gone', await page.evaluate(() => sessionStorage.getItem('ferry.token') === null));
});

await step('no sign-in without users', async () => {
  await open(`${OPEN_URL}/`);
  await page.waitForSelector('table.executions');
  check('the loopback default shows the app at once', (await page.locator('#signin-token').count()) === 0);
  check('and says so', (await page.textContent('#who')).includes('no sign-in'));
  await shot('07-open-no-signin');
  const row = page.locator(`tr[data-id="${COMMIT_ID}"] td.commit`);
  check('the list shows the commit an execution ran', (await row.textContent()).includes(COMMIT_SHA.slice(0, 7)));
  await open(`${OPEN_URL}/executions/${COMMIT_ID}`);
  await page.waitForSelector('dl.facts .commit-sha');
  check('the details show the short sha', (await page.textContent('dl.facts .commit-sha')) === COMMIT_SHA.slice(0, 7));
  check('the ref as given', (await page.textContent('dl.facts .commit-ref')) === 'main');
  check('the message', (await page.textContent('dl.facts .commit-message')) === 'first: train step');
  check('the author', (await page.textContent('dl.facts')).includes('Ferry Test'));
  await shot('08-commit');
  await page.click('button.rerun');
  await page.waitForFunction((old) => location.pathname.startsWith('/executions/') &&
    !location.pathname.endsWith(old), COMMIT_ID);
  await page.waitForSelector('dl.facts .commit-sha');
  check('Run again opens the copy', !page.url().endsWith(COMMIT_ID));
  check('the copy runs the same commit', (await page.textContent('dl.facts .commit-sha')) === COMMIT_SHA.slice(0, 7));
  await page.waitForSelector('.exec-head .status.complete', {timeout: 30000});
  check('the copy completes', true);
  await shot('09-run-again');
});

check('no script errors on the pages', pageErrors.length === 0, pageErrors.join('; '));
await context.close();
console.log(`test_web.mjs: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
