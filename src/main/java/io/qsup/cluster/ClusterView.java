package io.qsup.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.etcd.jetcd.KeyValue;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * One consistent read of everything under {@link EtcdKeys#PREFIX}, at one revision: definitions, hosts, the election
 * keys, placements, claims, intents, status, migrations in flight (or last ended) and drained hosts. Immutable.
 * {@code candidates} are the hosts with a key in the election: every running qsupd keeps one, on a leadership lease
 * of half the host TTL that a stopping qsupd revokes, so a host that died or stopped leaves it well before its
 * registration (under the host lease, which outlives a qsupd restart) goes.
 */
record ClusterView(long revision, Map<String, Entry> vms, Map<String, Entry> hosts, Map<String, Entry> placements,
        Map<String, Entry> claims, Map<String, Entry> intents, Map<String, Entry> statuses, Map<String, Entry> migrations,
        Map<String, Entry> drained, String leader, java.util.Set<String> candidates) {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** One key's value and revisions. {@code json} is null when the value is not JSON. */
    record Entry(String key, String text, JsonNode json, long createRevision, long modRevision, long lease) {
        String field(String name) {
            return json == null || !json.path(name).isTextual() ? null : json.path(name).asText();
        }
    }

    static ClusterView of(long revision, List<KeyValue> kvs) {
        Map<String, Entry> vms = new TreeMap<>();
        Map<String, Entry> hosts = new TreeMap<>();
        Map<String, Entry> placements = new TreeMap<>();
        Map<String, Entry> claims = new TreeMap<>();
        Map<String, Entry> intents = new TreeMap<>();
        Map<String, Entry> statuses = new TreeMap<>();
        Map<String, Entry> migrations = new TreeMap<>();
        Map<String, Entry> drained = new TreeMap<>();
        String leader = null;
        long leaderRev = Long.MAX_VALUE;
        java.util.Set<String> candidates = new java.util.TreeSet<>();
        for (KeyValue kv : kvs) {
            String key = kv.getKey().toString(StandardCharsets.UTF_8);
            String text = kv.getValue().toString(StandardCharsets.UTF_8);
            if (key.startsWith(EtcdKeys.ELECTION + "/")) {
                // etcd's election recipe: the candidate key created first is the leader; its value is the host name
                candidates.add(text);
                if (kv.getCreateRevision() < leaderRev) {
                    leaderRev = kv.getCreateRevision();
                    leader = text;
                }
                continue;
            }
            JsonNode json;
            try {
                json = JSON.readTree(text);
            } catch (IOException e) {
                json = null;
            }
            Entry e = new Entry(key, text, json, kv.getCreateRevision(), kv.getModRevision(), kv.getLease());
            put(key, EtcdKeys.VMS, vms, e);
            put(key, EtcdKeys.HOSTS, hosts, e);
            put(key, EtcdKeys.PLACEMENT, placements, e);
            put(key, EtcdKeys.RUNNING, claims, e);
            put(key, EtcdKeys.INTENT, intents, e);
            put(key, EtcdKeys.STATUS, statuses, e);
            put(key, EtcdKeys.MIGRATIONS, migrations, e);
            put(key, EtcdKeys.DRAINED, drained, e);
        }
        return new ClusterView(revision, vms, hosts, placements, claims, intents, statuses, migrations, drained,
                leader, java.util.Collections.unmodifiableSet(candidates));
    }

    private static void put(String key, String prefix, Map<String, Entry> into, Entry e) {
        if (key.startsWith(prefix) && key.length() > prefix.length()) {
            into.put(key.substring(prefix.length()), e);
        }
    }

    /** The host a placement or claim names, or null. */
    String placedOn(String vm) {
        Entry e = placements.get(vm);
        return e == null ? null : e.field("host");
    }

    String claimedBy(String vm) {
        Entry e = claims.get(vm);
        return e == null ? null : e.field("host");
    }

    /** The operator's intent: true started, false stopped, null none written. */
    Boolean intent(String vm) {
        Entry e = intents.get(vm);
        String i = e == null ? null : e.field("intent");
        return i == null ? null : i.equals("started");
    }

    long intentRevision(String vm) {
        Entry e = intents.get(vm);
        return e == null ? 0 : e.modRevision();
    }

    /** The VM's migration key, parsed, or null. */
    Migration migration(String vm) {
        Entry e = migrations.get(vm);
        return e == null ? null : Migration.of(e);
    }

    /** Whether an operator drained {@code host}: the leader places nothing new there. */
    boolean isDrained(String host) {
        return drained.containsKey(host);
    }
}
