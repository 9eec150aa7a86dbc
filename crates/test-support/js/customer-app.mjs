// The customer app (/) as a customer uses it, in Debian's Chromium (headless). Prints one
// JSON line per step (the Rust test checks each); a step that fails prints
// {"event":"failed"} and saves a screenshot. Two journeys:
//
// - "journey": forgot password, sign up (the welcome, badge 1), order a product from its
//   page (badge 2 without a reload), the inbox receiving a push live (the caller ships the
//   order after "inbox-open"), a product whose name is markup and one long word (shown as
//   text, wrapped), mark all read, the inbox opened while Herald cannot be reached (it
//   recovers by itself), preferences surviving a reload (focus stays on Save), addresses
//   that lead nowhere, sign out and in again (a second tab follows), a wrong password;
//   labels on every page and no horizontal scroll on a phone.
// - "refresh": sign in with short-lived tokens; after the first token expired an action
//   still works and the live connection receives a push (the caller places an order after
//   "ready-for-push"); then the refresh token is used behind the page's back (as a thief
//   would), and the page, refused its next refresh, says the session ended.
//
// Usage: node customer-app.mjs '{"url": "http://…/", "mode": "journey", …}'
import { launch } from './browser.mjs';
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const options = JSON.parse(process.argv[2]);
const WAIT = options.timeoutMs ?? 45000;
const print = (event) => process.stdout.write(JSON.stringify(event) + '\n');

const browser = await launch(options);
const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', timezoneId: 'Europe/Berlin' });
const page = await context.newPage();

// Every WebSocket of the page passes through here, so the test can drop the connection the
// way a network does and keep it down for a while ('dropping').
let dropping = false;
const sockets = new Set();
await page.routeWebSocket(/\/graphql$/, (socket) => {
  if (dropping) {
    socket.close({ code: 1001, reason: 'the network is down (test)' });
    return;
  }
  socket.connectToServer();
  sockets.add(socket);
});

