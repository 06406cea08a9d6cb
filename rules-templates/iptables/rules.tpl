# podwire's iptables rules, kube-proxy's layout. The renderer
# (src/proxy/iptables/render.ts) fills in {{placeholders}}; each [section] is a
# group of lines it emits together. Lines starting with '#' are comments.
#
# Placeholders: {{svc}} kube-proxy's service port name "ns/name:port",
# {{proto}} tcp|udp|sctp, {{ip}} an address with its /32 or /128,
# {{port}}, {{nodePort}}, {{mark}} the masquerade bit as 0x4000/0x4000, {{markBit}} as 0x4000.

# --- jumps from the built-in chains (inserted once, found again by comment) ---
[jump.filter]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES

[jump.nat]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING

# --- fixed chains, rewritten by every full sync ---
[static.nat]
-A KUBE-MARK-MASQ -j MARK --or-mark {{markBit}}
-A KUBE-POSTROUTING -m mark ! --mark {{mark}} -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark {{markBit}}
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully

[static.filter]
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark {{mark}} -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT

# More than one --cluster-cidr of the family: "from none of them" takes a chain, one RETURN per CIDR.
[static.nat.offCluster]
-A KUBE-MASQ-OFF-CLUSTER -m comment --comment "from the cluster CIDR {{cidr}}: no masquerade" -s {{cidr}} -j RETURN
[static.nat.offClusterMark]
-A KUBE-MASQ-OFF-CLUSTER -j KUBE-MARK-MASQ

# Localhost node ports (route_localnet=1): only local processes may use 127.0.0.0/8.
[static.filter.localnet]
-A KUBE-PROXY-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP

# --- KUBE-SERVICES / KUBE-NODEPORTS (nat): the entry points of each service ---
# A partial sync deletes (-D) the entry lines a changed service no longer has and adds the new ones
# (-I KUBE-SERVICES 1, so the node-port jump stays last; -A elsewhere): they match disjoint destinations.
[svc.clusterIP]
-A KUBE-SERVICES -m comment --comment "{{svc}} cluster IP" -m {{proto}} -p {{proto}} -d {{ip}} --dport {{port}} -j {{chain}}
[svc.externalIP]
-A KUBE-SERVICES -m comment --comment "{{svc}} external IP" -m {{proto}} -p {{proto}} -d {{ip}} --dport {{port}} -j {{chain}}
[svc.loadBalancer]
-A KUBE-SERVICES -m comment --comment "{{svc}} loadbalancer IP" -m {{proto}} -p {{proto}} -d {{ip}} --dport {{port}} -j {{chain}}
[svc.nodePort]
-A KUBE-NODEPORTS -m comment --comment "{{svc}}" -m {{proto}} -p {{proto}} --dport {{nodePort}} -j {{chain}}
# The tail of KUBE-SERVICES: node ports on every local address, or on the listed ones.
[nodeports.local]
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
[nodeports.localNoLoopback]
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS
[nodeports.address]
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d {{ip}} -j KUBE-NODEPORTS

# --- filter: services that cannot be served (REJECT: nothing anywhere; DROP: nothing local) ---
[filter.clusterIP]
-A KUBE-SERVICES -m comment --comment "{{svc}} cluster IP {{why}}" -m {{proto}} -p {{proto}} -d {{ip}} --dport {{port}} -j {{verdict}}
[filter.externalIP]
-A KUBE-EXTERNAL-SERVICES -m comment --comment "{{svc}} external IP {{why}}" -m {{proto}} -p {{proto}} -d {{ip}} --dport {{port}} -j {{verdict}}
[filter.loadBalancer]
-A KUBE-EXTERNAL-SERVICES -m comment --comment "{{svc}} loadbalancer IP {{why}}" -m {{proto}} -p {{proto}} -d {{ip}} --dport {{port}} -j {{verdict}}
[filter.nodePort]
-A KUBE-EXTERNAL-SERVICES -m comment --comment "{{svc}} {{why}}" -m addrtype --dst-type LOCAL -m {{proto}} -p {{proto}} --dport {{nodePort}} -j {{verdict}}
# Sources outside loadBalancerSourceRanges were not DNATed by KUBE-FW-: drop them.
[filter.firewall]
-A KUBE-PROXY-FIREWALL -m comment --comment "{{svc}} traffic not accepted by {{chain}}" -m {{proto}} -p {{proto}} -d {{ip}} --dport {{port}} -j DROP
[filter.healthCheck]
-A KUBE-NODEPORTS -m comment --comment "{{svc}} health check node port" -m tcp -p tcp --dport {{nodePort}} -j ACCEPT

