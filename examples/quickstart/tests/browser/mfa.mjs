// Drives the quickstart's second factors, passwordless sign-in and step-up through its real
// pages in Debian's headless Chromium (playwright-core, no browser download), with mail read
// from the SMTP sink's Maildir:
//
//  1. sign-up with a password and e-mail confirmation;
//  2. /security: the authenticator app is off; enrolment shows the QR code (inline SVG) and the
//     key, a wrong code is refused, the right one (computed here from the page's key, RFC 6238)
//     turns it on and the ten recovery codes are shown once;
//  3. sign-in with the password then the code of the next 30 s step, ticking "Remember this
//     device"; signing in again in that browser needs no code;
//  4. a fresh browser context signs in with a recovery code;
//  5. a magic link asked for on /login: opening it (GET) shows a button and signs nothing in,
//     another browser cannot use it, the button signs in (remembered device: no code);
//  6. a mailed sign-in code in the other browser, then its second factor (a recovery code);
//  7. /security: new recovery codes, "forget remembered devices";
//  8. /account: change e-mail (recent sign-in), then "Delete account": its first answer is made
//     `step_up_required` (a real one needs a 10-minute-old sign-in), so the page sends the user
//     to /login?next=/account&step_up=1, the sign-in asks for the second factor (the devices
//     were forgotten; an old recovery code is refused, a new one works) and comes back to
//     /account; /security turns the app off; the account is deleted for real.
//
// Every step checks what the page shows; screenshots go to E2E_SCREENSHOTS. Run by
// ../browser.rs; on its own:
//
//   E2E_BASE_URL=http://localhost:<port> E2E_MAILDIR=<SMTP sink Maildir> node mfa.mjs
//
// env: see harness.mjs.
import { chromium } from 'playwright-core';
import { createHmac, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  base, shots, chromiumPath, ms, step, reportFailure, cleanUp, check, until, sleep, waitForMail, mailedLink,
  confirmationLink, FLAGS, outOf, textOf, stepUpOnce,
} from './harness.mjs';

// ---------------------------------------------------------------------------------------------
// TOTP, as an authenticator app computes it: RFC 6238 §4 (T = floor(unix time / 30), the
// default of §5.2) over HOTP, RFC 4226 §5.3 (HMAC-SHA-1 of the 8-byte big-endian counter,
// dynamic truncation, 6 digits), with the key in base32 (RFC 4648 §6).

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const bytes = [];
  for (const c of text.toUpperCase().replace(/[\s=]/g, '')) {
    const index = alphabet.indexOf(c);
    if (index < 0) throw new Error(`not base32: ${c}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) { bytes.push((value >>> (bits - 8)) & 0xff); bits -= 8; }
  }
  return Buffer.from(bytes);
}

const PERIOD = 30;
const timeStep = (unixSeconds = Date.now() / 1000) => Math.floor(unixSeconds / PERIOD);

function totp(secret, counter) {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', base32Decode(secret)).update(message).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(binary % 1_000_000).padStart(6, '0');
}

// RFC 6238 Appendix B (SHA-1, the 20-byte key "12345678901234567890", T = 59 s): 94287082 in
// eight digits, so 287082 in six. A wrong implementation fails here, not at the server.
check(totp('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', timeStep(59)) === '287082', 'TOTP matches RFC 6238 Appendix B');

// ---------------------------------------------------------------------------------------------

const tag = randomBytes(6).toString('hex');
const carol = `carol.${tag}@example.com`;
const PASSWORD = 'amber meadow compass 7150 heron';
let browser;
let shotNo = 0;
const problems = [];
/** The page photographed on failure. */
let current;

/** A fresh browser context (its own cookies: another device) and its page. */
async function device(name) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 }, userAgent: `${name}-${tag}` });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('pageerror', (e) => problems.push(`${name}: uncaught error in the page: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    console.log(`  (${name} console: ${m.text()})`);
    if (/Content Security Policy/i.test(m.text())) problems.push(`${name}: CSP violation: ${m.text()}`);
  });
  current = page;
  return page;
}

