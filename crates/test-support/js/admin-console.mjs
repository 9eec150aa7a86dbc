// The admin console (/admin) as an admin uses it, in Debian's Chromium (headless): signs
// in, creates and edits a product, moves an order along, opens, replays and discards dead
// letters, composes a promotion and watches its recipients climb without a reload, runs a
// scheduled job; then the page on a phone, a session that ends, and a customer who signs
// in. Prints one JSON line per step (`{"event": "failed", "step", "error", "screenshot"}`
// and exit 1 when one fails, with a screenshot of the page).
// Usage: node admin-console.mjs '{"url": "http://…", "admin": {"email", "password"},
//   "customer": {"email", "password"}, "orderId": "…", "category": "tea", "audience": 3,
//   "product": "…", "timeZone": "Asia/Kolkata" (the admin's), "leadSeconds": 8,
//   "screenshot": "/tmp/…png", "screenshots": "/dir or null"}'
import { launch } from './browser.mjs';
import path from 'node:path';

const options = JSON.parse(process.argv[2]);
const WAIT = { timeout: options.timeoutMs ?? 60000 };
const print = (event) => process.stdout.write(JSON.stringify(event) + '\n');

const browser = await launch(options);
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const pageErrors = [];
const consoleErrors = [];
page.on('pageerror', (error) => pageErrors.push(String(error)));
page.on('console', (message) => {
  if (message.type() === 'error') consoleErrors.push(message.text());
});

async function step(name, run) {
  try {
    const result = await run();
    print({ event: name, ...result });
  } catch (error) {
    const screenshot = options.screenshot ?? path.resolve('admin-console-failure.png');
    await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
    const text = await page.evaluate(() => document.body.innerText.slice(0, 3000)).catch(() => '');
    print({ event: 'failed', step: name, error: String(error), screenshot, url: page.url(), text, pageErrors, consoleErrors });
    await browser.close();
    process.exit(1);
  }
}

/** Every visible control without a label or an accessible name. */
function unlabeled(where) {
  return page.evaluate((where) => {
    const named = (el) =>
      (el.labels && [...el.labels].some((label) => label.textContent.trim())) ||
      el.getAttribute('aria-label')?.trim() ||
      (el.getAttribute('aria-labelledby') && document.getElementById(el.getAttribute('aria-labelledby'))?.textContent.trim()) ||
      (el.tagName === 'BUTTON' && el.textContent.trim());
    return [...document.querySelectorAll('input, select, textarea, button')]
      .filter((el) => el.type !== 'hidden' && el.getClientRects().length > 0)
      .filter((el) => !named(el))
      .map((el) => `${where}: ${el.outerHTML.slice(0, 160)}`);
  }, where);
}

const missingLabels = [];
async function checkLabels(where) {
  missingLabels.push(...(await unlabeled(where)));
}

async function heading() {
  return page.evaluate(() => ({
    text: document.querySelector('main h1')?.textContent ?? null,
    focused: document.activeElement === document.querySelector('main h1'),
  }));
}

async function go(section, ready) {
  await page.click(`nav a[data-section="${section}"]`);
  await page.waitForFunction((s) => location.hash === `#/${s}`, section, WAIT);
  await page.waitForSelector(ready, WAIT);
}

async function shoot(name) {
  if (!options.screenshots) return null;
  const file = path.join(options.screenshots, name);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: file });
  return file;
}

const noHorizontalScroll = () =>
  page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));

await step('signed-in', async () => {
  await page.goto(`${options.url}/admin`);
  await page.waitForSelector('main form input[name="email"]', WAIT);
  const hash = await page.evaluate(() => location.hash);
  await checkLabels('sign-in');
  // A wrong password first: said in words, in the form.
  await page.fill('input[name="email"]', options.admin.email);
  await page.fill('input[name="password"]', `${options.admin.password}-wrong`);
  await page.click('main form button[type="submit"]');
  await page.waitForFunction(() => document.querySelector('main form .error')?.textContent.trim(), null, WAIT);
  const refused = await page.textContent('main form .error');
  await page.fill('input[name="password"]', options.admin.password);
  await page.click('main form button[type="submit"]');
  await page.waitForFunction(() => location.hash === '#/products', null, WAIT);
  await page.waitForSelector('table.products-table, main .blank', WAIT);
  return { hash, refused, heading: await heading(), nav: await page.$$eval('nav a', (links) => links.map((a) => a.textContent)) };
});

