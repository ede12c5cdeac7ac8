// One Debian chromium per test file, and a fresh incognito-like context per test (own cookies,
// localStorage and cache): as isolated as a new browser, without paying a launch per test.
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './browser.mjs';

/** Resolves to { newContext(options), close() }. */
export async function sharedBrowser() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  return {
    /** A fresh context; resolves to { context, newPage(), close() } like launchBrowser's. */
    async newContext(options = {}) {
      const context = await browser.newContext(options);
      return {
        context,
        newPage: () => context.newPage(),
        close: () => context.close().catch(() => {}),
      };
    },
    close: () => browser.close().catch(() => {}),
  };
}
