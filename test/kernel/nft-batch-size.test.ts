// A batch of many small messages: every message is acked, and the acks must
// fit the socket's receive buffer even when the batch's bytes are few (a full
// sync converging a table flushes one chain per message).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NftConnection, Transaction } from '../../src/netlink/nftables/index.js';
import { NetnsScope, netnsPath, nsMust } from '../helpers/netns.js';

const scope = new NetnsScope('nft-batch');
let ns = '';
const CHAINS = 25_000;

beforeAll(async () => {
  await scope.cleanup();
  ns = await scope.create('a');
});
afterAll(() => scope.cleanup());

describe('nf_tables batches of many small messages', () => {
  it(`adds and then flushes ${CHAINS} chains in one batch each (no ENOBUFS from the acks)`, async () => {
    const c = NftConnection.open(netnsPath(ns));
    try {
      const add = new Transaction().addTable({ family: 'ip', name: 'many' });
      for (let i = 0; i < CHAINS; i++) add.addChain({ family: 'ip', table: 'many', name: `c${i}` });
      c.commit(add);
      // ~1.5 MB of flush messages: small in bytes, 25k acks.
      const flush = new Transaction();
      for (let i = 0; i < CHAINS; i++) flush.flushChain('ip', 'many', `c${i}`);
      c.commit(flush);
    } finally {
      c.close();
    }
    const listed = (await nsMust(ns, 'nft', ['list', 'chains', 'ip'])).split('\n').filter((l) => l.trim().startsWith('chain ')).length;
    expect(listed).toBe(CHAINS);
  }, 120_000);
});
