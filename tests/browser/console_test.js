'use strict';
// The console in a real browser: headless Chromium driven through the
// DevTools protocol (cdp.js), against a real wsmux-edge started by
// tests/e2e/console.sh, which checks the edge's state (admin API, real
// ssh logins) between the steps.
//
// Protocol with console.sh: after each step this prints "STEP <name>" on
// stdout and waits for a line on stdin: "go [ARG]" to go on (ARG: a new
// token after "revoke"), anything else to stop. At the end it prints
// "DONE"; on a failure "ERROR <message>" (and exits 1) after a screenshot
// of the page as it was (failure.png). Its log goes to stderr.
//
// Environment: CONSOLE_URL (https://127.0.0.1:PORT/console/),
// CONSOLE_TOKEN, CONSOLE_VIEWER_TOKEN (a member's), CONSOLE_KEYS (a directory with k1.pub, k2.pub, k3.pub),
// CONSOLE_WORK (where texts for console.sh go), CONSOLE_SHOTS (the
// screenshots), CHROMIUM (default /usr/bin/chromium).

const fs = require('fs');
const path = require('path');
const readline = require('readline');
const {Browser} = require('./cdp.js');

const env = (name, def) => {
  const v = process.env[name] || def;
  if (v === undefined) {
    throw new Error(`${name} is not set`);
  }
  return v;
};
const URL_ = env('CONSOLE_URL');
const ORIGIN = new URL(URL_).origin;
let TOKEN = env('CONSOLE_TOKEN');
const VIEWER_TOKEN = env('CONSOLE_VIEWER_TOKEN');
const KEYS = env('CONSOLE_KEYS');
const WORK = env('CONSOLE_WORK');
const SHOTS = env('CONSOLE_SHOTS');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const WIDTHS = [390, 1440];
const JOB_NOTE = 'SSH access is available for services only';
const XSS_DESCRIPTION = '<img src=x onerror=alert(1)>';
const XSS_TAG = '<script>alert(2)</script>';

const key = (n) => fs.readFileSync(path.join(KEYS, `k${n}.pub`), 'utf8')
  .trim();

function log(...args) {
  process.stderr.write(`[driver ${new Date().toISOString().slice(11, 23)}] ` +
    `${args.join(' ')}\n`);
}

class Failure extends Error {}

function expect(cond, what) {
  if (!cond) {
    throw new Failure(what);
  }
}

function expectEqual(got, want, what) {
  if (got !== want) {
    throw new Failure(`${what}: got ${JSON.stringify(got)}, want ` +
      `${JSON.stringify(want)}`);
  }
}

// ---- the step protocol with console.sh
const input = readline.createInterface({input: process.stdin});
const lines = [];
let waiting = null;
input.on('line', (l) => {
  if (waiting) {
    const w = waiting;
    waiting = null;
    w(l);
  } else {
    lines.push(l);
  }
});
input.on('close', () => {
  if (waiting) {
    waiting(null);
  }
});

let currentStep = 'start';

async function step(name) {
  currentStep = name;
  log(`step ${name}: the shell checks the edge`);
  process.stdout.write(`STEP ${name}\n`);
  const line = lines.length ? lines.shift() :
    await new Promise((resolve) => {
      waiting = resolve;
    });
  if (line === null || !/^go( |$)/.test(line)) {
    throw new Failure(`the shell stopped the test at step ${name}: ${line}`);
  }
  return line.slice(3);
}

// ---- screenshots: each page at both widths, light and dark
let page;
const shots = [];

async function shoot(name) {
  for (const scheme of ['light', 'dark']) {
    await page.setColorScheme(scheme);
    for (const w of WIDTHS) {
      await page.setViewport(w);
      const file = path.join(SHOTS,
        `${name}-${w}${scheme === 'dark' ? '-dark' : ''}.png`);
      await page.screenshot(file);
      shots.push(file);
    }
  }
  await page.setColorScheme('light');
  await page.setViewport(1440);
}

async function sessionToken() {
  return page.eval('sessionStorage.getItem("wsmux.console.token")');
}

