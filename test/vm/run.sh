#!/bin/bash
# Runs inside the VM (../shared/tools/ipvs-vm/run-in-vm.sh test/vm/run.sh BUNDLE [filter]): loads the
# modules SCTP proxying needs, then runs the bundled suite once.
set -uo pipefail
bundle=$1; shift
modprobe -a sctp xt_sctp nf_conntrack nf_nat nf_tables nft_chain_nat nft_ct nft_numgen nft_nat nft_masq nft_reject_inet nft_fib_ipv4 nft_fib_inet veth bridge 2>&1 || echo "run.sh: some modules failed to load"
export PODWIRE_NETLINK_ADDON=$PWD/build/Release/podwire_netlink.node
exec node "$bundle" "$@"