async function shot(page, name) {
  shotNo += 1;
  await page.screenshot({ path: join(shots, `${String(shotNo).padStart(2, '0')}-${name}.png`), fullPage: true });
}

const visible = (page, selector) => page.locator(selector).first().isVisible();
const signedIn = async (page) => (await page.request.get(`${base}/auth/me`)).status() === 200;

async function onAccount(page) {
  await page.waitForURL(`${base}/account`, { timeout: 10000 });
  await until(() => textOf(page, 'main table td'), (t) => t.startsWith(carol), `the account page shows ${carol}`);
}

async function signOut(page) {
  await page.goto(`${base}/account`);
  await page.locator('form[data-api="/auth/logout"] button').last().click();
  await page.waitForURL(`${base}/`, { timeout: 10000 });
  await until(() => textOf(page, 'main section p'), (t) => t.includes('not signed in'), 'signed out: the home page says so');
}

/** Fills the password form on the current /login page and sends it. */
async function submitPassword(page) {
  await page.fill('#email', carol);
  await page.fill('#password', PASSWORD);
  await page.locator('form[data-api="/auth/login"] button:not([type=button])').click();
}

/** Waits for the second-factor form after the password; checks the factors it offers. In a
 * step-up the browser keeps its old session until the new sign-in is complete. */
async function secondFactorForm(page, stepUp = false) {
  await until(() => visible(page, '#mfa'), (v) => v, 'the page asks for the second factor');
  check(!(await visible(page, 'form[data-api="/auth/login"]')), 'the password form is gone');
  const offered = await page.locator('#mfa label[data-factor]').evaluateAll((ls) => ls.filter((l) => !l.hidden).map((l) => l.dataset.factor));
  check(JSON.stringify(offered) === '["totp","recovery_code"]', `it offers the app's code and a recovery code (${offered})`);
  check(await textOf(page, '#mfa-code-label') === 'Code from your authenticator app', 'the app\'s code first');
  check(await visible(page, '#remember-device'), 'with "Remember this device"');
  if (stepUp) check(await signedIn(page), 'step-up: the old session stays until the second factor');
  else check(!(await signedIn(page)), 'no session before the second factor');
}

/** Switches the second-factor form to a recovery code and sends `code`. */
async function answerWithRecoveryCode(page, code, remember) {
  await page.check('#mfa input[name="mfa-kind"][value="recovery_code"]');
  check(await textOf(page, '#mfa-code-label') === 'Recovery code', 'the field now asks for a recovery code');
  await page.fill('#mfa-code', code);
  if (remember) await page.check('#remember-device');
  await page.locator('#mfa-form button').click();
}

let codeStep = -1;
/** The app's code for a time step after the last one used (waiting for it if needed): the
 * server accepts each step once. */
async function nextCode(secret) {
  while (timeStep() <= codeStep) await sleep(250);
  codeStep = timeStep();
  return totp(secret, codeStep);
}

const recoveryCodes = (page) => page.locator('#recovery-codes li code').allTextContents();