await step('product', async () => {
  const name = options.product;
  await page.click('button:has-text("New product")');
  const form = '#new-product form';
  await page.waitForSelector(`${form} input[name="name"]`, WAIT);
  await page.fill(`${form} input[name="name"]`, name);
  await page.fill(`${form} textarea[name="description"]`, 'Loose-leaf, from the browser test');
  await page.fill(`${form} input[name="category"]`, 'tea');
  await page.fill(`${form} input[name="price"]`, 'twelve');
  await page.fill(`${form} input[name="currency"]`, 'eur');
  await page.fill(`${form} input[name="stock"]`, '7');
  await checkLabels('products (new product)');
  await page.click(`${form} button[type="submit"]`);
  await page.waitForFunction((f) => document.querySelector(`${f} .error`)?.textContent.trim(), form, WAIT);
  const badPrice = await page.textContent(`${form} .error`);
  await page.fill(`${form} input[name="price"]`, '25.00');
  await page.click(`${form} button[type="submit"]`);
  const row = `table.products-table tr:has-text("${name}")`;
  await page.waitForSelector(row, WAIT);
  const created = await page.textContent(row);
  // Stock, then an edit of the price.
  await page.fill(`${row} input[aria-label="New stock of ${name}"]`, '3');
  await page.click(`${row} button[aria-label="Set stock of ${name}"]`);
  await page.waitForFunction(
    (n) => [...document.querySelectorAll('table.products-table tr')].some((tr) => tr.textContent.includes(n) && tr.querySelector('td[data-label="Stock"]')?.textContent.trim() === '3'),
    name,
    WAIT,
  );
  // The rows were drawn again; focus is back in this product's stock field.
  const stockFocus = await page
    .waitForFunction(
      (n) => document.activeElement?.getAttribute('aria-label') === `New stock of ${n}` && document.activeElement.closest('tr')?.textContent.includes(n),
      name,
      { timeout: 5000 },
    )
    .then(() => true, () => false);
  await page.click(`${row} button[aria-label="Edit ${name}"]`);
  await page.waitForSelector('tr.editor form input[name="price"]', WAIT);
  await checkLabels('products (edit)');
  await page.fill('tr.editor form input[name="price"]', '19.50');
  await page.click('tr.editor form button[type="submit"]');
  await page.waitForFunction(
    (n) => [...document.querySelectorAll('table.products-table tr')].some((tr) => tr.textContent.includes(n) && tr.querySelector('td[data-label="Price"]')?.textContent.includes('19.50')),
    name,
    WAIT,
  );
  return { badPrice, created, edited: await page.textContent(row), stockFocus };
});

