package io.qsup.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.KV;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.DeleteOption;
import io.etcd.jetcd.options.PutOption;
import io.qsup.config.ClusterSettings;
import io.qsup.config.Disk;
import io.qsup.config.VmDefinition;
import io.qsup.control.ControlException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What an operator asks of planned moves, on any host's control socket: {@code vm-migrate} checks the request against
 * the cluster as etcd has it now and writes the migration key (the hosts involved do the rest, see
 * {@link MigrationDriver}), then waits for its outcome; {@code host-drain} marks a host drained and moves every VM
 * it runs that can move, a few at a time, to hosts the placement rules choose.
 *
 * <p>Threads: called on control sessions' threads; stateless beyond the etcd client, which is thread-safe. A drain
 * runs its moves on a small pool of its own.
 */
final class MoveRequests {
    private static final Logger log = LoggerFactory.getLogger(MoveRequests.class);
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final Duration CALL = Duration.ofSeconds(2);
    /** The bound of a transfer when the request names none. */
    static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(2);
    /** How long a completed migration's waiter waits for the source to say its QEMU ended. */
    private static final Duration SOURCE_END = Duration.ofSeconds(10);
    /** Moves a drain runs at once. */
    static final int DRAIN_PARALLEL = 2;

    /** A fresh read of the cluster, or the last one when etcd does not answer. */
    interface Views {
        ClusterView get() throws ControlException;
    }

    private final KV kv;
    private final ClusterSettings cluster;
    private final Views views;
    private final Function<String, VmDefinition> defs;

    MoveRequests(KV kv, ClusterSettings cluster, Views views, Function<String, VmDefinition> defs) {
        this.kv = kv;
        this.cluster = cluster;
        this.views = views;
        this.defs = defs;
    }

    /**
     * Checks and writes a migration of {@code name} to host {@code to}; with {@code wait}, waits until it completed
     * (returns {@code name}, {@code from}, {@code to}, {@code state}, figures) or failed (a ControlException with the
     * reason).
     */
    JsonNode migrate(String name, String to, boolean wait, Duration timeout, long bandwidth) throws ControlException {
        ClusterView v = views.get();
        String from = check(v, name, to);
        Duration bound = timeout == null ? DEFAULT_TIMEOUT : timeout;
        String id = UUID.randomUUID().toString();
        long t0 = System.nanoTime();
        write(v, name, from, id, Migration.request(id, from, to, bandwidth, bound.toMillis()));
        log.info("VM {}: migration {} from {} to {} requested", name, id, from, to);
        ObjectNode o = NODES.objectNode().put("name", name).put("from", from).put("to", to);
        if (!wait) {
            return o.put("state", Migration.State.REQUESTED.label()).put("requested", true);
        }
        long[] running = new long[1];
        Migration m = await(name, id, bound.plus(MigrationDriver.TARGET_START).plusSeconds(30), running);
        double took = running[0] == 0 ? -1 : (running[0] - t0) / 1e9;
        if (m.state() == Migration.State.FAILED) {
            throw ControlException.generic("migration of " + name + " from " + from + " to " + to + " failed: "
                    + m.reason() + (m.reason().contains("runs on at") ? "" : "; the VM runs on at " + from));
        }
        return o.put("state", m.state().label()).put("seconds", Math.round(took * 1000) / 1000.0)
                .put("transfer-ms", m.transferMs()).put("downtime-ms", m.downtimeMs());
    }

