package io.qsup.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Client;
import io.etcd.jetcd.KV;
import io.etcd.jetcd.election.LeaderKey;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.kv.TxnResponse;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.DeleteOption;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.PutOption;
import io.qsup.config.ClusterSettings;
import io.qsup.config.ConfigError;
import io.qsup.config.DaemonSettings;
import io.qsup.config.LoadResult;
import io.qsup.config.VmDefinition;
import io.qsup.control.ClusterPort;
import io.qsup.control.ControlException;
import io.qsup.daemon.Version;
import io.qsup.qemu.HostFacts;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorException;
import io.qsup.supervisor.VmSnapshot;
import io.qsup.vm.Cause;
import io.qsup.vm.VmEvent;
import io.qsup.vm.VmState;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One host's part in the cluster: it registers the host under its lease, reads the whole cluster every tick, claims
 * and starts the cluster VMs placed here, stops and releases those that are not meant to run here any more, publishes
 * their status, takes this host's part in planned moves ({@link MigrationDriver}), and, while it is the leader, places
 * every VM that needs a host (never on a drained host). It drives the local supervisor as the control socket does;
 * cluster VMs run through the same controllers as local ones, so every never-two-QEMUs check applies to them.
 *
 * <p>Threads: {@code cluster-tick} does all reading and reconciling, one tick at a time; the lease's threads call
 * {@link #fenceAll}; control sessions call the {@link ClusterPort} methods, which only read {@link #view} and write to
 * etcd ({@link MoveRequests} for migrate and drain); the migration steps run on threads of their own. Shared state:
 * {@code view} (volatile, replaced whole), {@code held}, {@code won} and {@code inFlight} (concurrent maps).
 */
public final class ClusterAgent implements ClusterPort, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ClusterAgent.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final Duration TICK = Duration.ofMillis(250);
    private static final Duration CALL = Duration.ofSeconds(2);

    private final DaemonSettings settings;
    private final ClusterSettings cluster;
    private final Supervisor supervisor;
    private final HostFacts hostFacts;
    private final Client client;
    private final KV kv;
    private final HostLease lease;
    private final Leadership leadership;
    private final Thread ticker;
    private volatile boolean closed;
    private volatile ClusterView view;
    /** Parsed definitions by name, with the mod revision they came from; written by cluster-tick only. */
    private final Map<String, Parsed> defs = new ConcurrentHashMap<>();
    /** Cluster VMs registered in the supervisor, with the intent revision last acted on. */
    private final Map<String, Long> held = new ConcurrentHashMap<>();
    /** Claims this host won, by VM, with the lease they were made under: fresher than {@link #view}. */
    private final Map<String, Long> won = new ConcurrentHashMap<>();
    /** VMs with a start or stop under way, so a tick does not queue another. */
    private final Set<String> inFlight = ConcurrentHashMap.newKeySet();
    /** cluster-tick only: since when (nanoTime) reads of etcd fail, or 0; and whether that was logged. */
    private long readFailingSince;
    private boolean readFailureLogged;
    /** Last cause per VM, from the supervisor's events, for status. */
    private final Map<String, String[]> lastCause = new ConcurrentHashMap<>();
    /** Status last written per VM, so unchanged status is not written again. */
    private final Map<String, String> written = new HashMap<>();
    private volatile long leaseOfRegistration;
    private final MigrationDriver migrations;
    private final MoveRequests moves;

    private record Parsed(long revision, VmDefinition def, String error) {}

    /**
     * A jetcd client for {@code endpoints}. jetcd runs on Vert.x, whose file resolver otherwise makes a
     * {@code vertx-cache-UUID} folder in {@code java.io.tmpdir} at its first use and removes it only in a shutdown hook,
     * so every qsupd ended by SIGKILL (or by a host crash) would leave one behind. qsupd never reads class-path files
     * through Vert.x, so the resolver's class-path cache is turned off before the first Vert.x instance reads it.
     */
    static Client etcdClient(java.net.URI... endpoints) {
        if (System.getProperty("vertx.disableFileCPResolving") == null) {
            System.setProperty("vertx.disableFileCPResolving", "true");
        }
        return Client.builder().endpoints(endpoints).build();
    }

    ClusterAgent(DaemonSettings settings, Supervisor supervisor, HostFacts hostFacts) {
        this.settings = settings;
        this.cluster = settings.cluster();
        this.supervisor = supervisor;
        this.hostFacts = hostFacts;
        this.client = etcdClient(cluster.etcd().toArray(java.net.URI[]::new));
        this.kv = client.getKVClient();
        this.leadership = new Leadership(client.getElectionClient(), client.getLeaseClient(), cluster.host(),
                cluster.leaseTtl());
        this.lease = new HostLease(client.getLeaseClient(), cluster.leaseTtl(), cluster.fenceMargin(),
                settings.stateDir().resolve("cluster-lease"), new HostLease.Listener() {
                    @Override
                    public void fence(String why) {
                        fenceAll(why);
                    }

                    @Override
                    public void leaseGranted(long id, boolean resumed) {
                        leadership.campaignOn(id);
                    }
                });
        this.ticker = Thread.ofPlatform().daemon().name("cluster-tick").unstarted(this::loop);
        this.migrations = new MigrationDriver(cluster, supervisor, kv, CALL, won, held);
        this.moves = new MoveRequests(kv, cluster, this::fresh, name -> {
            Parsed p = defs.get(name);
            return p == null ? null : p.def();
        });
    }

    void start() {
        supervisor.setClusterGate(this::mayRun);
        supervisor.addListener(this::onEvent);
        lease.start();
        ticker.start();
        log.info("cluster: host {} ({}) joining etcd {}, lease-ttl {} s, fence-margin {} ms", cluster.host(),
                cluster.address(), cluster.etcd(), cluster.leaseTtl().toSeconds(), cluster.fenceMargin().toMillis());
    }

    /** The supervisor's gate: a cluster VM may run here while this host holds its claim under a live lease. */
    private boolean mayRun(String vm) {
        long id = lease.validId();
        ClusterView v = view;
        if (id == 0 || v == null) {
            Parsed p = defs.get(vm);
            // a failover: false VM is never stopped for want of etcd
            return p != null && p.def() != null && !p.def().failover() && !lease.fenced();
        }
        if (won.getOrDefault(vm, 0L) == id) {
            return true; // won since the last read of etcd
        }
        ClusterView.Entry claim = v.claims().get(vm);
        return claim != null && claim.lease() == id;
    }

    private void onEvent(VmEvent e) {
        if (e instanceof VmEvent.StateChange sc) {
            lastCause.put(sc.vm(), new String[] {sc.cause().label(), sc.detail()});
        }
    }

    /** On the lease's fence-timer: SIGKILL every failover VM this host runs. */
    void fenceAll(String why) {
        List<String> failover = new ArrayList<>();
        for (String name : List.copyOf(held.keySet())) {
            Optional<VmDefinition> d = supervisor.definition(name);
            if (d.isPresent() && d.get().failover()) {
                failover.add(name);
                supervisor.fenceFast(name, why); // every known QEMU first, before any slower search
            }
        }
        for (String name : failover) {
            int n = supervisor.fence(name, why);
            log.error("VM {}: fenced: {} more QEMU process(es) found and killed ({})", name, n, why);
        }
    }

    // ---- the tick ----

    private void loop() {
        while (!closed) {
            try {
                tick();
            } catch (RuntimeException e) {
                log.error("cluster: tick failed: {}", e.toString(), e);
            }
            try {
                Thread.sleep(TICK);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    private void tick() {
        ClusterView v;
        try {
            GetResponse r = kv.get(EtcdKeys.bytes(EtcdKeys.PREFIX), GetOption.builder().isPrefix(true).build())
                    .get(CALL.toMillis(), TimeUnit.MILLISECONDS);
            v = ClusterView.of(r.getHeader().getRevision(), r.getKvs());
        } catch (Exception e) {
            if (readFailingSince == 0) {
                readFailingSince = System.nanoTime();
            } else if (!readFailureLogged && System.nanoTime() - readFailingSince > cluster.leaseTtl().toNanos()) {
                readFailureLogged = true;
                log.warn("cluster: cannot read etcd {} for {} ms ({}); this host acts on its last view until it can",
                        cluster.etcd(), (System.nanoTime() - readFailingSince) / 1_000_000, e.toString());
            }
            log.debug("cluster: cannot read etcd: {}", e.toString());
            return;
        }
        if (readFailureLogged) {
            log.info("cluster: etcd answers reads again after {} ms", (System.nanoTime() - readFailingSince) / 1_000_000);
        }
        readFailingSince = 0;
        readFailureLogged = false;
        view = v;
        long id = lease.validId();
        if (id != 0 && (leaseOfRegistration != id || !v.hosts().containsKey(cluster.host()))) {
            registerHost(id);
        }
        syncDefinitions(v);
        for (String name : v.vms().keySet()) {
            Parsed p = defs.get(name);
            if (p != null && p.def() != null) {
                hostDuties(v, p.def(), id);
            }
        }
        migrations.tick(v, id);
        LeaderKey leader = leadership.key(id);
        if (leader != null) {
            leaderDuties(v, leader);
        }
        publishStatus(v, id);
    }

    private void registerHost(long id) {
        ObjectNode h = NODES.objectNode().put("address", cluster.address()).put("memory", cluster.capacityMemory())
                .put("cpus", cluster.capacityCpus()).put("version", Version.get())
                .put("started", Instant.now().toString());
        if (put(EtcdKeys.host(cluster.host()), h.toString(), id)) {
            leaseOfRegistration = id;
            log.info("cluster: host {} registered under lease {}", cluster.host(), Long.toHexString(id));
        }
    }

    /** Parses new or changed definitions; registers, updates or drops cluster VMs here accordingly. */
    private void syncDefinitions(ClusterView v) {
        for (Map.Entry<String, ClusterView.Entry> e : v.vms().entrySet()) {
            String name = e.getKey();
            Parsed had = defs.get(name);
            if (had != null && had.revision() == e.getValue().modRevision()) {
                continue;
            }
            Parsed p = parse(name, e.getValue());
            defs.put(name, p);
            if (p.error() != null) {
                log.error("VM {}: cluster definition not usable on this host: {}", name, p.error());
            } else if (!held.containsKey(name)) {
                register(p.def());
            } else {
                try {
                    supervisor.updateCluster(p.def());
                } catch (SupervisorException ex) {
                    log.error("{}", ex.getMessage());
                }
            }
        }
        for (String name : List.copyOf(defs.keySet())) {
            if (!v.vms().containsKey(name)) {
                defs.remove(name);
            }
        }
        for (String name : List.copyOf(held.keySet())) {
            if (!v.vms().containsKey(name) && inFlight.add(name)) {
                log.info("VM {}: its cluster definition was deleted; stopping it here", name);
                drop(name, v);
            }
        }
    }

    private Parsed parse(String name, ClusterView.Entry e) {
        String file = e.field("file");
        String yaml = e.field("yaml");
        if (file == null || yaml == null) {
            return new Parsed(e.modRevision(), null, "the value of " + e.key() + " is not {\"file\", \"yaml\"}");
        }
        LoadResult r = io.qsup.config.ConfigLoader.loadTexts(Map.of(Path.of(file), yaml), settings, hostFacts);
        if (!r.ok()) {
            return new Parsed(e.modRevision(), null, String.join("; ", r.errors().stream().map(ConfigError::format)
                    .toList()));
        }
        VmDefinition d = r.vms().get(name);
        if (d == null) {
            return new Parsed(e.modRevision(), null, "the definition names another VM than " + name);
        }
        return new Parsed(e.modRevision(), d, null);
    }

    /**
     * Registers every cluster VM on every host as soon as its definition appears, so that a failover finds it ready:
     * registration adopts a QEMU left running by an earlier qsupd, and that check must come before any claim decision.
     * The VM counts as held once the check is done.
     */
    private void register(VmDefinition d) {
        if (supervisor.get(d.name()).isPresent()) {
            if (!supervisor.isCluster(d.name())) {
                log.error("VM {}: a local definition of host {} has this cluster VM's name; the cluster VM cannot run"
                        + " here: rename one of them", d.name(), cluster.host());
            }
            return;
        }
        try {
            supervisor.addCluster(d).whenComplete((o, e) -> {
                if (e != null) {
                    log.error("VM {}: adoption check failed: {}", d.name(), e.toString());
                }
                held.putIfAbsent(d.name(), -1L);
            });
        } catch (SupervisorException e) {
            log.error("{}", e.getMessage());
        }
    }

    private boolean runsHere(String name) {
        return held.containsKey(name) && supervisor.get(name).map(s -> s.state().hasProcess()).orElse(false);
    }

    private void hostDuties(ClusterView v, VmDefinition d, long id) {
        String name = d.name();
        String me = cluster.host();
        ClusterView.Entry claim = v.claims().get(name);
        boolean wanted = wanted(v, d);
        if (!held.containsKey(name)) {
            return; // registering (its adoption check runs), or a local VM has the name
        }
        boolean running = runsHere(name);
        if (claim != null && claim.lease() == id && id != 0) {
            boolean stays = wanted && me.equals(v.placedOn(name));
            if (!stays) {
                if (inFlight.add(name)) {
                    release(name, v, running);
                }
                return;
            }
            long intentRev = v.intentRevision(name);
            if (!running && held.getOrDefault(name, -1L) != intentRev && inFlight.add(name)) {
                held.put(name, intentRev);
                start(name, "claim held; intent revision " + intentRev);
            }
            return;
        }
        if (running && migrations.protects(v, name)) {
            return; // a move to or from this host is under way: the migration's steps own both QEMUs
        }
        if (claim == null) {
            if (running && d.failover()) {
                log.error("VM {}: runs here without a claim of this host; killing it, another host may start it",
                        name);
                supervisor.fence(name, "running without this host's claim");
                return;
            }
            if (id != 0 && me.equals(v.placedOn(name)) && (wanted || running) && inFlight.add(name)) {
                if (claim(name, v.placements().get(name), id)) {
                    won.put(name, id);
                    held.put(name, v.intentRevision(name));
                    if (!running && wanted) {
                        start(name, "placed here by the leader");
                        return;
                    }
                }
                inFlight.remove(name);
            }
            return;
        }
        if (running && !(me.equals(claim.field("host")) && claim.lease() == id)) {
            if (me.equals(claim.field("host")) && !d.failover()) {
                return; // our claim of an earlier lease: it lapses and this host claims again; the VM keeps running
            }
            if (me.equals(claim.field("host"))) {
                return; // a claim of this host's given-up lease: fencing already killed it, or the claim expires
            }
            log.error("VM {}: host {} holds its claim, yet it runs here; killing this copy", name, claim.field("host"));
            supervisor.fence(name, "host " + claim.field("host") + " holds the claim");
        }
    }

    /** Whether the VM should run somewhere: its intent, or its autostart when no intent was written. */
    private static boolean wanted(ClusterView v, VmDefinition d) {
        Boolean i = v.intent(d.name());
        return i != null ? i : d.autostart();
    }

    private boolean claim(String name, ClusterView.Entry placement, long id) {
        try {
            boolean won = Claims.tryClaim(kv, name, cluster.host(), id, placement.modRevision(), CALL);
            log.info(won ? "VM {}: claim won by {}" : "VM {}: claim not won by {}: another host holds it, or the"
                    + " placement moved", name, cluster.host());
            return won;
        } catch (Exception e) {
            log.warn("VM {}: claim failed: {}", name, e.toString());
            return false;
        }
    }

    private void start(String name, String detail) {
        try {
            supervisor.startClaimed(name, detail).whenComplete((s, e) -> inFlight.remove(name));
        } catch (SupervisorException e) {
            inFlight.remove(name);
            log.error("{}", e.getMessage());
        }
    }

    /** Stops the VM here if it runs, then deletes the claim: only once QEMU is gone. */
    private void release(String name, ClusterView v, boolean running) {
        CompletableFuture<?> stopped = CompletableFuture.completedFuture(null);
        if (running) {
            try {
                stopped = supervisor.stopCluster(name, false, null, Cause.OPERATOR_STOP, "cluster intent or placement");
            } catch (SupervisorException e) {
                log.error("{}", e.getMessage());
            }
        }
        stopped.whenComplete((r, e) -> {
            try {
                if (!runsHere(name)) {
                    deleteClaim(name);
                }
            } finally {
                inFlight.remove(name);
            }
        });
    }

    /** The definition is gone: stop the VM, drop it from the supervisor, then the claim. */
    private void drop(String name, ClusterView v) {
        CompletableFuture<?> gone;
        try {
            gone = supervisor.removeCluster(name);
        } catch (SupervisorException e) {
            gone = CompletableFuture.completedFuture(null);
        }
        gone.whenComplete((r, e) -> {
            held.remove(name);
            deleteClaim(name);
            inFlight.remove(name);
        });
    }

    private void deleteClaim(String name) {
        won.remove(name);
        long id = currentLeaseOrAny();
        ByteSequence key = EtcdKeys.bytes(EtcdKeys.running(name));
        try {
            // only our own claim, as last read: a claim a migration rewrote for its target (same key, same create
            // revision) has a newer mod revision, and stays
            ClusterView v = view;
            ClusterView.Entry c = v == null ? null : v.claims().get(name);
            if (c != null && cluster.host().equals(c.field("host"))) {
                kv.txn().If(new Cmp(key, Cmp.Op.EQUAL, CmpTarget.modRevision(c.modRevision())))
                        .Then(Op.delete(key, DeleteOption.DEFAULT)).commit().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                log.info("VM {}: claim released by {} (lease {})", name, cluster.host(), Long.toHexString(id));
            }
        } catch (Exception e) {
            log.warn("VM {}: releasing the claim failed: {}; it lapses with the lease", name, e.toString());
        }
    }

    private long currentLeaseOrAny() {
        return lease.validId();
    }

    private void publishStatus(ClusterView v, long id) {
        if (id == 0) {
            return;
        }
        for (String name : held.keySet()) {
            ClusterView.Entry claim = v.claims().get(name);
            ClusterView.Entry had = v.statuses().get(name);
            boolean ours = claim != null && claim.lease() == id;
            // a status this host wrote under a claim it no longer holds (fenced, released): say the VM is down here
            boolean stale = !ours && had != null && cluster.host().equals(had.field("host"))
                    && !"stopped".equals(had.field("state")) && !"host-lost".equals(had.field("state"))
                    && !runsHere(name);
            if (!ours && !stale) {
                continue;
            }
            Optional<VmSnapshot> s = supervisor.get(name);
            if (s.isEmpty()) {
                continue;
            }
            String[] c = lastCause.getOrDefault(name, new String[] {"", ""});
            ObjectNode st = NODES.objectNode().put("host", cluster.host()).put("state", s.get().state().label())
                    .put("cause", c[0]).put("detail", c[1]);
            if (stale) {
                st.put("state", "stopped");
            }
            String text = st.toString();
            if (text.equals(written.get(name)) && had != null && text.equals(had.text())) {
                continue;
            }
            if (put(EtcdKeys.status(name), text, 0)) {
                written.put(name, text);
            }
        }
    }

    // ---- the leader ----

    private void leaderDuties(ClusterView v, LeaderKey leader) {
        Map<String, Map<String, PlacementPlanner.Demand>> byHost = new TreeMap<>();
        Map<String, PlacementPlanner.Demand> demands = new TreeMap<>();
        for (String name : v.vms().keySet()) {
            Parsed p = defs.get(name);
            if (p == null || p.def() == null) {
                continue;
            }
            PlacementPlanner.Demand d = new PlacementPlanner.Demand(name, p.def().memoryBytes(),
                    p.def().cpus().count(), p.def().placement());
            demands.put(name, d);
            String on = v.claimedBy(name) != null ? v.claimedBy(name) : v.placedOn(name);
            if (on != null && wanted(v, p.def())) {
                byHost.computeIfAbsent(on, k -> new TreeMap<>()).put(name, d);
            }
            Migration m = v.migration(name);
            if (m != null && !m.ended() && v.hosts().containsKey(m.to())) {
                byHost.computeIfAbsent(m.to(), k -> new TreeMap<>()).put(name, d); // the room a move takes there
            }
        }
        for (Map.Entry<String, PlacementPlanner.Demand> e : demands.entrySet()) {
            String name = e.getKey();
            VmDefinition def = defs.get(name).def();
            if (!wanted(v, def) || v.claims().containsKey(name)) {
                continue;
            }
            String placed = v.placedOn(name);
            if (placed != null && v.hosts().containsKey(placed) && def.placement().allows(placed)
                    && !v.isDrained(placed)) {
                continue; // the host claims it on its next tick
            }
            if (placed != null && !v.hosts().containsKey(placed) && !def.failover()) {
                markHostLost(v, name, placed, leader);
                continue;
            }
            if (placed != null) {
                Map<String, PlacementPlanner.Demand> there = byHost.get(placed);
                if (there != null) {
                    there.remove(name);
                }
            }
            List<PlacementPlanner.HostLoad> loads = new ArrayList<>();
            for (Map.Entry<String, ClusterView.Entry> h : v.hosts().entrySet()) {
                JsonNode j = h.getValue().json();
                if (j == null || v.isDrained(h.getKey()) || !v.candidates().contains(h.getKey())) {
                    continue; // drained; or its qsupd stopped or died (no key in the election), though registered
                }
                loads.add(PlacementPlanner.load(h.getKey(), j.path("memory").asLong(), j.path("cpus").asInt(),
                        byHost.getOrDefault(h.getKey(), Map.of())));
            }
            Optional<String> to = PlacementPlanner.choose(e.getValue(), loads);
            if (to.isEmpty()) {
                String why = loads.isEmpty() && !v.hosts().isEmpty()
                        ? "every live host is drained; 'qsup drain --undo HOST' lifts it"
                        : PlacementPlanner.whyNot(e.getValue(), loads);
                writeStatusGuarded(v, name, NODES.objectNode().putNull("host").put("state", "unplaced")
                        .put("cause", "").put("detail", why), leader);
                continue;
            }
            if (place(name, to.get(), leader)) {
                log.info("VM {}: placed on {} by leader {}{}", name, to.get(), cluster.host(),
                        placed == null ? "" : " (was on " + placed + ", whose claim is gone)");
                byHost.computeIfAbsent(to.get(), k -> new TreeMap<>()).put(name, e.getValue());
            }
        }
        for (String name : v.placements().keySet()) {
            if (!v.vms().containsKey(name) && !v.claims().containsKey(name)) {
                guarded(leader, Op.delete(EtcdKeys.bytes(EtcdKeys.placement(name)), DeleteOption.DEFAULT),
                        Op.delete(EtcdKeys.bytes(EtcdKeys.intent(name)), DeleteOption.DEFAULT),
                        Op.delete(EtcdKeys.bytes(EtcdKeys.status(name)), DeleteOption.DEFAULT));
            }
        }
    }

    private void markHostLost(ClusterView v, String name, String host, LeaderKey leader) {
        ClusterView.Entry st = v.statuses().get(name);
        if (st != null && "host-lost".equals(st.field("state"))) {
            return;
        }
        log.warn("VM {}: its host {} lost its lease; failover: false, so it is not moved", name, host);
        writeStatusGuarded(v, name, NODES.objectNode().put("host", host).put("state", "host-lost")
                .put("cause", Cause.HOST_LOST.label()).put("detail", "host " + host + " lost its etcd lease"), leader);
    }

    private void writeStatusGuarded(ClusterView v, String name, ObjectNode status, LeaderKey leader) {
        ClusterView.Entry had = v.statuses().get(name);
        if (had != null && status.toString().equals(had.text())) {
            return;
        }
        guarded(leader, Op.put(EtcdKeys.bytes(EtcdKeys.status(name)), EtcdKeys.bytes(status.toString()),
                PutOption.DEFAULT));
    }

    /** Writes the placement, only while this host's election key is the one it won and the VM has no claim. */
    private boolean place(String name, String host, LeaderKey leader) {
        ByteSequence running = EtcdKeys.bytes(EtcdKeys.running(name));
        try {
            return kv.txn()
                    .If(new Cmp(leader.getKey(), Cmp.Op.EQUAL, CmpTarget.createRevision(leader.getRevision())),
                            new Cmp(running, Cmp.Op.EQUAL, CmpTarget.version(0)))
                    .Then(Op.put(EtcdKeys.bytes(EtcdKeys.placement(name)),
                            EtcdKeys.bytes(NODES.objectNode().put("host", host).toString()), PutOption.DEFAULT))
                    .commit().get(CALL.toMillis(), TimeUnit.MILLISECONDS).isSucceeded();
        } catch (Exception e) {
            log.warn("VM {}: placement write failed: {}", name, e.toString());
            return false;
        }
    }

    private boolean guarded(LeaderKey leader, Op... ops) {
        try {
            return kv.txn().If(new Cmp(leader.getKey(), Cmp.Op.EQUAL, CmpTarget.createRevision(leader.getRevision())))
                    .Then(ops).commit().get(CALL.toMillis(), TimeUnit.MILLISECONDS).isSucceeded();
        } catch (Exception e) {
            log.warn("cluster: leader write failed: {}", e.toString());
            return false;
        }
    }

    private boolean put(String key, String value, long leaseId) {
        try {
            PutOption o = leaseId == 0 ? PutOption.DEFAULT : PutOption.builder().withLeaseId(leaseId).build();
            kv.put(EtcdKeys.bytes(key), EtcdKeys.bytes(value), o).get(CALL.toMillis(), TimeUnit.MILLISECONDS);
            return true;
        } catch (Exception e) {
            log.warn("cluster: cannot write {}: {}", key, e.toString());
            return false;
        }
    }

    // ---- ClusterPort: what the control socket asks ----

    @Override
    public String host() {
        return cluster.host();
    }

    @Override
    public boolean isClusterVm(String name) {
        ClusterView v = view;
        return (v != null && v.vms().containsKey(name)) || held.containsKey(name);
    }

    @Override
    public JsonNode apply(Map<String, String> definitions) throws ControlException {
        Map<Path, String> texts = new TreeMap<>();
        definitions.forEach((f, y) -> texts.put(Path.of(f), y));
        LoadResult r = io.qsup.config.ConfigLoader.loadTexts(texts, settings, hostFacts);
        List<String> problems = new ArrayList<>();
        r.errors().forEach(e -> problems.add(e.format()));
        for (VmDefinition d : r.vms().values()) {
            if (supervisor.get(d.name()).isPresent() && !supervisor.isCluster(d.name())) {
                problems.add(d.sourceFile() + ": name: a local VM of host " + cluster.host() + " is named '"
                        + d.name() + "'; rename one of them");
            }
        }
        if (!problems.isEmpty()) {
            throw ControlException.generic("nothing applied; " + problems.size() + " problem(s):\n"
                    + String.join("\n", problems));
        }
        ClusterView v = view;
        List<Op> ops = new ArrayList<>();
        ArrayNode applied = NODES.arrayNode();
        ArrayNode unchanged = NODES.arrayNode();
        for (VmDefinition d : r.vms().values()) {
            String text = NODES.objectNode().put("file", d.sourceFile().toString())
                    .put("yaml", texts.get(d.sourceFile())).toString();
            ClusterView.Entry had = v == null ? null : v.vms().get(d.name());
            if (had != null && text.equals(had.text())) {
                unchanged.add(d.name());
                continue;
            }
            applied.add(d.name());
            ops.add(Op.put(EtcdKeys.bytes(EtcdKeys.vm(d.name())), EtcdKeys.bytes(text), PutOption.DEFAULT));
        }
        if (!ops.isEmpty()) {
            try {
                TxnResponse t = kv.txn().Then(ops.toArray(Op[]::new)).commit().get(CALL.toMillis() * 2,
                        TimeUnit.MILLISECONDS);
                if (!t.isSucceeded()) {
                    throw ControlException.generic("etcd refused the transaction; nothing applied");
                }
            } catch (ControlException e) {
                throw e;
            } catch (Exception e) {
                throw ControlException.generic("cannot write to etcd " + cluster.etcd() + ": " + e
                        + "; nothing applied (check that etcd has quorum)");
            }
        }
        ObjectNode o = NODES.objectNode();
        o.set("applied", applied);
        o.set("unchanged", unchanged);
        return o;
    }

    @Override
    public JsonNode delete(String name) throws ControlException {
        ByteSequence key = EtcdKeys.bytes(EtcdKeys.vm(name));
        try {
            TxnResponse t = kv.txn().If(new Cmp(key, Cmp.Op.GREATER, CmpTarget.version(0)))
                    .Then(Op.delete(key, DeleteOption.DEFAULT),
                            Op.delete(EtcdKeys.bytes(EtcdKeys.intent(name)), DeleteOption.DEFAULT))
                    .commit().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
            if (!t.isSucceeded()) {
                throw new ControlException(ControlException.VM_NOT_FOUND, "no cluster VM named '" + name
                        + "'; 'qsup list' shows the cluster's VMs");
            }
        } catch (ControlException e) {
            throw e;
        } catch (Exception e) {
            throw ControlException.generic("cannot write to etcd: " + e + "; nothing deleted");
        }
        return NODES.objectNode().put("name", name).put("deleted", true);
    }

    @Override
    public JsonNode hosts() throws ControlException {
        ClusterView v = fresh();
        ArrayNode out = NODES.arrayNode();
        Map<String, long[]> used = new TreeMap<>();
        for (String name : v.vms().keySet()) {
            String on = v.claimedBy(name) != null ? v.claimedBy(name) : v.placedOn(name);
            Parsed p = defs.get(name);
            if (on != null && p != null && p.def() != null) {
                long[] u = used.computeIfAbsent(on, k -> new long[2]);
                u[0] += p.def().memoryBytes();
                u[1] += p.def().cpus().count();
            }
        }
        for (Map.Entry<String, ClusterView.Entry> h : v.hosts().entrySet()) {
            JsonNode j = h.getValue().json();
            long[] u = used.getOrDefault(h.getKey(), new long[2]);
            ObjectNode o = out.addObject().put("name", h.getKey())
                    .put("address", j == null ? "" : j.path("address").asText())
                    .put("memory", j == null ? 0 : j.path("memory").asLong())
                    .put("cpus", j == null ? 0 : j.path("cpus").asInt())
                    .put("used-memory", u[0]).put("used-cpus", (int) u[1])
                    .put("version", j == null ? "" : j.path("version").asText())
                    .put("leader", h.getKey().equals(v.leader())).put("alive", true)
                    .put("drained", v.isDrained(h.getKey()))
                    .put("qsupd", v.candidates().contains(h.getKey()) ? "running" : "stopped");
            o.put("vms", (int) v.claims().values().stream().filter(c -> h.getKey().equals(c.field("host"))).count());
        }
        return out;
    }

    private ClusterView fresh() throws ControlException {
        try {
            GetResponse r = kv.get(EtcdKeys.bytes(EtcdKeys.PREFIX), GetOption.builder().isPrefix(true).build())
                    .get(CALL.toMillis(), TimeUnit.MILLISECONDS);
            return ClusterView.of(r.getHeader().getRevision(), r.getKvs());
        } catch (Exception e) {
            ClusterView v = view;
            if (v == null) {
                throw ControlException.generic("cannot read etcd " + cluster.etcd() + ": " + e);
            }
            return v;
        }
    }

    @Override
    public List<ObjectNode> remoteVms(List<ObjectNode> local) {
        ClusterView v = view;
        for (ObjectNode o : local) {
            o.put("host", cluster.host());
            o.put("cluster", held.containsKey(o.path("name").asText()));
        }
        List<ObjectNode> out = new ArrayList<>();
        if (v == null) {
            return out;
        }
        for (String name : v.vms().keySet()) {
            boolean listed = local.stream().anyMatch(o -> name.equals(o.path("name").asText()));
            if (listed && !supervisor.isCluster(name)) {
                continue; // a local VM has this name: it is listed, and the clash is logged at registration
            }
            String host = v.claimedBy(name) != null ? v.claimedBy(name) : v.placedOn(name);
            if (runsHere(name) || (listed && cluster.host().equals(host))) {
                continue; // the VM is this host's: its own record is the true one
            }
            // Every host registers every cluster VM, so a local record of one that is neither running nor claimed or
            // placed here says only "not here"; the cluster's record says where it is, or that it is unplaced.
            ObjectNode o = NODES.objectNode().put("name", name);
            ClusterView.Entry st = v.statuses().get(name);
            String state = st != null && st.field("state") != null ? st.field("state") : "stopped";
            if (v.claimedBy(name) == null && !"host-lost".equals(state) && !("unplaced".equals(state) && host == null)) {
                state = Boolean.FALSE.equals(v.intent(name)) || host == null ? "stopped" : "starting";
            }
            o.put("state", state);
            if (host == null) {
                o.putNull("host");
            } else {
                o.put("host", host);
            }
            o.put("cluster", true);
            Boolean i = v.intent(name);
            if (i == null) {
                o.putNull("intent");
            } else {
                o.put("intent", i ? "started" : "stopped");
            }
            if (st != null && st.field("cause") != null && !st.field("cause").isEmpty()) {
                o.putObject("last-exit-cause").put("cause", st.field("cause")).put("detail", st.field("detail"));
            } else {
                o.putNull("last-exit-cause");
            }
            o.putNull("pid");
            o.putNull("uptime-seconds");
            if (listed) {
                // registered here but not running: the cluster's view is the one to show
                local.removeIf(l -> name.equals(l.path("name").asText()));
            }
            out.add(o);
        }
        return out;
    }

    @Override
    public JsonNode setIntent(String name, boolean started, boolean wait, Duration timeout) throws ControlException {
        ClusterView v = fresh();
        if (!v.vms().containsKey(name)) {
            throw new ControlException(ControlException.VM_NOT_FOUND, "no VM named '" + name
                    + "'; 'qsup list' shows the known VMs");
        }
        if (!put(EtcdKeys.intent(name), NODES.objectNode().put("intent", started ? "started" : "stopped").toString(),
                0)) {
            throw ControlException.generic("cannot write the intent of " + name + " to etcd " + cluster.etcd()
                    + "; nothing changed (check that etcd has quorum)");
        }
        ObjectNode o = NODES.objectNode().put("name", name);
        long deadline = System.nanoTime() + (timeout == null ? Duration.ofMinutes(2) : timeout).toNanos();
        while (true) {
            ClusterView now = fresh();
            ClusterView.Entry st = now.statuses().get(name);
            String state = st == null ? null : st.field("state");
            String host = now.claimedBy(name);
            boolean done = started ? host != null && "running".equals(state)
                    : host == null || "stopped".equals(state);
            if (!wait || done) {
                o.put("state", done ? (started ? "running" : "stopped") : state == null ? "stopped" : state);
                if (host == null) {
                    o.putNull("host");
                } else {
                    o.put("host", host);
                }
                if (!wait) {
                    o.put("requested", true);
                }
                return o;
            }
            if (System.nanoTime() > deadline) {
                throw new ControlException(ControlException.TIMEOUT, name + ": intent " + (started ? "started"
                        : "stopped") + " written, but the VM did not get there in time (now " + state + " on "
                        + host + "); 'qsup list' shows where it is");
            }
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw ControlException.generic("interrupted");
            }
        }
    }

    @Override
    public JsonNode migrate(String name, String to, boolean wait, Duration timeout, long bandwidth)
            throws ControlException {
        return moves.migrate(name, to, wait, timeout, bandwidth);
    }

    @Override
    public JsonNode drain(String host, boolean undo, Duration timeout) throws ControlException {
        return moves.drain(host, undo, timeout);
    }

    @Override
    public void close() {
        closed = true;
        ticker.interrupt();
        lease.close();
        leadership.close();
        client.close();
    }
}
