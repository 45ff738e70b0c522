// Small DOM helpers shared by the views.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** A new element; `text` is set as text, never parsed as HTML. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
