// Drives the quickstart's real pages in Debian's headless Chromium (playwright-core, no browser
// download) with a CDP virtual authenticator (CTAP2, internal, resident keys, user verification):
// password sign-up and e-mail confirmation, password sign-in, adding a passkey on /passkeys,
// passkey sign-in with the typed e-mail (allow-list) and without it (discoverable), renaming and
// deleting, revoking another device's session on /account, and a passkey-only sign-up (with the
// page's own fallbacks for the L3 JSON helpers, which are removed for that part).
// Every step checks what the page shows. Run by ../browser.rs; on its own:
//
//   E2E_BASE_URL=http://localhost:<port> E2E_MAILDIR=<SMTP sink Maildir> node e2e.mjs
//
// env: see harness.mjs.
import { chromium, request } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  base, shots, chromiumPath, ms, step, check, until, confirmationLink, FLAGS, outOf, textOf, reportFailure, cleanUp, stepUpOnce,
} from './harness.mjs';

const userDataDir = mkdtempSync(join(tmpdir(), 'quickstart-chromium-'));
const tag = randomBytes(6).toString('hex');
const alice = `alice.${tag}@example.com`;
const bob = `bob.${tag}@example.com`;
const PASSWORD = 'quiet river lantern 2048 zebra';
let context;
let page;
let shotNo = 0;
const problems = [];
const starts = [];
const finishes = [];
/** Gives held-back credentials back to the authenticator (see loginWithAutofillWaiting). */
let restore = null;
const stepUps = [];

