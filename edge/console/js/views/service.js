// One service: how to connect (the CLI's commands and the ~/.ssh/config
// block, each with a copy button), and which SSH identities open it; for
// those that do not, the restriction that leaves it out.
import {api, edgeUrl} from '../api.js';
import {h, plural, replace, uid} from '../dom.js';
import {exclusion} from '../match.js';
import {
  alertBox, codeBlock, errorText, loading, setAlert, sshSwitch, tagList,
} from '../ui.js';
import {JOB_NO_SSH, toggleSsh} from './projects.js';
import {identityHref} from './identities.js';

// proxy/endpoint.c, endpoint_derive(): the proxy's loopback address and
// port from SHA-256(project NUL service). null where WebCrypto is not
// available (a page not served over https or from loopback).
export async function deriveEndpoint(project, service) {
  if (!window.crypto || !window.crypto.subtle) {
    return null;
  }
  const bytes = new TextEncoder().encode(`${project}\u0000${service}`);
  const md = new Uint8Array(await window.crypto.subtle.digest('SHA-256',
    bytes));
  const a = 1 + (md[0] % 254);
  const b = 1 + (md[1] % 254);
  const c = 1 + (md[2] % 254);
  const port = 20000 + (((md[3] << 8) | md[4]) % 12000);
  return {addr: `127.${a}.${b}.${c}`, port};
}

// What `wsmux ssh config --projectId P --serviceId S` prints (with
// `wsmux` found on the PATH rather than its absolute path).
export function sshConfigBlock(p, s, ep) {
  const alias = `wsmux-${p}-${s}`;
  return `# wsmux: service ${s} of project ${p}. Paste into ~/.ssh/config.\n` +
    '# The API token comes from `wsmux login` or $WSMUX_TOKEN.\n' +
    `Host ${alias}\n` +
    '  User root\n' +
    `  HostKeyAlias ${alias}\n` +
    `  ProxyCommand wsmux ssh service --projectId ${p} --serviceId ${s} ` +
    '--stdio\n' +
    '\n' +
    `# With \`wsmux ssh service --projectId ${p} --serviceId ${s} ` +
    '--proxyOnly` running:\n' +
    `Host ${alias}-proxy\n` +
    `  HostName ${ep.addr}\n` +
    `  Port ${ep.port}\n` +
    '  User root\n' +
    `  HostKeyAlias ${alias}\n`;
}

async function connectSection(svc) {
  const p = svc.projectId;
  const s = svc.id;
  const target = `--projectId ${p} --serviceId ${s}`;
  const headId = uid('connect');
  const section = h('section', {class: 'panel', 'aria-labelledby': headId,
    id: 'connect'}, h('h2', {id: headId}, 'Connect'));
  if (svc.kind === 'job') {
    section.append(h('p', {class: 'job-note'}, JOB_NO_SSH));
    return section;
  }
  const ep = await deriveEndpoint(p, s);
  section.append(
    h('p', {class: 'ssh-off-note', hidden: svc.sshEnabled},
      'SSH is off for this service: enable it above before connecting.'),
    codeBlock('Sign in once on your machine',
      `wsmux login --edge ${edgeUrl()} --token -`, 'login'),
    codeBlock('An interactive session', `wsmux ssh service ${target}`,
      'ssh'),
    codeBlock('A local proxy for scp, sftp, rsync and many sessions',
      `wsmux ssh service ${target} --proxyOnly`, 'proxy'),
    codeBlock('Editors (VS Code, Cursor Remote-SSH): add the Host blocks ' +
      'to ~/.ssh/config', `wsmux ssh config ${target} >> ~/.ssh/config`,
    'config-command'),
    ep ? codeBlock('The blocks it adds', sshConfigBlock(p, s, ep),
      'config-block') : null,
    codeBlock('When it does not work, ask the doctor',
      `wsmux ssh doctor ${target}`, 'doctor'));
  return section;
}

function identityItem(id, reason) {
  return h('li', {dataset: {identity: id.name}},
    h('a', {href: identityHref(id)}, id.name),
    id.description ? h('span', {class: 'muted'}, ` — ${id.description}`) :
      null,
    h('span', {class: 'muted'}, ` (${plural(id.keys.length, 'key', 'keys')})`),
    reason ? h('p', {class: 'reason'}, reason) : null);
}

function whoSection(svc, identities) {
  const headId = uid('who');
  const section = h('section', {class: 'panel', 'aria-labelledby': headId,
    id: 'who'}, h('h2', {id: headId}, 'Who can connect'));
  if (identities.length === 0) {
    section.append(h('p', {class: 'muted'}, 'No SSH identity yet. ',
      h('a', {href: '#/identities/new'}, 'Create one'), '.'));
    return section;
  }
  const yes = [];
  const no = [];
  for (const id of identities) {
    const why = exclusion(id, svc);
    (why === null ? yes : no).push([id, why]);
  }
  section.append(
    h('h3', {}, `Matching identities (${yes.length})`),
    yes.length ? h('ul', {class: 'idlist', id: 'matching'},
      yes.map(([id]) => identityItem(id, null))) :
      h('p', {class: 'muted', id: 'matching'},
        'None: no key is accepted by this service.'),
    h('h3', {}, `Not matching (${no.length})`),
    no.length ? h('ul', {class: 'idlist', id: 'excluded'},
      no.map(([id, why]) => identityItem(id, why))) :
      h('p', {class: 'muted', id: 'excluded'}, 'None.'));
  if (svc.kind === 'service' && !svc.sshEnabled) {
    section.append(h('p', {class: 'note'},
      'SSH is off: none of them can connect until it is enabled.'));
  }
  return section;
}

export async function render(main, params) {
  const {project, service} = params;
  const title = h('h1', {tabindex: '-1'}, service);
  replace(main, title, loading('the service'));
  let svc;
  let identities;
  let identitiesError = null;
  try {
    svc = await api.service(project, service);
  } catch (e) {
    if (!e.handled) {
      replace(main, title, alertBox(errorText(e)));
    }
    return;
  }
  try {
    identities = await api.identities();
  } catch (e) {
    if (e.handled) {
      return;
    }
    identitiesError = e;
  }
  document.title = `${svc.id} · wsmux console`;
  const alertSlot = h('p', {class: 'alert', role: 'alert', hidden: true});
  const sshNote = () => {
    const note = main.querySelector('.ssh-off-note');
    if (note) {
      note.hidden = svc.sshEnabled;
    }
  };
  const facts = h('dl', {class: 'facts'},
    h('dt', {}, 'Project'), h('dd', {}, svc.projectId),
    h('dt', {}, 'Name'), h('dd', {}, svc.name),
    h('dt', {}, 'Kind'), h('dd', {}, svc.kind),
    h('dt', {}, 'Tags'), h('dd', {}, tagList(svc.tags)),
    h('dt', {}, 'SSH'), h('dd', {}, svc.kind === 'job' ?
      h('span', {class: 'muted job-note'}, JOB_NO_SSH) :
      sshSwitch(svc, async (next) => {
        const on = await toggleSsh(svc, next, alertSlot);
        sshNote();
        return on;
      })));
  replace(main,
    h('p', {class: 'crumbs'}, h('a', {href: '#/projects'}, 'Projects'),
      ` / ${svc.projectId} /`),
    h('h1', {tabindex: '-1'}, svc.id),
    alertSlot, facts,
    await connectSection(svc),
    identitiesError ?
      alertBox(`SSH identities cannot be read: ${errorText(identitiesError)}`) :
      whoSection(svc, identities));
  setAlert(alertSlot, null);
}