try {
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: FLAGS, timeout: 30000 });
  const a = await device('laptop');
  step(`browser up; sign-up of ${carol}`);

  // --- 1. Sign up and confirm the address.
  await a.goto(`${base}/register`);
  await a.fill('#email', carol);
  await a.fill('#password', PASSWORD);
  await a.locator('form[data-api="/auth/register"] button:not([type=button])').click();
  await until(() => outOf(a, 'form[data-api="/auth/register"] .out'), (o) => o.cls.includes('ok'), 'the page says a confirmation link was sent');
  await a.goto(await confirmationLink(carol));
  await a.locator('form[data-api="/auth/verify-email"] button').click();
  await until(() => outOf(a, 'form[data-api="/auth/verify-email"] .out'), (o) => o.cls.includes('ok') && o.text.includes('confirmed'),
    'the address is confirmed');

  // --- 2. Sign in; enrol an authenticator app on /security.
  step('password sign-in, then /security');
  await a.goto(`${base}/login`);
  check(await visible(a, '#magic-link-start') && await visible(a, '#otp-start'), 'the sign-in page offers a mailed link and a mailed code');
  check(!(await visible(a, '#mfa')), 'no second-factor form yet');
  await submitPassword(a);
  await onAccount(a);
  check(await textOf(a, '#account-totp') === 'off', 'the account page says the authenticator app is off');
  await a.click('#security-link');
  await a.waitForURL(`${base}/security`);
  check(await textOf(a, '#totp-status') === 'Off' && await textOf(a, '#recovery-left') === '0', '/security: off, no recovery codes');
  check(!(await visible(a, '#totp-on')), 'nothing to turn off or regenerate yet');
  await shot(a, 'security-off');

  step('enrol the authenticator app');
  await a.locator('#totp-enrol-form button').click();
  await until(() => visible(a, '#totp-enrolment'), (v) => v, 'the enrolment steps show');
  const qr = await a.locator('#totp-qr svg').evaluate((svg) => ({
    viewBox: svg.getAttribute('viewBox'), paths: svg.querySelectorAll('path').length, width: svg.getBoundingClientRect().width,
  }));
  check(/^0 0 \d+ \d+$/.test(qr.viewBox) && qr.paths === 1 && qr.width === 200, `the QR code is an inline SVG (${JSON.stringify(qr)})`);
  const secret = await a.locator('#totp-secret').getAttribute('data-secret');
  check(/^[A-Z2-7]{32}$/.test(secret), `the key for manual entry is base32 (${secret.length} characters)`);
  check((await textOf(a, '#totp-secret')).replace(/ /g, '') === secret, 'shown in groups of four');
  const uri = await a.locator('#totp-uri').getAttribute('href');
  check(uri.startsWith('otpauth://totp/') && uri.includes(`secret=${secret}`), 'the app link is the otpauth URI with that key');
  await shot(a, 'security-enrol');
  const right = await nextCode(secret);
  const wrong = right === '000000' ? '111111' : '000000';
  await a.fill('#totp-code', wrong);
  await a.locator('#totp-confirm-form button').click();
  const refused = await until(() => outOf(a, '#totp-confirm-form .out'), (o) => o.cls.includes('err'), 'a wrong code is refused');
  check(refused.error === 'invalid_code' && refused.text.startsWith('That code is not right'), `as invalid_code ("${refused.text}")`);
  await a.fill('#totp-code', right);
  await a.locator('#totp-confirm-form button').click();
  await until(() => outOf(a, '#security-out'), (o) => o.cls.includes('ok') && o.text.includes('is on'), 'the page says two-step sign-in is on');
  const codes = await until(() => recoveryCodes(a), (c) => c.length === 10, 'ten recovery codes are shown');
  check(new Set(codes).size === 10 && codes.every((c) => c.length >= 8), `distinct codes (${codes[0]}, …)`);
  check(await textOf(a, '#totp-status') === 'On' && await textOf(a, '#recovery-left') === '10', 'status: on, 10 recovery codes left');
  check(!(await visible(a, '#totp-enrolment')) && await visible(a, '#totp-on'), 'the enrolment steps are gone; regenerate and turn off are offered');
  await shot(a, 'security-recovery-codes');
  await a.reload();
  check(!(await visible(a, '#recovery-section')) && await textOf(a, '#totp-status') === 'On', 'after a reload: still on, the codes are not shown again');

  // --- 3. Password + the app's code, remembering this browser.
  await signOut(a);
  step('sign-in with password and the app\'s code (next time step), remembering the device');
  await a.goto(`${base}/login`);
  await submitPassword(a);
  await secondFactorForm(a);
  await shot(a, 'login-second-factor');
  if (timeStep() <= codeStep) step('waiting for the next 30 s step (the enrolment used this one)');
  await a.fill('#mfa-code', await nextCode(secret));
  await a.check('#remember-device');
  await a.locator('#mfa-form button').click();
  await onAccount(a);
  check(await textOf(a, '#account-totp') === 'on', 'the account page says the authenticator app is on');
  await shot(a, 'account-after-totp');

  await signOut(a);
  step('sign-in again in the remembered browser: no code');
  await a.goto(`${base}/login`);
  await submitPassword(a);
  await onAccount(a);
  check(!(await visible(a, '#mfa')), 'no second-factor form on the way');

  // --- 4. Another browser (fresh context): a recovery code.
  step('a fresh browser signs in with a recovery code');
  const b = await device('phone');
  await b.goto(`${base}/login`);
  await submitPassword(b);
  await secondFactorForm(b);
  await answerWithRecoveryCode(b, codes[0], false);
  await onAccount(b);
  await shot(b, 'account-after-recovery-code');
  await b.goto(`${base}/security`);
  check(await textOf(b, '#recovery-left') === '9', '/security: 9 recovery codes left');

  // --- 5. A magic link, asked for on /login in the remembered browser.
  await signOut(a);
  step('magic link');
  await a.goto(`${base}/login`);
  await a.fill('#passwordless-email', carol);
  await a.click('#magic-link-start');
  await until(() => outOf(a, '#passwordless-form .out'), (o) => o.cls.includes('ok') && o.text.includes('Check your inbox'),
    'the page says the link is on its way');
  await shot(a, 'login-magic-link-sent');
  const link = await mailedLink(carol, 'sign-in link', '/magic-link');
  await a.goto(link);
  check(await a.locator('main button:visible').count() === 1 && await textOf(a, '#magic-link-form button') === 'Sign in',
    'the link opens a page with one "Sign in" button');
  check(!(await signedIn(a)), 'opening the link signs nothing in');
  await shot(a, 'magic-link');
  await b.goto(link);
  await b.locator('#magic-link-form button').click();
  const elsewhere = await until(() => outOf(b, '#magic-link-form .out'), (o) => o.cls.includes('err'), 'another browser cannot use the link');
  check(elsewhere.error === 'invalid_token', `refused as invalid_token ("${elsewhere.text}")`);
  await a.reload();
  await a.locator('#magic-link-form button').click();
  await onAccount(a);
  check(!(await visible(a, '#mfa')), 'signed in by the link, without a code (remembered device)');

  // --- 6. A mailed code in the other browser, then its second factor.
  await signOut(b);
  step('sign-in code by mail, then a recovery code');
  await b.goto(`${base}/login`);
  check(!(await visible(b, '#otp-section')), 'no code field before a code is asked for');
  await b.fill('#passwordless-email', carol);
  await b.click('#otp-start');
  await until(() => visible(b, '#otp-section'), (v) => v, 'the code field appears');
  const mail = await waitForMail(carol, 'sign-in code');
  const mailed = (mail.match(/code is (\d{6})/) || [])[1];
  check(!!mailed, 'the mail holds a six-digit code');
  await b.fill('#otp-code', mailed);
  await b.locator('#otp-form button').click();
  await secondFactorForm(b);
  await answerWithRecoveryCode(b, codes[1], false);
  await onAccount(b);

  // --- 7. New recovery codes; forget remembered devices.
  step('/security: new recovery codes, forget remembered devices');
  await a.goto(`${base}/security`);
  await a.locator('#recovery-form button').click();
  const fresh = await until(() => recoveryCodes(a), (c) => c.length === 10, 'ten new recovery codes are shown');
  check(!fresh.some((c) => codes.includes(c)), 'none of them is an old one');
  await until(() => textOf(a, '#recovery-left'), (t) => t === '10', '10 recovery codes left');
  await a.locator('#devices-forget-form button').click();
  const forgot = await until(() => outOf(a, '#devices-forget-form .out'), (o) => o.cls.includes('ok') && o.text.startsWith('Forgot'),
    'the page says the devices were forgotten');
  check(/Forgot [1-9]\d* remembered device/.test(forgot.text), `"${forgot.text}"`);
  await shot(a, 'security-new-codes-devices-forgotten');

  // --- 8. Change e-mail (recent sign-in), then delete the account through a step-up.
  step('change e-mail on /account');
  await a.goto(`${base}/account`);
  await a.fill('#new_email', `carol.new.${tag}@example.com`);
  await a.locator('#email-change-form button').click();
  await until(() => outOf(a, '#email-change-form .out'), (o) => o.cls.includes('ok') && o.text.includes('Check the new inbox'),
    'the page says a confirmation link went to the new address');

  step('delete the account, through a step-up');
  const faked = await stepUpOnce(a, '**/auth/account', 'DELETE', 'Please sign in again to continue.');
  await a.check('#delete-confirm');
  await a.locator('#delete-account-form button').click();
  await a.waitForURL(`${base}/login?next=%2Faccount&step_up=1`);
  check(faked() === 1, 'the page was told step_up_required and went to sign in again');
  check((await textOf(a, '#step-up-note')).includes('needs a recent sign-in'), 'the sign-in page explains why');
  await shot(a, 'login-step-up');
  await submitPassword(a);
  await secondFactorForm(a, true);
  check(!(await visible(a, '#step-up-note')), 'the explanation gives way to the second factor');
  await answerWithRecoveryCode(a, codes[2], false);
  const old = await until(() => outOf(a, '#mfa-form .out'), (o) => o.cls.includes('err'), 'a recovery code of the old set is refused');
  check(old.error === 'invalid_code' && old.text.startsWith('That code is not right'), `as invalid_code ("${old.text}")`);
  await answerWithRecoveryCode(a, fresh[0], true);
  await onAccount(a);
  check(a.url() === `${base}/account`, 'back on /account after the step-up');

  step('/security: turn the authenticator app off');
  await a.goto(`${base}/security`);
  await a.locator('#totp-disable-form button').click();
  await until(() => outOf(a, '#security-out'), (o) => o.cls.includes('ok') && o.text.includes('removed'), 'the page says the app and codes are removed');
  check(await textOf(a, '#totp-status') === 'Off' && await textOf(a, '#recovery-left') === '0', 'status: off, no recovery codes');
  check(await visible(a, '#totp-enrol-form') && !(await visible(a, '#totp-on')), 'setting it up is offered again');
  await shot(a, 'security-turned-off');
  await a.goto(`${base}/account`);
  check(await textOf(a, '#account-totp') === 'off', 'the account page says the authenticator app is off');

  step('delete the account');
  await a.check('#delete-confirm');
  await a.locator('#delete-account-form button').click();
  await a.waitForURL(`${base}/?closed=1`);
  check((await textOf(a, '#account-closed')).includes('account is closed'), 'the home page says the account is closed');
  check(!(await signedIn(a)) && !(await signedIn(b)), 'both browsers are signed out');
  await shot(a, 'account-closed');
  await a.goto(`${base}/login`);
  await submitPassword(a);
  const gone = await until(() => outOf(a, 'form[data-api="/auth/login"] .out'), (o) => o.cls.includes('err'), 'the password no longer signs in');
  check(gone.error !== '' && !(await signedIn(a)), `refused as ${gone.error} ("${gone.text}")`);

  check(problems.length === 0, `no script errors or CSP violations in the pages${problems.length ? `: ${problems.join('; ')}` : ''}`);
  step(`${shotNo} screenshots in ${shots}`);
  console.log(`E2E PASSED in ${ms()}`);
} catch (e) {
  await reportFailure(e, current, (name) => shot(current, name), problems, async () => 'second-factor scenario');
} finally {
  await cleanUp(browser);
}