async function gotoNav(hash, ready) {
  await page.click(`#nav a[href="${hash}"]`);
  await page.waitForSelector(ready);
  expectEqual(await page.eval(`document.querySelector(
    '#nav a[href="${hash}"]').getAttribute('aria-current')`), 'page',
  `the menu marks ${hash} as the current page`);
}

// The page of a service by its URL; the previous page's elements are
// gone once the heading names the new service.
async function gotoService(p, s) {
  await page.goto(`${URL_}#/projects/${p}/services/${s}`);
  await page.waitFor(`location.hash === '#/projects/${p}/services/${s}' &&
    document.querySelector('main h1')?.textContent === '${s}'`,
  `the page of ${p}/${s}`);
}

async function noDialogOpen() {
  await page.waitFor('!document.querySelector("dialog[open]")',
    'the dialog to close');
}

// ---- the scenario

async function signIn() {
  await page.goto(URL_);
  await page.waitForSelector('#token');
  expectEqual(await page.eval('document.activeElement.id'), 'token',
    'the token field has the focus at the start');
  expect(await page.eval('document.querySelector("label[for=token]") ' +
    '!== null'), 'the token field is labelled');
  await shoot('signin');
  await page.pressKey('Enter');
  await page.waitForText('#token-error', 'Enter an API token.');
  await page.insertText('not-the-token');
  await page.pressKey('Enter');
  const msg = await page.waitForText('#token-error',
    'invalid or missing API token');
  expectEqual(msg, 'The edge refused this token: invalid or missing API ' +
    'token', 'the sign-in error');
  expectEqual(await sessionToken(), null, 'a refused token is not kept');
  await page.fill('#token', TOKEN);
  await page.pressKey('Enter');
  await page.waitForSelector('tr[data-service="p1/web"]');
  expectEqual(await sessionToken(), TOKEN, 'the token in sessionStorage');
  expectEqual(await page.eval('document.cookie'), '', 'no cookie is set');
  expectEqual(await page.eval('localStorage.length'), 0,
    'nothing in localStorage');
  await step('signed_in');
}

async function projectsPage() {
  const sw = (id) => `button[role=switch][data-service="${id}"]`;
  expectEqual(await page.eval(`document.querySelector('${sw('p1/web')}')
    .getAttribute('aria-checked')`), 'true', 'web: SSH on');
  expectEqual(await page.eval(`document.querySelector('${sw('p1/api')}')
    .getAttribute('aria-checked')`), 'false', 'api: SSH off');
  expectEqual(await page.eval(`document.querySelector('${sw('p1/web')}')
    .getAttribute('aria-label')`), 'SSH for service web',
  'the switch is labelled');
  expectEqual(await page.text('tr[data-service="p1/nightly"] .ssh-cell'),
    JOB_NOTE, 'a job shows why it has no switch');
  expect(await page.eval(`!document.querySelector('${sw('p1/nightly')}')`),
    'a job has no SSH switch');
  expectEqual(await page.eval(`[...document.querySelectorAll(
    'tr[data-service="p1/web"] .chip')].map((c) => c.textContent).join(' ')`),
  'prod eu', 'web\'s tags');
  await shoot('projects');
  await step('before_create');
}

async function createIdentity() {
  await gotoNav('#/identities', '#empty');
  await page.click('#new-identity');
  await page.waitForSelector('#f-name');
  await page.fill('#f-name', 'alice-laptop');
  await page.fill('#f-description', 'Alice\'s laptop');
  await page.click('#f-keys');
  await page.insertText(`${key(1)}\n`);
  await page.waitForText('.count', '1 key');
  // The second key arrives as a file dragged from the desktop.
  await page.dropFiles('#keys-drop', [path.join(KEYS, 'k2.pub')]);
  await page.waitForText('.count', '2 keys');
  expectEqual(await page.eval('document.querySelector("#f-keys").value'),
    `${key(1)}\n${key(2)}\n`, 'the keys field after the drop');
  await page.click('#f-projects input[value="p1"]');
  await page.click('#f-tags input[value="prod"]');
  await page.click('#f-tags input[value="eu"]');
  await page.waitForText('#preview-text',
    'Matches 3 services: p1/web, p1/api (SSH off), p1/cache');
  await page.click('#f-matchall');
  await page.waitForText('#preview-text',
    'Matches 2 services: p1/web, p1/api (SSH off)');
  expectEqual(await page.text('#preview-text'),
    'Matches 2 services: p1/web, p1/api (SSH off)', 'the preview');
  await shoot('identity-form');
  await page.click('#save');
  await page.waitForSelector('#identities tr[data-identity="alice-laptop"]');
  await page.waitForText('#flash', 'Created SSH identity alice-laptop');
  expectEqual(await page.text(
    'tr[data-identity="alice-laptop"] td[data-label=Opens]'), '2 services',
  'the list says which services the identity opens');
  await shoot('identities');
  await step('created');
}

