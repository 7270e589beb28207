// Creating and editing an SSH identity: name, description, keys (pasted,
// or dropped / picked as files), restrictions by project and by tag with
// "Match all tags", and a live preview of the services it will open. The
// edge validates; its messages are shown next to the field they name.
import {allServices, api} from '../api.js';
import {append, h, listText, plural, replace, uid} from '../dom.js';
import {matchingServices} from '../match.js';
import {alertBox, errorText, flash, loading, setAlert, timeEl} from '../ui.js';

// A key file is small; anything bigger is not one.
const KEY_FILE_MAX = 64 * 1024;

// Keys as the CLI's --key-file reads them: one per line, blank lines and
// # comments skipped. Each with its line number, for messages.
export function parseKeys(text) {
  const keys = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line !== '' && !line.startsWith('#')) {
      keys.push({line: i + 1, key: line});
    }
  });
  return keys;
}

// Which field an API error is about: "keys[1]: invalid base64" -> keys,
// index 1; a 409 about the name -> name. null: the whole form.
export function errorField(err) {
  if (err.status === 409 && /^name /.test(err.message)) {
    return {field: 'name', index: null};
  }
  const m = /^(name|description|keys|projects|tags|matchAllTags)(?:\[(\d+)\])?: /
    .exec(err.message);
  if (!m || (err.status !== 400 && err.status !== 409)) {
    return null;
  }
  return {field: m[1], index: m[2] === undefined ? null : Number(m[2])};
}

// The restrictions in a sentence: "Services in project p1 with all of
// the tags eu and prod."
export function ruleText(id) {
  const where = id.projects.length === 0 ? 'Services in any project' :
    `Services in ${id.projects.length === 1 ? 'project' : 'projects'} ` +
    listText(id.projects, 'or');
  if (id.tags.length === 0) {
    return `${where}, whatever their tags.`;
  }
  if (id.tags.length === 1) {
    return `${where} with the tag ${id.tags[0]}.`;
  }
  return `${where} with ${id.matchAllTags ? 'all' : 'any'} of the tags ` +
    `${listText(id.tags, id.matchAllTags ? 'and' : 'or')}.`;
}

// One labelled control with its hint and error line.
function field(id, label, control, hint) {
  const hintId = `${id}-hint`;
  const errId = `${id}-error`;
  control.id = id;
  control.setAttribute('aria-describedby', hint ? hintId : '');
  return h('div', {class: 'field', dataset: {field: id}},
    h('label', {for: id}, label),
    hint ? h('p', {class: 'hint', id: hintId}, hint) : null,
    control,
    h('p', {class: 'field-error', id: errId, role: 'alert', hidden: true}));
}

function checkbox(name, value, label, checked) {
  const id = uid(`f-${name}`);
  return h('div', {class: 'check'},
    h('input', {type: 'checkbox', id, name, value, checked}),
    h('label', {for: id}, label));
}