    /** The host the VM runs on, once every rule of a move to {@code to} holds; else what is wrong and what to do. */
    private String check(ClusterView v, String name, String to) throws ControlException {
        if (!v.vms().containsKey(name)) {
            throw new ControlException(ControlException.VM_NOT_FOUND, "no cluster VM named '" + name
                    + "'; 'qsup list' shows the cluster's VMs");
        }
        VmDefinition d = defs.apply(name);
        if (d == null) {
            throw ControlException.generic(name + ": its cluster definition is not usable on host " + cluster.host()
                    + " (see its qsupd log); fix it with 'qsup apply'");
        }
        if (!v.hosts().containsKey(to)) {
            throw ControlException.generic("no live host named '" + to + "'; 'qsup hosts' lists the hosts alive in"
                    + " the cluster");
        }
        if (!v.candidates().contains(to)) {
            throw ControlException.generic("host " + to + " is registered, but its qsupd does not run (it has no key in"
                    + " the election); start it there, or pick another host from 'qsup hosts'");
        }
        if (v.isDrained(to)) {
            throw ControlException.generic("host " + to + " is drained: nothing moves there; 'qsup drain --undo " + to
                    + "' lifts it");
        }
        String from = v.claimedBy(name);
        ClusterView.Entry st = v.statuses().get(name);
        String state = st == null ? null : st.field("state");
        if (from == null) {
            throw new ControlException(ControlException.INVALID_STATE, name + " is not running (no host holds it);"
                    + " start it with 'qsup start " + name + "', or change its placement and let the leader place it");
        }
        if (from.equals(to)) {
            throw new ControlException(ControlException.INVALID_STATE, name + " already runs on host " + to
                    + "; name another host");
        }
        Migration m = v.migration(name);
        if (m != null && !m.ended()) {
            throw new ControlException(ControlException.INVALID_STATE, "a migration of " + name + " from " + m.from()
                    + " to " + m.to() + " is under way (" + m.state().label() + "); wait for it to end");
        }
        if (!"running".equals(state)) {
            throw new ControlException(ControlException.INVALID_STATE, name + " is " + (state == null ? "starting"
                    : state) + " on host " + from + ", not running; only a running VM is migrated"
                    + ("paused".equals(state) ? " (resume it first)" : ""));
        }
        Optional<String> disk = unmovableDisk(d);
        if (disk.isPresent()) {
            throw ControlException.generic(name + ": " + disk.get());
        }
        if (!d.placement().allows(to)) {
            throw ControlException.generic(name + ": host " + to + " is not in its placement.hosts "
                    + d.placement().hosts() + "; name one of those, or change placement.hosts and 'qsup apply' it");
        }
        PlacementPlanner.HostLoad load = load(v, to, name);
        PlacementPlanner.Demand demand = demand(d);
        List<String> clash = d.placement().antiAffinity().stream().filter(load.groups()::contains).toList();
        if (!clash.isEmpty()) {
            throw ControlException.generic(name + ": host " + to + " already runs a VM of its anti-affinity group "
                    + clash + "; name another host");
        }
        if (load.freeMemory() < demand.memory() || load.cpus() - load.usedCpus() < demand.cpus()) {
            throw ControlException.generic(name + ": host " + to + " lacks the capacity: it has "
                    + (Math.max(0, load.freeMemory()) >> 20) + " MiB and " + Math.max(0, load.cpus() - load.usedCpus())
                    + " cpus free, the VM needs " + (demand.memory() >> 20) + " MiB and " + demand.cpus()
                    + "; name another host, or free some there");
        }
        return from;
    }

    /** Why the VM's storage cannot follow it to another host, or empty: every disk shared or read-only. */
    static Optional<String> unmovableDisk(VmDefinition d) {
        for (int i = 0; i < d.disks().size(); i++) {
            Disk k = d.disks().get(i);
            if (!k.shared() && !k.readonly() && !k.isCdrom()) {
                return Optional.of("disks[" + i + "] (" + k.file() + ") is neither shared nor read-only, so the"
                        + " target host cannot use it; live migration moves memory, not disks: put it on shared"
                        + " storage and set 'shared: true' on it");
            }
        }
        return Optional.empty();
    }

    /** Writes the request: only if no migration of the VM is under way and the claim is still the one read. */
    private void write(ClusterView v, String name, String from, String id, ObjectNode value) throws ControlException {
        ClusterView.Entry claim = v.claims().get(name);
        ClusterView.Entry had = v.migrations().get(name);
        ClusterView.Entry source = v.hosts().get(from);
        ByteSequence key = EtcdKeys.bytes(EtcdKeys.migration(name));
        Cmp noneUnderWay = had == null ? new Cmp(key, Cmp.Op.EQUAL, CmpTarget.version(0))
                : new Cmp(key, Cmp.Op.EQUAL, CmpTarget.modRevision(had.modRevision()));
        try {
            // under the source's lease: the request vanishes with the source host
            boolean ok = kv.txn()
                    .If(noneUnderWay,
                            new Cmp(EtcdKeys.bytes(EtcdKeys.running(name)), Cmp.Op.EQUAL,
                                    CmpTarget.modRevision(claim.modRevision())))
                    .Then(Op.put(key, EtcdKeys.bytes(value.toString()),
                            source == null ? PutOption.DEFAULT
                                    : PutOption.builder().withLeaseId(source.lease()).build()))
                    .commit().get(CALL.toMillis(), TimeUnit.MILLISECONDS).isSucceeded();
            if (!ok) {
                throw new ControlException(ControlException.INVALID_STATE, name + " changed while the migration was"
                        + " requested (another migration, a stop, or its host); nothing was requested; try again");
            }
        } catch (ControlException e) {
            throw e;
        } catch (Exception e) {
            throw ControlException.generic("cannot write the migration of " + name + " to etcd " + cluster.etcd()
                    + ": " + e + "; nothing was requested (check that etcd has quorum)");
        }
    }