async function servicePage() {
  await gotoNav('#/projects', 'tr[data-service="p1/web"]');
  await page.click('tr[data-service="p1/web"] a');
  await page.waitForSelector('#connect figure[data-command="ssh"]');
  const cmd = (name) => page.eval(`document.querySelector(
    'figure[data-command="${name}"] code').textContent`);
  expectEqual(await cmd('ssh'),
    'wsmux ssh service --projectId p1 --serviceId web', 'the ssh command');
  expectEqual(await cmd('proxy'),
    'wsmux ssh service --projectId p1 --serviceId web --proxyOnly',
    'the proxy command');
  expectEqual(await cmd('login'),
    `wsmux login --edge ${ORIGIN.replace(/^https/, 'wss')} --token -`,
    'the login command');
  expectEqual(await cmd('config-command'),
    'wsmux ssh config --projectId p1 --serviceId web >> ~/.ssh/config',
    'the ssh config command');
  fs.writeFileSync(path.join(WORK, 'console-ssh-config.txt'),
    await cmd('config-block'));
  // Copy buttons: the clipboard holds the command.
  await page.click('figure[data-command="proxy"] button.copy');
  await page.waitForText('figure[data-command="proxy"] .copy-status',
    'Copied');
  expectEqual(await page.eval('navigator.clipboard.readText()'),
    'wsmux ssh service --projectId p1 --serviceId web --proxyOnly',
    'the clipboard after "Copy"');
  await page.click('figure[data-command="config-block"] button.copy');
  await page.waitForText('figure[data-command="config-block"] .copy-status',
    'Copied');
  expectEqual(await page.eval('navigator.clipboard.readText()'),
    await cmd('config-block'), 'the copied ssh config block');
  await page.waitForSelector('#matching li[data-identity="alice-laptop"]');
  await shoot('service');

  // Excluded: the restriction that leaves the service out, in the words
  // of `wsmux ssh doctor` (console.sh compares).
  for (const [p, s, want] of [
    ['p1', 'cache', 'identity alice-laptop needs all of the tags ' +
      '[eu, prod]; the service has [prod]'],
    ['p2', 'db', 'identity alice-laptop is restricted to projects [p1]; ' +
      'the service is in project p2'],
  ]) {
    await gotoService(p, s);
    const sel = '#excluded li[data-identity="alice-laptop"] .reason';
    await page.waitForSelector(sel);
    const why = await page.text(sel);
    expectEqual(why, want, `why alice-laptop does not open ${s}`);
    fs.writeFileSync(path.join(WORK, `console-why-${s}.txt`), why);
  }
  await gotoService('p1', 'nightly');
  await page.waitForSelector('#connect');
  expectEqual(await page.text('#connect .job-note'), JOB_NOTE,
    'a job\'s page says why there is no command');
  expect(await page.eval('!document.querySelector("button[role=switch]") && ' +
    '!document.querySelector("figure[data-command]")'),
  'a job\'s page has no switch and no command');
  await step('service_page');
}

async function editIdentity() {
  await gotoNav('#/identities', 'tr[data-identity="alice-laptop"]');
  await page.click('tr[data-identity="alice-laptop"] a[aria-label="Edit ' +
    'alice-laptop"]');
  await page.waitForSelector('#f-name');
  await page.waitForText('#preview-text', 'Matches 2 services');
  expectEqual(await page.eval('document.querySelector("#f-name").value'),
    'alice-laptop', 'the name in the edit form');
  expect(await page.eval('document.querySelector("#f-matchall").checked'),
    '"Match all tags" is checked in the edit form');
  await page.fill('#f-keys', `${key(2)}\n`);
  await page.waitForText('.count', '1 key');
  await page.fill('#f-description', 'Alice\'s desktop only');
  await page.click('#save');
  await page.waitForText('#flash', 'Saved SSH identity alice-laptop');
  await page.waitForSelector('#identities tr[data-identity="alice-laptop"]');
  expectEqual(await page.text('tr[data-identity="alice-laptop"] .description'),
    'Alice\'s desktop only', 'the new description in the list');
  await step('edited');
}

