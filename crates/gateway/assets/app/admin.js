// The admin console (/admin): products, every customer's orders, promotions with their
// audience and recipients as they send, dead letters, scheduled jobs. It only calls the
// public GraphQL API as the signed-in admin; a customer who signs in is told the console
// is not for them (the API refuses them anyway). Plain ES module over herald.js.

import { ApiError, describe, field, fill, gql, h, markCurrent, money, newestOnly, onSubmit, refocus, route, session, timeTag, when } from './herald.js';

const nav = document.getElementById('nav');
const who = document.getElementById('who');
const main = document.getElementById('main');

const SECTIONS = [
  ['products', 'Products'],
  ['orders', 'Orders'],
  ['promotions', 'Promotions'],
  ['dead-letters', 'Dead letters'],
  ['jobs', 'Scheduled jobs'],
];
const STATUSES = ['PLACED', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'CANCELLED'];
const USER = 'id name email role';

/** The admin's time zone: their preference (read with getUser), else the browser's. */
let timeZone = null;
let timeZoneSource = 'browser';
/** Why the sign-in page is shown (the session ended, the admin signed out). */
let farewell = null;
/** Where to go after signing in. */
let returnTo = null;
/** What the page being shown needs stopped when another one replaces it. */
let leaving = [];
/** Queues seen in dead letters, for the queue filter. */
const queuesSeen = new Set(['notifications.critical', 'notifications.standard']);

function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

function zone() {
  return timeZone || browserZone();
}

function at(iso) {
  return timeTag(iso, zone());
}

// ---------------------------------------------------------------------------------------
// The frame: the sections, who is signed in, the page.

function isAdmin() {
  return session.user?.role === 'ADMIN';
}

function renderFrame(section) {
  if (isAdmin()) {
    fill(
      nav,
      h(
        'ul',
        {},
        SECTIONS.map(([id, label]) => h('li', {}, h('a', { href: `#/${id}`, dataset: { section: id } }, label))),
      ),
    );
    nav.hidden = false;
    markCurrent(nav, section);
  } else {
    fill(nav);
    nav.hidden = true;
  }
  const user = session.user;
  if (user) {
    fill(
      who,
      h('span', { class: 'who-name' }, h('span', { class: 'visually-hidden' }, 'Signed in as '), user.name || user.email),
      h('button', { type: 'button', class: 'secondary', onclick: () => signOut() }, 'Sign out'),
    );
  } else {
    fill(who);
  }
}

function signOut() {
  farewell = 'You have signed out.';
  session.end('signed-out');
}

/** A page: its heading (focused when the route changes) and what follows. */
function page(title, intro, ...children) {
  return [
    h('div', { class: 'console-head' }, h('h1', { tabindex: '-1' }, title), intro && h('p', { class: 'muted' }, intro)),
    ...children,
  ];
}

function notice() {
  return h('p', { class: 'notice', role: 'status' });
}

function errorLine() {
  return h('p', { class: 'error' });
}

function say(box, text) {
  box.textContent = text ?? '';
}

function sayError(box, error) {
  box.textContent = error ? describe(error) : '';
  if (error) box.setAttribute('role', 'alert');
}

/** A `<td>` that reads as "Label: value" when the table is stacked on a phone. */
function cell(label, ...children) {
  return h('td', { 'data-label': label }, h('div', { class: 'cell-body' }, ...children));
}

function numCell(label, ...children) {
  return h('td', { 'data-label': label, class: 'num' }, h('div', { class: 'cell-body' }, ...children));
}

function table(caption, headings, rows, className = '') {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: `stack ${className}`.trim() },
      h('caption', { class: 'visually-hidden' }, caption),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          headings.map((heading) => {
            const [text, numeric] = Array.isArray(heading) ? heading : [heading, false];
            return h('th', { scope: 'col', class: numeric ? 'num' : null }, text);
          }),
        ),
      ),
      h('tbody', {}, rows),
    ),
  );
}

function statusPill(status) {
  return h('span', { class: 'pill state', dataset: { state: status } }, title(status));
}

function title(word) {
  return word ? word.charAt(0) + word.slice(1).toLowerCase() : '';
}

/** The end of an id (ids made at about the same time share their beginning). */
function shortId(id) {
  return String(id).slice(-8);
}

/** Runs `fn` after the user stopped typing for `ms`. */
function debounce(fn, ms) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

/**
 * Calls `load()` every `interval` ms while it returns true, not while the page is hidden
 * (it catches up when shown again), until `stop()`.
 */
class Poll {
  constructor(interval, load) {
    this.interval = interval;
    this.load = load;
    this.timer = null;
    this.wanted = false;
    this.stopped = false;
    this.visibility = () => {
      if (document.hidden) {
        clearTimeout(this.timer);
        this.timer = null;
      } else if (this.wanted) {
        this.schedule(0);
      }
    };
    document.addEventListener('visibilitychange', this.visibility);
  }

