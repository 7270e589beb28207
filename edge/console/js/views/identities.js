// SSH identities: the list, and deleting one.
import {allServices, api, seg} from '../api.js';
import {h, plural, replace} from '../dom.js';
import {matchingServices} from '../match.js';
import {
  alertBox, confirmDialog, errorText, flash, loading, setAlert, tagList,
  timeEl,
} from '../ui.js';

export function identityHref(id) {
  return `#/identities/${seg(id.id)}`;
}

// "type comment" of a key line, to tell keys apart without the base64.
export function keyLabel(key) {
  const parts = key.split(' ');
  return parts.length > 2 ? `${parts[0]} ${parts.slice(2).join(' ')}` :
    parts[0];
}

async function remove(id, nServices, alertSlot) {
  const yes = await confirmDialog({
    title: `Delete SSH identity ${id.name}?`,
    body: `Its ${plural(id.keys.length, 'key', 'keys')} will be refused at ` +
      `the next login to the ${plural(nServices, 'service', 'services')} ` +
      'it opens now. This cannot be undone.',
    confirm: 'Delete identity',
  });
  if (!yes) {
    return false;
  }
  try {
    await api.deleteIdentity(id.id);
    flash(`Deleted SSH identity ${id.name}`);
    return true;
  } catch (e) {
    if (!e.handled) {
      setAlert(alertSlot, `Could not delete ${id.name}: ${errorText(e)}`);
    }
    return false;
  }
}

// services: every service, or null when they cannot be read.
function row(id, services, alertSlot, main) {
  const opens = services ? matchingServices(id, services) : [];
  const del = h('button', {type: 'button', class: 'btn btn-small btn-danger',
    'aria-label': `Delete ${id.name}`, 'data-action': 'delete'}, 'Delete');
  del.addEventListener('click', async () => {
    if (await remove(id, opens.length, alertSlot)) {
      render(main);
    }
  });
  return h('tr', {dataset: {identity: id.name}},
    h('th', {scope: 'row', 'data-label': 'Name', class: 'name'},
      h('a', {href: identityHref(id)}, id.name)),
    h('td', {'data-label': 'Description', class: 'description'},
      id.description || h('span', {class: 'muted'}, '—')),
    h('td', {'data-label': 'Keys'}, h('ul', {class: 'plain keys'},
      id.keys.map((k) => h('li', {}, keyLabel(k))))),
    // One child per cell: on a phone the cell is a grid (label, value).
    h('td', {'data-label': 'Restrictions'}, h('div', {},
      id.projects.length ? h('div', {}, 'Projects: ',
        tagList(id.projects)) : null,
      id.tags.length ? h('div', {}, `Tags (${id.matchAllTags ? 'all' :
        'any'}): `, tagList(id.tags)) : null,
      !id.projects.length && !id.tags.length ?
        h('span', {class: 'muted'}, 'None') : null)),
    h('td', {'data-label': 'Opens', class: 'opens',
      title: opens.map((s) => `${s.projectId}/${s.id}`).join(', ')},
    services ? plural(opens.length, 'service', 'services') : '—'),
    h('td', {'data-label': 'Updated'}, timeEl(id.updatedAt)),
    h('td', {'data-label': 'Actions', class: 'actions'},
      h('div', {class: 'buttons'}, h('a', {class: 'btn btn-small',
        href: identityHref(id), 'aria-label': `Edit ${id.name}`}, 'Edit'),
      del)));
}

export async function render(main) {
  const head = () => [
    h('div', {class: 'page-head'},
      h('h1', {tabindex: '-1'}, 'SSH identities'),
      h('a', {class: 'btn btn-primary', href: '#/identities/new',
        id: 'new-identity'}, 'New identity')),
    h('p', {class: 'lead'}, 'Who may log in over SSH: each identity\'s ' +
      'public keys are accepted by the services its restrictions match.'),
  ];
  replace(main, head(), loading('SSH identities'));
  let identities;
  try {
    identities = await api.identities();
  } catch (e) {
    if (!e.handled) {
      replace(main, head(), alertBox(errorText(e)));
    }
    return;
  }
  // Without the services (a token not allowed to list them) the list
  // still works; only what each identity opens is not known.
  let services = null;
  let servicesError = null;
  try {
    services = (await allServices()).flatMap((l) => l.services || []);
  } catch (e) {
    if (e.handled) {
      return;
    }
    servicesError = e;
  }
  const alertSlot = h('p', {class: 'alert', role: 'alert', hidden: true});
  if (servicesError) {
    setAlert(alertSlot, 'Which services each identity opens cannot be ' +
      `shown: ${errorText(servicesError)}`);
  }
  if (identities.length === 0) {
    replace(main, head(), alertSlot, h('p', {class: 'muted', id: 'empty'},
      'No SSH identity yet: nobody can log in over SSH. ',
      h('a', {href: '#/identities/new'}, 'Create the first one'), '.'));
    return;
  }
  replace(main, head(), alertSlot,
    h('table', {class: 'table cards', id: 'identities'},
      h('caption', {class: 'vh'}, 'SSH identities'),
      h('thead', {}, h('tr', {}, ['Name', 'Description', 'Keys',
        'Restrictions', 'Opens', 'Updated', 'Actions'].map((c) =>
        h('th', {scope: 'col'}, c)))),
      h('tbody', {}, identities.map((id) =>
        row(id, services, alertSlot, main)))));
}
