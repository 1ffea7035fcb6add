// esbuild bundles the stylesheet that widget.mjs imports for its side effect.
declare module "*.css";
