// The podwire-bridge executable: a drop-in for the reference `bridge` plugin.
// runPlugin handles env, stdin, VERSION and error JSON; this file wires each
// command to the attachment logic.
import { runPlugin, validAttachments, type PluginContext } from '../spec/index.js';
import { addAttachment, checkAttachment, delAttachment, type AttachmentDeps } from './attachment.js';
import { parseBridgeConf, type BridgeConf } from './config.js';
import { ExecIpam } from './ipam-client.js';

function setup(ctx: PluginContext): { conf: BridgeConf; ipam: ExecIpam | undefined; deps: AttachmentDeps } {
  const conf = parseBridgeConf(ctx.conf, ctx.env.args);
  const ipam = conf.ipamType ? new ExecIpam(conf.ipamType, ctx.raw) : undefined;
  return { conf, ipam, deps: { ipam, masquerade: undefined } };
}

runPlugin(
  {
    add(ctx) {
      const { conf, deps } = setup(ctx);
      return addAttachment(conf, ctx.env, deps);
    },
    del(ctx) {
      const { conf, deps } = setup(ctx);
      delAttachment(conf, ctx.env, deps);
    },
    check(ctx) {
      const { conf, deps } = setup(ctx);
      checkAttachment(conf, ctx.env, ctx.conf.prevResult, deps);
    },
    gc(ctx) {
      const { ipam } = setup(ctx);
      ipam?.gc(ctx.env, validAttachments(ctx.conf));
    },
    status(ctx) {
      const { ipam } = setup(ctx);
      ipam?.status(ctx.env);
    },
  },
  'CNI podwire-bridge plugin',
);
