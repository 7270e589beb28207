// The audit log: the newest changes made through the API, who made them
// (the id of the API token, never the token) and when.
import {api} from '../api.js';
import {h, replace} from '../dom.js';
import {alertBox, errorText, loading, timeEl} from '../ui.js';

const ACTIONS = {
  'identity.create': 'Created SSH identity',
  'identity.update': 'Updated SSH identity',
  'identity.delete': 'Deleted SSH identity',
  'state.import': 'Imported the platform state',
};

export function describe(rec) {
  if (rec.action === 'service.ssh') {
    return rec.detail === 'enabled' ? 'Enabled SSH' :
      rec.detail === 'disabled' ? 'Disabled SSH' : `SSH ${rec.detail}`;
  }
  return ACTIONS[rec.action] || rec.action;
}

function target(rec) {
  if (rec.action.startsWith('identity.')) {
    return [rec.detail, h('span', {class: 'muted'}, ` (${rec.target})`)];
  }
  if (rec.action === 'service.ssh') {
    return rec.target;
  }
  return [rec.target, rec.detail ? ` ${rec.detail}` : ''];
}

export async function render(main) {
  const head = () => [h('h1', {tabindex: '-1'}, 'Audit log'),
    h('p', {class: 'lead'}, 'The 100 newest changes made through the API, ' +
      'newest first.')];
  replace(main, head(), loading('the audit log'));
  let records;
  try {
    records = await api.audit();
  } catch (e) {
    if (!e.handled) {
      replace(main, head(),
        alertBox(`The audit log cannot be read: ${errorText(e)}`));
    }
    return;
  }
  if (records.length === 0) {
    replace(main, head(), h('p', {class: 'muted', id: 'empty'},
      'No changes yet.'));
    return;
  }
  replace(main, head(), h('table', {class: 'table cards', id: 'audit'},
    h('caption', {class: 'vh'}, 'Changes, newest first'),
    h('thead', {}, h('tr', {}, ['When', 'Who', 'What', 'Target'].map((c) =>
      h('th', {scope: 'col'}, c)))),
    h('tbody', {}, records.map((r) => h('tr', {dataset: {action: r.action}},
      h('td', {'data-label': 'When'}, timeEl(r.at)),
      h('td', {'data-label': 'Who'}, r.tokenId),
      h('td', {'data-label': 'What'}, describe(r)),
      h('td', {'data-label': 'Target'}, h('span', {}, target(r))))))));
}