# --- per-service chains ---
# Traffic to the cluster IP from outside the cluster CIDR (or all, with masqueradeAll) is masqueraded.
[chain.masqOffCluster]
-A {{chain}} -m comment --comment "{{svc}} cluster IP" -m {{proto}} -p {{proto}} -d {{ip}} --dport {{port}} ! -s {{cidr}} -j KUBE-MARK-MASQ
# The same with several cluster CIDRs of the family: KUBE-MASQ-OFF-CLUSTER returns for each of them.
[chain.masqOffClusters]
-A {{chain}} -m comment --comment "{{svc}} cluster IP" -m {{proto}} -p {{proto}} -d {{ip}} --dport {{port}} -j KUBE-MASQ-OFF-CLUSTER
[chain.masqAll]
-A {{chain}} -m comment --comment "{{svc}} cluster IP" -m {{proto}} -p {{proto}} -d {{ip}} --dport {{port}} -j KUBE-MARK-MASQ
# sessionAffinity ClientIP: a client seen recently goes back to its endpoint.
[chain.affinity]
-A {{chain}} -m comment --comment "{{svc}} -> {{endpoint}}" -m recent --name {{sep}} --rcheck --seconds {{timeout}} --reap -j {{sep}}
[chain.spread]
-A {{chain}} -m comment --comment "{{svc}} -> {{endpoint}}" -m statistic --mode random --probability {{probability}} -j {{sep}}
[chain.last]
-A {{chain}} -m comment --comment "{{svc}} -> {{endpoint}}" -j {{sep}}

# KUBE-EXT-, externalTrafficPolicy Cluster: everything is masqueraded.
[ext.cluster]
-A {{chain}} -m comment --comment "masquerade traffic for {{svc}} external destinations" -j KUBE-MARK-MASQ
-A {{chain}} -j {{target}}
# KUBE-EXT-, externalTrafficPolicy Local: pods (one rule per cluster CIDR) and the node itself still reach every endpoint.
[ext.localPods]
-A {{chain}} -m comment --comment "pod traffic for {{svc}} external destinations" -s {{cidr}} -j {{internal}}
[ext.local]
-A {{chain}} -m comment --comment "masquerade LOCAL traffic for {{svc}} external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A {{chain}} -m comment --comment "route LOCAL traffic for {{svc}} external destinations" -m addrtype --src-type LOCAL -j {{internal}}
-A {{chain}} -j {{target}}

# KUBE-FW-: loadBalancerSourceRanges (and the VIP itself, for hairpin through the LB).
[fw.allow]
-A {{chain}} -m comment --comment "{{svc}} loadbalancer IP" -s {{cidr}} -j {{target}}

# KUBE-SEP-: hairpin (the endpoint reaching itself) is masqueraded, then DNAT.
[sep.hairpin]
-A {{sep}} -m comment --comment "{{svc}}" -s {{ip}} -j KUBE-MARK-MASQ
[sep.dnat]
-A {{sep}} -m comment --comment "{{svc}}" -m {{proto}} -p {{proto}} -j DNAT --to-destination {{endpoint}}
[sep.dnatAffinity]
-A {{sep}} -m comment --comment "{{svc}}" -m recent --name {{sep}} --set -m {{proto}} -p {{proto}} -j DNAT --to-destination {{endpoint}}
