// Drives the leakwatch console in a real headless Chromium, as an analyst would, and walks
// every page that shows crawled script and markup payloads.
//
// Why a browser: the console's promises (no script runs, nothing but the console itself is
// ever contacted, stored markup shows as text) are about what a browser does with its pages,
// which only a browser can check. Run by leakwatch/tests/console_browser.rs against a data dir
// crawled from the testbed, XSS site included; it can also be pointed at any running console.
//
// Environment:
//   CONSOLE_URL                      the console, e.g. http://127.0.0.1:8080
//   ADMIN_USER, ADMIN_PASSWORD       an admin
//   ANALYST_USER, ANALYST_PASSWORD   an analyst
//   SCREENSHOTS                      directory for one PNG per page (default target/console-screenshots)
//   FIXTURE                          JSON: { phrase, phrase_url, xss: testbed::xss::XssTruth } (optional:
//                                    without it the search uses `*` and there is no XSS walk)
//   RESULTS                          where to write what was reviewed, as JSON (optional)
//   CHROMIUM                         the browser (default /usr/bin/chromium)
//
// Fails (exit 1) on: any request to another origin than the console's (all are recorded, and
// foreign ones aborted before they leave), any dialog, page error or popup, any CSP violation,
// a `<script>`, frame, object, `<base>`, `<style>`, meta refresh, `on*` or `style` attribute, or
// a URL attribute pointing off the console anywhere in a page's DOM, a page title that is not
// the console's own, and any step of the flow that does not show what it should.

import { chromium } from 'playwright-core';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return v;
};

const base = new URL(env('CONSOLE_URL'));
const origin = base.origin;
const admin = { user: env('ADMIN_USER'), password: env('ADMIN_PASSWORD') };
const analyst = { user: env('ANALYST_USER'), password: env('ANALYST_PASSWORD') };
const shotsDir = env('SCREENSHOTS', 'target/console-screenshots');
const fixture = process.env.FIXTURE ? JSON.parse(readFileSync(process.env.FIXTURE, 'utf8')) : {};

mkdirSync(shotsDir, { recursive: true });
for (const f of readdirSync(shotsDir)) {
  if (/^\d{3}-.*\.png$/.test(f)) rmSync(join(shotsDir, f));
}

const violations = [];
const requests = [];
const foreign = [];
let visited = 0;

function violation(msg) {
  violations.push(msg);
  console.error(`VIOLATION: ${msg}`);
}

function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

const sameOrigin = (u) => {
  try {
    return new URL(u).origin === origin;
  } catch {
    return false;
  }
};

// The console shows bidi controls (which could make `gnp.exe` read `exe.png`) as their code
// points: what an analyst should read for a crawled string.
const BIDI = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/g;
const shown = (s) => (s ?? '').replace(BIDI, (c) => `[U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}]`);
const norm = (s) => shown(s).replace(/\s+/g, ' ').trim();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});

// A browser context (its own cookies) that records and polices everything.
async function newContext(who) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.on('request', (r) => {
    requests.push(r.url());
    if (!sameOrigin(r.url())) {
      foreign.push(r.url());
      violation(`request outside the console: ${r.method()} ${r.url()} (as ${who}, from ${r.frame()?.url()})`);
    }
  });
  // Nothing foreign may leave the machine even when a payload gets through: abort it.
  await context.route('**/*', (route) =>
    sameOrigin(route.request().url()) ? route.continue() : route.abort('blockedbyclient'),
  );
  // Init scripts are not subject to the page's CSP: report every violation to the console log.
  await context.addInitScript(() => {
    document.addEventListener(
      'securitypolicyviolation',
      (e) => console.error(`CSP-VIOLATION ${e.violatedDirective} blocked=${e.blockedURI} sample=${e.sample}`),
      true,
    );
  });
  const page = await context.newPage();
  // A payload that swallows the rest of a page (an unclosed comment) must fail fast.
  page.setDefaultTimeout(10_000);
  context.on('page', (p) => violation(`a page opened a new page: ${p.url()}`));
  page.on('dialog', (d) => {
    violation(`dialog (${d.type()}) "${d.message()}" on ${page.url()}`);
    d.dismiss().catch(() => {});
  });
  page.on('console', (m) => {
    const t = m.text();
    if (/CSP-VIOLATION|Content Security Policy/i.test(t)) violation(`CSP violation on ${page.url()}: ${t}`);
  });
  page.on('pageerror', (e) => violation(`script error on ${page.url()}: ${e.message}`));
  return { context, page };
}

