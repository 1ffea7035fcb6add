// DOM helpers of the labeler: elements built from text (never HTML), selects, the counts
// table, the class editor and thumbnail decoding.

export const HELP =
  "Keys: arrows move (shift extends the selection) · 1-9 cycle a class (? → yes → no) · " +
  "0 rest are no, next · x exclude · v validation · a accept suggestions · u undo · " +
  "Enter/Space next · Esc leave";

/** Create an element with a class and optional text (always as text, never as HTML). */
export function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Fill a <select> with items' titles (values are indices), keeping the selected title. */
export function fillSelect(select, items) {
  const title = select.selectedOptions[0]?.textContent;
  select.replaceChildren(...items.map((item, i) => Object.assign(h("option", "", item.title), { value: String(i) })));
  const keep = items.findIndex((item) => item.title === title);
  if (keep >= 0) select.value = String(keep);
}

/** How a tri-state class value reads on its toggle. */
export function valueText(value) {
  if (value === 1) return "yes";
  if (value === 0) return "no";
  return "?";
}

/** Header and body rows of the counts table from the `counts` trait. */
export function countsRows({ columns = [], index = [], data = [] }) {
  const head = h("tr");
  head.append(h("th", "", "class"), ...columns.map((c) => h("th", "", c)));
  const rows = index.map((name, i) => {
    const tr = h("tr");
    tr.append(h("th", "", name), ...data[i].map((v) => h("td", "", String(v))));
    return tr;
  });
  return [head, ...rows];
}

/** Add / rename / remove classes; removing asks for a second click. */
export function classEditor(onEdit) {
  const box = h("div", "pw-classes");
  const select = h("select", "pw-class-select");
  const input = h("input", "pw-class-name");
  input.placeholder = "class name";
  const add = h("button", "pw-button", "Add class");
  add.addEventListener("click", () => onEdit("add"));
  const rename = h("button", "pw-button", "Rename to");
  rename.addEventListener("click", () => onEdit("rename"));
  const remove = h("button", "pw-button pw-remove", "Remove");
  remove.addEventListener("click", () => {
    if (remove.dataset.armed) {
      delete remove.dataset.armed;
      remove.textContent = "Remove";
      onEdit("remove");
    } else {
      remove.dataset.armed = "1";
      remove.textContent = "Really remove?";
    }
  });
  box.append(select, rename, input, add, remove);
  return { box, select, input };
}

/**
 * A `thumb` message and its buffer -> a decoded image ready to draw, `{url, img}`, or
 * `{error}` when the kernel could not read the file or the browser cannot decode it.
 */
export async function decodeThumbnail(msg, buffers) {
  if (msg.error) return { error: msg.error };
  const dv = buffers[0];
  const bytes = new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength);
  const url = URL.createObjectURL(new Blob([bytes], { type: msg.mime }));
  const img = new Image();
  img.src = url;
  try {
    await img.decode();
    return { url, img };
  } catch {
    URL.revokeObjectURL(url);
    return { error: "the browser could not decode this image" };
  }
}

/** Draw a cached image centred and scaled into the canvas, or the reason it is missing. */
export function drawEntry(canvas, entry) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (entry && entry.img) {
    const { naturalWidth: w, naturalHeight: hh } = entry.img;
    const scale = Math.min(canvas.width / w, canvas.height / hh);
    ctx.imageSmoothingEnabled = scale < 1; // small patches stay crisp
    const [dw, dh] = [w * scale, hh * scale];
    ctx.drawImage(entry.img, (canvas.width - dw) / 2, (canvas.height - dh) / 2, dw, dh);
  } else if (entry && entry.error) {
    ctx.fillStyle = getComputedStyle(canvas).getPropertyValue("--pw-error") || "#c00";
    ctx.font = "14px sans-serif";
    ctx.fillText(`unreadable: ${entry.error}`.slice(0, 60), 8, 24);
  }
}

/** A grid caption: the classes marked yes (or "none"), excluded and validation. */
export function summary(values, classes) {
  const yes = classes.filter((_, i) => values.labels[i] === 1);
  const parts = yes.length ? yes : values.labels.some((v) => v === 0) ? ["none"] : [];
  if (values.exclude) parts.unshift("excluded");
  if (values.validation) parts.push("(val)");
  return parts.join(", ");
}