async function switchSsh() {
  await step('session_open');
  const sw = 'button[role=switch][data-service="p1/web"]';
  await gotoNav('#/projects', sw);
  await page.click(sw);
  await page.waitForSelector('dialog[open]');
  const text = await page.text('dialog[open]');
  expect(text.includes('Disable SSH for web?') && text.includes(
    '1 proxy with 1 open SSH connection to web (project p1) will be ' +
    'closed at once'),
  `the confirmation says what closes: ${text}`);
  expectEqual(await page.eval('document.activeElement.dataset.action'),
    'cancel', 'the dialog\'s focus starts on Cancel');
  await shoot('confirm-ssh-off');
  await page.click('dialog [data-action="cancel"]');
  await noDialogOpen();
  expectEqual(await page.eval(`document.querySelector('${sw}')
    .getAttribute('aria-checked')`), 'true', 'cancelled: still on');
  await step('ssh_cancelled');

  await page.click(sw);
  await page.waitForSelector('dialog[open]');
  await page.click('dialog [data-action="confirm"]');
  await page.waitFor(`document.querySelector('${sw}')
    .getAttribute('aria-checked') === 'false'`, 'the switch to turn off');
  await page.waitForText('#flash', 'SSH disabled for web in project p1');
  await step('ssh_off');

  // On again with the keyboard alone: no question asked.
  await page.focus(sw);
  await page.pressKey(' ');
  await page.waitFor(`document.querySelector('${sw}')
    .getAttribute('aria-checked') === 'true'`, 'the switch to turn on');
  expect(await page.eval('!document.querySelector("dialog[open]")'),
    'enabling SSH asks nothing');
  await page.waitForText('#flash', 'SSH enabled for web in project p1');
  await step('ssh_on');
}

async function deleteIdentity() {
  await gotoNav('#/identities', 'tr[data-identity="alice-laptop"]');
  await page.click('tr[data-identity="alice-laptop"] ' +
    'button[data-action="delete"]');
  await page.waitForSelector('dialog[open]');
  expect((await page.text('dialog[open]')).includes(
    'Delete SSH identity alice-laptop?'), 'the delete confirmation');
  await shoot('confirm-delete');
  await page.click('dialog [data-action="confirm"]');
  await noDialogOpen();
  await page.waitForSelector('#empty');
  await page.waitForText('#flash', 'Deleted SSH identity alice-laptop');
  await step('deleted');
}