// Checks the DOM of the current page for anything a payload could have brought in, then
// takes its screenshot.
async function inspect(page, name) {
  const found = await page.evaluate(() => {
    const out = [];
    const urlAttrs = ['href', 'src', 'action', 'formaction', 'data', 'poster', 'srcset', 'xlink:href',
      'background', 'cite', 'ping', 'manifest', 'codebase', 'longdesc', 'usemap'];
    const banned = ['script', 'iframe', 'frame', 'frameset', 'object', 'embed', 'applet', 'base',
      'style', 'portal', 'img', 'video', 'audio', 'source', 'track', 'image', 'use', 'foreignobject',
      'math', 'template', 'noscript', 'marquee'];
    for (const el of document.querySelectorAll('*')) {
      const tag = el.tagName.toLowerCase();
      if (banned.includes(tag)) out.push(`<${tag}> element: ${el.outerHTML.slice(0, 160)}`);
      if (tag === 'meta' && el.hasAttribute('http-equiv')) out.push(`meta http-equiv: ${el.outerHTML}`);
      if (tag === 'link' && !(el.rel === 'stylesheet' && new URL(el.href).pathname === '/static/style.css')) {
        out.push(`<link>: ${el.outerHTML}`);
      }
      for (const a of el.attributes) {
        const n = a.name.toLowerCase();
        if (n.startsWith('on')) out.push(`${n} attribute on <${tag}>: ${el.outerHTML.slice(0, 160)}`);
        if (n === 'style') out.push(`style attribute on <${tag}>: ${a.value.slice(0, 120)}`);
        if (n === 'srcdoc') out.push(`srcdoc on <${tag}>`);
        if (urlAttrs.includes(n)) {
          let u = null;
          try {
            u = new URL(a.value, location.href);
          } catch {}
          if (!u || u.origin !== location.origin) out.push(`${n}="${a.value.slice(0, 120)}" on <${tag}> leaves the console`);
        }
      }
    }
    return { problems: out, title: document.title, url: location.href };
  });
  for (const p of found.problems) violation(`${name} (${found.url}): ${p}`);
  if (!found.title.endsWith(' · leakwatch') || /pwned/i.test(found.title)) {
    violation(`${name} (${found.url}): document.title is "${found.title}"`);
  }
  visited += 1;
  const file = join(shotsDir, `${String(visited).padStart(3, '0')}-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

async function goto(page, path, name) {
  const res = await page.goto(new URL(path, origin).href, { waitUntil: 'load' });
  await inspect(page, name);
  return res;
}

// Submits a form by clicking `button` and waits for the page it leads to.
async function submit(page, button, name) {
  const nav = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame() });
  await page.click(button);
  await nav;
  await page.waitForLoadState('load');
  await inspect(page, name);
}

async function login(page, who, name) {
  await goto(page, '/login', `${name}-form`);
  await page.fill('#login input[name=user]', who.user);
  await page.fill('#login input[name=password]', who.password);
  await submit(page, '#login button[type=submit]', name);
  expect(new URL(page.url()).pathname === '/alerts', `login as ${who.user} led to ${page.url()}`);
  expect(norm(await page.textContent('#viewer')).startsWith(who.user), `not signed in as ${who.user}`);
}

async function logout(page, name) {
  await submit(page, '#logout button[type=submit]', name);
  expect(new URL(page.url()).pathname === '/login', `logout led to ${page.url()}`);
  await goto(page, '/alerts', `${name}-alerts-refused`);
  expect(new URL(page.url()).pathname === '/login', `/alerts after logout shows ${page.url()}`);
}

// The ids of the alert links on the current page.
const alertLinks = (page, selector) =>
  page.$$eval(selector, (as) => as.map((a) => a.getAttribute('href')).filter((h) => /^\/alerts\/[^/?]+$/.test(h)));

const results = {};
let xssPages = 0;
const xssAlerts = new Set();

async function main() {
  // ---- The analyst's flow, as an admin ----------------------------------------------------
  const { context: adminContext, page } = await newContext('admin');

  await goto(page, '/alerts', 'signed-out-alerts');
  expect(new URL(page.url()).pathname === '/login', `/alerts without a session shows ${page.url()}`);

  await page.fill('#login input[name=user]', admin.user);
  await page.fill('#login input[name=password]', 'not-the-password-at-all');
  await submit(page, '#login button[type=submit]', 'login-wrong-password');
  expect(await page.isVisible('#login-error'), 'a wrong password shows no error');
  const loginError = norm(await page.textContent('#login-error'));
  expect(/wrong password/i.test(loginError), `a wrong password shows "${loginError}", not the wrong-password error`);

  await login(page, admin, 'login-admin');
  expect((await page.$$('#alerts tr.alert')).length > 0, 'no alerts listed after login');

  // Search, through the form.
  await goto(page, '/search', 'search-empty');
  const phrase = fixture.phrase ? `"${fixture.phrase}"` : '*';
  await page.fill('#search input[name=q]', phrase);
  await submit(page, '#search button[type=submit]', 'search-results');
  const hits = await page.$$eval('ol#results li.hit', (lis) =>
    lis.map((li) => ({ url: li.querySelector('.url')?.textContent ?? '', snippet: li.querySelector('.snippet')?.innerHTML ?? '' })),
  );
  expect(hits.length > 0, `no result for ${phrase}`);
  const target = fixture.phrase_url ? hits.findIndex((h) => h.url === fixture.phrase_url) : 0;
  expect(target >= 0, `${fixture.phrase_url} is not among the results for ${phrase}: ${JSON.stringify(hits)}`);
  if (fixture.phrase) expect(hits[target].snippet.includes('<b>'), `no match marked in ${hits[target].snippet}`);

  // Open the result.
  await page.locator('ol#results li.hit a.hit-link').nth(target).click();
  await page.waitForURL(/\/page\?url=/);
  await inspect(page, 'stored-page');
  expect(norm(await page.textContent('#page-url')) === hits[target].url, 'the stored page is not the one clicked');

  // An alert: view it, then confirm it with a note (the note itself carries markup).
  await goto(page, '/alerts?kind=image&state=new', 'alerts-new-images');
  const fresh = await alertLinks(page, '#alerts a.alert-link');
  expect(fresh.length >= 2, `fewer than two new image alerts: ${fresh.length}`);
  await goto(page, fresh[0], 'alert');
  expect(await page.isVisible('#facts'), 'the alert page shows no facts');
  const note = "Confirmed in the browser test </textarea><script>document.title='pwned-note'</script> {{7*7}}";
  await page.selectOption('#review select[name=state]', 'confirmed');
  await page.fill('#review textarea[name=note]', note);
  await submit(page, '#review button[type=submit]', 'alert-confirmed');
  expect(new URL(page.url()).searchParams.get('saved') === '1', `the review led to ${page.url()}`);
  expect(await page.isVisible('#notice'), 'no notice after a review');
  expect(norm(await page.textContent('#facts .state')) === 'confirmed', 'the state shown is not confirmed');
  expect((await page.inputValue('#review textarea[name=note]')) === note, 'the note is not shown back as written');
  expect((await page.textContent('#facts')).includes(note), 'the note is not among the facts as written');
  results.confirmed_id = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  results.confirmed_note = note;

  // Another image alert, whose image the index knows: false positive, on the negative list.
  let negative = null;
  for (const href of fresh.slice(1)) {
    await goto(page, href, 'alert-candidate');
    const sha = page.locator('#facts dt:text-is("Image SHA-256") + dd code');
    if ((await sha.count()) === 1) {
      negative = { href, sha: norm(await sha.textContent()) };
      break;
    }
  }
  expect(negative, 'no new image alert whose image the index knows');
  await page.check('#review input[name=negative]');
  await page.selectOption('#review select[name=state]', 'false_positive');
  await page.fill('#review textarea[name=note]', 'a look-alike, not ours');
  await submit(page, '#review button[type=submit]', 'alert-false-positive');
  expect(await page.isVisible('#notice'), `no notice after the negative-list review: ${await page.textContent('main')}`);
  expect(norm(await page.textContent('#facts .state')) === 'false_positive', 'the state shown is not false_positive');
  results.negative_id = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  results.negative_sha256 = negative.sha;

  // Coverage and users, through the navigation.
  await page.click('header nav a[href="/coverage"]');
  await page.waitForURL(/\/coverage$/);
  await inspect(page, 'coverage');
  expect(await page.isVisible('svg#sightings-chart'), 'no sightings chart');
  expect((await page.$$('#coverage tbody tr')).length > 0, 'coverage lists nothing');
  expect((await page.$$('#sites tbody tr')).length > 0, 'coverage lists no site');
  await page.click('header nav a[href="/users"]');
  await page.waitForURL(/\/users$/);
  await inspect(page, 'users');
  const users = norm(await page.textContent('#users'));
  expect(users.includes(admin.user) && users.includes(analyst.user), `users page lists ${users}`);

  // ---- The XSS walk: every page whose stored fields carry payloads ---------------------------
  const xss = fixture.xss;
  if (xss) {
    for (const p of xss.pages) {
      await goto(page, `/search?q=${encodeURIComponent(p.word)}`, `xss-search-${p.word}`);
      const found = await page.$$eval('ol#results li.hit', (lis) =>
        lis.map((li) => ({
          url: li.querySelector('.url')?.textContent ?? '',
          title: li.querySelector('a.hit-link')?.textContent ?? '',
          markup: [...li.querySelectorAll('.snippet *')].map((e) => e.tagName),
        })),
      );
      const i = found.findIndex((h) => h.url === p.url);
      expect(i >= 0, `search for ${p.word} does not find ${p.url}: ${JSON.stringify(found)}`);
      for (const h of found) {
        if (h.markup.some((t) => t !== 'B')) violation(`snippet markup other than <b> for ${p.word}: ${h.markup}`);
      }
      if (norm(found[i].title) !== norm(p.title)) {
        violation(`search result title for ${p.url} shows "${found[i].title}", not "${p.title}"`);
      }
      await page.locator('ol#results li.hit a.hit-link').nth(i).click();
      await page.waitForURL(/\/page\?url=/);
      await inspect(page, `xss-page-${p.word}`);
      xssPages += 1;
      expect(norm(await page.textContent('#page-url')) === p.url, `page view of ${p.url} shows ${await page.textContent('#page-url')}`);
      const h1 = norm(await page.textContent('main h1'));
      if (h1 !== norm(p.title)) violation(`page view title is "${h1}", not "${p.title}"`);
      const text = norm(await page.textContent('pre#text'));
      for (const s of p.shows) {
        if (!text.includes(norm(s))) violation(`page view of ${p.url} does not show ${JSON.stringify(s)} as text`);
      }
      for (const href of await alertLinks(page, '#page-alerts a')) {
        if (xssAlerts.has(href)) continue;
        xssAlerts.add(href);
        await goto(page, href, `xss-alert-${p.word}`);
        const urls = (await page.$$eval('#facts code.url', (cs) => cs.map((c) => c.textContent)));
        if (!urls.includes(p.url)) violation(`alert ${href} from ${p.url} shows URLs ${JSON.stringify(urls)}`);
      }
    }
    // The photos with payload labels, through the alert filters.
    for (const photo of xss.photos) {
      await goto(page, '/alerts', 'xss-alerts-form');
      await page.fill('#filters input[name=label]', photo.label);
      await submit(page, '#filters button[type=submit]', 'xss-alerts-by-label');
      const rows = await page.$$eval('#alerts tr.alert', (trs) => trs.map((tr) => tr.children[3].textContent));
      expect(rows.length > 0 && rows.every((l) => l === shown(photo.label)), `alerts for label ${photo.label}: ${JSON.stringify(rows)}`);
      for (const href of await alertLinks(page, '#alerts a.alert-link')) {
        await goto(page, href, 'xss-photo-alert');
        xssAlerts.add(href);
        expect(norm(await page.textContent('main h1')).includes(norm(photo.label)), `alert ${href} does not show its label`);
        const urls = await page.$$eval('#facts code.url', (cs) => cs.map((c) => c.textContent));
        if (!urls.includes(photo.image_url) || !urls.includes(photo.page_url)) {
          violation(`alert ${href} shows ${JSON.stringify(urls)}, not ${photo.image_url} on ${photo.page_url}`);
        }
      }
    }
    expect(xssAlerts.size >= xss.photos.length + (xss.text_leak ? 1 : 0), `only ${xssAlerts.size} XSS alerts visited`);
    // Pages that list what was crawled and searched: all alerts, coverage (payload labels), audit
    // (payload queries and URLs).
    await goto(page, '/alerts', 'xss-all-alerts');
    await goto(page, '/coverage', 'xss-coverage');
    const coverage = await page.textContent('#coverage');
    for (const photo of xss.photos) {
      if (!coverage.includes(shown(photo.label))) violation(`coverage does not show the label ${photo.label}`);
    }
    await goto(page, '/audit', 'xss-audit');
    const audit = await page.textContent('#audit');
    if (!xss.pages.some((p) => audit.includes(p.url))) violation('the audit log shows no viewed XSS page URL');
  }

  await logout(page, 'logout-admin');
  await adminContext.close();

  // ---- An analyst may not manage users ---------------------------------------------------------
  const { context: analystContext, page: apage } = await newContext('analyst');
  await login(apage, analyst, 'login-analyst');
  expect((await apage.$$('header nav a[href="/users"]')).length === 0, 'an analyst is offered the users page');
  for (const p of ['/users', '/audit']) {
    const res = await goto(apage, p, `analyst-${p.slice(1)}-refused`);
    expect(res.status() === 403, `${p} answered ${res.status()} to an analyst`);
  }
  await logout(apage, 'logout-analyst');
  await analystContext.close();
}

let failed = null;
try {
  await main();
} catch (e) {
  failed = e;
  console.error(`FAILED: ${e.stack ?? e}`);
}
await browser.close();

Object.assign(results, {
  pages: visited,
  requests: requests.length,
  foreign: foreign.length,
  xss_pages: xssPages,
  xss_alerts: xssAlerts.size,
  violations,
});
if (process.env.RESULTS) writeFileSync(process.env.RESULTS, JSON.stringify(results, null, 2));
console.log(
  `summary: pages visited ${visited} (screenshots in ${shotsDir}), XSS pages ${xssPages}, XSS alerts ${xssAlerts.size}, ` +
    `requests recorded ${requests.length}, foreign requests ${foreign.length}, violations ${violations.length}`,
);
if (violations.length > 0) console.error(`${violations.length} violations:\n${violations.join('\n')}`);
if (failed || violations.length > 0) process.exit(1);
