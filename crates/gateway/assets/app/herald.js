// What the customer app (/) and the admin console (/admin) share: calling the GraphQL API
// and saying its errors in words, the signed-in session (kept across reloads, refreshed
// before it expires), live subscriptions over graphql-transport-ws that reconnect, and
// small helpers to build the page (text only: nothing from the API is parsed as HTML).
// Plain ES module, no build step; the gateway serves it from inside the binary.

const ENDPOINT = '/graphql';
const STORE = 'herald.session';

/** An error from the API, in words, with its `extensions.code` when it has one. */
export class ApiError extends Error {
  constructor(message, code = null, details = null) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

/** What a person should read for an error the page could not avoid. */
export function describe(error) {
  if (error instanceof ApiError) return error.message;
  if (error instanceof TypeError) return 'Herald cannot be reached. Check your connection and try again.';
  return String(error?.message ?? error);
}

// ---------------------------------------------------------------------------------------
// The session: the tokens of who is signed in, in localStorage so a reload keeps it and
// every tab shares it.

const listeners = new Set();
let current = load();
let refreshTimer = null;
let refreshing = null;

function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORE) ?? 'null');
    return saved && saved.token && saved.user ? saved : null;
  } catch {
    return null;
  }
}

/** The seconds since the epoch at which a JWT expires, or null. */
function expiry(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), '=')));
    return typeof claims.exp === 'number' ? claims.exp : null;
  } catch {
    return null;
  }
}

function announce(reason) {
  schedule();
  for (const listener of listeners) listener(current, reason);
}

/** Refreshes a little before the access token expires (or signs out cleanly if it cannot). */
function schedule() {
  clearTimeout(refreshTimer);
  refreshTimer = null;
  if (!current) return;
  const exp = expiry(current.token);
  if (exp === null) return;
  const left = exp * 1000 - Date.now();
  // A minute early, or halfway through a short-lived token (one of under two minutes,
  // where a minute early would be now, and again at once after each refresh).
  const wait = Math.max(0, left - 60_000, left / 2);
  refreshTimer = setTimeout(() => session.refresh().catch(() => {}), wait);
}

// Another tab signed in, refreshed or signed out. Signing in there (this tab was signed
// out, or someone else is signed in now) is a sign-in here too, not a refresh.
window.addEventListener('storage', (event) => {
  if (event.key !== STORE) return;
  const before = current;
  current = load();
  if (!current) announce('signed-out');
  else announce(before?.user?.id === current.user.id ? 'refreshed' : 'signed-in');
});

export const session = {
  /** `{ token, refreshToken, user: { id, name, email, role } }`, or null. */
  get current() {
    return current;
  },
  get user() {
    return current?.user ?? null;
  },
  /** Keeps an `AuthPayload` (from sign up, sign in, reset or refresh). */
  keep(payload, reason = 'signed-in') {
    current = { token: payload.token, refreshToken: payload.refreshToken ?? null, user: payload.user };
    localStorage.setItem(STORE, JSON.stringify(current));
    announce(reason);
  },
  /** Updates the signed-in user's details (a name or role read again). */
  updateUser(user) {
    if (!current) return;
    current = { ...current, user: { ...current.user, ...user } };
    localStorage.setItem(STORE, JSON.stringify(current));
  },
  /** Forgets the session; `reason` says why, for the sign-in page to show. */
  end(reason = 'signed-out') {
    current = null;
    localStorage.removeItem(STORE);
    announce(reason);
  },
  /** Calls `listener(session, reason)` whenever the session changes. */
  onChange(listener) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  /**
   * Trades the refresh token for a new pair. Each refresh token is good once and reusing
   * one revokes them all, so tabs take turns (a Web Lock) and a tab that waited uses what
   * the other one got. Ends the session when it cannot be refreshed.
   */
  refresh() {
    if (refreshing) return refreshing;
    const run = async () => {
      const before = current;
      const latest = load();
      if (latest && before && latest.token !== before.token) {
        // Another tab refreshed meanwhile.
        current = latest;
        announce('refreshed');
        return;
      }
      if (!latest?.refreshToken) {
        session.end('expired');
        throw new ApiError('Your session has ended. Sign in again.', 'UNAUTHENTICATED');
      }
      try {
        const data = await request(
          `mutation Refresh($token: String!) { refreshToken(token: $token) { token refreshToken user { id name email role } } }`,
          { token: latest.refreshToken },
          null,
        );
        session.keep(data.refreshToken, 'refreshed');
      } catch (error) {
        if (error instanceof ApiError && error.code) {
          session.end('expired');
          throw new ApiError('Your session has ended. Sign in again.', 'UNAUTHENTICATED');
        }
        // Offline: try again shortly.
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(() => session.refresh().catch(() => {}), 10_000);
        throw error;
      }
    };
    const locked = navigator.locks?.request ? navigator.locks.request('herald-refresh', run) : run();
    refreshing = locked.finally(() => {
      refreshing = null;
    });
    return refreshing;
  },
};
schedule();

