// The console's shell: sign-in, the header, and a router over the URL's
// hash (#/projects, #/projects/P/services/S, #/identities,
// #/identities/new, #/identities/ID, #/audit, #/signin). Each page renders
// into a fresh container, so a slow page that finishes after the user
// moved on changes nothing on screen.
import * as api from './api.js';
import {h, replace} from './dom.js';
import {alertBox, errorText, flash, flashPageChanged} from './ui.js';
import * as audit from './views/audit.js';
import * as identities from './views/identities.js';
import * as identityForm from './views/identity_form.js';
import * as projects from './views/projects.js';
import * as service from './views/service.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const session = document.getElementById('session');

// Shown once on the sign-in page (why the user is there), and where to go
// after signing in.
let signInMessage = null;
let afterSignIn = null;

const dec = decodeURIComponent;
const routes = [
  [/^#\/projects$/, 'Projects', (c) => projects.render(c)],
  [/^#\/projects\/([^/]+)\/services\/([^/]+)$/, 'Service',
    (c, m) => service.render(c, {project: dec(m[1]), service: dec(m[2])})],
  [/^#\/identities$/, 'SSH identities', (c) => identities.render(c)],
  [/^#\/identities\/new$/, 'New SSH identity',
    (c) => identityForm.render(c, {})],
  [/^#\/identities\/([^/]+)$/, 'Edit SSH identity',
    (c, m) => identityForm.render(c, {id: dec(m[1])})],
  [/^#\/audit$/, 'Audit log', (c) => audit.render(c)],
];

function showChrome(signedIn) {
  nav.hidden = !signedIn;
  session.hidden = !signedIn;
}

function markNav(hash) {
  for (const a of nav.querySelectorAll('a')) {
    const section = a.getAttribute('href');
    if (hash === section || hash.startsWith(`${section}/`)) {
      a.setAttribute('aria-current', 'page');
    } else {
      a.removeAttribute('aria-current');
    }
  }
}

function renderSignIn(container) {
  document.title = 'Sign in · wsmux console';
  const input = h('input', {type: 'password', id: 'token', name: 'token',
    autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off',
    required: true, 'aria-describedby': 'token-hint token-error'});
  const error = h('p', {class: 'field-error', id: 'token-error',
    role: 'alert', hidden: signInMessage === null}, signInMessage || '');
  signInMessage = null;
  const submit = h('button', {type: 'submit', class: 'btn btn-primary',
    id: 'signin'}, 'Sign in');
  const form = h('form', {class: 'form signin', novalidate: true,
    'aria-labelledby': 'signin-title'},
  h('h1', {id: 'signin-title', tabindex: '-1'}, 'Sign in'),
  h('p', {class: 'lead'}, 'Manage SSH identities and SSH access to your ' +
    'services.'),
  h('div', {class: 'field'},
    h('label', {for: 'token'}, 'API token'),
    h('p', {class: 'hint', id: 'token-hint'}, 'Kept in this browser tab ' +
      'only, and sent to this edge alone. Closing the tab or signing out ' +
      'forgets it.'),
    input, error),
  h('div', {class: 'form-actions'}, submit));
  const fail = (msg) => {
    error.textContent = msg;
    error.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (t === '') {
      fail('Enter an API token.');
      return;
    }
    submit.disabled = true;
    try {
      await api.request('GET', '/v1/projects', undefined, {token: t});
    } catch (err) {
      // 403: the token is valid, only not for projects; its pages say so.
      if (err.status !== 403) {
        submit.disabled = false;
        fail(err.status === 401 ? `The edge refused this token: ${err.message}` :
          errorText(err));
        return;
      }
    }
    api.signIn(t);
    const to = afterSignIn || '#/projects';
    afterSignIn = null;
    if (window.location.hash === to) {
      route();
    } else {
      window.location.hash = to;
    }
  });
  replace(container, form);
  input.focus();
}

let current = null;
// The first page keeps the focus at the top of the document, where a
// keyboard user starts (Tab: the skip link); later ones move it to their
// heading, so that a screen reader announces the new page.
let firstPage = true;

function route() {
  const hash = window.location.hash || '#/projects';
  const container = h('div', {class: 'page'});
  current = container;
  replace(main, container);
  flashPageChanged();
  if (!api.token()) {
    showChrome(false);
    if (hash !== '#/signin') {
      afterSignIn = hash;
      window.history.replaceState(null, '', '#/signin');
    }
    renderSignIn(container);
    return;
  }
  if (hash === '#/signin' || hash === '#/' || hash === '#') {
    window.location.replace('#/projects');
    return;
  }
  showChrome(true);
  markNav(hash);
  for (const [re, title, render] of routes) {
    const m = re.exec(hash);
    if (m) {
      document.title = `${title} · wsmux console`;
      const moveFocus = !firstPage;
      firstPage = false;
      Promise.resolve(render(container, m)).then(() => {
        const h1 = container.querySelector('h1');
        if (current === container && h1 && moveFocus) {
          h1.focus();
        }
      }, (err) => {
        if (current === container && !err.handled) {
          replace(container, h('h1', {tabindex: '-1'}, title),
            alertBox(errorText(err)));
        }
      });
      return;
    }
  }
  document.title = 'Not found · wsmux console';
  replace(container, h('h1', {tabindex: '-1'}, 'Page not found'),
    h('p', {}, 'No such page. ', h('a', {href: '#/projects'},
      'Go to the projects'), '.'));
}

// The stored token was refused (revoked, or the edge's config changed):
// forget it and say so on the sign-in page.
api.setUnauthorizedHandler((err) => {
  api.signOut();
  signInMessage = `You were signed out: the edge refused the token ` +
    `(${err.message}). Sign in again.`;
  const hash = window.location.hash;
  if (hash && hash !== '#/signin') {
    afterSignIn = hash;
  }
  if (hash === '#/signin') {
    route();
  } else {
    window.location.hash = '#/signin';
  }
});

document.getElementById('signout').addEventListener('click', () => {
  api.signOut();
  afterSignIn = null;
  flash('Signed out. The token is forgotten.', {keep: true});
  window.location.hash = '#/signin';
});

// The skip link moves focus to the page's heading (its href would be a
// route).
document.getElementById('skip').addEventListener('click', (e) => {
  e.preventDefault();
  const h1 = main.querySelector('h1');
  (h1 || main).focus();
});

window.addEventListener('hashchange', route);
route();