// What must stay empty: errors thrown in the page, CSP violations, controls without a
// label, pages wider than a phone.
const pageErrors = [];
const violations = [];
const unlabelled = [];
const tooWide = [];
page.on('pageerror', (error) => pageErrors.push(String(error)));
let refreshes = 0;
page.on('request', (request) => {
  if (request.method() === 'POST' && /refreshToken\(token:/.test(request.postData() ?? '')) refreshes += 1;
});
page.on('console', (message) => {
  if (/Content Security Policy|Refused to (load|execute|apply)/i.test(message.text())) violations.push(message.text());
});
await page.addInitScript(() => {
  document.addEventListener('securitypolicyviolation', (event) => {
    console.error(`Content Security Policy violation: ${event.violatedDirective} ${event.blockedURI}`);
  });
});

const fail = async (step, error) => {
  print({ event: 'failed', step, error: String(error?.stack ?? error), pageErrors, violations });
  await page.screenshot({ path: options.screenshot ?? 'customer-app-failure.png', fullPage: true }).catch(() => {});
  await browser.close();
  process.exit(1);
};

/** Runs one step; a failure ends the script with a screenshot. */
async function step(name, action) {
  try {
    return await action();
  } catch (error) {
    await fail(name, error);
  }
}

/** Waits until the caller prints `line` on our stdin (the Rust test did its part). */
const input = createInterface({ input: process.stdin });
const said = [];
const waiters = [];
input.on('line', (line) => {
  said.push(line.trim());
  for (const waiter of waiters.splice(0)) waiter();
});
async function heard(line) {
  const deadline = Date.now() + WAIT;
  while (!said.includes(line)) {
    if (Date.now() > deadline) throw new Error(`the test did not say ${line}`);
    await new Promise((resolve) => {
      waiters.push(resolve);
      setTimeout(resolve, 1000);
    });
  }
}

const screenshots = options.screenshots ?? null;
if (screenshots) mkdirSync(screenshots, { recursive: true });
async function keep(name, review = false, whole = false) {
  if (!screenshots || (review && !options.review)) return;
  await page.evaluate(() => document.activeElement?.blur());
  // The whole page in one window as tall as it (its sticky parts where they belong).
  const size = page.viewportSize();
  if (whole) await page.setViewportSize({ width: size.width, height: await page.evaluate(() => document.documentElement.scrollHeight) });
  await page.screenshot({ path: join(screenshots, name) });
  if (whole) await page.setViewportSize(size);
}

/** Every visible control without a label, on the page as it is now. */
async function checkLabels(where) {
  const missing = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea')]
      .filter((el) => el.type !== 'hidden' && el.getClientRects().length > 0)
      .filter((el) => !(el.labels?.length > 0 || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')))
      .map((el) => el.outerHTML.slice(0, 160)),
  );
  for (const control of missing) unlabelled.push(`${where}: ${control}`);
}

/** Whether the page scrolls sideways at the current size. */
async function checkWidth(where) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  if (scrollWidth > innerWidth) tooWide.push(`${where}: ${scrollWidth} > ${innerWidth}`);
}

const heading = (text) => page.waitForFunction((t) => document.querySelector('main h1')?.textContent.trim() === t, text, { timeout: WAIT });
const badge = () => page.$eval('.top .badge', (b) => ({ count: b.dataset.count ?? null, text: b.textContent, label: b.closest('a').getAttribute('aria-label') }));
const waitBadge = (count) => page.waitForFunction((c) => document.querySelector('.top .badge')?.dataset.count === String(c), count, { timeout: WAIT });
const navigations = () => page.evaluate(() => performance.getEntriesByType('navigation').length);
const stillLoaded = () => page.evaluate(() => window.__noReload === true);
const open = async (section, title) => {
  await page.click(`#nav a[data-section="${section}"]`);
  await heading(title);
};
const items = () =>
  page.$$eval('ul.inbox > li', (lis) =>
    lis.map((li) => ({
      id: li.dataset.id,
      type: li.dataset.type,
      read: li.dataset.read,
      title: li.querySelector('.title').textContent.replace(/^Unread: /, ''),
      kind: li.querySelector('.kind').textContent,
      time: li.querySelector('time').textContent,
      datetime: li.querySelector('time').getAttribute('datetime'),
      link: li.querySelector('.link a')?.getAttribute('href') ?? null,
    })),
  );

async function signIn(email, password) {
  await page.fill('form[aria-label="Sign in"] input[name=email]', email);
  await page.fill('form[aria-label="Sign in"] input[name=password]', password);
  await page.click('form[aria-label="Sign in"] button[type=submit]');
}

if (options.mode === 'refresh') {
  await refreshJourney();
} else if (options.mode === 'scroll') {
  await scrollJourney();
} else {
  await journey();
}
print({ event: 'done', pageErrors, violations, unlabelled, tooWide });
input.close();
await browser.close();
process.exit(0);

async function journey() {
  const { name, email, password, product } = options;

  await step('signed out', async () => {
    await page.goto(options.url);
    await heading('Sign in');
    await checkLabels('sign in');
    print({ event: 'signed-out', nav: await page.$eval('#nav', (n) => n.hidden) });
  });

  await step('forgot password', async () => {
    await page.click('a[href="#/forgot-password"]');
    await heading('Forgot your password?');
    await checkLabels('forgot password');
    await page.fill('form input[name=email]', email);
    await page.click('form button[type=submit]');
    const answer = await page.waitForSelector('form .notice:not(:empty)', { timeout: WAIT });
    print({ event: 'forgot', answer: await answer.textContent() });
  });

  await step('sign up', async () => {
    await page.goto(`${options.url}#/sign-up`);
    await heading('Create your account');
    await checkLabels('sign up');
    await keep('review-sign-up.png', true);
    await page.fill('input[name=name]', name);
    await page.fill('input[name=email]', email);
    await page.fill('input[name=password]', password);
    await page.click('form button[type=submit]');
    await heading('Inbox');
    await page.waitForSelector('ul.inbox > li[data-type="SECURITY"]', { timeout: WAIT });
    await waitBadge(1);
    await checkLabels('inbox');
    print({ event: 'welcome', hash: await page.evaluate(() => location.hash), items: await items(), badge: await badge() });
  });

  // From here on, nothing reloads the page until the preferences say so.
  const loads = await page.evaluate(() => {
    window.__noReload = true;
    return performance.getEntriesByType('navigation').length;
  });

  await step('order', async () => {
    await open('products', 'Products');
    await checkLabels('products');
    await keep('review-products.png', true);
    const link = `ul.products a[href="#/products/${product.id}"]`;
    await page.waitForSelector(link, { timeout: WAIT });
    await page.click(link);
    await heading(product.name);
    await checkLabels('product');
    await keep('review-product.png', true);
    const stock = await page.textContent('.product-page .stock');
    await page.fill('input[name=quantity]', '2');
    await page.click('form[aria-label="Order this product"] button[type=submit]');
    await page.waitForFunction(() => location.hash.startsWith('#/orders/') && document.querySelector('main .status'), null, { timeout: WAIT });
    await checkLabels('order');
    await keep('review-order.png', true);
    const order = await page.evaluate(() => ({
      id: decodeURIComponent(location.hash.slice('#/orders/'.length)),
      status: document.querySelector('main .status').dataset.status,
      total: document.querySelector('main .amount').textContent,
      notice: document.querySelector('main .notice')?.textContent ?? null,
      cancel: Boolean([...document.querySelectorAll('main button')].find((b) => b.textContent === 'Cancel order')),
      visit: document.querySelector('.visit')?.textContent ?? '',
    }));
    print({ event: 'ordered', stock, order });
  });

  await step('the order update, live', async () => {
    // The bell moves while the order page shows; the inbox then has the update.
    await waitBadge(2);
    await open('inbox', 'Inbox');
    await page.waitForSelector('ul.inbox > li[data-type="ORDER_UPDATE"]', { timeout: WAIT });
    print({
      event: 'order-update',
      items: await items(),
      badge: await badge(),
      noReload: await stillLoaded(),
      navigations: (await navigations()) - loads,
    });
  });

  await step('a push into the open inbox', async () => {
    const before = (await items()).length;
    print({ event: 'inbox-open' });
    await heard('shipped');
    await page.waitForFunction((n) => document.querySelectorAll('ul.inbox > li').length > n, before, { timeout: WAIT });
    await waitBadge(3);
    print({
      event: 'pushed',
      items: await items(),
      badge: await badge(),
      live: await page.$eval('.live', (l) => l.dataset.state),
      noReload: await stillLoaded(),
      navigations: (await navigations()) - loads,
    });
    await keep('customer-inbox.png');
  });

  await step('on a phone', async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    await checkWidth('inbox');
    await keep('customer-inbox-phone.png');
    for (const [section, title] of [
      ['products', 'Products'],
      ['orders', 'Your orders'],
      ['recommendations', 'Recommended for you'],
      ['preferences', 'Preferences'],
    ]) {
      await open(section, title);
      await page.waitForSelector('main .loading', { state: 'detached', timeout: WAIT });
      await checkWidth(section);
      await keep(`review-phone-${section}.png`, true);
    }
    await open('orders', 'Your orders');
    await page.click('ul.orders a');
    await page.waitForSelector('main table', { timeout: WAIT });
    await checkWidth('order');
    await keep('review-phone-order.png', true);
    await page.click('main td a');
    await page.waitForSelector('.product-page', { timeout: WAIT });
    await checkWidth('product');
    await keep('review-phone-product.png', true);
    // A product named with markup and one long word: its text, wrapped, nothing run.
    await page.evaluate((id) => {
      location.hash = `#/products/${encodeURIComponent(id)}`;
    }, options.odd.id);
    await heading(options.odd.name);
    await page.waitForSelector('.product-page', { timeout: WAIT });
    await checkWidth('odd product');
    await page.click('.crumbs a');
    await page.waitForSelector(`ul.products li[data-id="${options.odd.id}"]`, { timeout: WAIT });
    await checkWidth('products with the odd one');
    await page.setViewportSize({ width: 1280, height: 800 });
    await open('inbox', 'Inbox');
    print({ event: 'phone', tooWide, xss: await page.evaluate(() => window.__xss ?? null) });
  });

  await step('mark all read', async () => {
    await page.waitForSelector('ul.inbox > li', { timeout: WAIT });
    await page.click('button:has-text("Mark all as read")');
    await waitBadge(0);
    await page.waitForFunction(() => document.querySelectorAll('ul.inbox > li[data-read="false"]').length === 0, null, { timeout: WAIT });
    // The bell is as wide at 10 as at 9 (the bar does not move when the count grows).
    const bellWidths = await page.evaluate(() => {
      const shown = document.querySelector('.top .badge');
      const text = shown.textContent;
      const widths = ['9', '10', '99'].map((count) => {
        shown.textContent = count;
        return shown.closest('a').getBoundingClientRect().width;
      });
      shown.textContent = text;
      return widths;
    });
    print({ event: 'all-read', badge: await badge(), items: await items(), noReload: await stillLoaded(), bellWidths });
  });

  await step('a dropped connection', async () => {
    // The connection drops and stays down while a notification arrives; once it is back,
    // the page catches up from the list without a reload.
    dropping = true;
    for (const socket of sockets) socket.close({ code: 1001, reason: 'the network is down (test)' });
    sockets.clear();
    await page.waitForFunction(() => document.querySelector('.live')?.dataset.state !== 'open', null, { timeout: WAIT });
    const before = (await items()).length;
    print({ event: 'dropped' });
    await heard('delivered');
    // The server has it (asked over HTTP, as the signed-in user) …
    const deadline = Date.now() + WAIT;
    for (;;) {
      const unread = await page.evaluate(async () => {
        const { token } = JSON.parse(localStorage.getItem('herald.session'));
        const response = await fetch('/graphql', {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query: '{ getUnreadNotificationsCount }' }),
        });
        return (await response.json()).data.getUnreadNotificationsCount;
      });
      if (unread > 0) break;
      if (Date.now() > deadline) throw new Error('the delivered update never reached the server');
      await page.waitForTimeout(200);
    }
    // … the page, without its connection, does not.
    const whileDown = { items: (await items()).length, badge: await badge() };
    dropping = false;
    await page.waitForFunction((n) => document.querySelectorAll('ul.inbox > li').length > n, before, { timeout: WAIT });
    await waitBadge(1);
    await page.waitForFunction(() => document.querySelector('.live')?.dataset.state === 'open', null, { timeout: WAIT });
    print({
      event: 'caught-up',
      before,
      whileDown,
      items: await items(),
      badge: await badge(),
      noReload: await stillLoaded(),
      navigations: (await navigations()) - loads,
    });
  });

  await step('the inbox opened while Herald cannot be reached', async () => {
    // Nothing reaches Herald (neither HTTP nor the live connection) while the inbox opens:
    // it says so in words and offers to try again; once Herald answers again the inbox
    // fills by itself, without a reload.
    await page.route('**/graphql', (route) => route.abort('connectionrefused'));
    dropping = true;
    for (const socket of sockets) socket.close({ code: 1001, reason: 'the network is down (test)' });
    sockets.clear();
    await open('products', 'Products');
    await open('inbox', 'Inbox');
    const error = await page.waitForSelector('main .error:not(:empty)', { timeout: WAIT });
    const words = await error.textContent();
    const retry = await page.$eval('.more button', (button) => (button.hidden ? null : button.textContent));
    const live = await page.$eval('.live', (l) => l.textContent);
    await page.unroute('**/graphql');
    dropping = false;
    await page.waitForSelector('ul.inbox > li', { timeout: WAIT });
    await page.waitForFunction(() => !document.querySelector('main .error:not(:empty)'), null, { timeout: WAIT });
    print({
      event: 'offline-inbox',
      error: words,
      retry,
      live,
      items: (await items()).length,
      noReload: await stillLoaded(),
      navigations: (await navigations()) - loads,
    });
  });

  await step('recommendations', async () => {
    await open('recommendations', 'Recommended for you');
    await page.waitForSelector('main .loading', { state: 'detached', timeout: WAIT });
    print({
      event: 'recommendations',
      reasons: await page.$$eval('ul.products .reason', (r) => r.map((p) => p.textContent)),
      empty: await page.$('main .empty').then(Boolean),
    });
    await keep('review-recommendations.png', true);
  });

  await step('preferences', async () => {
    await open('preferences', 'Preferences');
    await page.waitForSelector('form.preferences', { timeout: WAIT });
    await checkLabels('preferences');
    await page.selectOption('select[name=timezone]', 'Asia/Tokyo');
    await page.uncheck('input[name=promotions]');
    await page.click('form.preferences button[type=submit]');
    await page.waitForFunction(() => /Saved/.test(document.querySelector('form.preferences .notice')?.textContent ?? ''), null, { timeout: WAIT });
    // Focus stays on the button (it was disabled while saving, which drops focus).
    const focus = await page.evaluate(() => document.activeElement?.textContent ?? null);
    await keep('customer-preferences.png', false, true);
    const saved = await page.textContent('form.preferences .notice');
    const before = { noReload: await stillLoaded(), navigations: (await navigations()) - loads };
    await page.reload();
    await page.waitForSelector('form.preferences', { timeout: WAIT });
    const after = await page.evaluate(() => ({
      timezone: document.querySelector('select[name=timezone]').value,
      promotions: document.querySelector('input[name=promotions]').checked,
      orderUpdates: document.querySelector('input[name=orderUpdates]').checked,
      security: document.querySelector('label.locked')?.textContent ?? null,
      reloaded: window.__noReload !== true,
    }));
    print({ event: 'preferences', saved, focus, before, after });
  });

  await step('dates in the user zone', async () => {
    await open('inbox', 'Inbox');
    await page.waitForSelector('ul.inbox > li', { timeout: WAIT });
    const dates = await page.$$eval('ul.inbox time', (times) =>
      times.map((t) => ({
        shown: t.textContent,
        tokyo: new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short', timeZone: 'Asia/Tokyo' }).format(new Date(t.getAttribute('datetime'))),
      })),
    );
    print({ event: 'dates', dates });
  });

  await step('keyboard', async () => {
    // A route change puts focus on the page's heading; links and buttons take Tab.
    await page.focus('#nav a[data-section="orders"]');
    await page.keyboard.press('Enter');
    await heading('Your orders');
    const focused = await page.evaluate(() => document.activeElement?.tagName + ':' + document.activeElement?.textContent);
    await page.keyboard.press('Tab');
    const next = await page.evaluate(() => document.activeElement?.tagName);
    print({ event: 'keyboard', focused, next });
  });

  await step('addresses that lead nowhere', async () => {
    const shown = async (hash, selector) => {
      await page.evaluate((h) => {
        location.hash = h;
      }, hash);
      // The page as it ends up: loaded, not still saying what it loads.
      await page.waitForFunction(
        ({ h, selector }) => location.hash === h && document.querySelector(selector) && !document.querySelector('main .loading, main [aria-busy="true"]'),
        { h: hash, selector },
        { timeout: WAIT },
      );
      return (await page.textContent(selector)).trim();
    };
    print({
      event: 'nowhere',
      badEscape: await shown('#/orders/%E0%A4%A', 'main .empty-title'),
      noProduct: await shown('#/products/not-an-id', 'main h1'),
      nonsense: await shown('#/nonsense', 'main h1'),
    });
  });

  await step('sign out and a wrong password', async () => {
    // A second tab of the same browser follows: out with the first, in again with it.
    const other = await context.newPage();
    other.on('pageerror', (error) => pageErrors.push(`second tab: ${error}`));
    await other.goto(options.url);
    await other.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Inbox', null, { timeout: WAIT });
    await page.click('.top button:has-text("Sign out")');
    await heading('Sign in');
    await other.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Sign in', null, { timeout: WAIT });
    const signedOut = await page.textContent('main .notice');
    await signIn(email, `${password}-wrong`);
    const error = await page.waitForSelector('form .error:not(:empty)', { timeout: WAIT });
    const words = await error.textContent();
    await keep('review-wrong-password.png', true);
    await signIn(email, password);
    await heading('Inbox');
    await page.waitForSelector('ul.inbox > li', { timeout: WAIT });
    await keep('review-inbox-end.png', true);
    await other.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Inbox' && document.querySelector('ul.inbox > li'), null, {
      timeout: WAIT,
    });
    const otherTab = { hash: await other.evaluate(() => location.hash), nav: await other.$eval('#nav', (n) => n.hidden) };
    await other.close();
    print({ event: 'signed-in-again', signedOut, error: words, badge: await badge(), otherTab });
  });
}

