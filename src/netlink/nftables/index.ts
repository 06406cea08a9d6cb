// nf_tables over netlink: a typed model (types.ts), its encoding (expr.ts,
// encode.ts), match helpers (match.ts), transactions (transaction.ts) and
// reading set elements back (decode.ts).
export * from './types.js';
export * from './values.js';
export * from './transaction.js';
export * from './match.js';
export * from './decode.js';
export { typesLen, typesId, typeLen } from './encode.js';
