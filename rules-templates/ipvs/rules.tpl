# podwire's iptables rules for --proxy-mode=ipvs, kube-proxy's IPVS layout.
# IPVS does the load balancing; these rules only do what IPVS cannot
# (masquerade, load-balancer source ranges, rejecting what has no endpoints,
# filtering the service addresses). They match ipsets, so their number never
# grows with the number of services: the sync changes set members, not rules.
# The renderer (src/proxy/ipvs/rules.ts) fills in {{placeholders}}: the set
# names of the family ({{CLUSTER_IP}} is KUBE-CLUSTER-IP or KUBE-6-CLUSTER-IP…),
# {{mark}} the masquerade bit as 0x4000/0x4000, {{markBit}} as 0x4000,
# {{cidr}} one --cluster-cidr. Lines starting with '#' are comments.

# --- podwire's chains in each table (declared, i.e. flushed, on every rules sync) ---
[chains.nat]
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-LOAD-BALANCER - [0:0]

[chains.filter]
:KUBE-FORWARD - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SOURCE-RANGES-FIREWALL - [0:0]
:KUBE-IPVS-FILTER - [0:0]
:KUBE-IPVS-OUT-FILTER - [0:0]

# --- jumps from the built-in chains (inserted once when missing, found again by text) ---
[jump.nat]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING

[jump.filter]
-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER
-A INPUT -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT
-A FORWARD -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A OUTPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-OUT-FILTER

# --- nat ---
[nat.head]
-A KUBE-MARK-MASQ -j MARK --or-mark {{markBit}}
-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set {{LOOP_BACK}} dst,dst,src -j MASQUERADE
-A KUBE-POSTROUTING -m mark ! --mark {{mark}} -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark {{markBit}}
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "Kubernetes service lb portal" -m set --match-set {{LOAD_BALANCER}} dst,dst -j KUBE-LOAD-BALANCER

# traffic to a cluster IP from outside the cluster CIDR (one line per --cluster-cidr)
[nat.clusterCIDR]
-A KUBE-SERVICES ! -s {{cidr}} -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set {{CLUSTER_IP}} dst,dst -j KUBE-MARK-MASQ

# --masquerade-all
[nat.masqueradeAll]
-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set {{CLUSTER_IP}} dst,dst -j KUBE-MARK-MASQ

[nat.tail]
-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port with externalTrafficPolicy=local" -m set --match-set {{EXTERNAL_IP_LOCAL}} dst,dst -j RETURN
-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port for masquerade and filter purpose" -m set --match-set {{EXTERNAL_IP}} dst,dst -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT
-A KUBE-LOAD-BALANCER -m comment --comment "Kubernetes service load balancer ip + port with externalTrafficPolicy=local" -m set --match-set {{LOAD_BALANCER_LOCAL}} dst,dst -j RETURN
-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port with externalTrafficPolicy=local" -m set --match-set {{NODE_PORT_LOCAL_TCP}} dst -j RETURN
-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port for masquerade purpose" -m set --match-set {{NODE_PORT_TCP}} dst -j KUBE-MARK-MASQ
-A KUBE-NODE-PORT -p udp -m comment --comment "Kubernetes nodeport UDP port with externalTrafficPolicy=local" -m set --match-set {{NODE_PORT_LOCAL_UDP}} dst -j RETURN
-A KUBE-NODE-PORT -p udp -m comment --comment "Kubernetes nodeport UDP port for masquerade purpose" -m set --match-set {{NODE_PORT_UDP}} dst -j KUBE-MARK-MASQ

# --- filter ---
[filter]
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark {{mark}} -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" -m set --match-set {{HEALTH_CHECK_NODE_PORT}} dst -j ACCEPT
-A KUBE-PROXY-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port for load balancer with sourceRange" -m set --match-set {{LOAD_BALANCER_FW}} dst,dst -j KUBE-SOURCE-RANGES-FIREWALL
-A KUBE-SOURCE-RANGES-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source cidr for packet filter purpose" -m set --match-set {{LOAD_BALANCER_SOURCE_CIDR}} dst,dst,src -j RETURN
-A KUBE-SOURCE-RANGES-FIREWALL -j DROP
-A KUBE-IPVS-FILTER -m comment --comment "podwire: service ip + port without endpoints" -m set --match-set {{NO_ENDPOINTS}} dst,dst -j REJECT
-A KUBE-IPVS-FILTER -m set --match-set {{LOAD_BALANCER}} dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set {{CLUSTER_IP}} dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set {{EXTERNAL_IP}} dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set {{EXTERNAL_IP_LOCAL}} dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set {{HEALTH_CHECK_NODE_PORT}} dst -j RETURN
-A KUBE-IPVS-FILTER -m comment --comment "Kubernetes ipvs access filter" -m conntrack --ctstate NEW -m set --match-set {{IPVS_IPS}} dst -j REJECT
-A KUBE-IPVS-OUT-FILTER -m comment --comment "podwire: service ip + port without endpoints" -m set --match-set {{NO_ENDPOINTS}} dst,dst -j REJECT
