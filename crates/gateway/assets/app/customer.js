// The customer app at `/`: a notification centre (the inbox, live), the shop it talks
// about (products, orders, recommendations) and the preference centre. Pages by the
// address's fragment (`#/inbox`, `#/orders/<id>`…); everything through the public GraphQL
// API as the signed-in customer, and everything from it shown as text.

import {
  Live,
  describe,
  errorBox,
  field,
  fill,
  gql,
  h,
  markCurrent,
  money,
  newestOnly,
  onSubmit,
  refocus,
  route,
  session,
  showError,
  timeTag,
  timeZones,
} from './herald.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

const USER = 'id name email role';
const PREFERENCES = 'promotions orderUpdates recommendations inventoryAlerts categories channels timezone quietHoursStart quietHoursEnd';
const NOTIFICATION = 'id type priority title body data read createdAt readAt';
const PRODUCT = 'id name description category priceCents currency stock createdAt';
const PAGE_SIZE = 20;

/** Pages anyone may open; every other one asks to sign in first. */
const PUBLIC = new Set(['sign-in', 'sign-up', 'forgot-password']);

const SECTIONS = [
  ['inbox', 'Inbox'],
  ['products', 'Products'],
  ['orders', 'Orders'],
  ['recommendations', 'For you'],
  ['preferences', 'Preferences'],
];

const KINDS = {
  ORDER_UPDATE: 'Order',
  PROMOTION: 'Offer',
  RECOMMENDATION: 'For you',
  INVENTORY: 'Stock',
  SECURITY: 'Security',
};

const STATUS = {
  PLACED: 'Placed',
  CONFIRMED: 'Confirmed',
  SHIPPED: 'Shipped',
  DELIVERED: 'Delivered',
  CANCELLED: 'Cancelled',
};

/** What the app knows of the signed-in customer; reset when the session ends. */
const state = {
  me: null, // the user with their preferences, once read
  loadingMe: null,
  unread: null,
  live: null,
  catchUpDue: false,
  categories: null, // the catalog's categories, once read
  inbox: null, // the inbox while it shows
  unreadOnly: false,
  flash: null, // a message for the next page: { kind: 'notice' | 'warn', text }
};

/** The user's time zone (their preference), or null for the browser's. */
const zone = () => state.me?.preferences?.timezone ?? null;

// ---------------------------------------------------------------------------------------
// The bar at the top: sections, the live state, the bell with the unread count.

const announcer = h('div', { class: 'visually-hidden', 'aria-live': 'polite' });
document.body.append(announcer);

/** Says `text` to screen readers without moving focus. */
function announce(text) {
  announcer.textContent = '';
  setTimeout(() => {
    announcer.textContent = text;
  }, 50);
}

const liveBox = h('span', { class: 'live', dataset: { state: 'connecting' }, title: 'Live updates' }, 'Connecting…');
const badge = h('span', { class: 'badge', 'aria-hidden': 'true' }, '–');
const bell = h('a', { class: 'bell', href: '#/inbox', 'aria-label': 'Notifications' }, bellIcon(), badge);
const whoName = h('span', { class: 'name' });

function bellIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '20');
  svg.setAttribute('height', '20');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('fill', 'currentColor');
  path.setAttribute(
    'd',
    'M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z',
  );
  svg.append(path);
  return svg;
}

/** Bumped by every count shown: an answer to an older question does not overwrite it. */
let countVersion = 0;

function setUnread(count) {
  if (typeof count !== 'number') return;
  countVersion += 1;
  state.unread = count;
  badge.dataset.count = String(count);
  badge.textContent = count > 99 ? '99+' : String(count);
  bell.setAttribute('aria-label', `Notifications, ${count} unread`);
  const base = document.title.replace(/^\(\d+\+?\) /, '');
  document.title = count > 0 ? `(${count > 99 ? '99+' : count}) ${base}` : base;
}

function setTitle(title) {
  const count = state.unread ?? 0;
  document.title = `${count > 0 ? `(${count > 99 ? '99+' : count}) ` : ''}${title} · Herald`;
}

const LIVE_WORDS = { open: 'Live', connecting: 'Connecting…', closed: 'Offline, reconnecting' };

function setLiveState(value) {
  liveBox.dataset.state = value;
  liveBox.textContent = LIVE_WORDS[value] ?? value;
  liveBox.title =
    value === 'open' ? 'New notifications appear here as they arrive.' : 'Live updates are paused; they resume on their own.';
}

function renderChrome() {
  const user = session.user;
  if (!user) {
    nav.hidden = true;
    fill(nav);
    fill(who);
    return;
  }
  const links = SECTIONS.map(([section, label]) => h('li', {}, h('a', { href: `#/${section}`, dataset: { section } }, label)));
  if (user.role === 'ADMIN') links.push(h('li', {}, h('a', { href: '/admin' }, 'Admin console')));
  fill(nav, h('ul', {}, links));
  nav.hidden = false;
  whoName.textContent = user.name;
  whoName.title = user.email;
  fill(
    who,
    liveBox,
    bell,
    whoName,
    h('button', { type: 'button', class: 'secondary', onclick: () => session.end('signed-out') }, 'Sign out'),
  );
}

// ---------------------------------------------------------------------------------------
// The session: live updates while signed in, the sign-in page when it ends.

async function loadMe() {
  if (state.me) return state.me;
  state.loadingMe ??= gql(`{ getUser { ${USER} createdAt preferences { ${PREFERENCES} } } }`)
    .then((data) => {
      state.me = data.getUser;
      session.updateUser({ name: state.me.name, role: state.me.role });
      return state.me;
    })
    .finally(() => {
      state.loadingMe = null;
    });
  return state.loadingMe;
}

