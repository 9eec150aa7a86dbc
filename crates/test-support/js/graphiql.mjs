// GraphiQL as a person uses it, in Debian's Chromium (headless): the docs explorer finds
// Notification, and a subscription run from the editor receives a push. Prints one JSON
// line per step; "subscribed" when the subscription runs (the caller then makes the
// notification happen), and the result text once it shows the push.
// Usage: node graphiql.mjs '{"url": "http://…/graphql", "token": "…", "query": "…", "expect": "…"}'
import { launch } from './browser.mjs';

const options = JSON.parse(process.argv[2]);
const print = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const fail = async (step, error) => {
  print({ event: 'failed', step, error: String(error) });
  if (page) await page.screenshot({ path: options.screenshot ?? 'graphiql-failure.png' }).catch(() => {});
  await browser.close();
  process.exit(1);
};

const browser = await launch(options);
const page = await browser.newPage();
const pageErrors = [];
page.on('pageerror', (error) => pageErrors.push(String(error)));

/// Replaces the text of the CodeMirror editor inside `container`.
async function fill(container, text) {
  await page.click(`${container} .CodeMirror >> visible=true`);
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

try {
  await page.goto(options.url);
  await page.waitForSelector('.graphiql-container', { timeout: 30000 });
  print({ event: 'loaded' });
} catch (error) {
  await fail('load', error);
}

try {
  await page.click('button[aria-label="Show Documentation Explorer"]');
  await page.fill('.graphiql-doc-explorer-search input', 'Notification');
  await page.waitForSelector('.graphiql-doc-explorer-search [role="option"]:has-text("Notification")', { timeout: 30000 });
  const found = await page.$$eval('.graphiql-doc-explorer-search [role="option"]', (options) =>
    options.map((o) => o.textContent.trim()),
  );
  print({ event: 'docs', found });
} catch (error) {
  await fail('docs', error);
}

try {
  await fill('.graphiql-query-editor', options.query);
  await page.click('button:has-text("Headers")');
  await fill('.graphiql-editor-tool', JSON.stringify({ Authorization: `Bearer ${options.token}` }));
  await page.click('button[aria-label="Execute query (Ctrl-Enter)"]');
  print({ event: 'subscribed' });
  await page.waitForFunction(
    (expected) => document.querySelector('.result-window')?.textContent.includes(expected),
    options.expect,
    { timeout: options.timeoutMs ?? 60000 },
  );
  const result = await page.$eval('.result-window', (node) => node.textContent);
  print({ event: 'result', result, pageErrors });
} catch (error) {
  await fail('subscription', error);
}
await browser.close();
