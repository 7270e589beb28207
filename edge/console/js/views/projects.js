// Projects -> services: every service with its SSH switch.
import {api, allServices, seg} from '../api.js';
import {h, replace, uid} from '../dom.js';
import {
  alertBox, confirmDialog, errorText, flash, loading, setAlert, sshSwitch,
  tagList,
} from '../ui.js';

export const JOB_NO_SSH = 'SSH access is available for services only';

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// The question before switching SSH off, from the Service's "open"
// (docs/ADMIN_API.md): what it closes, in words; null when nothing is open
// anywhere, so there is nothing to ask. Without counts, or with other
// edges whose connections this one cannot see, it asks.
export function sshOffQuestion(service) {
  const o = service.open;
  const target = `${service.id} (project ${service.projectId})`;
  const after = 'at once, and new ones are refused until SSH is enabled ' +
    'again.';
  if (!o) {
    return `Every open SSH session to ${target} will be closed ${after}`;
  }
  if (o.proxies === 0 && !o.otherEdges) {
    return null;
  }
  const here = `${plural(o.proxies, 'proxy', 'proxies')} with ` +
    `${plural(o.streams, 'open SSH connection', 'open SSH connections')}`;
  if (!o.otherEdges) {
    return `${here} to ${target} will be closed ${after}`;
  }
  return `This edge holds ${here} to ${target}; other edges of the fleet ` +
    `may hold more. All of them will be closed ${after}`;
}

// Ask, then switch: turning SSH off closes the service's open sessions at
// once, so that needs a yes when some are open (read again now: the page
// may be old); turning it on does not. Resolves to the state the service
// is in afterwards.
export async function toggleSsh(service, next, alertSlot) {
  if (!next) {
    let fresh = service;
    try {
      fresh = await api.service(service.projectId, service.id);
    } catch (e) {
      if (e.handled) {
        return service.sshEnabled;
      }
      fresh = {...service, open: undefined}; // unknown: ask
    }
    const question = sshOffQuestion(fresh);
    const yes = question === null || await confirmDialog({
      title: `Disable SSH for ${service.id}?`,
      body: question,
      confirm: 'Disable SSH',
    });
    if (!yes) {
      return service.sshEnabled;
    }
  }
  try {
    const updated = await api.setSsh(service.projectId, service.id, next);
    service.sshEnabled = updated.sshEnabled;
    setAlert(alertSlot, null);
    flash(`SSH ${updated.sshEnabled ? 'enabled' : 'disabled'} for ` +
      `${service.id} in project ${service.projectId}`);
  } catch (e) {
    if (!e.handled) {
      setAlert(alertSlot, `Could not change SSH for ${service.id}: ` +
        errorText(e));
    }
  }
  return service.sshEnabled;
}

export function serviceHref(s) {
  return `#/projects/${seg(s.projectId)}/services/${seg(s.id)}`;
}

function sshCell(s, alertSlot) {
  if (s.kind === 'job') {
    return h('span', {class: 'muted job-note'}, JOB_NO_SSH);
  }
  return sshSwitch(s, (next) => toggleSsh(s, next, alertSlot));
}

function servicesTable(project, services, alertSlot) {
  if (services.length === 0) {
    return h('p', {class: 'muted'}, 'No services in this project.');
  }
  return h('table', {class: 'table cards services'},
    h('caption', {class: 'vh'}, `Services of project ${project.id}`),
    h('thead', {}, h('tr', {},
      ['ID', 'Name', 'Kind', 'Tags', 'SSH'].map((c) =>
        h('th', {scope: 'col'}, c)))),
    h('tbody', {}, services.map((s) => h('tr',
      {dataset: {service: `${s.projectId}/${s.id}`}},
      h('th', {scope: 'row', 'data-label': 'ID'},
        h('a', {href: serviceHref(s)}, s.id)),
      h('td', {'data-label': 'Name'}, s.name),
      h('td', {'data-label': 'Kind'}, s.kind),
      h('td', {'data-label': 'Tags'}, tagList(s.tags)),
      h('td', {'data-label': 'SSH', class: 'ssh-cell'},
        sshCell(s, alertSlot))))));
}

export async function render(main) {
  replace(main, h('h1', {tabindex: '-1'}, 'Projects'), loading('projects'));
  let list;
  try {
    list = await allServices();
  } catch (e) {
    if (!e.handled) {
      replace(main, h('h1', {tabindex: '-1'}, 'Projects'),
        alertBox(errorText(e)));
    }
    return;
  }
  const sections = list.map(({project, services, error}) => {
    const headId = uid('project');
    const alertSlot = h('p', {class: 'alert', role: 'alert', hidden: true});
    return h('section', {class: 'panel', 'aria-labelledby': headId,
      dataset: {project: project.id}},
    h('h2', {id: headId}, project.name,
      project.name !== project.id ?
        h('span', {class: 'id-note'}, ` (${project.id})`) : null),
    alertSlot,
    error ? alertBox(`Its services cannot be read: ${errorText(error)}`) :
      servicesTable(project, services, alertSlot));
  });
  replace(main, h('h1', {tabindex: '-1'}, 'Projects'),
    h('p', {class: 'lead'}, 'The services of each project, and whether ' +
      'they take SSH. Open a service to see how to connect and who can.'),
    list.length === 0 ? h('p', {class: 'muted'}, 'No projects.') : sections);
}
