// The podwire-bridge executable: a drop-in for the reference `bridge` plugin.
// runPlugin handles env, stdin, VERSION and error JSON; this file wires each
// command to the attachment logic, the IPAM and the nf_tables masquerade.
import { ensureMasquerade, gcMasquerade, removeMasquerade } from '../masquerade.js';
import { validAttachments } from '../spec/gc.js';
import { runPlugin, type PluginContext } from '../spec/plugin.js';
import { addAttachment, checkAttachment, delAttachment, type AttachmentDeps, type MasqueradeBackend } from './attachment.js';
import { parseBridgeConf, type BridgeConf } from './config.js';
import { gcSpoofCheck } from './macspoof.js';
import { ipamClient, type IpamClient } from './ipam-client.js';

const masquerade: MasqueradeBackend = { ensure: ensureMasquerade, remove: removeMasquerade };

async function setup(ctx: PluginContext): Promise<{ conf: BridgeConf; ipam: IpamClient | undefined; deps: AttachmentDeps }> {
  const conf = parseBridgeConf(ctx.conf, ctx.env.args);
  const ipam = conf.ipamType ? await ipamClient(conf.ipamType, ctx.conf, ctx.raw) : undefined;
  return { conf, ipam, deps: { ipam, masquerade } };
}

runPlugin(
  {
    async add(ctx) {
      const { conf, deps } = await setup(ctx);
      return addAttachment(conf, ctx.env, deps);
    },
    async del(ctx) {
      const { conf, deps } = await setup(ctx);
      delAttachment(conf, ctx.env, deps);
    },
    async check(ctx) {
      const { conf, deps } = await setup(ctx);
      checkAttachment(conf, ctx.env, ctx.conf.prevResult, deps);
    },
    async gc(ctx) {
      const { conf, ipam } = await setup(ctx);
      const valid = validAttachments(ctx.conf);
      ipam?.gc(ctx.env, valid);
      if (conf.macspoofchk) gcSpoofCheck({ keep: valid.map((a) => `${a.containerID}/${a.ifname}`) });
      try {
        gcMasquerade({ network: conf.name, keep: valid.map((a) => ({ containerId: a.containerID, ifname: a.ifname })) });
      } catch (e) {
        // A network that never masqueraded may have no podwire table to read.
        if (conf.ipMasq) throw e;
      }
    },
    async status(ctx) {
      const { ipam } = await setup(ctx);
      ipam?.status(ctx.env);
    },
  },
  'CNI podwire-bridge plugin',
);
