// drive_card.js PLAN_JSON — drives the relation card page (GET /ui/) in
// Debian's chromium, headless, through playwright-core (NODE_PATH names
// tools/node_modules), for tests/e2e/test_ui.py. PLAN: {url, token,
// relation, side, profile, limit, screenshot}.
//
// Prints JSON lines on stdout:
//   {"step": "card", ...}  once the profile is looked up: whether the page
//       asked for the token, the summary and tops as shown, the related
//       profiles page by page (following Next to the end, then one Previous);
//   then reads one line on stdin, a JSON list of trigger ids, and waits
//   until the live panel shows them all and the summary changed;
//   {"step": "done", ...}  the triggers shown, the summary after, whether
//       the token is kept in sessionStorage; the screenshot is saved.
// Any failure: the message on stderr, exit 1.
'use strict';
const readline = require('readline');
const { chromium } = require('playwright-core');

const plan = JSON.parse(process.argv[2]);
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');

async function summary(page) {
  return page.evaluate(() => {
    const props = {};
    for (const tr of document.querySelectorAll('#summary tbody tr')) {
      props[tr.dataset.property] = {
        count: tr.querySelector('.count').textContent,
        total: tr.querySelector('.total').textContent,
      };
    }
    const tops = {};
    for (const div of document.querySelectorAll('#tops .top')) {
      tops[div.dataset.property] = [...div.querySelectorAll('g')].map(
        (g) => [g.dataset.profile, g.querySelector('text.value').textContent,
                Number(g.querySelector('rect').getAttribute('width'))]);
    }
    return { count: document.getElementById('summary-count').textContent, properties: props,
             tops };
  });
}

const edgeRows = (page) => page.$$eval('#edges tbody tr[data-profile]',
  (rows) => rows.map((r) => r.dataset.profile));

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(30000);
    const consoleErrors = [];
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    await page.goto(plan.url);

    // the token, asked once
    await page.locator('#token-form').waitFor({ state: 'visible' });
    await page.fill('#token', plan.token);
    await page.click('#token-form button');
    await page.waitForFunction((rel) =>
      [...document.querySelectorAll('#relation option')].some((o) => o.value === rel),
      plan.relation);
    const relationsShown = await page.$$eval('#relations .relation', (ds) => ds.map((d) => ({
      short: d.dataset.relation,
      properties: [...d.querySelectorAll('tr[data-property]')].map((t) => t.dataset.property),
      thresholds: [...d.querySelectorAll('ul li')].map((li) => li.textContent),
    })));

    // look up
    await page.selectOption('#edges-limit', String(plan.limit));
    await page.selectOption('#relation', plan.relation);
    await page.selectOption('#side', plan.side);
    await page.fill('#profile', plan.profile);
    await page.click('#lookup-button');
    await page.locator('#card').waitFor({ state: 'visible' });
    const before = await summary(page);

    // the related profiles, page by page
    const pages = [await edgeRows(page)];
    while (!(await page.isDisabled('#edges-next'))) {
      await page.click('#edges-next');
      await page.waitForFunction((n) =>
        document.getElementById('edges-page').textContent === 'page ' + n, pages.length + 1);
      pages.push(await edgeRows(page));
    }
    let back = null;
    if (pages.length > 1) {
      await page.click('#edges-prev');
      await page.waitForFunction((n) =>
        document.getElementById('edges-page').textContent === 'page ' + n, pages.length - 1);
      back = await edgeRows(page);
    }
    await page.waitForFunction(() =>
      document.getElementById('stream-state').textContent === 'live');
    say({ step: 'card', relations: relationsShown, summary: before, pages, back,
          health: await page.$$eval('#health-table tr', (rs) => rs.map((r) => r.dataset.name)) });

    // live triggers: the ids to wait for come on stdin
    const next = await lines.next();
    const ids = JSON.parse(next.value);
    await page.waitForFunction((want) => want.every((id) =>
      document.querySelector('#triggers li[data-trigger-id="' + id + '"]')), ids,
      { timeout: 60000 });
    await page.waitForFunction((count) =>
      document.getElementById('summary-count').textContent !== count, before.count);
    const shown = await page.$$eval('#triggers li[data-trigger-id]', (lis) => lis.map((li) => ({
      id: li.dataset.triggerId, event: li.dataset.eventId, key: li.dataset.key })));
    const after = await summary(page);
    await page.screenshot({ path: plan.screenshot, fullPage: true });
    say({ step: 'done', triggers: shown, summary: after, errors: consoleErrors,
          token_kept: await page.evaluate(() => sessionStorage.getItem('relationd.token')) });
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