async function badInput() {
  // Markup in a description and a tag is text.
  await page.click('#new-identity');
  await page.waitForSelector('#f-name');
  await page.fill('#f-name', 'ops');
  await page.fill('#f-description', XSS_DESCRIPTION);
  await page.fill('#f-keys', key(3));
  await page.click('#f-newtag');
  await page.insertText(XSS_TAG);
  await page.pressKey('Enter');
  await page.waitForSelector('#f-tags input:checked');
  await page.click('#save');
  await page.waitForSelector('#identities tr[data-identity="ops"]');
  expectEqual(await page.text('tr[data-identity="ops"] .description'),
    XSS_DESCRIPTION, 'the description is shown as text');
  expectEqual(await page.text('tr[data-identity="ops"] .chip'), XSS_TAG,
    'the tag is shown as text');
  const injected = () => page.eval('[...document.images].some((i) => ' +
    'i.getAttribute("src") === "x") || document.querySelectorAll(' +
    '"main script").length > 0');
  expect(!(await injected()), 'no element was made from the API\'s values');

  // An invalid key: the API's message next to the keys.
  await page.click('#new-identity');
  await page.waitForSelector('#f-name');
  await page.fill('#f-name', 'ops');
  await page.fill('#f-keys', '# a comment line\nssh-ed25519 AAAAC3Nza!!');
  await page.click('#save');
  const keyErr = await page.waitForText('#f-keys-error', 'keys[0]: ');
  expectEqual(keyErr, 'keys[0]: invalid base64 (line 2)',
    'the invalid key\'s message');
  expectEqual(await page.eval('document.querySelector("#f-keys")' +
    '.getAttribute("aria-invalid")'), 'true', 'the keys field is invalid');
  expect(await page.eval('document.querySelector("#f-keys")' +
    '.getAttribute("aria-describedby").includes("f-keys-error")'),
  'the keys field is described by its error');
  expectEqual(await page.eval('document.activeElement.id'), 'f-keys',
    'the focus moves to the field in error');
  expect(await page.eval('document.querySelector("#f-name-error").hidden'),
    'no error on the name');
  await shoot('identity-errors');

  // A name already taken: the message next to the name.
  await page.fill('#f-keys', key(1));
  await page.click('#save');
  const nameErr = await page.waitForText('#f-name-error',
    'is already used');
  expect(/^name "ops" is already used by SSH identity idt-[0-9a-f]{16}$/
    .test(nameErr), `the duplicate name's message: ${nameErr}`);
  expect(await page.eval('document.querySelector("#f-keys-error").hidden'),
    'the keys error is gone');
  expectEqual(await page.eval('document.activeElement.id'), 'f-name',
    'the focus moves to the name');
  await page.click('.form-actions a');
  await page.waitForSelector('#identities');

  // The service page renders the description as text too.
  await gotoService('p1', 'web');
  const ops = '#excluded li[data-identity="ops"]';
  await page.waitForSelector(ops);
  expect((await page.text(ops)).includes(XSS_DESCRIPTION),
    'the description as text on the service page');
  expectEqual(await page.text(`${ops} .reason`), 'identity ops needs one of ' +
    `the tags [${XSS_TAG}]; the service has [prod, eu]`,
  'the tag as text in the reason');
  expect(!(await injected()), 'no element was made from the API\'s values');
  expectEqual(page.dialogs.length, 0, 'no dialog opened');
  await step('bad_input');
}

// The console's matching rule (js/match.js) against the edge's: for every
// identity and service, the identity's keys are in the service's
// authorized-keys exactly when matches() says so.
async function agreement() {
  await step('agreement_setup');
  const r = await page.call(async () => {
    const {matches} = await import('./js/match.js');
    const t = sessionStorage.getItem('wsmux.console.token');
    const get = async (p) => {
      const res = await fetch(p, {headers: {Authorization: `Bearer ${t}`}});
      if (!res.ok) {
        throw new Error(`${p}: HTTP ${res.status}`);
      }
      return (res.headers.get('Content-Type') || '')
        .startsWith('application/json') ? res.json() : res.text();
    };
    const ids = (await get('/v1/ssh-identities')).identities;
    const projects = (await get('/v1/projects')).projects;
    const wrong = [];
    let checked = 0;
    for (const p of projects) {
      for (const s of (await get(`/v1/projects/${p.id}/services`)).services) {
        const lines = (await get(`/v1/projects/${p.id}/services/${s.id}/` +
          'authorized-keys')).split('\n').filter((l) => l !== '');
        for (const id of ids) {
          const listed = id.keys.map((k) => lines.some((l) => l === k ||
            l === `${k} wsmux:${id.name}`));
          const edge = listed.every(Boolean);
          if (!edge && listed.some(Boolean)) {
            wrong.push(`${id.name} on ${p.id}/${s.id}: only some keys`);
          }
          if (edge !== matches(id, s)) {
            wrong.push(`${id.name} on ${p.id}/${s.id}: edge ${edge}, ` +
              `console ${matches(id, s)}`);
          }
          checked += 1;
        }
      }
    }
    return {checked, wrong, identities: ids.length};
  });
  log(`agreement: ${r.checked} identity/service pairs, ` +
    `${r.identities} identities`);
  expect(r.identities >= 8, `the shell made the identities (${r.identities})`);
  expectEqual(r.wrong.join('; '), '', 'console and edge disagree');
  await step('agreement');
}