    /** Polls the migration key until the move {@code id} ended; {@code running[0]}: when it was first seen completed. */
    private Migration await(String name, String id, Duration bound, long[] running) throws ControlException {
        long deadline = System.nanoTime() + bound.toNanos();
        long sourceGrace = 0;
        Migration last = null;
        while (true) {
            ClusterView now = views.get();
            Migration m = now.migration(name);
            if (m == null || !m.id().equals(id)) {
                if (last != null && last.state() == Migration.State.HANDED_OVER && name != null
                        && last.to().equals(now.claimedBy(name))) {
                    return last; // the source's lease ended just after the hand-over; the target holds the VM
                }
                throw ControlException.generic("the migration of " + name + " is gone from etcd"
                        + (last == null ? "" : " (last seen " + last.state().label() + ")")
                        + ": its source host left the cluster; 'qsup list' shows where " + name + " runs");
            }
            last = m;
            if (m.state() == Migration.State.FAILED) {
                return m;
            }
            if (m.state() == Migration.State.COMPLETED) {
                // the target runs the VM; the source quits its paused QEMU a moment later and says so
                boolean ended = m.entry().json() != null && m.entry().json().path("source-ended").asBoolean(false);
                if (running[0] == 0) {
                    running[0] = System.nanoTime();
                }
                if (ended || sourceGrace != 0 && System.nanoTime() > sourceGrace) {
                    return m;
                }
                if (sourceGrace == 0) {
                    sourceGrace = System.nanoTime() + SOURCE_END.toNanos();
                }
            }
            if (System.nanoTime() > deadline) {
                throw new ControlException(ControlException.TIMEOUT, "the migration of " + name + " from " + m.from()
                        + " to " + m.to() + " did not end in time (now " + m.state().label() + "); 'qsup list' shows"
                        + " where it runs");
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw ControlException.generic("interrupted while waiting for the migration of " + name);
            }
        }
    }

    // ---- drain ----

