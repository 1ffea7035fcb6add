// @ts-check
// Shapes shared by the labeler's modules (JSDoc only; see docs/architecture.md, "Messages").

/**
 * @typedef {{kind: string, cls: string | null, title: string}} SubsetOption
 * @typedef {{name: string, cls: string | null, title: string, purpose?: string}} OrderOption
 * @typedef {{columns?: string[], index?: string[], data?: number[][]}} Counts
 * @typedef {{state: "exported" | "pending" | "failed", exported_at: number | null,
 *   error: string | null}} ExportState  whether the outfile holds every saved label
 * @typedef {{state: "off" | "running" | "paused" | "stopped", rounds: number,
 *   images_since_update: number, training: boolean}} OnlineState  the online learning loop
 * @typedef {{labeled: number, total: number}} Tally
 * @typedef {{queue?: Tally, all?: Tally}} Progress  labeled rows of the queue and of the table
 * @typedef {{images_per_minute?: number | null, export?: ExportState, online?: OnlineState}} Stats
 * @typedef {{state?: "idle" | "running" | "done" | "failed", done?: number, total?: number,
 *   description?: string, error?: string}} Extraction  the features a worker process extracts
 * @typedef {{
 *   classes: string[], queue: number[], counts: Counts, subsets: SubsetOption[],
 *   orders: OrderOption[], stats: Stats, outfile: string,
 *   thumb_size: number[], columns: number, revision: number, cursor: number, autofocus: boolean,
 *   keymap: import("./keymap.mjs").KeyTable, notices: string[], progress: Progress,
 *   extraction: Extraction,
 *   groups: Record<string, number>,
 *   sampled: {subset?: {kind: string, cls: string | null}, count?: number,
 *     order?: {name: string, cls: string | null, random_fraction?: number}},
 * }} Traits  the synced traits of patchwork_widget.widget.labeler.Labeler
 * @typedef {import("@anywidget/types").AnyModel<Traits>} Model
 *
 * @typedef {{
 *   row: number, labels: (number | null)[], exclude: boolean, validation: boolean,
 *   suggest?: (number | null)[] | null, strength?: ("solid" | "faint" | "none")[] | null,
 *   name: string,
 * }} RowValues  what the kernel holds for one row (`labels`, `suggest` and `strength` in class
 *   order; `strength`: what `a` would do with each suggestion, write it or leave it)
 * @typedef {Record<string, number | boolean | null>} Changes  field or class name -> new value
 * @typedef {{type: string, id?: string | null, [field: string]: any}} Message  a custom message
 */

export {};