/** Reads the unread count, unless a newer one (pushed live) arrives meanwhile. */
async function refreshCount() {
  const asked = countVersion;
  try {
    const data = await gql('{ getUnreadNotificationsCount }');
    if (asked === countVersion) setUnread(data.getUnreadNotificationsCount);
  } catch (error) {
    console.warn('reading the unread count', describe(error));
  }
}

function startSession() {
  renderChrome();
  state.live?.stop();
  state.live = new Live(
    {
      notification: {
        query: `subscription { notificationReceived { ${NOTIFICATION} } }`,
        next: (data) => received(data.notificationReceived),
      },
      unread: {
        query: 'subscription { unreadCountChanged }',
        next: (data) => {
          setUnread(data.unreadCountChanged);
          // The subscriptions listen now: anything that came before is in a fresh read.
          if (state.catchUpDue) {
            state.catchUpDue = false;
            if (state.inbox) state.inbox.catchUp();
            else refreshCount();
          }
        },
      },
    },
    (value, reconnected) => {
      setLiveState(value);
      if (value !== 'open') return;
      state.catchUpDue = true;
      if (reconnected) {
        refreshCount();
        state.inbox?.catchUp();
        // A page that could not be read while Herald was away is read again.
        if (main.querySelector('[data-load-failed]')) rerender();
      }
    },
  );
  state.live.start();
  refreshCount();
  loadMe().catch((error) => console.warn('reading the profile', describe(error)));
}

function endSession() {
  state.live?.stop();
  Object.assign(state, {
    me: null,
    loadingMe: null,
    unread: null,
    live: null,
    catchUpDue: false,
    categories: null,
    inbox: null,
    unreadOnly: false,
  });
  delete badge.dataset.count;
  badge.textContent = '–';
  setLiveState('connecting');
  renderChrome();
}

/** A notification that just arrived. */
function received(notification) {
  if (!notification) return;
  state.inbox?.arrived(notification);
  announce(`New notification: ${notification.title}`);
}

session.onChange((now, reason) => {
  if (!now) {
    endSession();
    state.flash =
      reason === 'expired'
        ? { kind: 'warn', text: 'Your session has ended. Sign in again.' }
        : { kind: 'notice', text: 'You have signed out.' };
    go('#/sign-in');
    return;
  }
  if (reason !== 'signed-in') return; // refreshed: Live reconnects by itself
  // After the listeners of this change ran (Live's among them).
  queueMicrotask(() => {
    endSession();
    startSession();
    const section = location.hash.replace(/^#\/?/, '').split('/')[0];
    if (!section || PUBLIC.has(section)) go('#/inbox');
    else rerender();
  });
});

/** Opens `hash`, or shows it again when it is the current one. */
function go(hash) {
  if (location.hash === hash) rerender();
  else location.hash = hash;
}

// ---------------------------------------------------------------------------------------
// Pages.

let generation = 0;
let firstRender = true;
let rerender = () => {};

function render(path, parts) {
  const current = ++generation;
  const alive = () => current === generation;
  state.inbox?.dispose();
  state.inbox = null;
  let [section = '', ...rest] = parts;
  if (!session.current) {
    if (!PUBLIC.has(section)) section = 'sign-in';
  } else if (!section || PUBLIC.has(section)) {
    history.replaceState(null, '', '#/inbox');
    section = 'inbox';
    rest = [];
  }
  markCurrent(nav, section);
  main.classList.toggle('signed-out', !session.current);
  const page = PAGES[section] ?? notFound;
  Promise.resolve(page(alive, ...rest)).catch((error) => {
    if (alive()) main.append(loadFailed(error));
  });
  if (!firstRender) {
    window.scrollTo(0, 0);
    main.querySelector('h1')?.focus();
  }
  firstRender = false;
}

/** The page's heading (focused when the page opens) and its title. */
function heading(text) {
  setTitle(text);
  return h('h1', { tabindex: '-1' }, text);
}

function pageHead(title, ...actions) {
  return h('div', { class: 'page-head' }, heading(title), actions.length ? h('div', { class: 'row' }, actions) : null);
}

function takeFlash() {
  const flash = state.flash;
  state.flash = null;
  if (!flash) return null;
  return h('p', { class: flash.kind === 'warn' ? 'notice warn' : 'notice', role: flash.kind === 'warn' ? 'alert' : 'status' }, flash.text);
}

/**
 * What a page says when it could not read what it shows: the error in words and a way to
 * try again. The page is read again by itself when the live connection comes back.
 */
function loadFailed(error) {
  return h(
    'div',
    { class: 'load-failed', dataset: { loadFailed: 'true' } },
    errorBox(error),
    h('button', { type: 'button', class: 'secondary', onclick: () => rerender() }, 'Try again'),
  );
}

function loading(text = 'Loading…') {
  return h('p', { class: 'muted loading', role: 'status' }, text);
}

function notFound() {
  fill(
    main,
    heading('Page not found'),
    h('p', {}, 'There is nothing at this address. ', h('a', { href: '#/inbox' }, 'Go to your inbox'), '.'),
  );
}

// Signing in, up, and asking for a new password --------------------------------------------

function authPage(title, form, ...after) {
  const flash = takeFlash();
  // What the last page said (signed out, session ended) goes once the visitor acts.
  form.addEventListener('submit', () => flash?.remove());
  fill(main, h('div', { class: 'auth' }, heading(title), flash, form, ...after));
}

function signIn() {
  const form = h(
    'form',
    { class: 'card', 'aria-label': 'Sign in' },
    h('p', { class: 'error' }),
    field('Email', h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true })),
    field('Password', h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true })),
    h('div', { class: 'row spread' }, h('button', { type: 'submit' }, 'Sign in'), h('a', { href: '#/forgot-password' }, 'Forgot your password?')),
  );
  onSubmit(form, async (data) => {
    const result = await gql(
      `mutation($input: LoginInput!) { loginUser(input: $input) { token refreshToken user { ${USER} } } }`,
      { input: { email: String(data.get('email')).trim(), password: data.get('password') } },
    );
    session.keep(result.loginUser);
  });
  authPage('Sign in', form, h('p', { class: 'center' }, 'New to Herald? ', h('a', { href: '#/sign-up' }, 'Create an account')));
}

