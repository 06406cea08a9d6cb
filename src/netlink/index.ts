// podwire's netlink layer: framing, attributes and sockets here; the families
// (rtnetlink, nf_tables, generic netlink) in their own modules.
export * from './message.js';
export * from './attrs.js';
export * from './socket.js';
export * from './rtnetlink.js';
export * from './sysctl.js';
export * from './genetlink.js';
