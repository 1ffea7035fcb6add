// @ts-check
// Keeping the keyboard inside the labeler. Notebook shortcuts (JupyterLab, Notebook 7) are
// skipped for key events from inside an element marked `data-lm-suppress-shortcuts`, but
// Lumino looks for a matching shortcut selector from the event target upwards and stops at the
// first marked element: in Notebook 7 a focused button matches `.jp-Notebook :focus` before the
// walk reaches a marked root, so `a` inserted a cell after a click on a toggle. So every
// focusable element is marked, buttons never take focus from a click (the root does), and a
// re-render that drops the focused element hands focus back to the root, not to the page.

export const SUPPRESS = "data-lm-suppress-shortcuts";

/** Elements that hold focus and need it to work (typing, choosing). */
const EDITABLE = "select, input, textarea";

/** The keys a focused menu (closed) keeps: choosing an entry. Letters and digits label. */
const MENU_KEYS = new Set(["ArrowUp", "ArrowDown", "Enter", " ", "Home", "End", "PageUp", "PageDown"]);

/** Mark an element so that no notebook shortcut fires while it has focus. */
export function suppressShortcuts(/** @type {HTMLElement} */ el) {
  el.setAttribute(SUPPRESS, "true");
  return el;
}

/**
 * Whether a key event belongs to a control that needs it (typing in a box, choosing in a menu,
 * Enter/Space on a button reached with Tab) rather than to the labeler's keymap.
 * @param {KeyboardEvent} ev
 */
export function keyForControl(ev) {
  const target = /** @type {HTMLElement} */ (ev.target);
  // A menu closed with Esc keeps the focus (the page never sees that Esc): a class key pressed
  // next labels, rather than needing a second Esc first.
  if (target.closest?.("select")) return MENU_KEYS.has(ev.key);
  if (target.closest?.(EDITABLE)) return ev.key !== "Escape";
  if (target.closest?.("button")) return ev.key === "Enter" || ev.key === " ";
  return false;
}

/**
 * Make `root` the labeler's keyboard target: focusable, marked, focused by clicks inside it.
 * @param {HTMLElement} root
 */
export function holdKeyboard(root) {
  root.tabIndex = 0;
  suppressShortcuts(root);
  root.addEventListener("mousedown", (ev) => {
    const target = /** @type {HTMLElement} */ (ev.target);
    if (target.closest(EDITABLE)) return; // boxes and menus take focus themselves
    // A button or image keeps no focus of its own; the root takes it, without scrolling
    // (a scroll between mousedown and mouseup would move the target and lose the click).
    if (target.closest("button, .pw-cell")) ev.preventDefault();
    root.focus({ preventScroll: true });
  });
  // Once a choice is made in a menu, the keys label again.
  root.addEventListener("change", (ev) => {
    if (/** @type {HTMLElement} */ (ev.target).tagName === "SELECT") root.focus({ preventScroll: true });
  });
}

/**
 * Hand the keyboard back to the notebook: the cell holding the widget gets the focus, which
 * puts JupyterLab and Notebook 7 in command mode with that cell active, so a notebook shortcut
 * works at once (blurring alone left the focus on the page body, where none does). Outside a
 * notebook (Voila, VS Code) the widget just lets go of the focus.
 * @param {HTMLElement} root
 */
export function leaveToNotebook(root) {
  const cell = /** @type {HTMLElement | null} */ (root.closest(".jp-Cell"));
  root.blur();
  if (!cell) return;
  if (!cell.hasAttribute("tabindex")) cell.tabIndex = -1; // focusable from code, not by Tab
  cell.focus({ preventScroll: true });
}

/**
 * A click on a tab of a tab widget that holds the labeler (its Label tab, shown again after
 * another) leaves the focus on the page body, so the next key went nowhere: once the tab is
 * shown, the labeler takes the keyboard. Returns a function that stops listening.
 * @param {HTMLElement} root
 * @returns {() => void}
 */
export function focusWhenTabShown(root) {
  const doc = root.ownerDocument;
  /** @param {MouseEvent} ev */
  const onClick = (ev) => {
    const tab = /** @type {HTMLElement} */ (ev.target).closest?.(".lm-TabBar-tab");
    const host = tab?.closest(".lm-TabBar")?.parentElement;
    if (!host || !host.contains(root)) return;
    // The tab bar switches panels on this click: look once the new panel is laid out.
    requestAnimationFrame(() => {
      const typing = doc.activeElement?.closest?.("input, textarea, select, [contenteditable='true']");
      if (root.offsetParent !== null && !typing) root.focus({ preventScroll: true });
    });
  };
  doc.addEventListener("click", onClick, true);
  return () => doc.removeEventListener("click", onClick, true);
}

/**
 * Give `root` the keyboard the first time it is on screen, unless something else holds it by
 * then (a box being typed in, another widget). For a page that is the labeler alone (the app
 * served by Voila): the first key labels. Returns a function that stops waiting.
 * @param {HTMLElement} root
 * @returns {() => void}
 */
export function focusWhenFirstShown(root) {
  const doc = root.ownerDocument;
  const seen = new IntersectionObserver((entries) => {
    if (!entries.some((e) => e.isIntersecting)) return;
    seen.disconnect();
    const active = doc.activeElement;
    if (!active || active === doc.body || active === doc.documentElement) root.focus({ preventScroll: true });
  });
  seen.observe(root);
  return () => seen.disconnect();
}

/**
 * Run `render`; if the keyboard was inside `root` and the render removed or disabled the
 * focused element (which hands focus to the page body), give focus back to `root`.
 * @template T
 * @param {HTMLElement} root
 * @param {() => T} render
 * @returns {T}
 */
export function keepFocus(root, render) {
  const doc = root.ownerDocument;
  const inside = root.contains(doc.activeElement);
  const result = render();
  if (inside && !root.contains(doc.activeElement)) root.focus({ preventScroll: true });
  return result;
}