// ---------------------------------------------------------------------------------------
// GraphQL over HTTP.

async function request(query, variables, token) {
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(ENDPOINT, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables: variables ?? {} }),
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`Herald answered ${response.status} ${response.statusText || ''} without a readable body. Try again.`.trim());
  }
  const error = body?.errors?.[0];
  if (error) {
    const code = error.extensions?.code ?? null;
    let message = error.message ?? 'Something went wrong.';
    const wait = error.extensions?.retryAfter ?? response.headers.get('retry-after');
    if (code === 'RATE_LIMITED' && wait && !/try again/i.test(message)) message += ` Try again in ${wait} s.`;
    throw new ApiError(message, code, error.extensions ?? null);
  }
  if (!response.ok || !body || !('data' in body)) {
    throw new ApiError(`Herald answered ${response.status}. Try again.`);
  }
  return body.data;
}

/**
 * Runs a query or mutation as the signed-in user (or anonymously) and returns its `data`;
 * throws an `ApiError` in words. A token that expired meanwhile is refreshed once.
 */
export async function gql(query, variables = {}) {
  const token = current?.token ?? null;
  try {
    return await request(query, variables, token);
  } catch (error) {
    if (token && error instanceof ApiError && error.code === 'UNAUTHENTICATED' && current?.refreshToken) {
      await session.refresh();
      return request(query, variables, current?.token ?? null);
    }
    if (token && error instanceof ApiError && error.code === 'UNAUTHENTICATED') {
      session.end('expired');
      throw new ApiError('Your session has ended. Sign in again.', 'UNAUTHENTICATED');
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------
// Live: subscriptions over one graphql-transport-ws connection, carrying the session's
// token. It reconnects (backing off) when the connection drops or the token changes, and
// says so through `onState`, so the page can catch up with what it missed.

export class Live {
  /**
   * `subscriptions`: `{ name: { query, next(data) } }`. `onState(state, reconnected)`:
   * 'connecting', 'open' or 'closed'.
   */
  constructor(subscriptions, onState = () => {}) {
    this.subscriptions = subscriptions;
    this.onState = onState;
    this.socket = null;
    this.attempt = 0;
    this.opened = false;
    this.stopped = true;
    this.timer = null;
    this.unlisten = null;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.unlisten = session.onChange((now, reason) => {
      if (!now) return this.stop();
      if (reason === 'refreshed' || reason === 'signed-in') this.restart();
    });
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.unlisten?.();
    this.unlisten = null;
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, 'bye');
  }

  /** A new connection now (a new token). */
  restart() {
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, 'new token');
    clearTimeout(this.timer);
    this.connect();
  }

  connect() {
    if (this.stopped || !current) return;
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${ENDPOINT}`;
    const socket = new WebSocket(url, 'graphql-transport-ws');
    this.socket = socket;
    this.onState('connecting', this.opened);
    const token = current.token;
    socket.onopen = () => {
      socket.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${token}` } }));
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      switch (message.type) {
        case 'connection_ack': {
          const reconnected = this.opened;
          this.opened = true;
          this.attempt = 0;
          for (const [id, { query }] of Object.entries(this.subscriptions)) {
            socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query } }));
          }
          this.onState('open', reconnected);
          break;
        }
        case 'ping':
          socket.send(JSON.stringify({ type: 'pong' }));
          break;
        case 'next':
          if (message.payload?.data) this.subscriptions[message.id]?.next(message.payload.data);
          break;
        case 'error':
          console.warn('subscription refused', message.id, message.payload);
          break;
        default:
          break;
      }
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.onState('closed', this.opened);
      if (this.stopped) return;
      if (event.code === 4403 && current) {
        // The token expired or was refused: a fresh one, then connect again.
        session.refresh().catch(() => {});
        return;
      }
      this.attempt += 1;
      const wait = Math.min(30_000, 1000 * 2 ** Math.min(this.attempt - 1, 5)) * (0.75 + Math.random() / 2);
      this.timer = setTimeout(() => this.connect(), wait);
    };
  }
}