async function shot(name) {
  shotNo += 1;
  const file = join(shots, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}
const text = (selector) => textOf(page, selector);
const out = (selector) => outOf(page, selector);

async function addAuthenticator(cdp) {
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', ctap2Version: 'ctap2_1', transport: 'internal',
      hasResidentKey: true, hasUserVerification: true, isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return authenticatorId;
}
const credentials = async (cdp, id) => (await cdp.send('WebAuthn.getCredentials', { authenticatorId: id })).credentials;

/** The account page shows `email` as the signed-in user. */
async function onAccountAs(email) {
  await page.waitForURL(`${base}/account`, { timeout: 10000 });
  await until(() => text('main table td'), (t) => t.startsWith(email), `the account page shows ${email}`);
}

async function signOut() {
  await page.goto(`${base}/account`);
  await page.locator('form[data-api="/auth/logout"] button').last().click();
  await page.waitForURL(`${base}/`, { timeout: 10000 });
  await until(() => text('main section p'), (t) => t.includes('not signed in'), 'signed out: the home page says so');
}

/** Opens /passkeys and waits until the script has filled the table. */
async function openPasskeys() {
  await page.goto(`${base}/passkeys`);
  await page.waitForSelector('#passkey-list[data-loaded]', { timeout: 10000 });
}
const passkeyRows = () => page.locator('#passkey-list tr.passkey').evaluateAll((rows) => rows.map((r) => ({
  name: r.querySelector('.passkey-label').textContent,
  kind: r.querySelector('.passkey-kind').textContent,
  created: r.querySelector('.passkey-created').textContent,
  used: r.querySelector('.passkey-used').textContent,
})));

/** Opens /login while the authenticator's credentials are held back, so the autofill request
 * the page starts on load has nothing to offer and waits, as it does until a person picks a
 * suggestion; types `email`. The credentials come back when the page asks the server for its
 * next ceremony's options (the button's, after it has cancelled the autofill request): the
 * person ignored the suggestions and used the button. */
async function loginWithAutofillWaiting(cdp, authenticatorId, email) {
  const saved = await credentials(cdp, authenticatorId);
  await cdp.send('WebAuthn.clearCredentials', { authenticatorId });
  starts.length = 0;
  finishes.length = 0;
  await page.goto(`${base}/login`);
  await until(() => starts.length, (n) => n === 1, 'the page started a conditional request on load');
  if (email) await page.fill('#email', email);
  restore = async () => {
    for (const credential of saved) await cdp.send('WebAuthn.addCredential', { authenticatorId, credential });
  };
  check(page.url() === `${base}/login` && finishes.length === 0, 'autofill waits: still on the sign-in page');
  check(await page.inputValue('#email') === email, `the e-mail field holds "${email}"`);
}

/** After a button sign-in: exactly the button's ceremony went to the server. */
function onlyTheButtonsCeremony() {
  check(starts.length === 2 && finishes.length === 1, 'the button ran the only ceremony that finished (autofill was cancelled)');
  return starts[1];
}

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: FLAGS,
    timeout: 30000,
    viewport: { width: 1000, height: 900 },
  });
  page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('pageerror', (e) => problems.push(`uncaught error in the page: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') {
      console.log(`  (console: ${m.text()})`);
      if (/Content Security Policy/i.test(m.text())) problems.push(`CSP violation: ${m.text()}`);
    }
  });
  // Each passkey sign-in ceremony the page starts: its request body and allow-list length,
  // recorded before the page sees the answer.
  await page.route('**/auth/passkeys/login/start', async (route) => {
    if (restore && starts.length > 0) { const r = restore; restore = null; await r(); }
    const response = await route.fetch();
    let allow = -1;
    try { allow = ((await response.json()).allowCredentials || []).length; } catch { /* not JSON */ }
    starts.push({ body: route.request().postData() || '', allow });
    await route.fulfill({ response });
  });
  page.on('request', (r) => { if (r.url().endsWith('/auth/passkeys/login/finish')) finishes.push(r.postData()); });
  page.on('response', (r) => {
    if (!r.url().endsWith('/auth/passkeys/step-up/finish')) return;
    stepUps.push({ status: r.status(), cookie: r.allHeaders().then((h) => h['set-cookie'] || '') });
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  let authenticator = await addAuthenticator(cdp);
  step(`browser up, virtual authenticator ${authenticator}`);

  // --- 1. Sign up with a password, confirm the address from the mail.
  step(`password sign-up of ${alice}`);
  await page.goto(`${base}/register`);
  check(await page.locator('#passkey-sign-up').isVisible(), 'the register page offers "Sign up with a passkey"');
  await page.fill('#email', alice);
  await page.fill('#password', PASSWORD);
  await page.locator('form[data-api="/auth/register"] button:not([type=button])').click();
  await until(() => out('form[data-api="/auth/register"] .out'), (o) => o.cls.includes('ok') && o.text.includes('Check your inbox'),
    'the page says a confirmation link was sent');
  await shot('register-password');
  const link = await confirmationLink(alice);
  await page.goto(link);
  await page.locator('form[data-api="/auth/verify-email"] button').click();
  await until(() => out('form[data-api="/auth/verify-email"] .out'), (o) => o.cls.includes('ok') && o.text.includes('confirmed'),
    'the confirmation page says the address is confirmed');
  await shot('verify-email');

  // --- 2. Sign in with the password.
  step('password sign-in');
  await page.goto(`${base}/login`);
  check(await page.getAttribute('#email', 'autocomplete') === 'username webauthn', 'the e-mail field offers passkeys in autofill');
  check(await page.evaluate(() => typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function'
    && typeof PublicKeyCredential.prototype.toJSON === 'function'), 'Chromium has the L3 JSON helpers');
  await shot('login');
  await page.fill('#email', alice);
  await page.fill('#password', PASSWORD);
  await page.locator('form[data-api="/auth/login"] button:not([type=button])').click();
  await onAccountAs(alice);
  await shot('account');

  // --- 3. Add a passkey on /passkeys (reached by the account page's link).
  step('add a passkey');
  await page.click('#passkeys-link');
  await page.waitForURL(`${base}/passkeys`);
  await page.waitForSelector('#passkey-list[data-loaded]');
  await until(() => text('#passkey-list'), (t) => t.includes('No passkeys yet'), 'the list starts empty');
  await page.fill('#passkey-name', 'Test laptop');
  await page.click('#add-passkey');
  await until(() => out('#passkeys-out'), (o) => o.cls.includes('ok') && o.text.includes('Test laptop'), 'the page says the passkey was added');
  let rows = await until(passkeyRows, (r) => r.length === 1 && r[0].name === 'Test laptop', 'the passkey is listed under its name');
  check(rows[0].kind === 'device-bound', 'listed as device-bound (the virtual authenticator is not backup eligible)');
  check(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/.test(rows[0].created) && rows[0].used === 'never', `created ${rows[0].created}, never used`);
  const held = await credentials(cdp, authenticator);
  check(held.length === 1 && held[0].isResidentCredential && held[0].rpId === 'localhost',
    'the authenticator holds one discoverable credential for rpId localhost');
  await shot('passkeys-added');

  // --- 4. Rename it. The first PATCH is answered as if the sign-in were old (the quickstart
  // asks for one within 10 minutes): the page must confirm with the passkey (step-up, real
  // ceremony and endpoints) and then rename.
  step('rename the passkey, through a passkey step-up');
  const faked = await stepUpOnce(page, '**/auth/passkeys/*', 'PATCH', 'Confirm it is you first.');
  await page.locator('#passkey-list tr.passkey .passkey-new-name').fill('Work laptop');
  await page.locator('#passkey-list tr.passkey .passkey-rename').click();
  await until(() => out('#passkeys-out'), (o) => o.text.includes('Renamed to') && o.text.includes('Work laptop'), 'the page confirms the rename');
  await until(passkeyRows, (r) => r.length === 1 && r[0].name === 'Work laptop', 'the list shows the new name');
  check(faked() === 1 && stepUps.length === 1 && stepUps[0].status === 200, 'after a step-up with the passkey');
  check((await stepUps[0].cookie).split('\n').some((c) => c.startsWith('ciam_session=')), 'the step-up set a new session cookie');
  await page.unroute('**/auth/passkeys/*');
  await page.goto(`${base}/account`);
  await onAccountAs(alice);

  // --- 5. Sign out; the sign-in page offers the passkey in the e-mail field's autofill
  // (conditional mediation, started on load). The virtual authenticator picks it at once.
  await signOut();
  step('passkey sign-in from autofill (conditional mediation)');
  starts.length = 0;
  finishes.length = 0;
  await page.goto(`${base}/login`);
  await onAccountAs(alice);
  check(starts.length === 1 && finishes.length === 1 && starts[0].body === '{}' && starts[0].allow === 0,
    'signed in by the conditional request the page started on load, with no allow-list');
  await shot('account-after-passkey-autofill');

  // --- 6. The button, with the typed address (allow-list) and without (discoverable), while
  // the autofill request waits (see loginWithAutofillWaiting); the button cancels it.
  for (const [label, email] of [['the typed e-mail (allow-list)', alice], ['no address (discoverable)', '']]) {
    await signOut();
    step(`passkey sign-in with the button and ${label}`);
    await loginWithAutofillWaiting(cdp, authenticator, email);
    await page.click('#passkey-sign-in');
    await onAccountAs(alice);
    const used = onlyTheButtonsCeremony();
    if (email) {
      check(JSON.parse(used.body).email === email && used.allow === 1, 'it asked for the address\'s passkeys (allow-list of one)');
    } else {
      check(used.body === '{}' && used.allow === 0, 'it asked for a discoverable passkey (no allow-list)');
    }
    await shot(email ? 'account-after-passkey-allow-list' : 'account-after-passkey-discoverable');
  }
  const counted = await credentials(cdp, authenticator);
  check(counted[0].signCount >= 3, `the authenticator signed three times (signCount ${counted[0].signCount})`);

  await openPasskeys();
  rows = await passkeyRows();
  check(rows.length === 1 && rows[0].used !== 'never', `the list shows when it was last used (${rows[0].used})`);

  // --- 7. Another device signs in; revoke its session from /account.
  step('revoke another device\'s session on /account');
  const other = await request.newContext({
    baseURL: base, userAgent: `other-device-${tag}`, extraHTTPHeaders: { Origin: base },
  });
  const login = await other.post('/auth/login', { data: { email: alice, password: PASSWORD } });
  check(login.status() === 200, 'a second device signs in with the password');
  check((await other.get('/auth/me')).status() === 200, 'the second device is signed in');
  await page.goto(`${base}/account`);
  const otherRow = page.locator('tr', { hasText: `other-device-${tag}` });
  check(await otherRow.count() === 1, 'the account page lists the other device');
  await shot('account-two-devices');
  await otherRow.locator('button', { hasText: 'Revoke' }).click();
  await page.waitForLoadState('load');
  await until(() => page.locator('tr', { hasText: `other-device-${tag}` }).count(), (n) => n === 0, 'the other device is gone from the list');
  check((await other.get('/auth/me')).status() === 401, 'the other device is signed out');
  await other.dispose();
  await onAccountAs(alice);

  // --- 8. Delete the passkey (the password remains).
  step('delete the passkey');
  await openPasskeys();
  await page.locator('#passkey-list tr.passkey .passkey-delete').click();
  await until(() => out('#passkeys-out'), (o) => o.cls.includes('ok') && o.text.includes('Deleted'), 'the page confirms the deletion');
  await until(() => text('#passkey-list'), (t) => t.includes('No passkeys yet'), 'the list is empty again');
  await signOut();

  // --- 9. A new person, a new device: sign up with a passkey alone. This device's browser
  // lacks the WebAuthn L3 JSON helpers, so the page's own base64url conversions and
  // serializer carry every ceremony from here on.
  await page.addInitScript(() => {
    delete PublicKeyCredential.parseCreationOptionsFromJSON;
    delete PublicKeyCredential.parseRequestOptionsFromJSON;
    delete PublicKeyCredential.prototype.toJSON;
  });
  step(`passkey-only sign-up of ${bob}, with the page's fallbacks for the L3 JSON helpers`);
  await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: authenticator });
  authenticator = await addAuthenticator(cdp);
  await context.clearCookies();
  await page.goto(`${base}/passkeys`);
  check(page.url() === `${base}/login`, '/passkeys sends a visitor who is not signed in to /login');
  await page.goto(`${base}/register`);
  check(await page.evaluate(() => !('parseCreationOptionsFromJSON' in PublicKeyCredential)
    && !('parseRequestOptionsFromJSON' in PublicKeyCredential) && !('toJSON' in PublicKeyCredential.prototype)),
    'the L3 JSON helpers are gone');
  await page.fill('#email', bob);
  await page.click('#passkey-sign-up');
  await until(() => out('#passkey-out'), (o) => o.cls.includes('ok') && o.text.includes('Check your inbox'),
    'the page says a confirmation link was sent');
  check((await credentials(cdp, authenticator)).length === 1, 'the new authenticator holds the passkey');
  await shot('register-passkey');

  step('passkey sign-in before confirming the address is refused');
  await loginWithAutofillWaiting(cdp, authenticator, bob);
  await page.click('#passkey-sign-in');
  const refused = await until(() => out('#passkey-out'), (o) => o.cls.includes('err') && o.text !== '',
    'the page shows the refusal');
  check(refused.error === 'verification_required', `the refusal is verification_required ("${refused.text}")`);
  check(page.url() === `${base}/login`, 'still on the sign-in page');
  onlyTheButtonsCeremony();
  await shot('login-verification-required');

  await page.goto(await confirmationLink(bob));
  await page.locator('form[data-api="/auth/verify-email"] button').click();
  await until(() => out('form[data-api="/auth/verify-email"] .out'), (o) => o.cls.includes('ok'), 'the address is confirmed');

  step('discoverable passkey sign-in of the passkey-only account');
  await loginWithAutofillWaiting(cdp, authenticator, '');
  await page.click('#passkey-sign-in');
  await onAccountAs(bob);
  check(onlyTheButtonsCeremony().allow === 0, 'with no allow-list');

  step('the only sign-in method cannot be deleted');
  await openPasskeys();
  rows = await passkeyRows();
  check(rows.length === 1 && rows[0].name !== '', `one passkey listed ("${rows[0].name}")`);
  await page.locator('#passkey-list tr.passkey .passkey-delete').click();
  const kept = await until(() => out('#passkeys-out'), (o) => o.cls.includes('err') && o.text !== '', 'the page shows the refusal');
  check(kept.error === 'last_sign_in_method', `the refusal is last_sign_in_method ("${kept.text}")`);
  check((await passkeyRows()).length === 1, 'the passkey is still listed');
  await shot('passkeys-last-method');

  check(problems.length === 0, `no script errors or CSP violations in the pages${problems.length ? `: ${problems.join('; ')}` : ''}`);
  step(`${shotNo} screenshots in ${shots}`);
  console.log(`E2E PASSED in ${ms()}`);
} catch (e) {
  await reportFailure(e, page, shot, problems, async () => `${JSON.stringify(await out('#passkey-out'))}; passkey sign-in starts ${JSON.stringify(starts)}, finishes ${finishes.length}`);
} finally {
  await cleanUp(context, userDataDir);
}