async function refreshJourney() {
  const { email, password } = options;
  const session = () => page.evaluate(() => JSON.parse(localStorage.getItem('herald.session') ?? 'null'));
  const expiry = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp;

  await step('sign in', async () => {
    await page.goto(options.url);
    await heading('Sign in');
    await signIn(email, password);
    await heading('Inbox');
    await page.waitForSelector('.live[data-state="open"]', { timeout: WAIT });
    await page.evaluate(() => {
      window.__noReload = true;
    });
    const first = await session();
    const started = Date.now();
    refreshes = 0;
    print({ event: 'signed-in', lifetime: expiry(first.token) - Math.floor(Date.now() / 1000) });

    // No sleep: wait until the first token has expired and the page holds a newer one.
    const exp = expiry(first.token);
    await page.waitForFunction(
      ({ exp, token }) => Date.now() > exp * 1000 + 1000 && JSON.parse(localStorage.getItem('herald.session') ?? 'null')?.token !== token,
      { exp, token: first.token },
      { timeout: WAIT, polling: 200 },
    );
    print({ event: 'expired', refreshed: (await session())?.token !== first.token, refreshes, seconds: (Date.now() - started) / 1000 });
  });

  await step('an action after the expiry', async () => {
    await open('preferences', 'Preferences');
    await page.waitForSelector('form.preferences', { timeout: WAIT });
    await page.check('input[name=inventoryAlerts]');
    await page.click('form.preferences button[type=submit]');
    await page.waitForFunction(
      () => /Saved/.test(document.querySelector('form.preferences .notice')?.textContent ?? '') || document.querySelector('form.preferences .error:not(:empty)'),
      null,
      { timeout: WAIT },
    );
    const saved = await page.textContent('form.preferences .notice');
    const error = await page.textContent('form.preferences .error');
    await open('inbox', 'Inbox');
    await page.waitForSelector('ul.inbox > li', { timeout: WAIT });
    await page.waitForSelector('.live[data-state="open"]', { timeout: WAIT });
    print({ event: 'ready-for-push', saved, error });
  });

  await step('a push after the expiry', async () => {
    await page.waitForSelector('ul.inbox > li[data-type="ORDER_UPDATE"]', { timeout: WAIT });
    print({ event: 'pushed', items: await items(), badge: await badge(), noReload: await stillLoaded() });
  });

  await step('the session ends', async () => {
    // Someone else trades the page's refresh token first: its next refresh is refused
    // (a reused token signs the whole family out). Just after the page refreshed, so that
    // the two do not race.
    const before = (await session()).token;
    await page.waitForFunction((token) => JSON.parse(localStorage.getItem('herald.session') ?? 'null')?.token !== token, before, {
      timeout: WAIT,
      polling: 50,
    });
    const { refreshToken } = await session();
    const stolen = await fetch(new URL('/graphql', options.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation($t: String!) { refreshToken(token: $t) { token } }', variables: { t: refreshToken } }),
    }).then((r) => r.json());
    try {
      await heading('Sign in');
    } catch (error) {
      const now = await session();
      throw new Error(
        `${error.message}; the page's refresh token ${now?.refreshToken === refreshToken ? 'is still' : 'is no longer'} the one used behind its back, which answered ${JSON.stringify(stolen).slice(0, 300)}`,
      );
    }
    const message = await page.textContent('main .notice');
    print({ event: 'ended', message, hash: await page.evaluate(() => location.hash), stolen: Boolean(stolen.data), noReload: await stillLoaded() });
  });
}