// signInAs(token): sign out, then in with token; on the projects page.
async function signInAs(token) {
  await page.click('#signout');
  await page.waitForSelector('#token');
  await page.fill('#token', token);
  await page.pressKey('Enter');
  await page.waitForSelector('tr[data-service="p1/web"]');
  expectEqual(await sessionToken(), token, 'signed in with the new token');
}

// The member token viewer (reads only): the edge refuses its writes and
// the audit log with 403 and a message naming the token and its role;
// every page shows that message and changes nothing.
async function forbidden() {
  const denied = (what) => 'Not allowed: token viewer has role member: it ' +
    `may not ${what}`;
  await signInAs(VIEWER_TOKEN);
  await gotoNav('#/audit', 'main .alert');
  expectEqual(await page.text('main .alert'), 'The audit log cannot be ' +
    `read: ${denied('read the audit log (an admin of every project may)')}`,
  'a page refused');

  // Nothing is open to cache: switching it off asks nothing (and is
  // refused).
  const sw = 'button[role=switch][data-service="p1/cache"]';
  await gotoNav('#/projects', sw);
  await page.click(sw);
  const alert = 'section[data-project="p1"] .alert';
  await page.waitForSelector(alert);
  expect(await page.eval('!document.querySelector("dialog[open]")'),
    'nothing open to cache: no question asked');
  expectEqual(await page.text(alert), 'Could not change SSH for cache: ' +
    denied('switch SSH of services'), 'a switch refused');
  expectEqual(await page.eval(`document.querySelector('${sw}')
    .getAttribute('aria-checked')`), 'true', 'a refused switch stays on');

  await gotoNav('#/identities', '#new-identity');
  await page.click('#new-identity');
  await page.waitForSelector('#f-name');
  await page.fill('#f-name', 'not-allowed');
  await page.fill('#f-keys', key(1));
  await page.click('#save');
  expectEqual(await page.waitForText('#form-error', 'Not allowed'),
    `The edge refused the identity: ${denied('create SSH identities')}`,
  'a form refused');

  // The edge never refuses the project list (a token limited to projects
  // sees its own), but a proxy in front of it may: the browser answers
  // that 403 in the edge's place (cdp.js fake()). Identities can still be
  // managed.
  await page.fake([{method: 'GET', path: '/v1/projects', status: 403,
    body: {error: 'refused by the proxy in front of the edge'}}]);
  await page.click('.form-actions a');
  await page.waitForSelector('#identities tr[data-identity="ops"]');
  await page.waitForText('main .alert', 'Which services each identity');
  expectEqual(await page.text('tr[data-identity="ops"] .opens'), '—',
    'no count without the services');
  await shoot('forbidden');
  await page.click('#new-identity');
  await page.waitForText('#preview-text', 'No preview');
  expectEqual(await page.text('#preview-text'), 'No preview: the services ' +
    'cannot be read (Not allowed: refused by the proxy in front of the ' +
    'edge).', 'the form without the services');
  await page.fake([]);
  await step('forbidden');
  await signInAs(TOKEN);
}

async function auditPage() {
  await gotoNav('#/audit', '#audit');
  const rows = await page.eval(`[...document.querySelectorAll('#audit tbody tr')]
    .map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent
      .replace(/\\s+/g, ' ').trim()).slice(1).join(' | '))`);
  log(`audit: ${rows.length} rows`);
  for (const want of [
    'admin | Created SSH identity | alice-laptop',
    'admin | Updated SSH identity | alice-laptop',
    'admin | Disabled SSH | p1/web',
    'admin | Enabled SSH | p1/web',
    'admin | Deleted SSH identity | alice-laptop',
  ]) {
    expect(rows.some((r) => r.startsWith(want)),
      `the audit log lists "${want}": ${rows.join('; ')}`);
  }
  expect(rows[0].startsWith('admin | Created SSH identity | agree-'),
    `newest first: ${rows[0]}`);
  await shoot('audit');
  // Dark means dark: the page's background follows the system.
  await page.setColorScheme('dark');
  const bg = await page.eval('getComputedStyle(document.body)' +
    '.backgroundColor');
  await page.setColorScheme('light');
  const rgb = bg.match(/\d+/g).map(Number);
  expect(rgb[0] < 60 && rgb[1] < 60 && rgb[2] < 60,
    `a dark background in dark mode: ${bg}`);
}

