// Building the page without HTML strings: every text goes in as a text node, so content
// from other users can never become markup (no innerHTML anywhere in the client).

/**
 * An element: `h("a", {href: "#/", class: "x", onclick: fn}, "text", child, [more])`.
 * Attributes named on... with a function are event listeners; `true` sets a boolean
 * attribute, `false`, null and undefined leave it out; children are nodes or text.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "value" && "value" in element) {
      element.value = String(value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, ...children);
  return element;
}

/** Append nodes and texts (nested lists flattened; null and false skipped). */
export function append(parent, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace what `element` holds with `children`. */
export function replace(element, ...children) {
  element.replaceChildren();
  return append(element, ...children);
}

let nextId = 0;
/** A fresh id for tying labels, hints and errors to their fields. */
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}