  /** Whether to keep going, as the last load said. */
  want(more) {
    this.wanted = more;
    if (more) this.schedule(this.interval);
    else {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  schedule(delay) {
    if (this.stopped || document.hidden || this.timer) return;
    this.timer = setTimeout(async () => {
      this.timer = null;
      if (this.stopped) return;
      let more = true;
      try {
        more = await this.load();
      } catch {
        more = true;
      }
      if (!this.stopped) this.want(more);
    }, delay);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this.visibility);
  }
}

function onLeave(fn) {
  leaving.push(fn);
}

// ---------------------------------------------------------------------------------------
// Signing in; the page a customer sees.

function signInPage() {
  const message = farewell;
  const form = h(
    'form',
    { class: 'card', novalidate: true },
    message && h('p', { class: message.includes('ended') ? 'error' : 'notice', role: 'status' }, message),
    errorLine(),
    field('Email', h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true })),
    field('Password', h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true })),
    h('button', { type: 'submit' }, 'Sign in'),
  );
  onSubmit(form, async (data) => {
    const email = String(data.get('email') ?? '').trim();
    const password = String(data.get('password') ?? '');
    if (!email || !password) throw new ApiError('Enter your email and password.');
    const result = await gql(
      `mutation SignIn($input: LoginInput!) { loginUser(input: $input) { token refreshToken user { ${USER} } } }`,
      { input: { email, password } },
    );
    farewell = null;
    session.keep(result.loginUser);
  });
  return h(
    'div',
    { class: 'narrow centered' },
    page('Sign in to the console', 'For the administrators of this shop.', form),
  );
}

