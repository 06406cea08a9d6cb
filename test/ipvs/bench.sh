#!/bin/bash
# Inside the IPVS VM: the proxy-sync-ipvs benchmark (bench/proxy-sync-ipvs.ts, built by npm run build).
set -uo pipefail
modprobe -a ip_vs ip_vs_rr dummy xt_ipvs xt_set ip_set_hash_ip ip_set_hash_ipport ip_set_hash_ipportip ip_set_hash_ipportnet ip_set_bitmap_port
exec node dist/bench/proxy-sync-ipvs.mjs --inside "$@"