export async function render(main, params) {
  const editing = params.id !== undefined;
  const heading = editing ? 'Edit SSH identity' : 'New SSH identity';
  replace(main, h('h1', {tabindex: '-1'}, heading), loading('the form'));
  let identity = null;
  try {
    if (editing) {
      identity = await api.identity(params.id);
    }
  } catch (e) {
    if (!e.handled) {
      replace(main, h('h1', {tabindex: '-1'}, heading),
        alertBox(errorText(e)));
    }
    return;
  }
  // The projects and services give the choices and the preview; a token
  // that may not read them can still write the identity.
  let lists = [];
  let listsError = null;
  try {
    lists = await allServices();
  } catch (e) {
    if (e.handled) {
      return;
    }
    listsError = e;
  }
  const services = lists.flatMap((l) => l.services || []);
  const projects = lists.map((l) => l.project);
  const init = identity || {name: '', description: '', keys: [],
    projects: [], tags: [], matchAllTags: false};

  // ---- controls
  const name = h('input', {type: 'text', autocomplete: 'off',
    spellcheck: 'false', autocapitalize: 'off', maxlength: '128'});
  name.value = init.name;
  const description = h('textarea', {rows: '2'});
  description.value = init.description;
  const keys = h('textarea', {rows: '5', class: 'mono', spellcheck: 'false',
    autocapitalize: 'off', autocomplete: 'off'});
  keys.value = init.keys.length ? `${init.keys.join('\n')}\n` : '';
  const keyCount = h('span', {class: 'count', 'aria-live': 'polite'});
  const fileInput = h('input', {type: 'file', multiple: true,
    accept: '.pub,text/plain', class: 'vh', id: 'f-keyfile',
    tabindex: '-1', 'aria-label': 'Public key files'});
  const pick = h('button', {type: 'button', class: 'btn btn-small'},
    'Add from a file…');
  pick.addEventListener('click', () => fileInput.click());

  const projectBoxes = h('div', {class: 'checks', id: 'f-projects'});
  const known = new Set(projects.map((p) => p.id));
  for (const p of projects) {
    projectBoxes.append(checkbox('project', p.id,
      p.name !== p.id ? `${p.name} (${p.id})` : p.id,
      init.projects.includes(p.id)));
  }
  for (const p of init.projects.filter((x) => !known.has(x))) {
    projectBoxes.append(checkbox('project', p,
      `${p} (not on this edge)`, true));
  }

  const tagBoxes = h('div', {class: 'checks', id: 'f-tags'});
  const serviceTags = [...new Set(services.flatMap((s) => s.tags))].sort();
  const addTagBox = (t, checked) => {
    const have = [...tagBoxes.querySelectorAll('input')]
      .find((i) => i.value === t);
    if (have) {
      have.checked = have.checked || checked;
      return;
    }
    const n = services.filter((s) => s.tags.includes(t)).length;
    tagBoxes.append(checkbox('tag', t,
      n ? `${t} (${plural(n, 'service', 'services')})` : `${t} (no service)`,
      checked));
  };
  serviceTags.forEach((t) => addTagBox(t, init.tags.includes(t)));
  init.tags.forEach((t) => addTagBox(t, true));
  const newTag = h('input', {type: 'text', autocomplete: 'off',
    id: 'f-newtag'});
  const addTag = h('button', {type: 'button', class: 'btn btn-small'},
    'Add tag');
  const doAddTag = () => {
    const t = newTag.value.trim();
    if (t !== '') {
      addTagBox(t, true);
      newTag.value = '';
      update();
    }
    newTag.focus();
  };
  addTag.addEventListener('click', doAddTag);
  newTag.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      doAddTag();
    }
  });
  const matchAll = h('input', {type: 'checkbox', id: 'f-matchall',
    checked: init.matchAllTags});

  const preview = h('div', {class: 'preview', id: 'preview',
    'aria-live': 'polite'});
  const formError = h('p', {class: 'alert', role: 'alert', hidden: true,
    id: 'form-error'});
  const submit = h('button', {type: 'submit', class: 'btn btn-primary',
    id: 'save'}, editing ? 'Save changes' : 'Create identity');

  // ---- state
  const checked = (box) => [...box.querySelectorAll('input:checked')]
    .map((i) => i.value);
  const current = () => ({
    name: name.value.trim(),
    description: description.value,
    keys: parseKeys(keys.value).map((k) => k.key),
    projects: checked(projectBoxes),
    tags: checked(tagBoxes),
    matchAllTags: matchAll.checked,
  });
  function update() {
    const id = current();
    keyCount.textContent = plural(id.keys.length, 'key', 'keys');
    if (listsError) {
      replace(preview, h('p', {id: 'preview-text'}, 'No preview: the ' +
        `services cannot be read (${errorText(listsError)}).`));
      return;
    }
    const opens = matchingServices(id, services);
    const items = opens.map((s) =>
      `${s.projectId}/${s.id}${s.sshEnabled ? '' : ' (SSH off)'}`);
    replace(preview,
      h('p', {id: 'preview-rule', class: 'muted'}, ruleText(id)),
      h('p', {id: 'preview-text'}, opens.length === 0 ?
        'Matches no service.' :
        `Matches ${plural(opens.length, 'service', 'services')}: ` +
        `${items.join(', ')}`));
  }

  const fieldErrors = {
    name: 'f-name', description: 'f-description', keys: 'f-keys',
    projects: 'f-projects', tags: 'f-tags', matchAllTags: 'f-matchall',
  };
  const showFieldError = (key, message) => {
    const control = main.querySelector(`#${fieldErrors[key]}`);
    const err = main.querySelector(`#${fieldErrors[key]}-error`);
    err.textContent = message;
    err.hidden = false;
    control.setAttribute('aria-invalid', 'true');
    const desc = (control.getAttribute('aria-describedby') || '').split(' ')
      .filter((x) => x && x !== err.id);
    control.setAttribute('aria-describedby', [...desc, err.id].join(' '));
    const focusable = control.matches('input, textarea') ? control :
      control.querySelector('input');
    if (focusable) {
      focusable.focus();
    }
  };
  const clearErrors = () => {
    setAlert(formError, null);
    for (const id of Object.values(fieldErrors)) {
      const control = main.querySelector(`#${id}`);
      const err = main.querySelector(`#${id}-error`);
      err.hidden = true;
      err.textContent = '';
      control.removeAttribute('aria-invalid');
      const desc = (control.getAttribute('aria-describedby') || '')
        .split(' ').filter((x) => x && x !== err.id);
      control.setAttribute('aria-describedby', desc.join(' '));
    }
  };

  // ---- key files: dropped on the keys field, or picked
  const addFiles = async (files) => {
    clearErrors();
    const texts = [];
    for (const f of files) {
      if (f.size > KEY_FILE_MAX) {
        showFieldError('keys', `${f.name} is larger than 64 KiB: not a ` +
          'public key file');
        return;
      }
      const text = await f.text();
      if (/PRIVATE KEY/.test(text)) {
        showFieldError('keys', `${f.name} is a private key: never share ` +
          'it; choose its .pub file');
        return;
      }
      texts.push(text.trim());
    }
    const before = keys.value.trim();
    keys.value = `${[before, ...texts].filter((t) => t !== '').join('\n')}\n`;
    update();
  };
  fileInput.addEventListener('change', () => {
    addFiles([...fileInput.files]);
    fileInput.value = '';
  });
  const hasFiles = (e) => e.dataTransfer &&
    [...e.dataTransfer.types].includes('Files');
  const zone = h('div', {class: 'dropzone', id: 'keys-drop'},
    keys,
    h('div', {class: 'drop-row'},
      h('span', {class: 'muted'}, 'Paste keys, one per line, or drop ',
        h('code', {}, '.pub'), ' files here.'),
      pick, fileInput));
  zone.addEventListener('dragover', (e) => {
    if (hasFiles(e)) {
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
      zone.classList.add('dragging');
    }
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (e) => {
    zone.classList.remove('dragging');
    if (hasFiles(e)) {
      e.preventDefault();
      addFiles([...e.dataTransfer.files]);
    }
  });

  // ---- submit
  const form = h('form', {class: 'form with-aside', novalidate: true,
    'aria-labelledby': 'form-title'});
  form.addEventListener('input', update);
  form.addEventListener('change', update);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors();
    const body = current();
    const parsed = parseKeys(keys.value);
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      const saved = editing ? await api.updateIdentity(identity.id, body) :
        await api.createIdentity(body);
      flash(`${editing ? 'Saved' : 'Created'} SSH identity ${saved.name}`,
        {keep: true});
      window.location.hash = '#/identities';
    } catch (err) {
      if (err.handled) {
        return;
      }
      const where = errorField(err);
      if (where === null) {
        setAlert(formError, `The edge refused the identity: ${errorText(err)}`);
        formError.focus();
      } else {
        let msg = err.message;
        if (where.field === 'keys' && where.index !== null &&
            parsed[where.index]) {
          msg += ` (line ${parsed[where.index].line})`;
        }
        showFieldError(where.field, msg);
      }
    } finally {
      submit.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });

  const tagFieldset = h('fieldset', {class: 'field'},
    h('legend', {}, 'Restrict to tags'),
    h('p', {class: 'hint'}, 'None checked: services with any tags.'),
    tagBoxes,
    h('div', {class: 'inline'},
      h('label', {for: 'f-newtag'}, 'Another tag'), newTag, addTag),
    h('div', {class: 'check'}, matchAll,
      h('label', {for: 'f-matchall'}, 'Match all tags')),
    h('p', {class: 'hint', id: 'f-matchall-hint'},
      'Off: a service needs at least one of the tags. On: every one.'),
    h('p', {class: 'field-error', id: 'f-matchall-error', role: 'alert',
      hidden: true}),
    h('p', {class: 'field-error', id: 'f-tags-error', role: 'alert',
      hidden: true}));
  matchAll.setAttribute('aria-describedby', 'f-matchall-hint');

  append(form, [
    h('h1', {tabindex: '-1', id: 'form-title'},
      editing ? `Edit ${identity.name}` : heading),
    editing ? h('p', {class: 'muted'}, `${identity.id} · created `,
      timeEl(identity.createdAt), ' · updated ', timeEl(identity.updatedAt)) :
      null,
    formError,
    field('f-name', 'Name', name,
      '1–128 characters: letters, digits, “.”, “_” and “-”.'),
    field('f-description', 'Description (optional)', description, null),
    h('div', {class: 'field', dataset: {field: 'f-keys'}},
      h('div', {class: 'label-row'},
        h('label', {for: 'f-keys'}, 'Public keys'), keyCount),
      h('p', {class: 'hint', id: 'f-keys-hint'}, 'OpenSSH public keys ',
        '(ssh-ed25519, ecdsa-sha2-*, ssh-rsa, sk-*), one per line.'),
      zone,
      h('p', {class: 'field-error', id: 'f-keys-error', role: 'alert',
        hidden: true})),
    h('fieldset', {class: 'field'},
      h('legend', {}, 'Restrict to projects'),
      h('p', {class: 'hint'}, 'None checked: every project.'),
      projectBoxes,
      h('p', {class: 'field-error', id: 'f-projects-error', role: 'alert',
        hidden: true})),
    tagFieldset,
    h('section', {class: 'panel preview-panel', 'aria-labelledby':
      'preview-title'}, h('h2', {id: 'preview-title'}, 'Preview'), preview),
    h('div', {class: 'form-actions'}, submit,
      h('a', {class: 'btn', href: '#/identities'}, 'Cancel')),
  ]);
  keys.id = 'f-keys';
  keys.setAttribute('aria-describedby', 'f-keys-hint');
  replace(main, form);
  update();
}
