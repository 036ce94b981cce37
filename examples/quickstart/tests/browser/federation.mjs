// Drives "Sign in with <provider>" on the quickstart's real pages in Debian's headless Chromium
// against the real OpenID Provider (npm oidc-provider on loopback, scripts/peers/oidc-start.sh;
// the quickstart is started with CIAM_OIDC_* pointing at it): the button on /login, the
// provider's authorization endpoint and its (form-free) interaction, the callback, the account
// made on first sign-in with the provider's verified address, the linked identity on /account
// whose removal is refused (the last way in), sign-out, and a second sign-in into the same
// account. Every step checks what the page shows. Run by ../browser.rs; on its own:
//
//   E2E_BASE_URL=http://localhost:<port> E2E_MAILDIR=<maildir> E2E_OIDC_USER=<address> node federation.mjs
//
// env: see harness.mjs; E2E_OIDC_USER: the account the provider signs in (its default user).
import { chromium } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  base, shots, chromiumPath, ms, step, check, until, FLAGS, outOf, textOf, reportFailure, cleanUp,
} from './harness.mjs';

const who = process.env.E2E_OIDC_USER || 'alice@example.test';
const userDataDir = mkdtempSync(join(tmpdir(), 'quickstart-chromium-'));
let context;
let page;
let shotNo = 0;
const problems = [];
const visited = [];

async function shot(name) {
  shotNo += 1;
  await page.screenshot({ path: join(shots, `${String(shotNo).padStart(2, '0')}-${name}.png`), fullPage: true });
}
const text = (selector) => textOf(page, selector);

/** Clicks the provider's button on /login and waits until the browser is back, signed in. */
async function signInWithProvider() {
  await page.goto(`${base}/login`);
  const button = page.locator('a[href="/auth/oidc/oidc/start"]');
  check((await button.textContent()).includes('Sign in with Test OP'), 'the sign-in page offers "Sign in with Test OP"');
  visited.length = 0;
  await button.click();
  await page.waitForURL(`${base}/`, { timeout: 15000 });
  check(visited.some((u) => !u.startsWith(base) && u.includes('/auth?')), 'the browser went through the provider\'s authorization endpoint');
  check(visited.some((u) => u.startsWith(`${base}/auth/oidc/oidc/callback?`)), 'and came back through the callback');
}

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    // The provider listens on 127.0.0.1: let that through the "resolve nothing but
    // localhost" rule too.
    args: FLAGS.map((f) => (f.startsWith('--host-resolver-rules=') ? `${f}, EXCLUDE 127.0.0.1` : f)),
    timeout: 30000,
    viewport: { width: 1000, height: 900 },
  });
  page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('pageerror', (e) => problems.push(`uncaught error in the page: ${e.message}`));
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) visited.push(f.url()); });
  page.on('request', (r) => { if (r.isNavigationRequest() && r.frame() === page.mainFrame()) visited.push(r.url()); });

  step('1. first sign-in with the provider makes the account');
  await page.goto(`${base}/login`);
  await shot('login-providers');
  await signInWithProvider();
  await until(() => text('main section p'), (t) => t.includes(who), `the home page says signed in as ${who}`);
  await shot('home-federated');

  step('2. the account page lists the linked identity, which cannot be removed');
  await page.goto(`${base}/account`);
  await until(() => text('main table td'), (t) => t.startsWith(who), `the account page shows ${who}`);
  const linked = await text('#linked-accounts table');
  check(linked.includes('Test OP') && linked.includes(who), 'the linked accounts table shows Test OP with the address');
  const me = await page.evaluate(async () => (await fetch('/auth/me')).json());
  check(me.user.email_verified === true, 'the provider-verified address counts as verified');
  check(JSON.stringify(me.session.amr) === '["fed"]', `the session says how it was made (amr ${JSON.stringify(me.session.amr)})`);
  await shot('account-linked');
  const unlink = page.locator('#linked-accounts button', { hasText: 'Unlink' });
  check(await unlink.count() === 1, 'the identity has an Unlink button');
  await unlink.click();
  const refused = await until(() => outOf(page, '#linked-accounts .out'), (o) => o.text !== '', 'the page answers the unlinking');
  check(refused.error === 'last_sign_in_method', `unlinking the only way in is refused (${refused.error}: "${refused.text}")`);
  await shot('account-last-method');

  step('3. sign out, then the provider signs the same person into the same account');
  await page.locator('form[data-api="/auth/logout"] button').last().click();
  await page.waitForURL(`${base}/`, { timeout: 10000 });
  await until(() => text('main section p'), (t) => t.includes('not signed in'), 'signed out: the home page says so');
  await signInWithProvider();
  const again = await page.evaluate(async () => (await fetch('/auth/me')).json());
  check(again.user.id === me.user.id, 'the second sign-in reached the same account');
  const ids = await page.evaluate(async () => (await fetch('/auth/identities')).json());
  check(ids.identities.length === 1, 'still one linked identity');
  await page.goto(`${base}/account`);
  await shot('account-again');

  check(problems.length === 0, `no script errors in the pages${problems.length ? `: ${problems.join('; ')}` : ''}`);
  step(`${shotNo} screenshots in ${shots}`);
  console.log(`E2E PASSED in ${ms()}`);
} catch (e) {
  await reportFailure(e, page, shot, problems, async () => `navigations: ${JSON.stringify(visited)}`);
} finally {
  await cleanUp(context, userDataDir);
}