// ---------------------------------------------------------------------------------------
// Building the page.

/**
 * An element: `h('a', { href: '#/x', class: 'y', onclick }, 'text', child)`. Children are
 * nodes or text (never parsed as HTML); null, false and undefined are skipped.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(name, '');
    } else if (name === 'value' || name === 'checked' || name === 'selected') {
      element[name] = value;
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces what `element` holds. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A paragraph for an error, in words, announced to screen readers. */
export function errorBox(error) {
  return h('p', { class: 'error', role: 'alert' }, describe(error));
}

/** Shows `error` (or clears it, for null) in the `.error` element `box`. */
export function showError(box, error) {
  box.textContent = error ? describe(error) : '';
  if (error) box.setAttribute('role', 'alert');
}

/**
 * Wraps a page's loader so that only the newest call's answer is shown. The loader gets
 * `current` first, a function that tells whether its call is still the newest: an answer
 * that comes back after a newer call began (a filter changed meanwhile, a slow network)
 * is dropped instead of overwriting the newer one.
 */
export function newestOnly(load) {
  let latest = 0;
  return (...args) => {
    const mine = ++latest;
    return load(() => mine === latest, ...args);
  };
}

/**
 * Runs `action` for a form's submit: disables its buttons meanwhile and shows an error in
 * the form's `.error` box (in words) instead of swallowing it.
 */
export function onSubmit(form, action) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const box = form.querySelector('.error') ?? form.insertBefore(h('p', { class: 'error' }), form.firstChild);
    showError(box, null);
    const focused = document.activeElement;
    const buttons = [...form.querySelectorAll('button')];
    for (const button of buttons) button.disabled = true;
    try {
      await action(new FormData(form), form);
    } catch (error) {
      showError(box, error);
    } finally {
      for (const button of buttons) button.disabled = false;
      refocus(focused);
    }
  });
  return form;
}

/**
 * Puts focus back on `element` (a button that was disabled while it worked, which drops
 * focus to the page) unless focus went somewhere else meanwhile or `element` is gone.
 */
export function refocus(element) {
  const lost = !document.activeElement || document.activeElement === document.body;
  if (lost && element instanceof HTMLElement && element.isConnected && element !== document.body) element.focus();
}

/** A labelled field: `field('Email', h('input', { type: 'email', name: 'email' }))`. */
let fieldIds = 0;
export function field(label, control, hint = null) {
  const id = control.id || `f${++fieldIds}`;
  control.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hint && h('p', { id: hintId, class: 'muted small' }, hint));
}

/** A date and time in the user's time zone (their preference; the browser's otherwise). */
export function when(iso, timeZone = null) {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  try {
    return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short', timeZone: timeZone || undefined }).format(date);
  } catch {
    return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(date);
  }
}

/** A `<time>` element for `iso`, shown in `timeZone`. */
export function timeTag(iso, timeZone = null) {
  return h('time', { datetime: iso }, when(iso, timeZone));
}

/** An amount of money. */
export function money(cents, currency = 'USD') {
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

/** Every IANA time zone the browser knows, UTC first. */
export function timeZones() {
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return ['UTC', ...zones.filter((zone) => zone !== 'UTC')];
}

// ---------------------------------------------------------------------------------------
// Routing by the address's fragment (`#/inbox`, `#/orders/<id>`): each page a function.

/**
 * Calls `render(path, parts)` whenever the fragment changes (and now); `fallback` is the
 * path used when there is none.
 */
export function route(render, fallback) {
  const run = () => {
    const path = location.hash.replace(/^#/, '') || fallback;
    // A part that is not valid percent-encoding (`%E0%A4%A`) is taken as it is.
    const decode = (part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part;
      }
    };
    render(path, path.split('/').filter(Boolean).map(decode));
  };
  window.addEventListener('hashchange', run);
  run();
  return run;
}

/** Marks the navigation link of the current section. */
export function markCurrent(nav, section) {
  for (const link of nav.querySelectorAll('a[data-section]')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}