await step('order', async () => {
  await go('orders', `tr[data-id="${options.orderId}"]`);
  const focused = await heading();
  await checkLabels('orders');
  const row = `tr[data-id="${options.orderId}"]`;
  // Placed orders are confirmed at once: the admin ships this one.
  const before = await page.$eval(row, (tr) => tr.dataset.status);
  await page.selectOption(`${row} select`, 'SHIPPED');
  await page.click(`${row} button:has-text("Update")`);
  await page.waitForSelector(`tr[data-id="${options.orderId}"][data-status="SHIPPED"]`, WAIT);
  const status = await page.textContent(`${row} td[data-label="Status"]`);
  // Back to PLACED is not a move the API allows: the refusal in words, in the row.
  await page.selectOption(`${row} select`, 'PLACED');
  await page.click(`${row} button:has-text("Update")`);
  await page.waitForFunction((r) => document.querySelector(`${r} .error`)?.textContent.trim(), row, WAIT);
  const refused = await page.textContent(`${row} .error`);
  // The button, disabled while it asked, has the focus again (it is not dropped).
  const refusedFocus = await page.evaluate((id) => document.activeElement?.closest('tr')?.dataset.id === id && document.activeElement.textContent, options.orderId);
  // The filter by status: no order is delivered; this one is among the shipped.
  await page.selectOption('form.toolbar select[name="status"]', 'DELIVERED');
  await page.waitForSelector('main .blank', WAIT);
  const shipped = await page.textContent('main .blank');
  await page.selectOption('form.toolbar select[name="status"]', 'SHIPPED');
  await page.waitForSelector(row, WAIT);
  return { heading: focused, before, status, refused, shipped, refusedFocus };
});

await step('dead-letters', async () => {
  await go('dead-letters', 'li.letter');
  await page.waitForFunction((n) => document.querySelectorAll('li.letter').length >= n, options.deadLetters ?? 1, WAIT);
  await checkLabels('dead letters');
  const before = await page.$$eval('li.letter', (items) => items.map((li) => li.dataset.id));
  const first = `li.letter[data-id="${before[0]}"]`;
  const facts = await page.textContent(`${first} .letter-facts`);
  const eventType = await page.textContent(`${first} .letter-title`);
  await page.click(`${first} summary:has-text("Payload")`);
  await page.waitForSelector(`${first} details[open] pre`, WAIT);
  const payload = await page.textContent(`${first} pre`);
  const screenshot = await shoot('admin-dead-letters.png');
  // Replayed, it fails again and comes back under a new id (the page looks again).
  await page.click(`${first} button:has-text("Replay")`);
  await page.waitForFunction(() => document.querySelector('main .notice')?.textContent.includes('Replayed 1'), null, WAIT);
  const replayed = await page.textContent('main .notice');
  const back = await page.waitForFunction(
    (ids) => [...document.querySelectorAll('li.letter')].map((li) => li.dataset.id).find((id) => !ids.includes(id)),
    before,
    WAIT,
  );
  const returned = await back.jsonValue();
  const gone = !(await page.$(first));
  // Discarded, after the second step.
  const again = `li.letter[data-id="${returned}"]`;
  await page.click(`${again} button:has-text("Discard")`);
  await page.waitForSelector(`${again} button:has-text("Discard for good?")`, WAIT);
  await checkLabels('dead letters (confirm)');
  await page.click(`${again} button:has-text("Discard for good?")`);
  await page.waitForFunction((id) => !document.querySelector(`li.letter[data-id="${id}"]`) && document.querySelector('main .notice')?.textContent.includes('Discarded'), returned, WAIT);
  const after = await page.$$eval('li.letter', (items) => items.map((li) => li.dataset.id));
  // Replay all in the queue of the letters.
  const queue = await page.getAttribute('li.letter', 'data-queue');
  await page.selectOption('form.toolbar select[name="queue"]', queue);
  await page.waitForSelector(`button:has-text("Replay all in ${queue}")`, WAIT);
  await page.click(`button:has-text("Replay all in ${queue}")`);
  await page.waitForFunction(() => /Replayed \d+ dead/.test(document.querySelector('main .notice')?.textContent ?? ''), null, WAIT);
  const replayedAll = await page.textContent('main .notice');
  // They fail again and come back, new ids all (the page looks again by itself).
  await page.waitForFunction(
    (old) => {
      const ids = [...document.querySelectorAll('li.letter')].map((li) => li.dataset.id);
      return ids.length >= old.length && ids.every((id) => !old.includes(id));
    },
    after,
    WAIT,
  );
  return { before, eventType, facts, payload, replayed, returned, gone, after, queue, replayedAll, screenshot };
});