/** A long inbox: scrolling down loads it page by page (by cursor) to its end; then, by
 * keyboard alone, the unread filter and its "Load more". */
async function scrollJourney() {
  const { email, password } = options;
  await step('sign in', async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(options.url);
    await heading('Sign in');
    await signIn(email, password);
    await heading('Inbox');
    await page.waitForSelector('ul.inbox > li', { timeout: WAIT });
    print({ event: 'first-page', shown: (await items()).length });
  });

  await step('scroll to the end', async () => {
    const pages = [];
    for (;;) {
      if (await page.isVisible('text=That is everything.')) break;
      const before = (await items()).length;
      pages.push(before);
      await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
      await page.waitForFunction(
        (n) => document.querySelectorAll('ul.inbox > li').length > n || [...document.querySelectorAll('main p')].some((p) => p.textContent === 'That is everything.' && !p.hidden),
        before,
        { timeout: WAIT },
      );
    }
    const ids = (await items()).map((item) => item.id);
    print({ event: 'scrolled', ids, pages, noReload: await page.evaluate(() => performance.getEntriesByType('navigation').length) });
  });

  await step('unread only, by keyboard', async () => {
    // Mark the newest read, then only unread ones, and "Load more" with the keyboard.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.focus('ul.inbox > li:first-child button:has-text("Mark read")');
    await page.keyboard.press('Enter');
    await page.waitForSelector('ul.inbox > li:first-child[data-read="true"]', { timeout: WAIT });
    await page.focus('input[type=checkbox]');
    await page.keyboard.press('Space');
    await page.waitForFunction(() => [...document.querySelectorAll('ul.inbox > li')].every((li) => li.dataset.read === 'false'), null, { timeout: WAIT });
    // Settled: a "Load more" to press, or the end of the list.
    const settled = () =>
      page.waitForFunction(
        () =>
          [...document.querySelectorAll('main button')].some((b) => b.textContent === 'Load more' && !b.hidden) ||
          [...document.querySelectorAll('main p')].some((p) => p.textContent === 'That is everything.' && !p.hidden),
        null,
        { timeout: WAIT },
      );
    let presses = 0;
    await settled();
    while (presses < 10 && (await page.isVisible('main button:text-is("Load more")'))) {
      await page.focus('main button:text-is("Load more")');
      await page.keyboard.press('Enter');
      presses += 1;
      await settled();
    }
    print({ event: 'unread', ids: (await items()).map((item) => item.id), reads: (await items()).map((item) => item.read), presses });
  });

  await step('search, watch, order and cancel', async () => {
    // The whole catalog comes slowly (a slow network): the search, sent while it is on its
    // way, is answered first, and the late catalog does not overwrite it.
    let catalogAnswered;
    const catalogLate = new Promise((resolve) => (catalogAnswered = resolve));
    const slowCatalog = async (route) => {
      // The page's first list, with no search (not the categories' list: it has no variables).
      const body = route.request().postDataJSON();
      const variables = body?.variables ?? {};
      const wholeCatalog = body?.query?.includes('products(') && 'search' in variables && !variables.search;
      if (!wholeCatalog) return route.continue();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await route.continue();
      await (await route.request().response())?.finished();
      catalogAnswered();
    };
    await page.route('**/graphql', slowCatalog);
    await open('products', 'Products');
    await page.fill('form[aria-label="Search products"] input[name=search]', options.search);
    await page.press('form[aria-label="Search products"] input[name=search]', 'Enter');
    const onlyTheSearched = (name) => {
      const names = [...document.querySelectorAll('ul.products > li')].map((li) => li.textContent);
      const summary = document.querySelector('main p[role=status]')?.textContent ?? '';
      return names.length === 1 && names[0].includes(name) && summary === `1 product for “${name}”.`;
    };
    await page.waitForFunction(onlyTheSearched, options.search, { timeout: WAIT });
    await catalogLate;
    await page.unroute('**/graphql', slowCatalog);
    await page.waitForTimeout(250); // the page's own handling of the late answer
    if (!(await page.evaluate(onlyTheSearched, options.search))) {
      throw new Error(`the late catalog replaced the search's answer: ${await page.textContent('main p[role=status]')}`);
    }
    const found = await page.$$eval('ul.products > li', (lis) => lis.map((li) => li.textContent));
    await page.click('ul.products > li a');
    await heading(options.search);
    await page.click('button:text-is("Watch")');
    await page.waitForSelector('button:text-is("Watching")', { timeout: WAIT });
    const watched = await page.textContent('.notice[role=status]');
    await page.fill('input[name=quantity]', '1');
    await page.click('form[aria-label="Order this product"] button[type=submit]');
    await page.waitForFunction(() => location.hash.startsWith('#/orders/') && document.querySelector('main .status'), null, { timeout: WAIT });
    const orderId = await page.evaluate(() => decodeURIComponent(location.hash.slice('#/orders/'.length)));
    await page.click('button:text-is("Cancel order")');
    await page.waitForSelector('main .status[data-status="CANCELLED"]', { timeout: WAIT });
    const cancelled = {
      notice: await page.textContent('main .notice'),
      cancelButton: await page.isVisible('button:text-is("Cancel order")'),
    };
    print({ event: 'shopped', found, watched, orderId, cancelled });
  });
}