function signUp() {
  const form = h(
    'form',
    { class: 'card', 'aria-label': 'Create an account' },
    h('p', { class: 'error' }),
    field('Name', h('input', { type: 'text', name: 'name', autocomplete: 'name', required: true, maxlength: '100' })),
    field('Email', h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true })),
    field(
      'Password',
      h('input', { type: 'password', name: 'password', autocomplete: 'new-password', required: true, minlength: '8' }),
      'At least 8 characters.',
    ),
    h('button', { type: 'submit' }, 'Create account'),
  );
  onSubmit(form, async (data) => {
    const result = await gql(
      `mutation($input: RegisterUserInput!) { registerUser(input: $input) { token refreshToken user { ${USER} } } }`,
      {
        input: {
          name: String(data.get('name')).trim(),
          email: String(data.get('email')).trim(),
          password: data.get('password'),
        },
      },
    );
    session.keep(result.registerUser);
  });
  authPage('Create your account', form, h('p', { class: 'center' }, 'Already have an account? ', h('a', { href: '#/sign-in' }, 'Sign in')));
}

function forgotPassword() {
  const answer = h('p', { class: 'notice', role: 'status' });
  const form = h(
    'form',
    { class: 'card', 'aria-label': 'Ask for a new password' },
    h('p', { class: 'muted' }, 'Enter the email address of your account. We will send it a link to set a new password.'),
    h('p', { class: 'error' }),
    answer,
    field('Email', h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true })),
    h('button', { type: 'submit' }, 'Send the link'),
  );
  onSubmit(form, async (data) => {
    answer.textContent = '';
    const email = String(data.get('email')).trim();
    await gql('mutation($email: String!) { requestPasswordReset(email: $email) }', { email });
    answer.textContent = `If an account exists for ${email}, an email with a link to set a new password is on its way. The link works for one hour.`;
  });
  authPage('Forgot your password?', form, h('p', { class: 'center' }, h('a', { href: '#/sign-in' }, 'Back to sign in')));
}

// The inbox ---------------------------------------------------------------------------------

function notificationLink(data) {
  if (!data || typeof data !== 'object') return null;
  if (typeof data.orderId === 'string') return h('a', { href: `#/orders/${encodeURIComponent(data.orderId)}` }, 'View order');
  if (typeof data.productId === 'string') return h('a', { href: `#/products/${encodeURIComponent(data.productId)}` }, 'View product');
  return null;
}

function setRead(item, read) {
  item.dataset.read = String(read);
  item.querySelector('.unread-mark')?.remove();
  const button = item.querySelector('button.mark-read');
  if (read && button) button.remove();
}

