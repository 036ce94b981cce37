// Drives the quickstart's privacy centre and profile prompts through its real pages in Debian's
// headless Chromium (playwright-core), with mail read from the SMTP sink's Maildir:
//
//  1. sign-up with a password and e-mail confirmation, sign-in;
//  2. /account: the progressive-profiling prompts (two fields), answered and saved; the next
//     two are asked;
//  3. /privacy: every purpose listed as not given; the newsletter switched on (the ledger's
//     answer is shown, with a receipt to download: a JWS); switched off again;
//  4. the receipt link downloads the signed receipt;
//  5. the sale-or-share purpose switched on, then a request with the Global Privacy Control
//     signal (`Sec-GPC: 1`) turns it off, as the page then shows.
//
// Screenshots go to E2E_SCREENSHOTS. Run by ../browser.rs; on its own:
//
//   E2E_BASE_URL=http://localhost:<port> E2E_MAILDIR=<SMTP sink Maildir> node privacy.mjs
import { chromium } from 'playwright-core';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  base, shots, chromiumPath, ms, step, reportFailure, cleanUp, check, until, confirmationLink, FLAGS, outOf, textOf,
} from './harness.mjs';

const tag = randomBytes(6).toString('hex');
const dana = `dana.${tag}@example.com`;
const PASSWORD = 'silver harbour kettle 4411 wren';
let browser;
let current;
let shotNo = 0;
const problems = [];

async function shot(page, name) {
  shotNo += 1;
  await page.screenshot({ path: join(shots, `${String(shotNo).padStart(2, '0')}-${name}.png`), fullPage: true });
}

const stateOf = (page, purpose) => textOf(page, `#consent-list tr[data-purpose="${purpose}"] td:nth-child(2)`);

try {
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: FLAGS, timeout: 30000 });
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 }, acceptDownloads: true });
  const a = await context.newPage();
  a.setDefaultTimeout(10000);
  a.on('pageerror', (e) => problems.push(`uncaught error in the page: ${e.message}`));
  a.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) problems.push(`CSP violation: ${m.text()}`);
  });
  current = a;

  step(`sign-up of ${dana}`);
  await a.goto(`${base}/register`);
  await a.fill('#email', dana);
  await a.fill('#password', PASSWORD);
  await a.locator('form[data-api="/auth/register"] button:not([type=button])').click();
  await until(() => outOf(a, 'form[data-api="/auth/register"] .out'), (o) => o.cls.includes('ok'), 'a confirmation link was sent');
  await a.goto(await confirmationLink(dana));
  await a.locator('form[data-api="/auth/verify-email"] button').click();
  await until(() => outOf(a, 'form[data-api="/auth/verify-email"] .out'), (o) => o.cls.includes('ok'), 'the address is confirmed');
  await a.goto(`${base}/login`);
  await a.fill('#email', dana);
  await a.fill('#password', PASSWORD);
  await a.locator('form[data-api="/auth/login"] button:not([type=button])').click();
  await a.waitForURL(`${base}/account`);

  step('/account: profile prompts');
  await until(() => a.locator('#profile-prompts').isVisible(), (v) => v, 'the account page asks for a few more details');
  const asked = await a.locator('#profile-prompt-fields [name]').evaluateAll((fs) => fs.map((f) => f.name));
  check(JSON.stringify(asked) === '["display_name","country"]', `two fields are asked (${asked})`);
  await shot(a, 'account-prompts');
  await a.fill('#prompt-display_name', 'Dana');
  await a.selectOption('#prompt-country', 'FR');
  await a.locator('#profile-prompts-form button').click();
  await until(() => a.locator('#profile-prompt-fields [name]').evaluateAll((fs) => fs.map((f) => f.name).join(',')),
    (n) => n === 'birthday,newsletter_frequency', 'saved: the next two fields are asked');
  const profile = await (await a.request.get(`${base}/auth/me`)).json();
  check(profile.user.profile.display_name === 'Dana' && profile.user.profile.country === 'FR', 'the answers are in the profile');

  step('/privacy: switch the newsletter on and off');
  await a.locator('#privacy-link').click();
  await a.waitForURL(`${base}/privacy`);
  await until(() => stateOf(a, 'newsletter'), (t) => t === 'not given', 'the newsletter is not given yet');
  check(await textOf(a, '#policy-version') === 'version 1', 'the policy in force is shown');
  check(await stateOf(a, 'terms') === 'part of the service', 'the terms need no consent');
  check(!(await a.locator('#consent-pending').isVisible()), 'nothing to review');
  await shot(a, 'privacy');
  await a.check('#consent-newsletter');
  await until(() => stateOf(a, 'newsletter'), (t) => t === 'given', 'the newsletter is given');
  check((await outOf(a, '#consent-out')).cls.includes('ok'), 'the page confirms');
  const receipt = a.locator('#consent-list tr[data-purpose="newsletter"] a.receipt');
  check(await receipt.count() === 1, 'a receipt can be downloaded');
  await shot(a, 'privacy-granted');
  const [download] = await Promise.all([a.waitForEvent('download'), receipt.click()]);
  const path = await download.path();
  const { readFileSync } = await import('node:fs');
  const jws = readFileSync(path, 'utf8');
  const header = JSON.parse(Buffer.from(jws.split('.')[0], 'base64url').toString());
  check(jws.split('.').length === 3 && header.alg === 'EdDSA', 'the receipt is an EdDSA JWS');
  const body = JSON.parse(Buffer.from(jws.split('.')[1], 'base64url').toString());
  check(body.ciam && body.ciam.event === 'granted' && body.ciam.purposeId === 'newsletter', 'it records the grant of the newsletter');
  await a.uncheck('#consent-newsletter');
  await until(() => stateOf(a, 'newsletter'), (t) => t === 'withdrawn', 'the newsletter is withdrawn');
  await shot(a, 'privacy-withdrawn');

  step('Global Privacy Control');
  await a.check('#consent-sale_of_data');
  await until(() => stateOf(a, 'sale_of_data'), (t) => t === 'given', 'the sale or share is given');
  await context.setExtraHTTPHeaders({ 'Sec-GPC': '1' });
  await a.reload();
  await until(() => stateOf(a, 'sale_of_data'), (t) => t === 'withdrawn', 'with Sec-GPC: 1 the sale or share is withdrawn');
  check(await stateOf(a, 'newsletter') === 'withdrawn' && await stateOf(a, 'analytics') === 'not given', 'the others are untouched');
  await shot(a, 'privacy-gpc');

  check(problems.length === 0, `no script errors or CSP violations${problems.length ? `: ${problems.join('; ')}` : ''}`);
  step(`${shotNo} screenshots in ${shots}`);
  console.log(`E2E PASSED in ${ms()}`);
} catch (e) {
  await reportFailure(e, current, (name) => shot(current, name), problems, async () => 'privacy scenario');
} finally {
  await cleanUp(browser);
}
