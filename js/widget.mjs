// @ts-check
// The labeler's anywidget module: one LabelerView per rendered view (see view.mjs).
import { LabelerView } from "./view.mjs";
import "./widget.css";

/** @type {import("@anywidget/types").Render<import("./types.mjs").Traits>} */
function render({ model, el }) {
  const view = new LabelerView(model, el);
  return () => view.destroy();
}

export default { render };
