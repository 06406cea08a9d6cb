// The podwire-ipam executable: host-local's config and disk layout, with GC and STATUS.
import { runPlugin } from '../cni/spec/plugin.js';
import { validAttachments } from '../cni/spec/gc.js';
import { ipamAdd, ipamCheck, ipamDel, ipamGc, ipamStatus } from './ipam.js';

runPlugin(
  {
    add: ({ conf, env }) => ipamAdd(conf, env),
    del: ({ conf, env }) => ipamDel(conf, env),
    check: ({ conf, env }) => ipamCheck(conf, env),
    gc: ({ conf }) => {
      ipamGc(conf, validAttachments(conf));
    },
    status: ({ conf }) => ipamStatus(conf),
  },
  'podwire-ipam: host-local compatible IPAM for podwire',
);
