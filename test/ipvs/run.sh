#!/bin/bash
# Runs inside the IPVS VM (../shared/tools/ipvs-vm/run-in-vm.sh test/ipvs/run.sh BUNDLE [filter]):
# loads the kernel modules the suite needs, then runs the bundled suite once.
set -uo pipefail
bundle=$1; shift
modprobe -a ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_sh ip_vs_mh veth bridge dummy nf_conntrack xt_ipvs xt_set ip_set_hash_ip ip_set_hash_ipport ip_set_hash_ipportip ip_set_hash_ipportnet ip_set_bitmap_port 2>&1 || echo "run.sh: some modules failed to load"
export PODWIRE_NETLINK_ADDON=$PWD/build/Release/podwire_netlink.node
exec node "$bundle" "$@"
