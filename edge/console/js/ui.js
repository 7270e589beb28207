// Widgets shared by the pages: the confirmation dialog, copy buttons, the
// SSH switch, error and status messages.
import {h, replace, uid} from './dom.js';

// A modal <dialog> (the page behind is inert; Escape cancels). Resolves
// to true when the user confirms. The cancel button has the focus first,
// so Enter on a destructive question does nothing harmful.
export function confirmDialog({title, body, confirm, danger = true}) {
  return new Promise((resolve) => {
    const titleId = uid('dlg-title');
    const bodyId = uid('dlg-body');
    const cancelBtn = h('button', {type: 'button', class: 'btn',
      'data-action': 'cancel'}, 'Cancel');
    const okBtn = h('button', {type: 'button',
      class: danger ? 'btn btn-danger' : 'btn btn-primary',
      'data-action': 'confirm'}, confirm);
    const dlg = h('dialog', {class: 'dialog', 'aria-labelledby': titleId,
      'aria-describedby': bodyId},
    h('h2', {id: titleId}, title),
    h('p', {id: bodyId}, body),
    h('div', {class: 'dialog-actions'}, cancelBtn, okBtn));
    let answer = false;
    const finish = (yes) => {
      answer = yes;
      dlg.close();
    };
    cancelBtn.addEventListener('click', () => finish(false));
    okBtn.addEventListener('click', () => finish(true));
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(answer);
    });
    document.body.append(dlg);
    dlg.showModal();
    cancelBtn.focus();
  });
}

async function writeClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (e) {
      // Not allowed here (permissions): the old way below.
    }
  }
  const ta = h('textarea', {class: 'offscreen', readonly: true,
    'aria-hidden': 'true', tabindex: '-1'});
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch (e) {
    ok = false;
  }
  ta.remove();
  return ok;
}

// A "Copy" button for text; what it did is said in a live region.
export function copyButton(text, what) {
  const status = h('span', {class: 'copy-status', role: 'status'});
  const btn = h('button', {type: 'button', class: 'btn btn-small copy',
    'aria-label': `Copy ${what}`}, 'Copy');
  btn.addEventListener('click', async () => {
    const ok = await writeClipboard(text);
    status.textContent = ok ? 'Copied' : 'Select the text and copy it';
    window.setTimeout(() => {
      status.textContent = '';
    }, 4000);
  });
  return h('span', {class: 'copy-wrap'}, btn, status);
}

// A command or a config block, with its copy button.
export function codeBlock(label, text, name) {
  const id = uid('code');
  return h('figure', {class: 'code', 'data-command': name},
    h('figcaption', {id}, label),
    h('div', {class: 'code-row'},
      h('pre', {'aria-labelledby': id, tabindex: '0'}, h('code', {}, text)),
      copyButton(text, label.toLowerCase())));
}

// The SSH switch of a service: a button with role="switch". onToggle(next)
// returns a promise of the new state (or the old one when cancelled).
export function sshSwitch(service, onToggle) {
  const label = h('span', {class: 'switch-text'});
  const btn = h('button', {type: 'button', role: 'switch', class: 'switch',
    'aria-label': `SSH for service ${service.id}`,
    dataset: {service: `${service.projectId}/${service.id}`}},
  h('span', {class: 'switch-track', 'aria-hidden': 'true'},
    h('span', {class: 'switch-thumb'})),
  label);
  const show = (on) => {
    btn.setAttribute('aria-checked', on ? 'true' : 'false');
    label.textContent = on ? 'On' : 'Off';
  };
  show(service.sshEnabled);
  btn.addEventListener('click', async () => {
    const next = btn.getAttribute('aria-checked') !== 'true';
    btn.disabled = true;
    btn.setAttribute('aria-busy', 'true');
    try {
      show(await onToggle(next));
    } finally {
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
      btn.focus();
    }
  });
  return btn;
}

// An error for the user: the API's own message, as text.
export function errorText(err) {
  if (err && err.status === 403) {
    return `Not allowed: ${err.message}`;
  }
  if (err && err.status === 0) {
    return `The edge cannot be reached: ${err.message}`;
  }
  return err && err.message ? err.message : String(err);
}

export function alertBox(message) {
  return h('p', {class: 'alert', role: 'alert'}, message);
}

// Show (or clear, with null) a message in a page's alert slot.
export function setAlert(slot, message) {
  if (message === null) {
    slot.replaceChildren();
    slot.hidden = true;
  } else {
    replace(slot, message);
    slot.hidden = false;
  }
}

let flashKept = false;

// The message line under the header (role="status"). keep: it is about
// a change that takes the user to another page, so it stays there.
export function flash(message, {keep = false} = {}) {
  const el = document.getElementById('flash');
  replace(el, message || '');
  el.hidden = !message;
  flashKept = Boolean(message) && keep;
}

// The router moved to another page: an older message goes.
export function flashPageChanged() {
  if (flashKept) {
    flashKept = false;
  } else {
    flash(null);
  }
}

export function loading(what) {
  return h('p', {class: 'loading', role: 'status'}, `Loading ${what}…`);
}

export function timeEl(iso) {
  const d = new Date(iso);
  const text = Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit',
    minute: '2-digit', second: '2-digit',
  });
  return h('time', {datetime: iso, title: iso}, text);
}

// Tags as a list of chips ("—" when none).
export function tagList(tags) {
  if (!tags || tags.length === 0) {
    return h('span', {class: 'muted'}, '—');
  }
  return h('ul', {class: 'chips', 'aria-label': 'tags'},
    tags.map((t) => h('li', {class: 'chip'}, t)));
}
