// The GC command's list of attachments that are still in use (SPEC.md "GC").
import { CniError, ErrorCode } from './errors.js';

export interface Attachment {
  containerID: string;
  ifname: string;
}

/** Reads `cni.dev/valid-attachments` (or the pre-1.1 draft's `cni.dev/attachments`) from a GC config. */
export function validAttachments(conf: Record<string, unknown>): Attachment[] {
  const key = conf['cni.dev/valid-attachments'] !== undefined ? 'cni.dev/valid-attachments' : 'cni.dev/attachments';
  const list = conf[key];
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new CniError(ErrorCode.InvalidNetworkConfig, `"${key}" must be a list`);
  return list.map((a, i) => {
    const o = (typeof a === 'object' && a !== null ? a : {}) as Record<string, unknown>;
    if (typeof o.containerID !== 'string' || typeof o.ifname !== 'string') {
      throw new CniError(ErrorCode.InvalidNetworkConfig, `"${key}"[${i}] needs string fields containerID and ifname`);
    }
    return { containerID: o.containerID, ifname: o.ifname };
  });
}
