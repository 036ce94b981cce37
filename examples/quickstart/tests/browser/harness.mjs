// What the browser drivers (e2e.mjs, mfa.mjs) share: their settings from the environment,
// step logging and checks, polling, the SMTP sink's Maildir, and Chromium's flags.
//
// env: E2E_BASE_URL (required; the quickstart's CIAM_PUBLIC_URL, host must be localhost),
//      E2E_MAILDIR (required; the sink's Maildir, the driver reads new/), E2E_SCREENSHOTS (dir;
//      default ./screenshots), CHROMIUM (default /usr/bin/chromium), E2E_TIMEOUT_MS (default 120000).
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const base = (process.env.E2E_BASE_URL || '').replace(/\/+$/, '');
export const maildir = process.env.E2E_MAILDIR;
export const shots = process.env.E2E_SCREENSHOTS || 'screenshots';
export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!base || !maildir) {
  console.error('usage: E2E_BASE_URL=http://localhost:<port> E2E_MAILDIR=<maildir> node <driver>.mjs');
  process.exit(2);
}
/** Ends the run if it hangs; the driver clears it when done. */
export const watchdog = setTimeout(() => { console.error('e2e: watchdog: giving up'); process.exit(3); },
  Number(process.env.E2E_TIMEOUT_MS || 120000));
mkdirSync(shots, { recursive: true });

const started = Date.now();
export const ms = () => `${Date.now() - started} ms`;
export const step = (text) => console.log(`[${ms()}] ${text}`);
export const ok = (text) => console.log(`  ok: ${text}`);
export const fail = (text) => { throw new Error(`check failed: ${text}`); };
export const check = (cond, text) => { if (!cond) fail(text); ok(text); };
export const sleep = (n) => new Promise((r) => setTimeout(r, n));

/** Polls `read` until `pred` holds on its value (bounded), then returns the value. */
export async function until(read, pred, text, limit = 10000) {
  const deadline = Date.now() + limit;
  let last;
  for (;;) {
    last = await read();
    if (pred(last)) { ok(text); return last; }
    if (Date.now() > deadline) fail(`${text} (last seen: ${JSON.stringify(last)})`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------
// The SMTP sink's Maildir: one file per message, with X-RcptTo added by aiosmtpd.

const seenMail = new Set();
function decodeQuotedPrintable(s) {
  const bytes = [];
  const soft = s.replace(/=\r?\n/g, '');
  for (let i = 0; i < soft.length; i++) {
    const hex = soft.slice(i + 1, i + 3);
    if (soft[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) { bytes.push(parseInt(hex, 16)); i += 2; }
    else bytes.push(...Buffer.from(soft[i], 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}
/** The body of the first message not read before to `to` whose subject contains `subject`. */
function readMail(to, subject) {
  const dir = join(maildir, 'new');
  let names = [];
  try { names = readdirSync(dir).sort(); } catch { return null; }
  for (const name of names) {
    if (seenMail.has(name)) continue;
    const raw = readFileSync(join(dir, name), 'utf8').replace(/\r\n/g, '\n');
    const split = raw.indexOf('\n\n');
    if (split < 0) continue;
    const head = raw.slice(0, split).replace(/\n[ \t]/g, ' ');
    const header = (h) => (head.split('\n').find((l) => l.toLowerCase().startsWith(`${h.toLowerCase()}:`)) || '')
      .slice(h.length + 1).trim();
    const rcpt = header('X-RcptTo').split(',').map((a) => a.trim().toLowerCase());
    if (rcpt.includes(to.toLowerCase()) && header('Subject').includes(subject)) {
      seenMail.add(name);
      return decodeQuotedPrintable(raw.slice(split + 2));
    }
  }
  return null;
}
/** Waits for a mail to `to` with `subject` in its subject line and returns its body. */
export const waitForMail = (to, subject) =>
  // Mail goes out from a background task through the sink; on a loaded 2-core CI machine
  // running three browsers at once, 10 s was seen to be too short.
  until(() => readMail(to, subject), (b) => b !== null, `mail "${subject}" to ${to} arrived`, MAIL_WAIT_MS);
/** How long a driver waits for a mail. */
const MAIL_WAIT_MS = 30000;

/** Waits for a mail to `to` and returns its link to `path` (`/verify-email`, `/magic-link`). */
export async function mailedLink(to, subject, path) {
  const body = await waitForMail(to, subject);
  const pattern = new RegExp(`https?://[^\\s"'<>]+${path.replace(/[/]/g, '\\/')}\\?token=[A-Za-z0-9_-]+`);
  const link = (body.match(pattern) || [])[0];
  check(link && link.startsWith(`${base}${path}?token=`), `the mail links to ${base}${path}`);
  return link;
}
/** Waits for the confirmation mail to `to` and returns the link in it. */
export const confirmationLink = (to) => mailedLink(to, 'Confirm your e-mail address', '/verify-email');

// ---------------------------------------------------------------------------------------------

export const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // Chromium resolves no host name but localhost: nothing it tries on its own (Google
  // accounts, updates, WebAuthn related-origin fetches) leaves the machine.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost',
];

/** Answers the first `method` request to `pattern` on `page` with 401 `step_up_required`, as
 * the API does for a sign-in older than 10 minutes (too long to wait for); later ones go
 * through. Returns a function that tells how many were answered so. */
export async function stepUpOnce(page, pattern, method, message) {
  let faked = 0;
  await page.route(pattern, (route) => {
    if (route.request().method() !== method || faked > 0) return route.fallback();
    faked += 1;
    return route.fulfill({ status: 401, contentType: 'application/json',
      body: JSON.stringify({ error: 'step_up_required', message }) });
  });
  return () => faked;
}

/** Reads `{ text, cls, error }` of a `.out` element (empty when it is missing). */
export const outOf = (page, selector) => page.locator(selector).first()
  .evaluate((e) => ({ text: e.textContent.trim(), cls: e.className, error: e.dataset.error || '' }))
  .catch(() => ({ text: '', cls: '', error: '' }));
/** The trimmed text of the first element matching `selector` (empty when it is missing). */
export const textOf = (page, selector) => page.locator(selector).first().textContent({ timeout: 5000 })
  .then((t) => (t || '').trim()).catch(() => '');

// ---------------------------------------------------------------------------------------------
// The end of a driver run.

/** Reports a failed run: a screenshot of where it stopped (`shot`), `detail()` (what the driver
 * knows about its state), the pages' own problems and the error; sets the exit code. */
export async function reportFailure(e, page, shot, problems, detail) {
  if (page) {
    await shot('failure').catch(() => {});
    console.error(`at ${page.url()}: ${await detail()}`);
  }
  if (problems.length) console.error(`page problems: ${problems.join('; ')}`);
  console.error(`E2E FAILED after ${ms()}: ${e && e.stack ? e.stack : e}`);
  process.exitCode = 1;
}

/** Closes the browser (`closable`: a browser or a persistent context), removes its profile
 * directory (when given) and stops the watchdog. */
export async function cleanUp(closable, profileDir) {
  if (closable) await closable.close().catch(() => {});
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  clearTimeout(watchdog);
}