/** `seconds` from now on the clock of `timeZone`, as a datetime-local input takes it. */
function wallClock(seconds, timeZone) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
      .formatToParts(new Date(Date.now() + seconds * 1000))
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}`;
}

await step('promotion', async () => {
  const navigations = await page.evaluate(() => {
    window.__noReload = true;
    return performance.getEntriesByType('navigation').length;
  });
  await go('promotions', 'form.compose');
  await checkLabels('promotions');
  const zone = await page.textContent('form.compose input[name="sendAt"] ~ p');
  const title = 'Tea week: 20 % off every tea';
  await page.fill('form.compose input[name="title"]', title);
  await page.fill('form.compose textarea[name="body"]', 'Every loose-leaf tea, this week only.');
  await page.fill('form.compose input[name="category"]', options.category);
  await page.waitForSelector(`#audience[data-count="${options.audience}"]`, WAIT);
  const audience = await page.textContent('#audience');
  // What the page shows for the new promotion, every time it changes.
  await page.evaluate((title) => {
    window.__seen = [];
    const record = () => {
      for (const tr of document.querySelectorAll('table.promotions-table tbody tr')) {
        if (!tr.textContent.includes(title)) continue;
        const seen = `${tr.dataset.status} ${tr.querySelector('.recipients')?.textContent}`;
        if (window.__seen.at(-1) !== seen) window.__seen.push(seen);
      }
    };
    new MutationObserver(record).observe(document.querySelector('main'), { childList: true, subtree: true, characterData: true });
  }, title);
  // A few seconds ahead on the admin's clock (their time zone): the list shows it
  // scheduled, then its recipients as it sends, without a reload.
  const sendAt = wallClock(options.leadSeconds ?? 8, options.timeZone);
  // By keyboard: an arrow key chooses "At a time" and focus stays in the radio group.
  await page.focus('form.compose input[name="when"][value="now"]');
  await page.keyboard.press('ArrowDown');
  const arrowed = await page.evaluate(() => ({
    focused: document.activeElement?.value ?? null,
    sendAtEnabled: !document.querySelector('form.compose input[name="sendAt"]').disabled,
  }));
  await page.check('form.compose input[name="when"][value="later"]');
  await page.fill('form.compose input[name="sendAt"]', sendAt);
  await page.click('form.compose button[type="submit"]');
  await page.waitForFunction(() => document.querySelector('main .notice')?.textContent.includes('scheduled'), null, WAIT);
  const scheduled = await page.textContent('main .notice');
  await page.waitForFunction(
    ({ title, audience }) =>
      [...document.querySelectorAll('table.promotions-table tbody tr')].some(
        (tr) => tr.textContent.includes(title) && tr.dataset.status === 'SENT' && tr.querySelector('.recipients')?.textContent === String(audience),
      ),
    { title, audience: options.audience },
    WAIT,
  );
  // Polling stops once nothing is scheduled or sending.
  await page.waitForFunction(() => document.querySelector('main .list')?.dataset.polling === 'false', null, WAIT);
  const seen = await page.evaluate(() => window.__seen);
  const reloaded = await page.evaluate(
    (before) => !(window.__noReload === true && performance.getEntriesByType('navigation').length === before),
    navigations,
  );
  const screenshot = await shoot('admin-promotions.png');
  // Now, to everyone who accepts promotions; a message longer than the list shows.
  await page.fill('form.compose input[name="title"]', 'Autumn teas');
  await page.fill('form.compose textarea[name="body"]', 'The new harvest is in: first-flush darjeelings, green oolongs and a smoky lapsang souchong.');
  await page.waitForSelector('#audience[data-count]', WAIT);
  const everyone = await page.textContent('#audience');
  await page.click('form.compose button[type="submit"]');
  await page.waitForFunction(() => document.querySelector('main .notice')?.textContent.includes('on its way'), null, WAIT);
  const notice = await page.textContent('main .notice');
  await page.waitForSelector('table.promotions-table tr[data-status="SENT"]:has-text("Autumn teas")', WAIT);
  await page.waitForFunction(() => document.querySelector('main .list')?.dataset.polling === 'false', null, WAIT);
  // Every column in view at 1280 px: the long message is cut, the table not widened.
  const tableFits = await page.$eval('main .list .table-wrap', (wrap) => wrap.scrollWidth <= wrap.clientWidth);
  return { title, audience, zone, sendAt, scheduled, seen, reloaded, screenshot, everyone, notice, arrowed, tableFits };
});

