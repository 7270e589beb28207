'use strict';
// A small Chrome DevTools Protocol client for the browser tests: Chromium
// started with --remote-debugging-pipe (the protocol's JSON messages,
// NUL-terminated, on file descriptors 3 and 4), one page driven through a
// flat session. No npm package, no WebSocket, no port: nothing to install
// and nothing another process could connect to. Chromium exits when the
// pipe closes, so it never outlives the Node process driving it, however
// that ends. Needs Node 18 or later.
//
//   const b = await Browser.launch({executable, userDataDir, log});
//   const page = await b.newPage();
//   await page.goto(url); await page.click('#save'); ...
//   await b.close();

const {spawn} = require('child_process');
const fs = require('fs');

// Generous: the suite runs on a shared 2-core machine, often under load.
const DEFAULT_TIMEOUT_MS = 20000;

class CdpError extends Error {}

class Connection {
  constructor(write, read) {
    this.write = write;
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = [];
    this.closed = null;
    let buf = Buffer.alloc(0);
    read.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      let nul;
      while ((nul = buf.indexOf(0)) >= 0) {
        const text = buf.subarray(0, nul).toString('utf8');
        buf = buf.subarray(nul + 1);
        this.dispatch(JSON.parse(text));
      }
    });
    read.on('close', () => this.fail(new CdpError('the browser went away')));
  }

  dispatch(msg) {
    if (msg.id !== undefined) {
      const p = this.pending.get(msg.id);
      if (!p) {
        return;
      }
      this.pending.delete(msg.id);
      if (msg.error) {
        p.reject(new CdpError(`${p.method}: ${msg.error.message}` +
          (msg.error.data ? ` (${msg.error.data})` : '')));
      } else {
        p.resolve(msg.result);
      }
      return;
    }
    for (const l of this.listeners.slice()) {
      if (l.method === msg.method && l.sessionId === msg.sessionId) {
        l.fn(msg.params);
      }
    }
  }

  fail(err) {
    this.closed = err;
    for (const p of this.pending.values()) {
      p.reject(err);
    }
    this.pending.clear();
  }

  send(method, params = {}, sessionId = undefined) {
    if (this.closed) {
      return Promise.reject(this.closed);
    }
    const id = this.nextId++;
    const msg = {id, method, params};
    if (sessionId) {
      msg.sessionId = sessionId;
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, {resolve, reject, method});
      this.write.write(`${JSON.stringify(msg)}\0`);
    });
  }

  on(method, sessionId, fn) {
    const l = {method, sessionId, fn};
    this.listeners.push(l);
    return () => {
      this.listeners = this.listeners.filter((x) => x !== l);
    };
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Keys for Page.pressKey: what Input.dispatchKeyEvent needs for each.
const KEYS = {
  Tab: {code: 'Tab', keyCode: 9},
  Enter: {code: 'Enter', keyCode: 13, text: '\r'},
  Escape: {code: 'Escape', keyCode: 27},
  ' ': {code: 'Space', keyCode: 32, text: ' '},
  Backspace: {code: 'Backspace', keyCode: 8},
};

class Page {
  constructor(conn, sessionId) {
    this.conn = conn;
    this.sessionId = sessionId;
    this.dialogs = [];     // JavaScript dialogs that opened (alert...)
    this.exceptions = [];  // uncaught exceptions in the page
    this.errors = [];      // console errors other than failed requests
  }

  send(method, params) {
    return this.conn.send(method, params, this.sessionId);
  }

  on(event, fn) {
    return this.conn.on(event, this.sessionId, fn);
  }

  async init() {
    await Promise.all([
      this.send('Page.enable'), this.send('Runtime.enable'),
      this.send('Log.enable'), this.send('DOM.enable'),
      // Headless pages are never focused: the clipboard wants focus.
      this.send('Emulation.setFocusEmulationEnabled', {enabled: true}),
    ]);
    this.on('Page.javascriptDialogOpening', (p) => {
      this.dialogs.push(`${p.type}: ${p.message}`);
      this.send('Page.handleJavaScriptDialog', {accept: false})
        .catch(() => {});
    });
    this.on('Runtime.exceptionThrown', (p) => {
      const d = p.exceptionDetails;
      this.exceptions.push((d.exception && d.exception.description) ||
        d.text);
    });
    this.on('Runtime.consoleAPICalled', (p) => {
      if (p.type === 'error' || p.type === 'assert') {
        this.errors.push(p.args.map((a) => a.value || a.description)
          .join(' '));
      }
    });
    // A refused fetch (401, 404, 409...) is logged by the browser as a
    // network error: that is the API answering, not the page failing.
    this.on('Log.entryAdded', ({entry}) => {
      if (entry.level === 'error' && entry.source !== 'network') {
        this.errors.push(`${entry.source}: ${entry.text}`);
      }
    });
    // Every Content-Security-Policy violation, whatever the policy's
    // own reporting does.
    await this.send('Page.addScriptToEvaluateOnNewDocument', {source: `
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__cspViolations.push(e.violatedDirective + ' ' +
          (e.blockedURI || '') + ' ' + (e.sample || ''));
      });`});
  }

  async goto(url) {
    let off = null;
    const loaded = new Promise((resolve) => {
      off = this.on('Page.loadEventFired', resolve);
    });
    try {
      const r = await this.send('Page.navigate', {url});
      if (r.errorText) {
        throw new CdpError(`navigating to ${url}: ${r.errorText}`);
      }
      // No loaderId: only the fragment changed, the document stays.
      if (r.loaderId) {
        await withTimeout(loaded, DEFAULT_TIMEOUT_MS, `the load of ${url}`);
      }
    } finally {
      off();
    }
  }

  // The value of a JavaScript expression (awaited if it is a promise).
  async eval(expression) {
    const r = await this.send('Runtime.evaluate', {expression,
      awaitPromise: true, returnByValue: true, userGesture: true});
    if (r.exceptionDetails) {
      const d = r.exceptionDetails;
      throw new CdpError(`evaluating ${expression.slice(0, 80)}: ` +
        `${(d.exception && d.exception.description) || d.text}`);
    }
    return r.result.value;
  }

  // fn(...args) in the page; fn is sent as its source.
  call(fn, ...args) {
    return this.eval(`(${fn.toString()})(...${JSON.stringify(args)})`);
  }

  // Poll until the expression is truthy; its value.
  async waitFor(expression, what, timeoutMs = DEFAULT_TIMEOUT_MS) {
    const end = Date.now() + timeoutMs;
    let last = null;
    for (;;) {
      try {
        const v = await this.eval(expression);
        if (v) {
          return v;
        }
      } catch (e) {
        last = e;
      }
      if (Date.now() > end) {
        throw new CdpError(`timed out after ${timeoutMs} ms waiting for ` +
          `${what || expression}${last ? ` (${last.message})` : ''}`);
      }
      await sleep(50);
    }
  }

  waitForSelector(selector, timeoutMs) {
    return this.waitFor(
      `(() => { const e = document.querySelector(${JSON.stringify(selector)});
         return !!e && e.getClientRects().length > 0; })()`,
      `the element ${selector}`, timeoutMs);
  }

  // The trimmed textContent of the first match ("" when none).
  text(selector) {
    return this.eval(`(document.querySelector(${JSON.stringify(selector)})
      ?.textContent || '').replace(/\\s+/g, ' ').trim()`);
  }

  // Wait until the element's text contains want; the text.
  async waitForText(selector, want, timeoutMs) {
    await this.waitFor(`(document.querySelector(${JSON.stringify(selector)})
      ?.textContent || '').replace(/\\s+/g, ' ').includes(
        ${JSON.stringify(want)})`, `"${want}" in ${selector}`, timeoutMs);
    return this.text(selector);
  }

  // A real mouse click in the middle of the element (scrolled into view).
  async click(selector) {
    await this.waitForSelector(selector);
    const box = await this.eval(`(() => {
      const e = document.querySelector(${JSON.stringify(selector)});
      e.scrollIntoView({block: 'center', inline: 'center'});
      const r = e.getBoundingClientRect();
      return {x: r.left + r.width / 2, y: r.top + r.height / 2};
    })()`);
    const base = {x: box.x, y: box.y, button: 'left', clickCount: 1};
    await this.send('Input.dispatchMouseEvent', {type: 'mouseMoved',
      x: box.x, y: box.y});
    await this.send('Input.dispatchMouseEvent',
      {...base, type: 'mousePressed'});
    await this.send('Input.dispatchMouseEvent',
      {...base, type: 'mouseReleased'});
  }

  async focus(selector) {
    await this.waitForSelector(selector);
    await this.eval(`document.querySelector(${JSON.stringify(selector)})
      .focus()`);
  }

  // Type text into the focused element, as an IME or a paste would.
  insertText(text) {
    return this.send('Input.insertText', {text});
  }

  // Replace the value of an input or textarea by typing.
  async fill(selector, text) {
    await this.click(selector);
    await this.selectAll();
    await this.pressKey('Backspace');
    if (text !== '') {
      await this.insertText(text);
    }
  }

  async selectAll() {
    const k = {key: 'a', code: 'KeyA', windowsVirtualKeyCode: 65,
      modifiers: 2, commands: ['selectAll']};
    await this.send('Input.dispatchKeyEvent', {type: 'rawKeyDown', ...k});
    await this.send('Input.dispatchKeyEvent', {type: 'keyUp', ...k});
  }

  async pressKey(key, modifiers = 0) {
    const k = KEYS[key];
    if (!k) {
      throw new CdpError(`pressKey: unknown key ${key}`);
    }
    const common = {key, code: k.code, windowsVirtualKeyCode: k.keyCode,
      nativeVirtualKeyCode: k.keyCode, modifiers};
    await this.send('Input.dispatchKeyEvent',
      {type: k.text ? 'keyDown' : 'rawKeyDown', text: k.text, ...common});
    await this.send('Input.dispatchKeyEvent', {type: 'keyUp', ...common});
  }

  // Drag files from outside the browser and drop them on the element.
  async dropFiles(selector, files) {
    await this.waitForSelector(selector);
    const box = await this.eval(`(() => {
      const e = document.querySelector(${JSON.stringify(selector)});
      e.scrollIntoView({block: 'center'});
      const r = e.getBoundingClientRect();
      return {x: r.left + r.width / 2, y: r.top + r.height / 2};
    })()`);
    const data = {items: [], files, dragOperationsMask: 1};
    for (const type of ['dragEnter', 'dragOver', 'drop']) {
      await this.send('Input.dispatchDragEvent', {type, x: box.x, y: box.y,
        data});
    }
  }

  // Answer the page's requests matching a rule ({method, path, status,
  // body}: path is the URL's pathname, body JSON) in the browser's
  // network layer, as the server would; the rest go to the server.
  // fake([]) stops.
  async fake(rules) {
    this.rules = rules;
    if (!this.faking) {
      this.faking = true;
      this.on('Fetch.requestPaused', (p) => {
        const path = new URL(p.request.url).pathname;
        const rule = this.rules.find((r) => r.method === p.request.method &&
          r.path === path);
        const answer = rule ? this.send('Fetch.fulfillRequest', {
          requestId: p.requestId, responseCode: rule.status,
          responseHeaders: [{name: 'Content-Type',
            value: 'application/json'}],
          body: Buffer.from(`${JSON.stringify(rule.body)}\n`)
            .toString('base64'),
        }) : this.send('Fetch.continueRequest', {requestId: p.requestId});
        answer.catch(() => {});
      });
    }
    await this.send(rules.length ? 'Fetch.enable' : 'Fetch.disable',
      rules.length ? {patterns: [{urlPattern: '*', requestStage: 'Request'}]} :
        {});
  }

  async setViewport(width, height = 900) {
    await this.send('Emulation.setDeviceMetricsOverride', {width, height,
      deviceScaleFactor: 1, mobile: width < 600});
  }

  setColorScheme(scheme) {
    return this.send('Emulation.setEmulatedMedia', {features: [
      {name: 'prefers-color-scheme', value: scheme}]});
  }

  // A PNG of the whole page at the current width.
  async screenshot(file) {
    const {width, height} = await this.eval(`({
      width: document.documentElement.clientWidth,
      height: Math.max(document.documentElement.scrollHeight,
                       document.body.scrollHeight)})`);
    const r = await this.send('Page.captureScreenshot', {format: 'png',
      captureBeyondViewport: true,
      clip: {x: 0, y: 0, width, height: Math.min(height, 8000), scale: 1}});
    fs.writeFileSync(file, Buffer.from(r.data, 'base64'));
  }
}

async function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CdpError(
      `timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, t]);
  } finally {
    clearTimeout(timer);
  }
}

class Browser {
  // opts: executable, userDataDir, log (a file for the browser's stderr),
  // args (more switches).
  static async launch(opts) {
    const log = fs.openSync(opts.log, 'a');
    const args = [
      '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
      '--no-first-run', '--no-default-browser-check',
      '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-breakpad', '--disable-dev-shm-usage',
      '--disable-extensions', '--mute-audio', '--hide-scrollbars',
      `--user-data-dir=${opts.userDataDir}`, '--remote-debugging-pipe',
      ...(opts.args || []), 'about:blank',
    ];
    const proc = spawn(opts.executable, args,
      {stdio: ['ignore', log, log, 'pipe', 'pipe']});
    fs.closeSync(log);
    const b = new Browser(proc, new Connection(proc.stdio[3], proc.stdio[4]));
    await withTimeout(b.conn.send('Browser.getVersion'), 30000,
      'the browser to start');
    return b;
  }

  constructor(proc, conn) {
    this.proc = proc;
    this.conn = conn;
    this.exited = new Promise((resolve) => proc.on('exit', resolve));
  }

  async newPage() {
    const {targetId} = await this.conn.send('Target.createTarget',
      {url: 'about:blank'});
    const {sessionId} = await this.conn.send('Target.attachToTarget',
      {targetId, flatten: true});
    const page = new Page(this.conn, sessionId);
    await page.init();
    return page;
  }

  grantPermissions(origin, permissions) {
    return this.conn.send('Browser.grantPermissions', {origin, permissions});
  }

  // Browser.close, then SIGKILL if it lingers.
  async close() {
    try {
      await withTimeout(this.conn.send('Browser.close'), 5000, 'close');
    } catch (e) {
      // Already gone, or stuck: killed below.
    }
    const done = await withTimeout(this.exited, 5000, 'exit')
      .then(() => true, () => false);
    if (!done) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }
}

module.exports = {Browser, Page, CdpError, sleep};
