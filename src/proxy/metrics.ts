// kube-proxy's metric names, so existing dashboards and alerts keep working.
import client from 'prom-client';

export const registry = new client.Registry();

// kube-proxy's buckets: exponential from 1 ms, factor 2, 15 buckets.
const syncBuckets = client.exponentialBuckets(0.001, 2, 15);

export const metrics = {
  syncProxyRulesDuration: new client.Histogram({
    name: 'kubeproxy_sync_proxy_rules_duration_seconds',
    help: 'SyncProxyRules latency in seconds',
    buckets: syncBuckets,
    registers: [registry],
  }),
  syncFullProxyRulesDuration: new client.Histogram({
    name: 'kubeproxy_sync_full_proxy_rules_duration_seconds',
    help: 'SyncProxyRules latency in seconds for full resyncs',
    buckets: syncBuckets,
    registers: [registry],
  }),
  syncPartialProxyRulesDuration: new client.Histogram({
    name: 'kubeproxy_sync_partial_proxy_rules_duration_seconds',
    help: 'SyncProxyRules latency in seconds for partial resyncs',
    buckets: syncBuckets,
    registers: [registry],
  }),
  syncProxyRulesLastTimestamp: new client.Gauge({
    name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds',
    help: 'The last time proxy rules were successfully synced',
    registers: [registry],
  }),
  syncProxyRulesLastQueuedTimestamp: new client.Gauge({
    name: 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds',
    help: 'The last time a sync of proxy rules was queued',
    registers: [registry],
  }),
  networkProgrammingDuration: new client.Histogram({
    name: 'kubeproxy_network_programming_duration_seconds',
    help: 'In Cluster Network Programming Latency in seconds',
    buckets: [0.25, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 25, 30, 35, 40, 45, 50, 55, 60, 120, 180, 240, 300],
    registers: [registry],
  }),
  endpointChangesPending: new client.Gauge({
    name: 'kubeproxy_sync_proxy_rules_endpoint_changes_pending',
    help: 'Pending proxy rules Endpoint changes',
    registers: [registry],
  }),
  endpointChangesTotal: new client.Counter({
    name: 'kubeproxy_sync_proxy_rules_endpoint_changes_total',
    help: 'Cumulative proxy rules Endpoint changes',
    registers: [registry],
  }),
  serviceChangesPending: new client.Gauge({
    name: 'kubeproxy_sync_proxy_rules_service_changes_pending',
    help: 'Pending proxy rules Service changes',
    registers: [registry],
  }),
  serviceChangesTotal: new client.Counter({
    name: 'kubeproxy_sync_proxy_rules_service_changes_total',
    help: 'Cumulative proxy rules Service changes',
    registers: [registry],
  }),
  iptablesTotal: new client.Gauge({
    name: 'kubeproxy_sync_proxy_rules_iptables_total',
    help: 'Total number of iptables rules owned by kube-proxy',
    labelNames: ['table'],
    registers: [registry],
  }),
  iptablesRestoreFailuresTotal: new client.Counter({
    name: 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total',
    help: 'Cumulative proxy iptables restore failures',
    registers: [registry],
  }),
  iptablesPartialRestoreFailuresTotal: new client.Counter({
    name: 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total',
    help: 'Cumulative proxy iptables partial restore failures',
    registers: [registry],
  }),
  nftablesSyncFailuresTotal: new client.Counter({
    name: 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total',
    help: 'Cumulative proxy nftables sync failures',
    registers: [registry],
  }),
  nftablesCleanupFailuresTotal: new client.Counter({
    name: 'kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total',
    help: 'Cumulative proxy nftables cleanup failures',
    registers: [registry],
  }),
  noLocalEndpointsTotal: new client.Gauge({
    name: 'kubeproxy_sync_proxy_rules_no_local_endpoints_total',
    help: 'Number of services with a Local traffic policy and no endpoints',
    labelNames: ['traffic_policy'],
    registers: [registry],
  }),
  syncProxyRulesLastSyncFailures: new client.Counter({
    name: 'podwire_sync_failures_total',
    help: 'Syncs that failed and were retried with a full sync',
    labelNames: ['mode'],
    registers: [registry],
  }),
  conntrackDeletedEntries: new client.Counter({
    name: 'kubeproxy_conntrack_reconciler_deleted_entries_total',
    help: 'Cumulative conntrack flows deleted by the conntrack cleanup',
    registers: [registry],
  }),
  healthzServedTotal: new client.Counter({
    name: 'kubeproxy_proxy_healthz_total',
    help: 'Cumulative proxy healthz HTTP status',
    labelNames: ['code'],
    registers: [registry],
  }),
  livezServedTotal: new client.Counter({
    name: 'kubeproxy_proxy_livez_total',
    help: 'Cumulative proxy livez HTTP status',
    labelNames: ['code'],
    registers: [registry],
  }),
};