function customerPage() {
  const user = session.user;
  return h(
    'div',
    { class: 'narrow centered' },
    page(
      'This console is for administrators',
      null,
      h(
        'div',
        { class: 'card' },
        h('p', {}, 'This console is for administrators; your account is a customer account', user?.email ? ` (${user.email}).` : '.'),
        h('p', { class: 'muted' }, 'Your orders, notifications and preferences are in the customer app.'),
        h(
          'div',
          { class: 'row' },
          h('a', { class: 'button', href: '/' }, 'Go to the customer app'),
          h('button', { type: 'button', class: 'secondary', onclick: () => signOut() }, 'Sign out'),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------
// Products.

const PRODUCT = 'id name description category priceCents currency stock createdAt';

/** "25", "25.5", "25.00" → 2500; null when it is not an amount. */
function cents(text) {
  const value = String(text ?? '').trim().replace(/^\$/, '');
  if (!/^\d{1,9}(\.\d{1,2})?$/.test(value)) return null;
  const [whole, fraction = ''] = value.split('.');
  return Number(whole) * 100 + Number(fraction.padEnd(2, '0'));
}

function decimal(centsValue) {
  return (centsValue / 100).toFixed(2);
}

function priceOf(data, name = 'price') {
  const value = cents(data.get(name));
  if (value === null) throw new ApiError('Enter the price as an amount such as 25.00 (digits, and at most two after the point).', 'BAD_USER_INPUT');
  return value;
}

function wholeNumber(text, what) {
  const value = String(text ?? '').trim();
  if (!/^\d{1,9}$/.test(value)) throw new ApiError(`Enter the ${what} as a whole number, 0 or more.`, 'BAD_USER_INPUT');
  return Number(value);
}

function productsPage() {
  const state = { search: '', category: '', cursors: [null], index: 0 };
  const list = h('div', { class: 'list', 'aria-live': 'polite', 'aria-busy': 'false' });
  const status = notice();
  const problem = errorLine();

  const search = h(
    'form',
    { class: 'toolbar', role: 'search' },
    field('Search', h('input', { type: 'search', name: 'search', placeholder: 'Name or description' })),
    field('Category', h('input', { type: 'text', name: 'category', placeholder: 'Any' })),
    h('div', { class: 'toolbar-actions' }, h('button', { type: 'submit' }, 'Search')),
  );
  onSubmit(search, async (data) => {
    state.search = String(data.get('search') ?? '').trim();
    state.category = String(data.get('category') ?? '').trim();
    state.cursors = [null];
    state.index = 0;
    await load();
  });

  const createForm = productForm('create', null, async (input) => {
    const result = await gql(`mutation Create($input: ProductInput!) { createProduct(input: $input) { ${PRODUCT} } }`, { input });
    say(status, `Created “${result.createProduct.name}”.`);
    createForm.reset();
    toggle.setAttribute('aria-expanded', 'false');
    createCard.hidden = true;
    state.cursors = [null];
    state.index = 0;
    await load();
  });
  const createCard = h('section', { class: 'card', id: 'new-product', hidden: true, 'aria-labelledby': 'new-product-title' }, h('h2', { id: 'new-product-title' }, 'New product'), createForm);
  const toggle = h(
    'button',
    {
      type: 'button',
      'aria-expanded': 'false',
      'aria-controls': 'new-product',
      onclick: () => {
        const open = createCard.hidden;
        createCard.hidden = !open;
        toggle.setAttribute('aria-expanded', String(open));
        if (open) createForm.querySelector('input')?.focus();
      },
    },
    'New product',
  );

  const load = newestOnly(async (current) => {
    list.setAttribute('aria-busy', 'true');
    sayError(problem, null);
    try {
      const data = await gql(
        `query Products($first: Int, $after: String, $category: String, $search: String) {
          products(first: $first, after: $after, category: $category, search: $search) { nodes { ${PRODUCT} } pageInfo { hasNextPage endCursor } totalCount }
        }`,
        { first: 20, after: state.cursors[state.index], category: state.category || null, search: state.search || null },
      );
      if (current()) show(data.products);
    } catch (error) {
      if (current()) sayError(problem, error);
    } finally {
      if (current()) list.setAttribute('aria-busy', 'false');
    }
  });

  function show(connection) {
    const { nodes, pageInfo, totalCount } = connection;
    if (pageInfo.hasNextPage) state.cursors[state.index + 1] = pageInfo.endCursor;
    const first = state.index * 20 + 1;
    const rows = nodes.map((product) => productRow(product, status, load));
    fill(
      list,
      nodes.length === 0
        ? h('p', { class: 'blank' }, state.search || state.category ? 'No product matches.' : 'No products yet. Add the first one with “New product”.')
        : table('Products', ['Name', 'Category', ['Price', true], ['Stock', true], 'Actions'], rows, 'products-table'),
      h(
        'div',
        { class: 'pager' },
        h('p', { class: 'muted small' }, nodes.length ? `${first}–${first + nodes.length - 1} of ${totalCount}` : `${totalCount} in all`),
        h(
          'div',
          { class: 'row' },
          h('button', { type: 'button', class: 'secondary', disabled: state.index === 0, onclick: () => { state.index -= 1; load(); } }, 'Previous page'),
          h('button', { type: 'button', class: 'secondary', disabled: !pageInfo.hasNextPage, onclick: () => { state.index += 1; load(); } }, 'Next page'),
        ),
      ),
    );
  }

  load();
  return page('Products', 'What the shop sells: prices, stock and details.', h('div', { class: 'page-actions' }, toggle), status, createCard, search, problem, list);
}

/** The form to create a product (every field) or edit one (no currency, no stock). */
function productForm(kind, product, save) {
  const creating = kind === 'create';
  const form = h(
    'form',
    { class: 'product-form', novalidate: true },
    errorLine(),
    h(
      'div',
      { class: 'form-grid' },
      field('Name', h('input', { type: 'text', name: 'name', required: true, value: product?.name ?? '' })),
      field('Category', h('input', { type: 'text', name: 'category', required: true, value: product?.category ?? '' }), 'For example “kitchen” or “tea”.'),
      field('Price', h('input', { type: 'text', name: 'price', inputmode: 'decimal', required: true, value: product ? decimal(product.priceCents) : '', placeholder: '25.00' }), creating ? 'An amount such as 25.00.' : `In ${product.currency}.`),
      creating && field('Currency', h('input', { type: 'text', name: 'currency', value: 'USD', maxlength: '3', autocapitalize: 'characters' }), 'Three letters, e.g. USD or EUR.'),
      creating && field('Stock', h('input', { type: 'number', name: 'stock', min: '0', step: '1', required: true, value: '0' })),
    ),
    field('Description', h('textarea', { name: 'description', rows: '3' }, product?.description ?? '')),
    h('div', { class: 'row' }, h('button', { type: 'submit' }, creating ? 'Create product' : 'Save changes')),
  );
  // What the form goes back to when reset.
  for (const input of form.querySelectorAll('input')) input.defaultValue = input.value;
  onSubmit(form, async (data) => {
    const name = String(data.get('name') ?? '').trim();
    const category = String(data.get('category') ?? '').trim();
    if (!name) throw new ApiError('Give the product a name.', 'BAD_USER_INPUT');
    if (!category) throw new ApiError('Give the product a category.', 'BAD_USER_INPUT');
    const input = { name, category, priceCents: priceOf(data), description: String(data.get('description') ?? '') };
    if (creating) {
      const currency = String(data.get('currency') ?? '').trim().toUpperCase() || 'USD';
      if (!/^[A-Z]{3}$/.test(currency)) throw new ApiError('Enter the currency as three letters, such as USD.', 'BAD_USER_INPUT');
      input.currency = currency;
      input.stock = wholeNumber(data.get('stock'), 'stock');
    }
    await save(input);
  });
  return form;
}

function productRow(product, status, reload) {
  const stock = h('input', { type: 'number', min: '0', step: '1', name: 'stock', value: String(product.stock), 'aria-label': `New stock of ${product.name}` });
  const stockForm = h('form', { class: 'inline-form' }, stock, h('button', { type: 'submit', class: 'secondary', 'aria-label': `Set stock of ${product.name}` }, 'Set'));
  onSubmit(stockForm, async () => {
    const value = wholeNumber(stock.value, 'stock');
    const result = await gql('mutation Stock($id: ID!, $stock: Int!) { setStock(productId: $id, stock: $stock) { id name stock } }', { id: product.id, stock: value });
    say(status, `Stock of “${result.setStock.name}” is now ${result.setStock.stock}.`);
    await reload();
    // The rows were drawn again: focus goes where it was, in this product's new row.
    main.querySelector(`tr[data-id="${CSS.escape(product.id)}"] input[name="stock"]`)?.focus();
  });
  const editButton = h('button', { type: 'button', class: 'secondary', 'aria-expanded': 'false', 'aria-label': `Edit ${product.name}` }, 'Edit');
  const row = h(
    'tr',
    { dataset: { id: product.id } },
    cell('Name', h('span', { class: 'strong' }, product.name), product.description && h('span', { class: 'muted small block clamp' }, product.description)),
    cell('Category', h('span', { class: 'pill' }, product.category)),
    numCell('Price', money(product.priceCents, product.currency)),
    numCell('Stock', h('span', { class: product.stock === 0 ? 'out' : null }, product.stock === 0 ? 'Out of stock' : String(product.stock))),
    cell('Actions', h('div', { class: 'row-actions' }, editButton, stockForm)),
  );
  let editor = null;
  editButton.addEventListener('click', () => {
    if (editor) {
      editor.remove();
      editor = null;
      editButton.setAttribute('aria-expanded', 'false');
      return;
    }
    const form = productForm('edit', product, async (input) => {
      const result = await gql(
        `mutation Update($id: ID!, $input: ProductUpdateInput!) { updateProduct(id: $id, input: $input) { ${PRODUCT} } }`,
        { id: product.id, input },
      );
      say(status, `Saved “${result.updateProduct.name}”.`);
      await reload();
    });
    form.append(h('button', { type: 'button', class: 'secondary', onclick: () => editButton.click() }, 'Cancel'));
    form.querySelector('.row')?.append(form.lastChild);
    editor = h('tr', { class: 'editor' }, h('td', { colspan: '5' }, h('h2', { class: 'small-heading' }, `Edit “${product.name}”`), form));
    row.after(editor);
    editButton.setAttribute('aria-expanded', 'true');
    form.querySelector('input')?.focus();
  });
  return row;
}

// ---------------------------------------------------------------------------------------
// Orders.

const ORDER = 'id userId status totalCents currency createdAt updatedAt items { quantity product { id name } }';

function ordersPage() {
  const list = h('div', { class: 'list', 'aria-live': 'polite' });
  const status = notice();
  const problem = errorLine();
  let filter = '';

  const filterForm = h(
    'form',
    { class: 'toolbar' },
    field(
      'Status',
      h('select', { name: 'status' }, h('option', { value: '' }, 'Every status'), STATUSES.map((s) => h('option', { value: s }, title(s)))),
    ),
    h('div', { class: 'toolbar-actions' }, h('button', { type: 'submit' }, 'Show')),
  );
  filterForm.querySelector('select').addEventListener('change', () => filterForm.requestSubmit());
  onSubmit(filterForm, async (data) => {
    filter = String(data.get('status') ?? '');
    await load();
  });

  const lookup = h(
    'form',
    { class: 'toolbar' },
    field('Find an order by id', h('input', { type: 'text', name: 'id', autocomplete: 'off', spellcheck: 'false' })),
    h('div', { class: 'toolbar-actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Find')),
  );
  onSubmit(lookup, async (data) => {
    const id = String(data.get('id') ?? '').trim();
    if (!id) throw new ApiError('Enter an order id.', 'BAD_USER_INPUT');
    const result = await gql(`query Order($id: ID!) { order(id: $id) { ${ORDER} } }`, { id });
    if (!result.order) throw new ApiError(`There is no order ${id}.`, 'NOT_FOUND');
    show([result.order], `Order ${shortId(id)}`);
  });

  const load = newestOnly(async (current) => {
    sayError(problem, null);
    try {
      const data = await gql(`query Orders($status: OrderStatus) { orders(first: 20, status: $status) { ${ORDER} } }`, { status: filter || null });
      if (current()) show(data.orders, null);
    } catch (error) {
      if (!current()) return;
      sayError(problem, error);
      fill(list);
    }
  });

  function show(orders, label) {
    const rows = orders.map((order) => orderRow(order, status, load));
    fill(
      list,
      label && h('p', { class: 'muted small' }, `Showing ${label}. `, h('button', { type: 'button', class: 'linklike', onclick: () => load() }, 'Show the latest orders again')),
      orders.length === 0
        ? h('p', { class: 'blank' }, filter ? `No ${title(filter).toLowerCase()} orders.` : 'No orders yet.')
        : table('Orders, newest first', ['Order', 'Placed', 'Items', ['Total', true], 'Status', 'Change status'], rows, 'orders-table'),
    );
  }

  load();
  return page('Orders', 'Every customer’s orders, newest first. Move an order along: placed → confirmed → shipped → delivered, or cancel it.', status, h('div', { class: 'toolbars' }, filterForm, lookup), problem, list);
}

function orderRow(order, status, reload) {
  const select = h(
    'select',
    { name: 'status', 'aria-label': `New status of order ${shortId(order.id)}` },
    STATUSES.map((s) => h('option', { value: s, selected: s === order.status }, title(s))),
  );
  const next = { PLACED: 'CONFIRMED', CONFIRMED: 'SHIPPED', SHIPPED: 'DELIVERED' }[order.status];
  if (next) select.value = next;
  const problem = errorLine();
  const form = h('form', { class: 'inline-form' }, select, h('button', { type: 'submit', 'aria-label': `Update order ${shortId(order.id)}` }, 'Update'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    sayError(problem, null);
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      const result = await gql('mutation Status($id: ID!, $status: OrderStatus!) { updateOrderStatus(id: $id, status: $status) { id status } }', {
        id: order.id,
        status: select.value,
      });
      say(status, `Order ${shortId(order.id)} is now ${title(result.updateOrderStatus.status).toLowerCase()}.`);
      await reload();
      // The rows were drawn again: focus goes to this order's new status choice.
      main.querySelector(`tr[data-id="${CSS.escape(order.id)}"] select[name="status"]`)?.focus();
    } catch (error) {
      sayError(problem, error);
    } finally {
      button.disabled = false;
      refocus(button);
    }
  });
  const items = order.items.map((item) => `${item.quantity} × ${item.product?.name ?? 'a product'}`).join(', ');
  return h(
    'tr',
    { dataset: { id: order.id, status: order.status } },
    cell('Order', h('code', { title: order.id }, shortId(order.id)), h('span', { class: 'muted small block' }, 'Customer ', h('code', { title: order.userId }, shortId(order.userId)))),
    cell('Placed', at(order.createdAt)),
    cell('Items', h('span', { class: 'wrap' }, items || '—')),
    numCell('Total', money(order.totalCents, order.currency)),
    cell('Status', statusPill(order.status), order.updatedAt !== order.createdAt && h('span', { class: 'muted small block' }, 'since ', at(order.updatedAt))),
    cell('Change status', form, problem),
  );
}

// ---------------------------------------------------------------------------------------
// Promotions.

/** The instant (UTC) at which the wall time `local` ("2026-05-01T09:30[:15]") is in `tz`. */
function zonedToUtc(local, tz) {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(local);
  if (!match) return null;
  const [, y, mo, d, hh, mi, ss] = match.map((part) => Number(part ?? 0));
  const wall = Date.UTC(y, mo - 1, d, hh, mi, ss);
  const offset = (instant) => {
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
        .formatToParts(new Date(instant))
        .map((p) => [p.type, p.value]),
    );
    const shown = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour % 24, +parts.minute, +parts.second);
    return shown - instant;
  };
  let instant = wall - offset(wall);
  instant = wall - offset(instant);
  return new Date(instant);
}

function promotionsPage() {
  const audience = h('p', { class: 'audience', 'aria-live': 'polite', id: 'audience' }, 'Counting the audience…');
  const status = notice();
  const list = h('div', { class: 'list' });
  const listState = h('p', { class: 'muted small status-line', 'aria-live': 'off' });
  const problem = errorLine();
  let audienceAsked = 0;

  const category = h('input', { type: 'text', name: 'category', placeholder: 'Every customer', autocomplete: 'off' });
  const sendAt = h('input', { type: 'datetime-local', name: 'sendAt', step: '1', disabled: true });
  const now = h('input', { type: 'radio', name: 'when', value: 'now', checked: true });
  now.defaultChecked = true;
  const later = h('input', { type: 'radio', name: 'when', value: 'later' });
  // The time field opens for "At a time"; focus stays in the radio group (arrow keys go
  // on choosing), and the field is the next stop for Tab.
  const pickWhen = () => {
    sendAt.disabled = !later.checked;
  };
  now.addEventListener('change', pickWhen);
  later.addEventListener('change', pickWhen);

  const form = h(
    'form',
    { class: 'card compose', novalidate: true },
    h('h2', {}, 'Compose a promotion'),
    errorLine(),
    field('Title', h('input', { type: 'text', name: 'title', required: true, maxlength: '200' })),
    field('Message', h('textarea', { name: 'body', required: true, rows: '3' })),
    field('Category', category, 'Only customers who bought in, browsed or chose this category. Leave empty for every customer who accepts promotions.'),
    audience,
    h(
      'fieldset',
      {},
      h('legend', {}, 'Send'),
      h('label', { class: 'inline' }, now, 'Now'),
      h('label', { class: 'inline' }, later, 'At a time'),
      field('Send at', sendAt, `Your time zone: ${zone()}${timeZoneSource === 'preference' ? ' (from your preferences)' : ''}.`),
    ),
    h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Send promotion')),
  );

  const countAudience = debounce(async () => {
    const asked = ++audienceAsked;
    const value = category.value.trim();
    try {
      const data = await gql('query Audience($category: String) { promotionAudience(category: $category) }', { category: value || null });
      if (asked !== audienceAsked) return;
      const n = data.promotionAudience;
      audience.dataset.count = String(n);
      say(audience, `This promotion would reach ${n} ${n === 1 ? 'customer' : 'customers'}${value ? ` interested in “${value}”` : ''}.`);
    } catch (error) {
      if (asked !== audienceAsked) return;
      delete audience.dataset.count;
      say(audience, describe(error));
    }
  }, 300);
  category.addEventListener('input', () => {
    delete audience.dataset.count;
    say(audience, 'Counting the audience…');
    countAudience();
  });
  onLeave(() => countAudience.cancel());

  onSubmit(form, async (data) => {
    const input = {
      title: String(data.get('title') ?? '').trim(),
      body: String(data.get('body') ?? '').trim(),
      category: category.value.trim() || null,
      sendAt: null,
    };
    if (!input.title) throw new ApiError('Give the promotion a title.', 'BAD_USER_INPUT');
    if (!input.body) throw new ApiError('Write the promotion’s message.', 'BAD_USER_INPUT');
    if (later.checked) {
      const instant = sendAt.value ? zonedToUtc(sendAt.value, zone()) : null;
      if (!instant || Number.isNaN(instant.getTime())) throw new ApiError('Choose the date and time to send it, or send it now.', 'BAD_USER_INPUT');
      input.sendAt = instant.toISOString().replace(/\.\d{3}Z$/, 'Z');
    }
    const result = await gql('mutation Promote($input: PromotionInput!) { createPromotion(input: $input) { id title status sendAt } }', { input });
    const created = result.createPromotion;
    say(status, created.status === 'SCHEDULED' && later.checked ? `“${created.title}” is scheduled for ${when(created.sendAt, zone())}.` : `“${created.title}” is on its way.`);
    form.reset();
    sendAt.disabled = true;
    countAudience();
    await load();
  });

  const poll = new Poll(2000, () => load());
  onLeave(() => poll.stop());

  async function load() {
    try {
      const data = await gql('query Promotions { promotions(first: 20) { id title body category sendAt status recipients } }');
      sayError(problem, null);
      show(data.promotions);
      const active = data.promotions.some((p) => p.status === 'SCHEDULED' || p.status === 'SENDING');
      list.dataset.polling = String(active);
      say(listState, active ? 'Updating every 2 seconds while a promotion is scheduled or sending.' : 'Up to date.');
      poll.want(active);
      return active;
    } catch (error) {
      sayError(problem, error);
      return true;
    }
  }

  function show(promotions) {
    fill(
      list,
      promotions.length === 0
        ? h('p', { class: 'blank' }, 'No promotions yet.')
        : table(
            'Promotions, newest first',
            ['Promotion', 'Category', 'Send at', 'Status', ['Recipients', true]],
            promotions.map((p) =>
              h(
                'tr',
                { dataset: { id: p.id, status: p.status } },
                cell('Promotion', h('span', { class: 'strong' }, p.title), h('span', { class: 'muted small block clamp' }, p.body)),
                cell('Category', p.category ? h('span', { class: 'pill' }, p.category) : h('span', { class: 'muted' }, 'Everyone')),
                cell('Send at', at(p.sendAt)),
                cell('Status', statusPill(p.status)),
                numCell('Recipients', h('span', { class: 'recipients' }, String(p.recipients))),
              ),
            ),
            'promotions-table',
          ),
    );
  }

  countAudience();
  load();
  return page(
    'Promotions',
    'Tell customers about an offer, now or later; see whom it reaches.',
    status,
    h('div', { class: 'split' }, form, h('section', { 'aria-labelledby': 'sent-title', class: 'sent' }, h('h2', { id: 'sent-title' }, 'Promotions, newest first'), listState, problem, list)),
  );
}

// ---------------------------------------------------------------------------------------
// Dead letters.

function deadLettersPage() {
  const list = h('div', { class: 'list' });
  const status = notice();
  const problem = errorLine();
  let queue = '';
  let settle = null;

  const select = h('select', { name: 'queue' });
  const typed = h('input', { type: 'text', name: 'typed', placeholder: 'e.g. orders', autocomplete: 'off', spellcheck: 'false' });
  function queueOptions() {
    const chosen = select.value || queue;
    fill(select, h('option', { value: '' }, 'All queues'), [...queuesSeen].sort().map((q) => h('option', { value: q }, q)));
    select.value = queuesSeen.has(chosen) ? chosen : '';
  }
  queueOptions();
  const replayAll = h('button', { type: 'button', class: 'secondary' }, 'Replay all');
  const filter = h(
    'form',
    { class: 'toolbar' },
    field('Queue', select),
    field('Or another queue', typed),
    h('div', { class: 'toolbar-actions' }, h('button', { type: 'submit' }, 'Show'), h('button', { type: 'button', class: 'secondary', onclick: () => load() }, 'Refresh'), replayAll),
  );
  select.addEventListener('change', () => {
    typed.value = '';
    filter.requestSubmit();
  });
  onSubmit(filter, async () => {
    queue = typed.value.trim() || select.value;
    await load();
  });
  function labelReplayAll() {
    replayAll.textContent = queue ? `Replay all in ${queue}` : 'Replay all';
  }
  replayAll.addEventListener('click', async () => {
    replayAll.disabled = true;
    sayError(problem, null);
    try {
      const data = await gql('mutation ReplayAll($queue: String) { replayAllDeadLetters(queue: $queue) }', { queue: queue || null });
      const n = data.replayAllDeadLetters;
      say(status, `Replayed ${n} dead ${n === 1 ? 'letter' : 'letters'}${queue ? ` from ${queue}` : ''}. Any that fail again come back here.`);
      await load();
      watchReturns();
    } catch (error) {
      sayError(problem, error);
    } finally {
      replayAll.disabled = false;
    }
  });

  /** After a replay, looks again a few times: a message that fails again comes back. */
  function watchReturns() {
    settle?.stop();
    let left = 8;
    settle = new Poll(1500, async () => {
      await load();
      left -= 1;
      return left > 0;
    });
    settle.want(true);
  }
  onLeave(() => settle?.stop());

  const load = newestOnly(async (current) => {
    labelReplayAll();
    try {
      const data = await gql(
        'query DeadLetters($queue: String) { deadLetters(queue: $queue, first: 50) { id queue eventType error attempts failedAt payload } }',
        { queue: queue || null },
      );
      if (!current()) return;
      sayError(problem, null);
      let grew = false;
      for (const letter of data.deadLetters) {
        if (!queuesSeen.has(letter.queue)) {
          queuesSeen.add(letter.queue);
          grew = true;
        }
      }
      if (grew) queueOptions();
      show(data.deadLetters);
    } catch (error) {
      if (current()) sayError(problem, error);
    }
  });

  const open = new Set();
  function show(letters) {
    fill(
      list,
      h('p', { class: 'muted small' }, letters.length === 0 ? '' : `${letters.length} ${letters.length === 1 ? 'dead letter' : 'dead letters'}${queue ? ` in ${queue}` : ''}, newest first.`),
      letters.length === 0
        ? h('p', { class: 'blank' }, queue ? `No dead letters in ${queue}.` : 'No dead letters. Every message was handled.')
        : h('ul', { class: 'letters' }, letters.map((letter) => letterItem(letter))),
    );
  }

  function letterItem(letter) {
    const actions = h('div', { class: 'row letter-actions' });
    const replay = h('button', { type: 'button', class: 'secondary', 'aria-label': `Replay ${letter.eventType} ${shortId(letter.id)}` }, 'Replay');
    const discard = h('button', { type: 'button', class: 'danger', 'aria-label': `Discard ${letter.eventType} ${shortId(letter.id)}` }, 'Discard');
    const act = async (button, run) => {
      for (const b of actions.querySelectorAll('button')) b.disabled = true;
      sayError(problem, null);
      try {
        await run();
      } catch (error) {
        sayError(problem, error);
        for (const b of actions.querySelectorAll('button')) b.disabled = false;
      }
    };
    replay.addEventListener('click', () =>
      act(replay, async () => {
        await gql('mutation Replay($id: ID!) { replayDeadLetter(id: $id) }', { id: letter.id });
        say(status, `Replayed 1 dead letter (${letter.eventType}). If it fails again it comes back here.`);
        await load();
        watchReturns();
      }),
    );
    const confirmStep = () => {
      const sure = h('button', { type: 'button', class: 'danger solid', 'aria-label': `Discard for good? ${letter.eventType} ${shortId(letter.id)}` }, 'Discard for good?');
      const keep = h('button', { type: 'button', class: 'secondary' }, 'Keep it');
      sure.addEventListener('click', () =>
        act(sure, async () => {
          await gql('mutation Discard($id: ID!) { discardDeadLetter(id: $id) }', { id: letter.id });
          say(status, `Discarded a dead letter (${letter.eventType}).`);
          await load();
        }),
      );
      keep.addEventListener('click', () => {
        fill(actions, replay, discard);
        discard.focus();
      });
      fill(actions, sure, keep);
      sure.focus();
    };
    discard.addEventListener('click', confirmStep);
    fill(actions, replay, discard);
    const payload = h(
      'details',
      { class: 'payload', open: open.has(letter.id) },
      h('summary', {}, 'Payload'),
      h('pre', { tabindex: '0', 'aria-label': `Payload of ${letter.eventType}` }, JSON.stringify(letter.payload, null, 2)),
    );
    payload.addEventListener('toggle', () => (payload.open ? open.add(letter.id) : open.delete(letter.id)));
    return h(
      'li',
      { class: 'card letter', dataset: { id: letter.id, queue: letter.queue } },
      h('div', { class: 'row spread' }, h('h2', { class: 'letter-title' }, h('code', {}, letter.eventType)), h('span', { class: 'pill' }, letter.queue)),
      h(
        'dl',
        { class: 'letter-facts' },
        h('div', {}, h('dt', {}, 'Error'), h('dd', { class: 'letter-error' }, letter.error)),
        h('div', {}, h('dt', {}, 'Attempts'), h('dd', {}, String(letter.attempts))),
        h('div', {}, h('dt', {}, 'Failed at'), h('dd', {}, at(letter.failedAt))),
        h('div', {}, h('dt', {}, 'Id'), h('dd', {}, h('code', {}, letter.id))),
      ),
      payload,
      actions,
    );
  }

  load();
  return page('Dead letters', 'Messages no consumer could handle after every retry. Replay them once the cause is fixed, or discard them.', status, filter, problem, list);
}

// ---------------------------------------------------------------------------------------
// Scheduled jobs.

function jobsPage() {
  const list = h('div', { class: 'list' });
  const status = notice();
  const problem = errorLine();
  let watch = null;

  async function load() {
    try {
      const data = await gql('query Jobs { scheduledJobs { name schedule nextRunAt lastRunAt lastOutcome } }');
      sayError(problem, null);
      show(data.scheduledJobs);
      return data.scheduledJobs;
    } catch (error) {
      sayError(problem, error);
      return null;
    }
  }

  function show(jobs) {
    fill(
      list,
      jobs.length === 0
        ? h('p', { class: 'blank' }, 'No scheduled jobs.')
        : table(
            'Scheduled jobs',
            ['Job', 'Schedule', 'Next run', 'Last run', 'Last outcome', 'Run'],
            jobs.map((job) => {
              const run = h('button', { type: 'button', class: 'secondary', 'aria-label': `Run now: ${job.name}` }, 'Run now');
              run.addEventListener('click', () => runNow(job, run));
              const outcome = job.lastOutcome ?? '';
              return h(
                'tr',
                { dataset: { name: job.name } },
                cell('Job', h('span', { class: 'strong' }, job.name)),
                cell('Schedule', job.schedule ? h('code', {}, job.schedule) : h('span', { class: 'muted' }, 'Only when run by hand')),
                cell('Next run', job.nextRunAt ? at(job.nextRunAt) : '—'),
                cell('Last run', h('span', { class: 'last-run' }, job.lastRunAt ? at(job.lastRunAt) : 'Never')),
                cell(
                  'Last outcome',
                  h('span', { class: 'outcome', dataset: { kind: outcome.startsWith('error') ? 'error' : outcome.startsWith('ok') ? 'ok' : outcome ? 'other' : 'none' } }, outcome || '—'),
                ),
                cell('Run', run),
              );
            }),
            'jobs-table',
          ),
    );
  }

  async function runNow(job, button) {
    button.disabled = true;
    sayError(problem, null);
    try {
      await gql('mutation Run($name: String!) { runScheduledJob(name: $name) }', { name: job.name });
      say(status, `${job.name} started. Its last run updates here when it finishes.`);
      const before = job.lastRunAt;
      watch?.stop();
      let left = 30;
      watch = new Poll(1000, async () => {
        const jobs = await load();
        const now = jobs?.find((j) => j.name === job.name);
        left -= 1;
        const done = now && now.lastRunAt && now.lastRunAt !== before && now.lastOutcome !== 'running';
        if (done) say(status, `${job.name} ran at ${when(now.lastRunAt, zone())}: ${now.lastOutcome ?? 'no outcome'}.`);
        return !done && left > 0;
      });
      watch.want(true);
    } catch (error) {
      sayError(problem, error);
      button.disabled = false;
    }
  }
  onLeave(() => watch?.stop());

  load();
  return page(
    'Scheduled jobs',
    `What runs on its own, and when. Times in ${zone()}.`,
    h('div', { class: 'page-actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => load() }, 'Refresh')),
    status,
    problem,
    list,
  );
}

// ---------------------------------------------------------------------------------------
// Routing.

const PAGES = {
  products: productsPage,
  orders: ordersPage,
  promotions: promotionsPage,
  'dead-letters': deadLettersPage,
  jobs: jobsPage,
};

let shownOnce = false;

function render(path, parts) {
  for (const stop of leaving) stop();
  leaving = [];
  const section = parts[0] ?? 'products';
  if (!session.current) {
    if (section !== 'sign-in') {
      returnTo = PAGES[section] ? `#/${section}` : null;
      location.replace('#/sign-in');
      return;
    }
    renderFrame(null);
    fill(main, signInPage());
  } else if (!isAdmin()) {
    renderFrame(null);
    fill(main, customerPage());
  } else if (section === 'sign-in' || !PAGES[section]) {
    location.replace(returnTo ?? '#/products');
    returnTo = null;
    return;
  } else {
    renderFrame(section);
    fill(main, PAGES[section]());
    document.title = `${SECTIONS.find(([id]) => id === section)[1]} · Herald console`;
  }
  // Focus the page's heading when the route changes (not on the first load, where the
  // browser's own start is expected).
  if (shownOnce) main.querySelector('h1')?.focus();
  shownOnce = true;
}

/** The admin's time zone from their preferences. */
async function learnTimeZone() {
  if (!isAdmin()) return;
  try {
    const data = await gql(`query Me { getUser { ${USER} preferences { timezone } } }`);
    const preferred = data.getUser.preferences?.timezone;
    session.updateUser({ name: data.getUser.name, email: data.getUser.email, role: data.getUser.role });
    if (preferred) {
      timeZone = preferred;
      timeZoneSource = 'preference';
    }
  } catch (error) {
    if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') return;
  }
}

let rerender = null;
session.onChange((now, reason) => {
  if (!now) {
    timeZone = null;
    timeZoneSource = 'browser';
    if (reason === 'expired') farewell = 'Your session has ended. Sign in again.';
    else if (!farewell) farewell = 'You have signed out.';
    const section = location.hash.replace(/^#\/?/, '').split('/')[0];
    if (reason === 'expired' && PAGES[section]) returnTo = `#/${section}`;
    if (location.hash !== '#/sign-in') location.hash = '#/sign-in';
    else rerender?.();
    return;
  }
  if (reason === 'signed-in') {
    learnTimeZone().finally(() => {
      if (location.hash === '#/sign-in' || !location.hash) {
        location.hash = returnTo ?? '#/products';
        returnTo = null;
      } else rerender?.();
    });
  } else {
    renderFrame(location.hash.replace(/^#\/?/, '').split('/')[0] || null);
  }
});

learnTimeZone().finally(() => {
  rerender = route(render, '/products');
});
