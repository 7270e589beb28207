// Building the page: every value goes in as a text node or an attribute,
// never as markup. Nothing here (or anywhere in the console) parses HTML;
// the Content-Security-Policy's Trusted Types would refuse it anyway.

// h('a', {href: '#/x', class: 'btn', on: {click: fn}}, 'text', child...)
// Props: class, text, on (event handlers), dataset, boolean properties
// (checked, disabled, hidden, required, multiple, open); anything else is
// an attribute. An attribute named on* is refused: handlers are functions.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (key === 'class') {
      el.className = value;
    } else if (key === 'text') {
      el.textContent = String(value);
    } else if (key === 'on') {
      for (const [ev, fn] of Object.entries(value)) {
        el.addEventListener(ev, fn);
      }
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (BOOLEAN_PROPS.has(key)) {
      el[key] = Boolean(value);
    } else if (/^on/i.test(key)) {
      throw new Error(`h(): event handler attribute ${key} refused`);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

const BOOLEAN_PROPS = new Set([
  'checked', 'disabled', 'hidden', 'required', 'multiple', 'open', 'readOnly',
]);

// Append children: nodes as they are, strings and numbers as text.
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) {
      continue;
    }
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replace everything in el by children.
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// A string list for people: "a, b and c" (or "a, b or c").
export function listText(items, last = 'and') {
  if (items.length <= 1) {
    return items.join('');
  }
  return `${items.slice(0, -1).join(', ')} ${last} ${items[items.length - 1]}`;
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

let uniq = 0;
// An id for label/aria wiring, unique within the page.
export function uid(prefix) {
  uniq += 1;
  return `${prefix}-${uniq}`;
}