async function keyboard() {
  // From the top of the page: Tab reaches the skip link, Enter moves the
  // focus to the page's heading.
  await page.goto(`${URL_}?fresh#/identities`); // a new document
  await page.waitForSelector('#identities');
  expectEqual(await page.eval('document.activeElement.tagName'), 'BODY',
    'a fresh page leaves the focus at the top');
  await page.pressKey('Tab');
  expectEqual(await page.eval('document.activeElement.id'), 'skip',
    'the first Tab reaches the skip link');
  await page.pressKey('Enter');
  expectEqual(await page.eval('document.activeElement.tagName'), 'H1',
    'the skip link moves the focus to the heading');
  // Every control of the identity form has a label.
  await page.goto(`${URL_}#/identities/new`);
  await page.waitForSelector('#f-name');
  const unlabelled = await page.eval(`[...document.querySelectorAll(
    'main input:not([type=file]), main textarea, main select')]
    .filter((e) => !e.labels || e.labels.length === 0).map((e) => e.id)`);
  expectEqual(unlabelled.join(','), '', 'controls without a label');
}

async function revoke() {
  const newToken = await step('revoke');
  await gotoNavAnyway('#/identities');
  const msg = await page.waitForText('#token-error', 'You were signed out');
  expectEqual(msg, 'You were signed out: the edge refused the token ' +
    '(invalid or missing API token). Sign in again.', 'the 401 message');
  expectEqual(await sessionToken(), null, 'the refused token is forgotten');
  expect(await page.eval('document.querySelector("#nav").hidden'),
    'the menu is hidden when signed out');
  await shoot('signin-revoked');
  TOKEN = newToken;
  await page.fill('#token', TOKEN);
  await page.pressKey('Enter');
  // Back where the user was.
  await page.waitForSelector('#identities');
  expectEqual(await page.eval('location.hash'), '#/identities',
    'back on the page the 401 came from');
  await page.click('#signout');
  await page.waitForSelector('#token');
  expectEqual(await sessionToken(), null, 'signing out forgets the token');
  await page.waitForText('#flash', 'Signed out');
  await step('signed_out');
}

// A click on a menu link whose page will not load (the token is refused).
async function gotoNavAnyway(hash) {
  await page.click(`#nav a[href="${hash}"]`);
}

async function main() {
  fs.mkdirSync(SHOTS, {recursive: true});
  const browser = await Browser.launch({executable: CHROMIUM,
    userDataDir: path.join(WORK, 'chrome'),
    log: path.join(WORK, 'chromium.log'),
    args: ['--ignore-certificate-errors']});
  let failed = null;
  try {
    await browser.grantPermissions(ORIGIN, ['clipboardReadWrite',
      'clipboardSanitizedWrite']);
    page = await browser.newPage();
    await page.setViewport(1440);
    await signIn();
    await projectsPage();
    await createIdentity();
    await servicePage();
    await editIdentity();
    await switchSsh();
    await deleteIdentity();
    await badInput();
    await agreement();
    await forbidden();
    await auditPage();
    await keyboard();
    await revoke();
    const csp = await page.eval('window.__cspViolations');
    expectEqual([...csp, ...page.exceptions, ...page.errors].join('; '), '',
      'CSP violations, exceptions or errors in the page');
    expectEqual(page.dialogs.join('; '), '', 'JavaScript dialogs');
    log(`${shots.length} screenshots in ${SHOTS}`);
  } catch (e) {
    failed = e;
    if (page) {
      try {
        await page.screenshot(path.join(SHOTS, 'failure.png'));
      } catch (e2) {
        log(`no failure screenshot: ${e2.message}`);
      }
      log(`page: exceptions ${JSON.stringify(page.exceptions)}, errors ` +
        `${JSON.stringify(page.errors)}, dialogs ` +
        `${JSON.stringify(page.dialogs)}`);
    }
  } finally {
    await browser.close();
  }
  if (failed) {
    log(failed.stack || failed.message);
    process.stdout.write(`ERROR at step ${currentStep}: ` +
      `${failed.message.replace(/\n/g, ' ')}\n`);
    process.exit(1);
  }
  process.stdout.write('DONE\n');
  process.exit(0);
}

main();
