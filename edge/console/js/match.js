// Which services an SSH identity opens: the edge's rule
// (edge/identity.c, identity_matches()), and when it does not match, why,
// in the words of `wsmux ssh doctor` (cli/cmd_doctor.c, explain()). The
// browser test checks this against the edge's own answer (the
// authorized-keys of every service), so the two cannot drift apart
// unnoticed.

// (no project restriction, or the service's project is listed) AND (no
// tag restriction, or - matchAllTags - the service has every listed tag,
// or - not - at least one).
export function matches(identity, service) {
  const projects = identity.projects || [];
  const tags = identity.tags || [];
  if (projects.length > 0 && !projects.includes(service.projectId)) {
    return false;
  }
  if (tags.length === 0) {
    return true;
  }
  const have = service.tags || [];
  const found = tags.filter((t) => have.includes(t)).length;
  return identity.matchAllTags ? found === tags.length : found > 0;
}

// null when the identity matches the service, else the restriction that
// leaves it out, as `wsmux ssh doctor` says it.
export function exclusion(identity, service) {
  if (matches(identity, service)) {
    return null;
  }
  const projects = identity.projects || [];
  if (projects.length > 0 && !projects.includes(service.projectId)) {
    return `identity ${identity.name} is restricted to projects ` +
      `[${projects.join(', ')}]; the service is in project ${service.projectId}`;
  }
  return `identity ${identity.name} needs ` +
    `${identity.matchAllTags ? 'all' : 'one'} of the tags ` +
    `[${(identity.tags || []).join(', ')}]; the service has ` +
    `[${(service.tags || []).join(', ')}]`;
}

// The services (not jobs: they take no SSH) an identity opens.
export function matchingServices(identity, services) {
  return services.filter((s) => s.kind === 'service' && matches(identity, s));
}