await step('job', async () => {
  await go('jobs', 'tr[data-name="order-checks"]');
  await checkLabels('jobs');
  const row = 'tr[data-name="order-checks"]';
  const before = { lastRun: await page.textContent(`${row} .last-run`), outcome: await page.textContent(`${row} .outcome`) };
  await page.click(`${row} button:has-text("Run now")`);
  await page.waitForFunction(
    ({ row, before }) => {
      const tr = document.querySelector(row);
      const outcome = tr?.querySelector('.outcome')?.textContent ?? '';
      return tr && tr.querySelector('.last-run').textContent !== before && outcome !== '—' && outcome !== 'running';
    },
    { row, before: before.lastRun },
    WAIT,
  );
  const after = { lastRun: await page.textContent(`${row} .last-run`), outcome: await page.textContent(`${row} .outcome`) };
  return { before, after, notice: await page.textContent('main .notice') };
});

await step('phone', async () => {
  await page.setViewportSize({ width: 375, height: 740 });
  await go('products', 'table.products-table');
  const products = await noHorizontalScroll();
  await checkLabels('products (phone)');
  await go('dead-letters', 'li.letter');
  const deadLetters = await noHorizontalScroll();
  await page.click('li.letter summary:has-text("Payload")');
  await page.waitForSelector('li.letter details[open] pre', WAIT);
  const withPayload = await noHorizontalScroll();
  await checkLabels('dead letters (phone)');
  await go('orders', 'table.orders-table');
  const orders = await noHorizontalScroll();
  await page.setViewportSize({ width: 1280, height: 800 });
  return { products, deadLetters, withPayload, orders };
});

await step('session-ended', async () => {
  await go('jobs', 'tr[data-name="order-checks"]');
  // Tokens that no longer work: the refresh fails and the session ends.
  await page.evaluate(() => {
    const saved = JSON.parse(localStorage.getItem('herald.session'));
    localStorage.setItem('herald.session', JSON.stringify({ ...saved, token: 'expired.token.here', refreshToken: 'revoked' }));
  });
  await page.reload();
  await page.waitForFunction(() => location.hash === '#/sign-in' && document.querySelector('main')?.textContent.includes('Your session has ended. Sign in again.'), null, WAIT);
  return { text: await page.textContent('main form') };
});

await step('customer', async () => {
  await page.fill('input[name="email"]', options.customer.email);
  await page.fill('input[name="password"]', options.customer.password);
  await page.click('main form button[type="submit"]');
  await page.waitForFunction(() => document.querySelector('main h1')?.textContent.includes('for administrators'), null, WAIT);
  const text = await page.textContent('main');
  const link = await page.getAttribute('main a:has-text("customer app")', 'href');
  const nav = await page.isVisible('nav a');
  await checkLabels('customer');
  // Arriving with the customer's session (as from /): the same page.
  await page.reload();
  await page.waitForFunction(() => document.querySelector('main h1')?.textContent.includes('for administrators'), null, WAIT);
  await page.click('main button:has-text("Sign out")');
  await page.waitForFunction(() => location.hash === '#/sign-in' && document.querySelector('main input[name="email"]'), null, WAIT);
  return { text, link, nav, signedOut: await page.evaluate(() => localStorage.getItem('herald.session')) };
});

const csp = consoleErrors.filter((text) => /Content Security Policy|Refused to/i.test(text));
print({ event: 'done', pageErrors, csp, consoleErrors, missingLabels });
await browser.close();