function inbox(alive) {
  const list = h('ul', { class: 'inbox', 'aria-labelledby': 'inbox-heading' });
  const sentinel = h('div', { class: 'sentinel', 'aria-hidden': 'true' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  const end = h('p', { class: 'muted small center', hidden: true }, 'That is everything.');
  const empty = h('div', { class: 'empty', hidden: true });
  const status = h('p', { class: 'status-line small', role: 'status' });
  const problem = h('p', { class: 'error' });
  const filter = h('input', { type: 'checkbox', id: 'unread-only', checked: state.unreadOnly });
  const markAll = h('button', { type: 'button', class: 'secondary' }, 'Mark all as read');
  const title = heading('Inbox');
  title.id = 'inbox-heading';

  const items = new Map(); // id → li
  let cursor = null;
  let hasNext = false;
  let loaded = false;
  let failed = false; // the first page could not be read (offered again: "Try again")
  let busy = false;
  let disposed = false;

  function item(n) {
    const link = notificationLink(n.data);
    const li = h(
      'li',
      { dataset: { id: n.id, read: String(n.read), type: n.type, created: n.createdAt } },
      h(
        'div',
        { class: 'note' },
        h('p', { class: 'meta' }, h('span', { class: `kind kind-${n.type.toLowerCase().replace('_', '-')}` }, KINDS[n.type] ?? n.type), ' ', timeTag(n.createdAt, zone())),
        h('h2', { class: 'title', tabindex: '-1' }, n.read ? null : h('span', { class: 'visually-hidden unread-mark' }, 'Unread: '), n.title),
        h('p', { class: 'body' }, n.body),
        link && h('p', { class: 'small link' }, link),
      ),
      h(
        'div',
        { class: 'actions' },
        n.read
          ? null
          : h('button', { type: 'button', class: 'secondary compact mark-read', 'aria-label': `Mark “${n.title}” as read`, onclick: () => markRead(n, li) }, 'Mark read'),
      ),
    );
    return li;
  }

  /** Puts `n` where it belongs, newest first (or updates the one shown). */
  function place(n, { onTop = false } = {}) {
    const shown = items.get(n.id);
    if (shown) {
      if (n.read) setRead(shown, true);
      return;
    }
    if (state.unreadOnly && n.read) return;
    const li = item(n);
    items.set(n.id, li);
    if (onTop) {
      list.prepend(li);
    } else {
      const later = [...list.children].find((other) => other.dataset.created < n.createdAt);
      if (later) list.insertBefore(li, later);
      else list.append(li);
    }
  }

  function update() {
    more.hidden = !hasNext && !(failed && !loaded);
    more.textContent = loaded ? 'Load more' : 'Try again';
    end.hidden = hasNext || items.size === 0;
    empty.hidden = !loaded || items.size > 0;
    fill(
      empty,
      h('p', { class: 'empty-title' }, state.unreadOnly ? 'No unread notifications' : 'No notifications yet'),
      h('p', { class: 'muted' }, state.unreadOnly ? 'You are all caught up.' : 'Updates about your orders, offers and products you watch will appear here.'),
    );
  }

  async function query(after) {
    const data = await gql(
      `query($first: Int, $after: String, $unreadOnly: Boolean) { getNotifications(first: $first, after: $after, unreadOnly: $unreadOnly) { nodes { ${NOTIFICATION} } pageInfo { hasNextPage endCursor } totalCount } }`,
      { first: PAGE_SIZE, after, unreadOnly: state.unreadOnly },
    );
    return data.getNotifications;
  }

  /**
   * Reads the next page. `focusNew` (the button was used): focus goes to the first
   * notification it brought, where reading goes on (the button may be gone).
   */
  async function loadMore({ focusNew = false } = {}) {
    if (busy || disposed || (loaded && !hasNext)) return;
    busy = true;
    // Not disabled meanwhile: that would drop the focus of whoever pressed it.
    more.textContent = 'Loading…';
    showError(problem, null);
    try {
      const page = await query(cursor);
      if (disposed || !alive()) return;
      const first = page.nodes.find((n) => !items.has(n.id));
      for (const n of page.nodes) place(n);
      cursor = page.pageInfo.endCursor ?? cursor;
      hasNext = page.pageInfo.hasNextPage;
      loaded = true;
      failed = false;
      list.setAttribute('aria-busy', 'false');
      if (focusNew && first) items.get(first.id)?.querySelector('.title')?.focus();
    } catch (error) {
      failed = true;
      if (alive()) showError(problem, error);
    } finally {
      busy = false;
      if (!disposed) {
        update();
        // The sentinel may still be in view (a tall screen): look again.
        if (hasNext && observer) {
          observer.unobserve(sentinel);
          observer.observe(sentinel);
        }
      }
    }
  }

  async function catchUp() {
    if (disposed) return;
    // The first page never came (Herald could not be reached): read it now.
    if (!loaded) return loadMore();
    try {
      const page = await query(null);
      if (disposed || !alive()) return;
      // Herald answers again: what said it could not be reached no longer holds.
      showError(problem, null);
      for (const n of page.nodes) place(n);
      // What came before the subscriptions listened may not be in the count they sent.
      refreshCount();
      if (items.size === page.nodes.length) {
        cursor = page.pageInfo.endCursor;
        hasNext = page.pageInfo.hasNextPage;
      }
      update();
    } catch (error) {
      console.warn('catching up', describe(error));
    }
  }

  async function markRead(n, li) {
    const button = li.querySelector('button.mark-read');
    if (button) button.disabled = true;
    showError(problem, null);
    try {
      await gql('mutation($id: ID!) { markNotificationAsRead(id: $id) { id read readAt } }', { id: n.id });
      setRead(li, true);
      li.querySelector('.title')?.focus();
      if (typeof state.unread === 'number' && state.unread > 0) setUnread(state.unread - 1);
      refreshCount();
    } catch (error) {
      if (button) button.disabled = false;
      refocus(button);
      showError(problem, error);
    }
  }

  markAll.addEventListener('click', async () => {
    markAll.disabled = true;
    showError(problem, null);
    status.textContent = '';
    try {
      const data = await gql('mutation { markAllNotificationsAsRead }');
      for (const li of items.values()) setRead(li, true);
      setUnread(0);
      const changed = data.markAllNotificationsAsRead;
      status.textContent = changed === 1 ? '1 notification marked as read.' : `${changed} notifications marked as read.`;
      refreshCount();
    } catch (error) {
      showError(problem, error);
    } finally {
      markAll.disabled = false;
      refocus(markAll);
    }
  });

  filter.addEventListener('change', () => {
    state.unreadOnly = filter.checked;
    items.clear();
    list.replaceChildren();
    cursor = null;
    hasNext = false;
    loaded = false;
    update();
    loadMore();
  });
  more.addEventListener('click', () => loadMore({ focusNew: true }));

  const observer =
    'IntersectionObserver' in window
      ? new IntersectionObserver((entries) => {
          if (entries.some((entry) => entry.isIntersecting)) loadMore();
        }, { rootMargin: '400px 0px' })
      : null;

  fill(
    main,
    h(
      'div',
      { class: 'page-head' },
      title,
      h('div', { class: 'row' }, h('label', { class: 'inline', for: 'unread-only' }, filter, 'Unread only'), markAll),
    ),
    problem,
    status,
    h('div', { class: 'card flush' }, list, empty),
    sentinel,
    h('div', { class: 'more' }, more),
    end,
  );
  list.setAttribute('aria-busy', 'true');

  state.inbox = {
    arrived: (n) => {
      if (!loaded) return; // the first read will have it
      place(n, { onTop: true });
      update();
    },
    catchUp,
    dispose: () => {
      disposed = true;
      observer?.disconnect();
    },
  };
  update();
  loadMe()
    .catch(() => null)
    .then(() => {
      if (disposed) return;
      observer?.observe(sentinel);
      return loadMore();
    });
}

// Orders ----------------------------------------------------------------------------------

function statusPill(status) {
  return h('span', { class: 'pill status', dataset: { status } }, STATUS[status] ?? status);
}

/** The order number shoppers see (as in their notifications): the id's last 8 hex digits. */
function shortId(id) {
  return String(id).replace(/-/g, '').slice(-8).toUpperCase();
}

async function orders(alive) {
  const body = h('div', {}, loading('Loading your orders…'));
  fill(main, pageHead('Your orders', h('a', { class: 'button secondary', href: '#/products' }, 'Browse products')), takeFlash(), body);
  await loadMe().catch(() => null);
  let list;
  try {
    const data = await gql('{ myOrders(first: 20) { id status totalCents currency createdAt items { quantity product { name } } } }');
    list = data.myOrders;
  } catch (error) {
    if (alive()) fill(body, loadFailed(error));
    return;
  }
  if (!alive()) return;
  if (list.length === 0) {
    fill(
      body,
      h('div', { class: 'card empty' }, h('p', { class: 'empty-title' }, 'No orders yet'), h('p', { class: 'muted' }, 'When you order something, you can follow it here.')),
    );
    return;
  }
  fill(
    body,
    h(
      'ul',
      { class: 'orders', 'aria-label': 'Orders, newest first' },
      list.map((order) => {
        const names = order.items.map((item) => item.product.name);
        const count = order.items.reduce((sum, item) => sum + item.quantity, 0);
        return h(
          'li',
          { class: 'card order-row', dataset: { id: order.id, status: order.status } },
          h(
            'div',
            { class: 'order-main' },
            h('h2', {}, h('a', { href: `#/orders/${encodeURIComponent(order.id)}` }, `Order #${shortId(order.id)}`)),
            h('p', { class: 'muted small' }, 'Placed ', timeTag(order.createdAt, zone()), ` · ${count} ${count === 1 ? 'item' : 'items'}`),
            h('p', { class: 'small clip' }, names.slice(0, 3).join(', ') + (names.length > 3 ? ` and ${names.length - 3} more` : '')),
          ),
          h('div', { class: 'order-side' }, statusPill(order.status), h('p', { class: 'amount' }, money(order.totalCents, order.currency))),
        );
      }),
    ),
    list.length === 20 ? h('p', { class: 'muted small' }, 'Your 20 most recent orders.') : null,
  );
}

const STEPS = ['PLACED', 'CONFIRMED', 'SHIPPED', 'DELIVERED'];

async function orderPage(alive, id) {
  const flash = takeFlash();
  const body = h('div', {}, loading('Loading the order…'));
  const title = heading(`Order #${shortId(id ?? '')}`);
  fill(main, h('p', { class: 'crumbs small' }, h('a', { href: '#/orders' }, '← All orders')), h('div', { class: 'page-head' }, title), flash, body);
  await loadMe().catch(() => null);

  const show = (order) => {
    if (!order) {
      fill(body, h('div', { class: 'card empty' }, h('p', { class: 'empty-title' }, 'No such order'), h('p', { class: 'muted' }, 'It does not exist, or it is not yours.')));
      return;
    }
    const problem = h('p', { class: 'error' });
    const cancellable = order.status === 'PLACED' || order.status === 'CONFIRMED';
    const cancel = cancellable
      ? h('button', { type: 'button', class: 'danger' }, 'Cancel order')
      : null;
    cancel?.addEventListener('click', async () => {
      cancel.disabled = true;
      showError(problem, null);
      try {
        const data = await gql(`mutation($id: ID!) { cancelOrder(id: $id) { ${ORDER} } }`, { id: order.id });
        if (!alive()) return;
        state.flash = { kind: 'notice', text: 'The order is cancelled.' };
        show(data.cancelOrder);
        body.prepend(takeFlash());
        title.focus();
      } catch (error) {
        cancel.disabled = false;
        refocus(cancel);
        showError(problem, error);
      }
    });
    const reached = STEPS.indexOf(order.status);
    fill(
      body,
      h(
        'section',
        { class: 'card', 'aria-label': 'Status' },
        h('div', { class: 'row spread' }, statusPill(order.status), h('p', { class: 'amount big' }, money(order.totalCents, order.currency))),
        order.status === 'CANCELLED'
          ? h('p', { class: 'muted' }, 'This order was cancelled.')
          : h(
              'ol',
              { class: 'steps' },
              STEPS.map((step, index) =>
                h('li', { dataset: { done: String(index <= reached) }, 'aria-current': index === reached ? 'step' : null }, STATUS[step]),
              ),
            ),
        h(
          'dl',
          { class: 'facts' },
          h('div', {}, h('dt', {}, 'Placed'), h('dd', {}, timeTag(order.createdAt, zone()))),
          h('div', {}, h('dt', {}, 'Last update'), h('dd', {}, timeTag(order.updatedAt, zone()))),
          h('div', {}, h('dt', {}, 'Order number'), h('dd', { class: 'mono' }, order.id)),
        ),
        problem,
        cancel ? h('div', { class: 'row' }, cancel, h('p', { class: 'muted small' }, 'You can cancel until the order ships.')) : null,
      ),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Items'),
        h(
          'table',
          { class: 'stack' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Product'), h('th', { scope: 'col', class: 'num' }, 'Quantity'), h('th', { scope: 'col', class: 'num' }, 'Unit price'), h('th', { scope: 'col', class: 'num' }, 'Subtotal'))),
          h(
            'tbody',
            {},
            order.items.map((item) =>
              h(
                'tr',
                {},
                h('td', { dataset: { label: 'Product' } }, h('a', { href: `#/products/${encodeURIComponent(item.product.id)}` }, item.product.name)),
                h('td', { class: 'num', dataset: { label: 'Quantity' } }, String(item.quantity)),
                h('td', { class: 'num', dataset: { label: 'Unit price' } }, money(item.unitPriceCents, order.currency)),
                h('td', { class: 'num', dataset: { label: 'Subtotal' } }, money(item.unitPriceCents * item.quantity, order.currency)),
              ),
            ),
          ),
          h('tfoot', {}, h('tr', {}, h('th', { scope: 'row', colspan: '3' }, 'Total'), h('td', { class: 'num total', dataset: { label: 'Total' } }, money(order.totalCents, order.currency)))),
        ),
      ),
    );
  };

  try {
    const data = await gql(`query($id: ID!) { order(id: $id) { ${ORDER} } }`, { id });
    if (alive()) show(data.order);
  } catch (error) {
    if (alive()) fill(body, loadFailed(error));
  }
}

const ORDER = 'id status totalCents currency createdAt updatedAt items { quantity unitPriceCents product { id name category } }';

// Products --------------------------------------------------------------------------------

/** The catalog's categories (from its first hundred products), once a session. */
async function catalogCategories() {
  if (state.categories) return state.categories;
  const data = await gql('{ products(first: 100) { nodes { category } } }');
  state.categories = [...new Set(data.products.nodes.map((p) => p.category))].sort((a, b) => a.localeCompare(b));
  return state.categories;
}

/** Records a browsing signal; a failure is said in `line`, and blocks nothing. */
function recordActivity(input, line, what) {
  gql('mutation($input: UserActivityInput!) { createUserActivity(input: $input) }', { input }).catch((error) => {
    if (line.isConnected) line.textContent = `Could not record ${what}: ${describe(error)}`;
  });
}

function stockWords(stock) {
  if (stock <= 0) return 'Out of stock';
  if (stock < 10) return `Only ${stock} left`;
  return 'In stock';
}

const search = { text: '', category: '' };

async function products(alive) {
  const text = h('input', { type: 'search', name: 'search', value: search.text, autocomplete: 'off', placeholder: 'Kettle, beans, …' });
  const category = h('select', { name: 'category' }, h('option', { value: '' }, 'All categories'));
  const form = h(
    'form',
    { class: 'card filters', role: 'search', 'aria-label': 'Search products' },
    h('p', { class: 'error' }),
    h('div', { class: 'filter-row' }, field('Search', text), field('Category', category), h('div', { class: 'field submit' }, h('button', { type: 'submit' }, 'Search'))),
  );
  const summary = h('p', { class: 'muted small', role: 'status' });
  const activity = h('p', { class: 'muted small' });
  const grid = h('ul', { class: 'grid products', 'aria-label': 'Products' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  const problem = h('p', { class: 'error' });
  fill(main, pageHead('Products'), form, summary, activity, problem, grid, h('div', { class: 'more' }, more));

  let cursor = null;
  let busy = false; // a page on its way: "Load more" waits for it, a new search does not

  const load = newestOnly(async (current, reset, { focusNew = false } = {}) => {
    const wanted = { ...search };
    busy = true;
    showError(problem, null);
    if (reset) {
      cursor = null;
      grid.replaceChildren();
      more.hidden = true;
      summary.textContent = 'Loading…';
    }
    try {
      const data = await gql(
        `query($first: Int, $after: String, $category: String, $search: String) { products(first: $first, after: $after, category: $category, search: $search) { nodes { ${PRODUCT} } pageInfo { hasNextPage endCursor } totalCount } }`,
        { first: 24, after: cursor, category: wanted.category || null, search: wanted.text || null },
      );
      if (!alive() || !current()) return;
      const page = data.products;
      const cards = page.nodes.map(productCard);
      grid.append(...cards);
      // "Load more" used: reading goes on at the first product it brought.
      if (focusNew) cards[0]?.querySelector('h2 a')?.focus();
      cursor = page.pageInfo.endCursor;
      more.hidden = !page.pageInfo.hasNextPage;
      summary.textContent =
        page.totalCount === 0
          ? 'No products match.'
          : `${page.totalCount} ${page.totalCount === 1 ? 'product' : 'products'}${wanted.text ? ` for “${wanted.text}”` : ''}${wanted.category ? ` in ${wanted.category}` : ''}.`;
    } catch (error) {
      if (alive() && current()) {
        summary.textContent = '';
        showError(problem, error);
      }
    } finally {
      if (current()) busy = false;
    }
  });

  onSubmit(form, async (data) => {
    search.text = String(data.get('search') ?? '').trim();
    search.category = String(data.get('category') ?? '');
    activity.textContent = '';
    if (search.text) recordActivity({ type: 'SEARCH', query: search.text }, activity, 'this search');
    await load(true);
  });
  more.addEventListener('click', () => busy || load(false, { focusNew: true }));

  catalogCategories()
    .then((names) => {
      if (!alive()) return;
      const all = new Set(names);
      if (search.category) all.add(search.category);
      category.append(...[...all].map((name) => h('option', { value: name }, name)));
      category.value = search.category;
    })
    .catch((error) => console.warn('reading the categories', describe(error)));
  await load(true);
}

function productCard(product) {
  return h(
    'li',
    { class: 'card product', dataset: { id: product.id } },
    h('p', { class: 'pill' }, product.category),
    h('h2', {}, h('a', { href: `#/products/${encodeURIComponent(product.id)}` }, product.name)),
    product.description ? h('p', { class: 'muted small clip2' }, product.description) : null,
    h(
      'div',
      { class: 'row spread product-foot' },
      h('span', { class: 'price' }, money(product.priceCents, product.currency)),
      h('span', { class: `stock small${product.stock <= 0 ? ' out' : ''}` }, stockWords(product.stock)),
    ),
  );
}

async function productPage(alive, id) {
  const body = h('div', {}, loading('Loading the product…'));
  const title = heading('Product');
  fill(main, h('p', { class: 'crumbs small' }, h('a', { href: '#/products' }, '← All products')), title, body);
  const visit = h('p', { class: 'muted small visit' });
  let product;
  try {
    product = (await gql(`query($id: ID!) { product(id: $id) { ${PRODUCT} } }`, { id })).product;
  } catch (error) {
    if (alive()) fill(body, loadFailed(error));
    return;
  }
  if (!alive()) return;
  if (!product) {
    title.textContent = 'No such product';
    setTitle('No such product');
    fill(body, h('p', {}, 'This product does not exist (any more). ', h('a', { href: '#/products' }, 'Browse the others'), '.'));
    return;
  }
  title.textContent = product.name;
  setTitle(product.name);
  recordActivity({ type: 'VIEW', productId: product.id }, visit, 'this visit');

  const quantity = h('input', {
    type: 'number',
    name: 'quantity',
    min: '1',
    max: String(Math.max(1, product.stock)),
    step: '1',
    value: '1',
    inputmode: 'numeric',
    required: true,
  });
  const order = h(
    'form',
    { class: 'order-form', 'aria-label': 'Order this product' },
    h('p', { class: 'error' }),
    h('div', { class: 'row' }, field('Quantity', quantity), h('button', { type: 'submit', disabled: product.stock <= 0 }, 'Place order')),
  );
  onSubmit(order, async (data) => {
    const count = Number(data.get('quantity'));
    if (!Number.isInteger(count) || count < 1) throw new Error('Choose a quantity of at least 1.');
    const result = await gql('mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }', {
      input: { items: [{ productId: product.id, quantity: count }] },
    });
    state.flash = { kind: 'notice', text: 'Thank you: your order is placed. We will tell you when it moves.' };
    location.hash = `#/orders/${encodeURIComponent(result.placeOrder.id)}`;
  });

  const watched = h('p', { class: 'notice', role: 'status' });
  const watchProblem = h('p', { class: 'error' });
  const watch = h('button', { type: 'button', class: 'secondary' }, 'Watch');
  watch.addEventListener('click', async () => {
    watch.disabled = true;
    showError(watchProblem, null);
    try {
      await gql('mutation($id: ID!) { watchProduct(productId: $id) }', { id: product.id });
      watch.textContent = 'Watching';
      watched.textContent = 'You will hear when it is back in stock or its price drops.';
    } catch (error) {
      watch.disabled = false;
      refocus(watch);
      showError(watchProblem, error);
    }
  });

  fill(
    body,
    h(
      'div',
      { class: 'product-page' },
      h(
        'section',
        { class: 'card', 'aria-label': 'About this product' },
        h('p', {}, h('span', { class: 'pill' }, product.category)),
        h('p', { class: 'price big' }, money(product.priceCents, product.currency)),
        h('p', { class: `stock${product.stock <= 0 ? ' out' : ''}` }, product.stock > 0 ? `${stockWords(product.stock)} · ${product.stock} available` : 'Out of stock'),
        product.description ? h('p', { class: 'description' }, product.description) : null,
      ),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'buy-heading' },
        h('h2', { id: 'buy-heading' }, product.stock > 0 ? 'Order' : 'Out of stock'),
        order,
        h('hr'),
        h('h2', {}, 'Alerts'),
        h('p', { class: 'muted small' }, 'Watch it to hear when it is back in stock or cheaper.'),
        watchProblem,
        watched,
        watch,
      ),
    ),
    visit,
  );
}

// Recommendations ---------------------------------------------------------------------------

async function recommendations(alive) {
  const body = h('div', {}, loading('Finding products for you…'));
  fill(main, pageHead('Recommended for you'), h('p', { class: 'muted' }, 'Picked from what you ordered, viewed and the categories you follow.'), body);
  let list;
  try {
    list = (await gql(`{ getRecommendations(limit: 12) { score reason product { ${PRODUCT} } } }`)).getRecommendations;
  } catch (error) {
    if (alive()) fill(body, loadFailed(error));
    return;
  }
  if (!alive()) return;
  if (list.length === 0) {
    fill(
      body,
      h(
        'div',
        { class: 'card empty' },
        h('p', { class: 'empty-title' }, 'Nothing to recommend yet'),
        h('p', { class: 'muted' }, 'Browse or order a few products, or follow some categories in your ', h('a', { href: '#/preferences' }, 'preferences'), '.'),
      ),
    );
    return;
  }
  fill(
    body,
    h(
      'ul',
      { class: 'grid products', 'aria-label': 'Recommendations' },
      list.map(({ product, reason }) => {
        const card = productCard(product);
        card.classList.add('recommendation');
        card.insertBefore(h('p', { class: 'reason small' }, reason), card.querySelector('.product-foot'));
        return card;
      }),
    ),
  );
}

// The preference centre ---------------------------------------------------------------------

const TOPICS = [
  ['orderUpdates', 'Order updates', 'When an order is placed, confirmed, shipped, delivered or cancelled.'],
  ['promotions', 'Offers and promotions', 'Deals in the categories you follow.'],
  ['recommendations', 'Recommendations', 'Products picked for you.'],
  ['inventoryAlerts', 'Stock and price alerts', 'When something you watch is back in stock or cheaper.'],
];

const CHANNELS = [
  ['IN_APP', 'In the app', 'Your inbox here.'],
  ['EMAIL', 'By email', null],
];

function check(name, value, label, checked, hint = null) {
  const input = h('input', { type: 'checkbox', name, value, checked });
  return h('label', { class: 'check' }, input, h('span', {}, h('span', { class: 'check-label' }, label), hint ? h('span', { class: 'muted small check-hint' }, hint) : null));
}

async function preferences(alive) {
  const body = h('div', {}, loading('Loading your preferences…'));
  fill(main, pageHead('Preferences'), takeFlash(), body);
  let me;
  let categories = [];
  try {
    state.me = null;
    me = await loadMe();
    categories = await catalogCategories().catch(() => []);
  } catch (error) {
    if (alive()) fill(body, loadFailed(error));
    return;
  }
  if (!alive()) return;
  const prefs = me.preferences;

  const categoryList = h('div', { class: 'checks columns' });
  const known = new Set();
  const addCategory = (name, checked) => {
    if (known.has(name)) {
      if (checked) for (const input of categoryList.querySelectorAll('input')) if (input.value === name) input.checked = true;
      return;
    }
    known.add(name);
    categoryList.append(check('categories', name, name, checked));
  };
  for (const name of [...new Set([...categories, ...prefs.categories])].sort((a, b) => a.localeCompare(b))) {
    addCategory(name, prefs.categories.includes(name));
  }
  const newCategory = h('input', { type: 'text', maxlength: '64', autocomplete: 'off' });
  const addButton = h('button', { type: 'button', class: 'secondary' }, 'Add');
  const add = () => {
    const name = newCategory.value.trim();
    if (!name) return;
    addCategory(name, true);
    newCategory.value = '';
    newCategory.focus();
  };
  addButton.addEventListener('click', add);
  newCategory.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      add();
    }
  });

  const zoneSelect = h('select', { name: 'timezone' });
  const zones = timeZones();
  if (!zones.includes(prefs.timezone)) zones.unshift(prefs.timezone);
  zoneSelect.append(...zones.map((name) => h('option', { value: name }, name.replace(/_/g, ' '))));
  zoneSelect.value = prefs.timezone;
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const useBrowser =
    browserZone && browserZone !== prefs.timezone && zones.includes(browserZone)
      ? h('button', { type: 'button', class: 'linklike small', onclick: () => (zoneSelect.value = browserZone) }, `Use this device's zone (${browserZone.replace(/_/g, ' ')})`)
      : null;

  const quietStart = h('input', { type: 'time', name: 'quietHoursStart', value: prefs.quietHoursStart ?? '' });
  const quietEnd = h('input', { type: 'time', name: 'quietHoursEnd', value: prefs.quietHoursEnd ?? '' });
  const noQuiet = h(
    'button',
    {
      type: 'button',
      class: 'linklike small',
      onclick: () => {
        quietStart.value = '';
        quietEnd.value = '';
      },
    },
    'No quiet hours',
  );

  const saved = h('p', { class: 'notice', role: 'status' });
  const form = h(
    'form',
    { class: 'preferences', 'aria-label': 'Notification preferences' },
    h(
      'fieldset',
      { class: 'card' },
      h('legend', {}, 'What you hear about'),
      h('div', { class: 'checks' }, TOPICS.map(([name, label, hint]) => check(name, 'on', label, prefs[name], hint))),
      h(
        'label',
        { class: 'check locked' },
        h('input', { type: 'checkbox', checked: true, disabled: true, 'aria-describedby': 'security-hint' }),
        h('span', {}, h('span', { class: 'check-label' }, 'Security notices'), h('span', { id: 'security-hint', class: 'muted small check-hint' }, 'New sign-ins and password changes. They protect your account, so they cannot be switched off.')),
      ),
    ),
    h(
      'fieldset',
      { class: 'card' },
      h('legend', {}, 'How we reach you'),
      h('div', { class: 'checks' }, CHANNELS.map(([value, label, hint]) => check('channels', value, label, prefs.channels.includes(value), hint ?? `At ${me.email}.`))),
    ),
    h(
      'fieldset',
      { class: 'card' },
      h('legend', {}, 'Categories you follow'),
      h('p', { class: 'muted small' }, 'Offers and recommendations come from these.'),
      categoryList,
      h('div', { class: 'row add-category' }, field('Add a category', newCategory), addButton),
    ),
    h(
      'fieldset',
      { class: 'card' },
      h('legend', {}, 'Time'),
      field('Time zone', zoneSelect, 'Dates in Herald and your quiet hours use it.'),
      useBrowser,
      h('div', { class: 'row quiet' }, field('Quiet hours from', quietStart), field('Quiet hours until', quietEnd)),
      h('p', { class: 'muted small' }, 'Notifications that are not urgent wait until quiet hours end. Leave both empty for none. ', noQuiet),
    ),
    h('div', { class: 'save-bar' }, h('p', { class: 'error' }), saved, h('button', { type: 'submit' }, 'Save preferences')),
  );

  onSubmit(form, async (data) => {
    saved.textContent = '';
    const input = {
      categories: data.getAll('categories').map(String),
      channels: data.getAll('channels').map(String),
      timezone: String(data.get('timezone')),
      quietHoursStart: String(data.get('quietHoursStart') ?? '') || null,
      quietHoursEnd: String(data.get('quietHoursEnd') ?? '') || null,
    };
    for (const [name] of TOPICS) input[name] = data.get(name) === 'on';
    const result = await gql(`mutation($input: PreferencesInput!) { updateUserPreferences(input: $input) { ${USER} createdAt preferences { ${PREFERENCES} } } }`, { input });
    state.me = result.updateUserPreferences;
    saved.textContent = `Saved. Dates now show in ${state.me.preferences.timezone.replace(/_/g, ' ')} time.`;
  });
  form.addEventListener('input', () => {
    saved.textContent = '';
  });
  fill(body, form);
}

const PAGES = {
  'sign-in': signIn,
  'sign-up': signUp,
  'forgot-password': forgotPassword,
  inbox,
  orders: (alive, id) => (id ? orderPage(alive, id) : orders(alive)),
  products: (alive, id) => (id ? productPage(alive, id) : products(alive)),
  recommendations,
  preferences,
};

// ---------------------------------------------------------------------------------------

setLiveState('connecting');
if (session.current) startSession();
else renderChrome();
rerender = route(render, '/');