    /** Marks {@code host} drained (or, with {@code undo}, no longer), then moves what can move off it. */
    JsonNode drain(String host, boolean undo, Duration timeout) throws ControlException {
        ClusterView v = views.get();
        ByteSequence key = EtcdKeys.bytes(EtcdKeys.drained(host));
        ObjectNode out = NODES.objectNode().put("host", host);
        try {
            if (undo) {
                kv.delete(key, DeleteOption.DEFAULT).get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                log.info("cluster: host {} is no longer drained", host);
                return out.put("drained", false);
            }
            if (!v.hosts().containsKey(host)) {
                throw ControlException.generic("no live host named '" + host + "'; 'qsup hosts' lists the hosts alive"
                        + " in the cluster");
            }
            kv.put(key, EtcdKeys.bytes(NODES.objectNode().put("since", Instant.now().toString()).toString()))
                    .get(CALL.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ControlException e) {
            throw e;
        } catch (Exception e) {
            throw ControlException.generic("cannot write the drain of " + host + " to etcd " + cluster.etcd() + ": "
                    + e + " (check that etcd has quorum)");
        }
        log.info("cluster: host {} drained; moving its VMs", host);
        out.put("drained", true);
        ArrayNode results = out.putArray("vms");
        v = views.get();
        // choose every target first, counting the moves already chosen, so two moves never take the same room
        Map<String, String> targets = new TreeMap<>();
        Map<String, PlacementPlanner.Demand> extra = new TreeMap<>();
        List<ObjectNode> rows = new ArrayList<>();
        for (String name : v.claims().keySet()) {
            if (!host.equals(v.claimedBy(name))) {
                continue;
            }
            ObjectNode r = NODES.objectNode().put("name", name);
            rows.add(r);
            VmDefinition d = defs.apply(name);
            ClusterView.Entry st = v.statuses().get(name);
            String state = st == null ? "starting" : st.field("state");
            Optional<String> why = d == null ? Optional.of("its definition is not usable on host " + cluster.host())
                    : !"running".equals(state) ? Optional.of("it is " + state + ", not running")
                    : unmovableDisk(d);
            if (why.isEmpty()) {
                Optional<String> to = choose(v, d, host, extra);
                if (to.isPresent()) {
                    targets.put(name, to.get());
                    extra.put(name + "@" + to.get(), demand(d));
                    r.put("to", to.get());
                    continue;
                }
                why = Optional.of("no other host can take it: " + whyNoHost(v, d, host, extra));
            }
            r.put("result", "not-movable").put("reason", why.get());
        }
        ExecutorService pool = Executors.newFixedThreadPool(DRAIN_PARALLEL,
                Thread.ofPlatform().name("drain " + host + " ", 0).daemon().factory());
        try {
            Map<String, Future<ObjectNode>> running = new TreeMap<>();
            for (Map.Entry<String, String> t : targets.entrySet()) {
                running.put(t.getKey(), pool.submit(() -> moveOne(t.getKey(), t.getValue(), timeout)));
            }
            for (ObjectNode r : rows) {
                Future<ObjectNode> f = running.get(r.path("name").asText());
                if (f != null) {
                    try {
                        r.setAll(f.get());
                    } catch (Exception e) {
                        r.put("result", "failed").put("reason", e.toString());
                    }
                }
                results.add(r);
            }
        } finally {
            pool.shutdownNow();
        }
        return out;
    }

    private ObjectNode moveOne(String name, String to, Duration timeout) {
        ObjectNode r = NODES.objectNode();
        try {
            JsonNode j = migrate(name, to, true, timeout, 0);
            return r.put("result", "moved").put("to", to).put("seconds", j.path("seconds").asDouble(-1));
        } catch (ControlException e) {
            return r.put("result", "failed").put("to", to).put("reason", e.getMessage());
        }
    }

    /** The host the planner picks for {@code d} off {@code from}: constraints, capacity, spread; drained excluded. */
    private Optional<String> choose(ClusterView v, VmDefinition d, String from,
            Map<String, PlacementPlanner.Demand> extra) {
        return PlacementPlanner.choose(demand(d), loads(v, from, extra));
    }

    private String whyNoHost(ClusterView v, VmDefinition d, String from, Map<String, PlacementPlanner.Demand> extra) {
        return PlacementPlanner.whyNot(demand(d), loads(v, from, extra));
    }

    private List<PlacementPlanner.HostLoad> loads(ClusterView v, String from,
            Map<String, PlacementPlanner.Demand> extra) {
        List<PlacementPlanner.HostLoad> loads = new ArrayList<>();
        for (String h : v.hosts().keySet()) {
            if (h.equals(from) || v.isDrained(h) || !v.candidates().contains(h)) {
                continue;
            }
            PlacementPlanner.HostLoad l = load(v, h, null);
            Map<String, PlacementPlanner.Demand> more = new TreeMap<>();
            extra.forEach((k, dm) -> {
                if (k.endsWith("@" + h)) {
                    more.put(k, dm);
                }
            });
            loads.add(more.isEmpty() ? l : plus(l, more));
        }
        return loads;
    }

    private static PlacementPlanner.HostLoad plus(PlacementPlanner.HostLoad l, Map<String, PlacementPlanner.Demand> more) {
        PlacementPlanner.HostLoad m = PlacementPlanner.load(l.name(), l.memory(), l.cpus(), more);
        java.util.Set<String> groups = new java.util.TreeSet<>(l.groups());
        groups.addAll(m.groups());
        return new PlacementPlanner.HostLoad(l.name(), l.memory(), l.cpus(), l.usedMemory() + m.usedMemory(),
                l.usedCpus() + m.usedCpus(), groups);
    }

    /**
     * What host {@code h} offers and what takes it: the VMs claimed by or placed on it, and those migrating to it;
     * {@code except} is left out (the VM being moved).
     */
    private PlacementPlanner.HostLoad load(ClusterView v, String h, String except) {
        JsonNode j = v.hosts().get(h).json();
        Map<String, PlacementPlanner.Demand> there = new TreeMap<>();
        for (String name : v.vms().keySet()) {
            if (name.equals(except)) {
                continue;
            }
            String on = v.claimedBy(name) != null ? v.claimedBy(name) : v.placedOn(name);
            Migration m = v.migration(name);
            boolean coming = m != null && !m.ended() && h.equals(m.to());
            VmDefinition d = defs.apply(name);
            if (d != null && (h.equals(on) || coming) && (v.claimedBy(name) != null || !Boolean.FALSE.equals(
                    v.intent(name)))) {
                there.put(name, demand(d));
            }
        }
        return PlacementPlanner.load(h, j == null ? 0 : j.path("memory").asLong(), j == null ? 0
                : j.path("cpus").asInt(), there);
    }

    private static PlacementPlanner.Demand demand(VmDefinition d) {
        return new PlacementPlanner.Demand(d.name(), d.memoryBytes(), d.cpus().count(), d.placement());
    }
}
