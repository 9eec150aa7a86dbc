// Debian's Chromium, headless, as every browser script here starts it: no sandbox (tests
// may run as root), nothing fetched from the network but the page under test.
import { chromium } from 'playwright-core';

export function launch(options) {
  return chromium.launch({
    executablePath: options.chromium ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
