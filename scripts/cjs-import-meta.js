// Gives CommonJS bundles an import.meta.url, so modules written as ESM work in both.
export const __podwire_import_meta_url = require('node:url').pathToFileURL(__filename).href;
