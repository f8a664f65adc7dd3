package io.qsup.cluster;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.KV;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.PutOption;
import io.qsup.config.ClusterSettings;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.VmSnapshot;
import io.qsup.vm.LiveMigration;
import io.qsup.vm.VmState;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This host's part in the planned moves of cluster VMs ({@link Migration}): as the target, it starts the incoming
 * QEMU and publishes where it listens, then runs the VM once the claim is its own; as the source, it sends the VM,
 * moves the claim to the target in one transaction, and quits its paused QEMU once the target runs the VM.
 *
 * <p>The order keeps one QEMU at most running the guest: the target runs it ({@code cont}) only while etcd says this
 * host holds the claim, which the source moved only after its own QEMU stopped for good ({@code postmigrate}); the
 * source resumes only while the claim is still (or again) its own, so the target never ran it: a failed hand-over
 * transaction left the claim where it was, and a target whose {@code cont} failed kills its QEMU before it gives the
 * claim back. Any failure leaves the VM running at the source and the key {@code failed} with the reason.
 *
 * <p>Threads: {@link #tick} runs on {@code cluster-tick} and only starts steps; each step runs on a virtual thread
 * {@code migration NAME} of its own, one at a time per VM ({@code busy}), and blocks on etcd and on the VM's
 * controller, never on the tick. {@code busy}, {@code done} and {@code seen} are concurrent.
 */
final class MigrationDriver {
    private static final Logger log = LoggerFactory.getLogger(MigrationDriver.class);
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    /** How long a request may wait for the target's incoming QEMU before the source gives it up. */
    static final Duration TARGET_START = Duration.ofSeconds(60);
    private static final Duration FINISH = Duration.ofSeconds(30);

    private final ClusterSettings cluster;
    private final Supervisor supervisor;
    private final KV kv;
    private final Duration call;
    /** The agent's claims won, fresher than the view: the target adds its claim before it runs the VM. */
    private final Map<String, Long> won;
    /** The agent's held VMs, with the intent revision last acted on. */
    private final Map<String, Long> held;
    /** VMs with a step under way here. */
    private final Set<String> busy = ConcurrentHashMap.newKeySet();
    /** Steps done here, as "id step", so a tick does not start one twice. */
    private final Set<String> done = ConcurrentHashMap.newKeySet();
    /** When this host first saw each request (monotonic), for the source's bound on the target's start. */
    private final Map<String, Long> seen = new ConcurrentHashMap<>();

    MigrationDriver(ClusterSettings cluster, Supervisor supervisor, KV kv, Duration call, Map<String, Long> won,
            Map<String, Long> held) {
        this.cluster = cluster;
        this.supervisor = supervisor;
        this.kv = kv;
        this.call = call;
        this.won = won;
        this.held = held;
    }

    /**
     * Whether the claim logic must leave this VM's QEMU here alone: a move to or from this host is under way, or has
     * just ended and this host has its last step to take (quit the sent source, resume it after a failed hand-over).
     */
    boolean protects(ClusterView v, String vm) {
        Migration m = v.migration(vm);
        String me = cluster.host();
        if (m == null || !(me.equals(m.from()) || me.equals(m.to()))) {
            return false;
        }
        if (!m.ended()) {
            return true;
        }
        VmState s = state(vm);
        // the source's last step (quit, or resume), or the target's (quit its QEMU), is still to come
        return me.equals(m.from())
                ? s == VmState.MIGRATING || s == VmState.PAUSED && done.contains(m.id() + " adopted-out")
                : s == VmState.INCOMING || s == VmState.STARTING;
    }

    void tick(ClusterView v, long lease) {
        if (lease == 0) {
            return;
        }
        String me = cluster.host();
        for (Map.Entry<String, ClusterView.Entry> e : v.migrations().entrySet()) {
            String vm = e.getKey();
            Migration m = Migration.of(e.getValue());
            if (!held.containsKey(vm) || busy.contains(vm)) {
                continue;
            }
            if (me.equals(m.to())) {
                target(v, vm, m, lease);
            } else if (me.equals(m.from())) {
                source(v, vm, m, lease);
            }
        }
        // a target QEMU whose migration is gone (the source's lease, and the key with it, ended): nothing will come
        for (String vm : List.copyOf(held.keySet())) {
            Migration m = v.migration(vm);
            if (state(vm) == VmState.INCOMING && !busy.contains(vm) && (m == null || !me.equals(m.to()))) {
                step(vm, () -> abort(vm, "its migration request is gone (the source host left the cluster)"));
            }
        }
    }

    // ---- the target ----

    private void target(ClusterView v, String vm, Migration m, long lease) {
        VmState s = state(vm);
        ClusterView.Entry claim = v.claims().get(vm);
        boolean mine = claim != null && claim.lease() == lease;
        switch (m.state()) {
            case REQUESTED -> {
                if (once(m, "incoming")) {
                    step(vm, () -> startIncoming(vm, m));
                }
            }
            case LISTENING, HANDED_OVER -> {
                boolean ours = done.contains(m.id() + " incoming"); // this qsupd started the target QEMU
                if (mine && s == VmState.INCOMING && once(m, "take-over")) {
                    step(vm, () -> takeOver(v, vm, m, claim, lease));
                } else if (!ours && (s == VmState.PAUSED || s == VmState.RUNNING) && once(m, "adopted")) {
                    // this qsupd restarted during the move and adopted the target QEMU an earlier one started
                    step(vm, () -> adoptedTarget(v, vm, m, mine, s, lease));
                }
            }
            case FAILED -> {
                if (s == VmState.INCOMING) {
                    step(vm, () -> abort(vm, m.reason()));
                }
            }
            case COMPLETED -> { }
        }
    }

    private void startIncoming(String vm, Migration m) {
        if (state(vm) == VmState.INCOMING) {
            abort(vm, "superseded by migration " + m.id()); // a target of an earlier, failed request
        }
        VmState s = state(vm);
        if (s == VmState.PAUSED && "inmigrate".equals(qemuStatus(vm))) {
            // an earlier qsupd of this host started a target for this move and died before it said where it listens:
            // adopted, it waits for a VM that nobody will send, and it never ran; a new target replaces it
            log.info("VM {}: quitting the migration target an earlier qsupd of this host left (it never ran)", vm);
            try {
                supervisor.stopCluster(vm, true, Duration.ofSeconds(10), io.qsup.vm.Cause.MIGRATION_FAILED,
                        "a migration target an earlier qsupd left").get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                log.warn("VM {}: quitting the leftover migration target failed: {}", vm, why(e));
            }
            s = state(vm);
        }
        if (s != VmState.STOPPED && s != VmState.FAILED) {
            fail(m, "host " + cluster.host() + " has a QEMU of " + vm + " already (" + s + "); stop it there first");
            return;
        }
        LiveMigration.Incoming in;
        try {
            in = supervisor.startIncoming(vm, cluster.address(), "from host " + m.from())
                    .get(TARGET_START.toSeconds(), TimeUnit.SECONDS);
        } catch (Exception e) {
            fail(m, "host " + cluster.host() + " could not start the migration target: " + why(e));
            return;
        }
        ObjectNode next = m.with(Migration.State.LISTENING).put("uri", in.uri());
        if (!guardedPut(m, next)) {
            abort(vm, "the migration changed while the target started (" + current(vm) + ")");
        }
    }

    /** This host holds the claim now: run the VM, or, if that fails, kill the target and give the claim back. */
    private void takeOver(ClusterView v, String vm, Migration m, ClusterView.Entry claim, long lease) {
        won.put(vm, lease);
        held.put(vm, v.intentRevision(vm));
        try {
            supervisor.finishIncoming(vm, FINISH).get(FINISH.toSeconds() + 30, TimeUnit.SECONDS);
        } catch (Exception e) {
            String why = "host " + cluster.host() + " could not run the migrated VM: " + why(e);
            won.remove(vm);
            if (state(vm).hasProcess()) {
                log.error("VM {}: {}; its target QEMU still lives, so the claim stays here", vm, why);
                return;
            }
            giveBack(vm, m, claim, why);
            return;
        }
        Migration now = current(vm);
        VmState after = state(vm);
        if (after != VmState.RUNNING) {
            // it ran here, so the source's copy is out of date: the source quits it; the VM is this host's now
            String why = "host " + cluster.host() + " ran the VM, then its QEMU ended at once (" + after + ", "
                    + supervisor.get(vm).map(x -> String.valueOf(x.lastExit())).orElse("?") + ")";
            log.error("VM {}: {}", vm, why);
            if (now != null && now.id().equals(m.id())) {
                guardedPut(now, now.failed(why));
            }
            return;
        }
        log.info("VM {}: migrated from host {}: runs here now", vm, m.from());
        if (now != null && now.id().equals(m.id())) {
            guardedPut(now, now.with(Migration.State.COMPLETED).put("completed-at-ms", System.currentTimeMillis()));
        }
    }

    /**
     * The target QEMU of this move was started by an earlier qsupd of this host, and adopted. Before the hand-over it
     * is given up (the move fails; the source runs on, and the claim logic quits the paused leftover, which never
     * ran). After it (the claim is this host's, and the source is paused for good), this host finishes the move:
     * it runs the VM if the earlier qsupd had not yet.
     */
    private void adoptedTarget(ClusterView v, String vm, Migration m, boolean mine, VmState s, long lease) {
        if (!mine) {
            fail(m, "qsupd of host " + cluster.host() + " restarted during the migration; its target QEMU is given"
                    + " up");
            return;
        }
        won.put(vm, lease);
        held.put(vm, v.intentRevision(vm));
        if (s == VmState.PAUSED) {
            try {
                supervisor.resume(vm).get(FINISH.toSeconds(), TimeUnit.SECONDS);
                log.info("VM {}: migrated from host {}: the adopted target QEMU runs the VM now", vm, m.from());
            } catch (Exception e) {
                log.error("VM {}: the adopted migration target does not run: {}", vm, why(e));
                return;
            }
        }
        Migration now = current(vm);
        if (now != null && now.id().equals(m.id())) {
            guardedPut(now, now.with(Migration.State.COMPLETED).put("completed-at-ms", System.currentTimeMillis()));
        }
    }

    /** The target's QEMU is gone and never ran: the claim and the placement go back to the source, still paused. */
    private void giveBack(String vm, Migration m, ClusterView.Entry claim, String why) {
        Migration now = current(vm);
        if (now == null || !now.id().equals(m.id())) {
            log.error("VM {}: {}; and the migration key is gone, so the claim cannot go back to {}", vm, why,
                    m.from());
            return;
        }
        ByteSequence running = EtcdKeys.bytes(EtcdKeys.running(vm));
        PutOption underSource = PutOption.builder().withLeaseId(now.entry().lease()).build();
        try {
            boolean ok = kv.txn()
                    .If(new Cmp(running, Cmp.Op.EQUAL, CmpTarget.modRevision(claim.modRevision())),
                            new Cmp(key(vm), Cmp.Op.EQUAL, CmpTarget.modRevision(now.entry().modRevision())))
                    .Then(Op.put(running, EtcdKeys.bytes(claimValue(m.from())), underSource),
                            Op.put(EtcdKeys.bytes(EtcdKeys.placement(vm)), EtcdKeys.bytes(placementValue(m.from())),
                                    PutOption.DEFAULT),
                            Op.put(key(vm), EtcdKeys.bytes(now.failed(why + "; the VM runs on at host " + m.from())
                                    .toString()), underSource))
                    .commit().get(call.toMillis(), TimeUnit.MILLISECONDS).isSucceeded();
            log.warn("VM {}: {}; claim {} to host {}", vm, why, ok ? "given back" : "not given back (changed)",
                    m.from());
        } catch (Exception e) {
            log.error("VM {}: {}; giving the claim back to {} failed: {}", vm, why, m.from(), e.toString());
        }
    }

    private void abort(String vm, String reason) {
        try {
            supervisor.abortIncoming(vm, reason).get(call.toSeconds() + 15, TimeUnit.SECONDS);
            log.info("VM {}: migration target given up: {}", vm, reason);
        } catch (Exception e) {
            log.error("VM {}: giving up the migration target failed: {}", vm, why(e));
        }
    }

    // ---- the source ----

    private void source(ClusterView v, String vm, Migration m, long lease) {
        VmState s = state(vm);
        ClusterView.Entry claim = v.claims().get(vm);
        boolean mine = claim != null && claim.lease() == lease;
        switch (m.state()) {
            case REQUESTED -> {
                long first = seen.computeIfAbsent(m.id(), k -> System.nanoTime());
                if (!v.hosts().containsKey(m.to())) {
                    step(vm, () -> fail(m, "host " + m.to() + " left the cluster before it started the target"));
                } else if (System.nanoTime() - first > TARGET_START.plusSeconds(15).toNanos()) {
                    step(vm, () -> fail(m, "host " + m.to() + " did not start the migration target within "
                            + TARGET_START.plusSeconds(15).toSeconds() + " s; see its qsupd log"));
                }
            }
            case LISTENING -> {
                if (!v.hosts().containsKey(m.to())) {
                    step(vm, () -> fail(m, "host " + m.to() + " left the cluster"));
                } else if (s == VmState.PAUSED && mine && !done.contains(m.id() + " send")
                        && once(m, "adopted-out")) {
                    ClusterView.Entry to = v.hosts().get(m.to());
                    long intentRev = v.intentRevision(vm);
                    step(vm, () -> adoptedSource(vm, m, claim, to, intentRev));
                } else if (once(m, "send")) {
                    if (!mine || s != VmState.RUNNING) {
                        step(vm, () -> fail(m, vm + " is " + s + (mine ? "" : " and this host lost its claim")
                                + " on host " + cluster.host() + "; only a running VM is migrated"));
                    } else {
                        ClusterView.Entry to = v.hosts().get(m.to());
                        long intentRev = v.intentRevision(vm);
                        step(vm, () -> send(vm, m, claim, to, intentRev));
                    }
                }
            }
            case HANDED_OVER -> {
                if (s == VmState.MIGRATING && !v.hosts().containsKey(m.to()) && once(m, "target-lost")) {
                    // it may have run the VM before it died: this paused copy is out of date, never to be resumed
                    step(vm, () -> {
                        finishOut(vm);
                        fail(m, "host " + m.to() + " was lost after the hand-over; the VM is treated as lost with"
                                + " that host");
                    });
                }
            }
            case COMPLETED -> {
                if (s == VmState.PAUSED && done.contains(m.id() + " adopted-out") && once(m, "finish-out")) {
                    step(vm, () -> {
                        try {
                            supervisor.stopCluster(vm, true, Duration.ofSeconds(10), io.qsup.vm.Cause.MIGRATED,
                                    "the VM runs on at host " + m.to()).get(30, TimeUnit.SECONDS);
                        } catch (Exception e) {
                            log.error("VM {}: quitting the adopted migrated source failed: {}", vm, why(e));
                        }
                        Migration now = current(vm);
                        if (now != null && now.id().equals(m.id()) && !state(vm).hasProcess()) {
                            guardedPut(now, now.with(Migration.State.COMPLETED).put("source-ended", true));
                        }
                    });
                } else if (s == VmState.MIGRATING && once(m, "finish-out")) {
                    step(vm, () -> {
                        finishOut(vm);
                        Migration now = current(vm);
                        if (now != null && now.id().equals(m.id()) && !state(vm).hasProcess()) {
                            guardedPut(now, now.with(Migration.State.COMPLETED).put("source-ended", true));
                        }
                    });
                }
            }
            case FAILED -> {
                if (s == VmState.MIGRATING && mine && once(m, "resume")) {
                    step(vm, () -> resume(vm, m.reason()));
                } else if (s == VmState.MIGRATING && !mine && once(m, "stale-out")) {
                    // the claim moved on: the target took the VM over, so this paused copy is out of date
                    step(vm, () -> finishOut(vm));
                }
            }
        }
    }

    private void send(String vm, Migration m, ClusterView.Entry claim, ClusterView.Entry to, long intentRev) {
        LiveMigration.Settings s = LiveMigration.Settings.defaults();
        if (m.timeoutMs() > 0) {
            s = s.withTimeout(Duration.ofMillis(m.timeoutMs()));
        }
        if (stillSending(vm, m, s.timeout())) {
            done.remove(m.id() + " send"); // the next tick looks again; QEMU's STOP at the end makes it PAUSED
            return;
        }
        if (m.bandwidth() > 0) {
            s = new LiveMigration.Settings(s.timeout(), m.bandwidth(), s.downtimeLimit(), s.qmpTimeout());
        }
        LiveMigration.Outcome o;
        try {
            o = supervisor.migrateOut(vm, m.uri(), s, "to host " + m.to())
                    .get(s.timeout().toSeconds() + 60, TimeUnit.SECONDS);
        } catch (Exception e) {
            fail(m, "the source could not send the VM: " + why(e));
            return;
        }
        if (o instanceof LiveMigration.Outcome.Failed f) {
            fail(m, f.reason());
            return;
        }
        LiveMigration.Outcome.Completed c = (LiveMigration.Outcome.Completed) o;
        ObjectNode handed = m.with(Migration.State.HANDED_OVER).put("transfer-ms", c.took().toMillis())
                .put("downtime-ms", c.downtime() == null ? -1 : c.downtime().toMillis())
                .put("transferred", c.transferred());
        Boolean moved = handOver(vm, m, claim, to, intentRev, handed);
        if (moved == null) {
            log.error("VM {}: cannot tell whether the claim moved to {} (etcd does not answer); the VM stays paused"
                    + " here until it does", vm, m.to());
            done.remove(m.id() + " send"); // not settled: the tick tries again when etcd answers
            return;
        }
        if (moved) {
            log.info("VM {}: claim moved to host {} (transfer {} ms, downtime {} ms); waiting for it to run the VM",
                    vm, m.to(), c.took().toMillis(), c.downtime() == null ? "?" : c.downtime().toMillis());
            return;
        }
        String why = "the hand-over was called off: the claim, the migration key or the operator's intent changed"
                + " during the transfer (a stop, or host " + m.to() + " re-registered)";
        resume(vm, why);
        fail(current(vm) == null ? m : current(vm), why);
    }

    /**
     * Whether the source QEMU is still sending this VM on a {@code migrate} an earlier qsupd of this host gave before
     * it died: the adopted VM looks running until QEMU stops it at the end ({@code postmigrate}), and a second
     * {@code migrate} would be refused. This host waits for it then, and the adopted source finishes the move
     * ({@link #adoptedSource}). Past the move's timeout it cancels that transfer, and the move fails with the VM
     * running here.
     */
    private boolean stillSending(String vm, Migration m, Duration timeout) {
        String status;
        try {
            status = supervisor.qmp(vm, "query-migrate", null, Duration.ofSeconds(5)).path("status").asText("none");
        } catch (Exception e) {
            return false; // the send's own first step meets the same fault and says so
        }
        if ("completed".equals(status) && postmigrate(vm)) {
            return true; // it has just ended: QEMU's STOP event is on its way, and makes the adopted VM PAUSED
        }
        if (!SENDING.contains(status)) {
            seen.remove(m.id() + " sending");
            return false;
        }
        long first = seen.computeIfAbsent(m.id() + " sending", k -> {
            log.info("VM {}: its QEMU still sends the VM to host {} ({}), as an earlier qsupd of this host asked;"
                    + " waiting for it to end", vm, m.to(), status);
            return System.nanoTime();
        });
        if (System.nanoTime() - first > timeout.toNanos()) {
            try {
                supervisor.qmp(vm, "migrate_cancel", null, Duration.ofSeconds(5));
            } catch (Exception e) {
                log.warn("VM {}: migrate_cancel failed: {}", vm, why(e));
            }
            fail(m, "the transfer an earlier qsupd of host " + cluster.host() + " started did not end within "
                    + timeout.toSeconds() + " s; cancelled, the VM runs on at host " + cluster.host());
            return true;
        }
        return true;
    }

    private boolean postmigrate(String vm) {
        return "postmigrate".equals(qemuStatus(vm));
    }

    /** QEMU's run state as query-status says it, or "" when it does not answer. */
    private String qemuStatus(String vm) {
        try {
            return supervisor.qmp(vm, "query-status", null, Duration.ofSeconds(5)).path("status").asText("");
        } catch (Exception e) {
            return "";
        }
    }

    /** QEMU's migration states while a transfer is under way (QAPI MigrationStatus). */
    private static final Set<String> SENDING = Set.of("setup", "active", "pre-switchover", "device", "wait-unplug",
            "cancelling", "postcopy-active", "postcopy-paused", "postcopy-recover-setup", "postcopy-recover", "colo");

    /**
     * The hand-over transaction: true (the claim is the target's now), false (called off, nothing changed), or null
     * (etcd gave no answer either way).
     */
    private Boolean handOver(String vm, Migration m, ClusterView.Entry claim, ClusterView.Entry to, long intentRev,
            ObjectNode handed) {
        ByteSequence running = EtcdKeys.bytes(EtcdKeys.running(vm));
        ByteSequence intent = EtcdKeys.bytes(EtcdKeys.intent(vm));
        ByteSequence host = EtcdKeys.bytes(EtcdKeys.host(m.to()));
        Boolean moved;
        try {
            // one transaction: the claim under the TARGET's lease, the placement, and the step; only if nothing moved
            // meanwhile: the claim is still this host's, the migration still this one, no new operator intent (a stop
            // during the transfer), and the target's registration unchanged (so the lease read with it is its lease)
            moved = kv.txn()
                    .If(new Cmp(running, Cmp.Op.EQUAL, CmpTarget.modRevision(claim.modRevision())),
                            new Cmp(key(vm), Cmp.Op.EQUAL, CmpTarget.modRevision(m.entry().modRevision())),
                            new Cmp(intent, Cmp.Op.EQUAL, CmpTarget.modRevision(intentRev)),
                            new Cmp(host, Cmp.Op.EQUAL, CmpTarget.modRevision(to.modRevision())))
                    .Then(Op.put(running, EtcdKeys.bytes(claimValue(m.to())),
                                    PutOption.builder().withLeaseId(to.lease()).build()),
                            Op.put(EtcdKeys.bytes(EtcdKeys.placement(vm)), EtcdKeys.bytes(placementValue(m.to())),
                                    PutOption.DEFAULT),
                            Op.put(key(vm), EtcdKeys.bytes(handed.toString()),
                                    PutOption.builder().withLeaseId(m.entry().lease()).build()))
                    .commit().get(call.toMillis(), TimeUnit.MILLISECONDS).isSucceeded();
        } catch (Exception e) {
            log.warn("VM {}: the hand-over transaction got no answer ({}); settling it", vm, e.toString());
            moved = settle(vm, m);
        }
        return moved;
    }

    /**
     * This qsupd restarted during the move and adopted the source QEMU paused: if QEMU completed the transfer
     * meanwhile ({@code postmigrate}), the move goes on with the hand-over; else it fails. A called-off hand-over
     * leaves this QEMU paused: it cannot be resumed safely without the controller's own record of the transfer.
     */
    private void adoptedSource(String vm, Migration m, ClusterView.Entry claim, ClusterView.Entry to,
            long intentRev) {
        com.fasterxml.jackson.databind.JsonNode mig;
        String status;
        try {
            mig = supervisor.qmp(vm, "query-migrate", null, Duration.ofSeconds(5));
            status = supervisor.qmp(vm, "query-status", null, Duration.ofSeconds(5)).path("status").asText("");
        } catch (Exception e) {
            fail(m, "the source QEMU does not answer: " + why(e));
            return;
        }
        if (!"completed".equals(mig.path("status").asText()) || !"postmigrate".equals(status)) {
            fail(m, vm + " is paused (" + status + ") on host " + cluster.host() + "; only a running VM is migrated"
                    + " (resume it first)");
            return;
        }
        ObjectNode handed = m.with(Migration.State.HANDED_OVER).put("transfer-ms", mig.path("total-time").asLong(-1))
                .put("downtime-ms", mig.path("downtime").asLong(-1))
                .put("transferred", mig.path("ram").path("transferred").asLong(0));
        Boolean moved = handOver(vm, m, claim, to, intentRev, handed);
        if (!Boolean.TRUE.equals(moved)) {
            String why = "qsupd of host " + cluster.host() + " restarted during the migration, and the hand-over"
                    + (moved == null ? " got no answer" : " was called off") + "; the source QEMU stays paused in"
                    + " postmigrate: 'qsup stop " + vm + "', then 'qsup start " + vm + "'";
            log.error("VM {}: {}", vm, why);
            fail(current(vm) == null ? m : current(vm), why);
            return;
        }
        log.info("VM {}: claim moved to host {} after this qsupd adopted the sent source; waiting for it to run the"
                + " VM", vm, m.to());
    }

    /**
     * The hand-over transaction's answer was lost: it did or did not commit. Make sure of it by failing the key under
     * a guard on the revision the transaction compared; if that write wins, the transaction never commits after.
     * Returns true (moved), false (not moved), or null when etcd does not answer either.
     */
    private Boolean settle(String vm, Migration m) {
        for (int i = 0; i < 10; i++) {
            try {
                boolean failed = kv.txn()
                        .If(new Cmp(key(vm), Cmp.Op.EQUAL, CmpTarget.modRevision(m.entry().modRevision())))
                        .Then(Op.put(key(vm), EtcdKeys.bytes(m.failed("the hand-over transaction got no answer")
                                .toString()), PutOption.builder().withLeaseId(m.entry().lease()).build()))
                        .commit().get(call.toMillis(), TimeUnit.MILLISECONDS).isSucceeded();
                if (failed) {
                    return false;
                }
                Migration now = current(vm);
                return now != null && now.id().equals(m.id()) && now.state() != Migration.State.FAILED;
            } catch (Exception e) {
                try {
                    Thread.sleep(500);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    return null;
                }
            }
        }
        return null;
    }

    private void finishOut(String vm) {
        try {
            supervisor.finishMigrationOut(vm).get(call.toSeconds() + 15, TimeUnit.SECONDS);
            log.info("VM {}: migrated away; the source QEMU quit", vm);
        } catch (Exception e) {
            log.error("VM {}: quitting the migrated source failed: {}", vm, why(e));
        }
    }

    private void resume(String vm, String why) {
        try {
            supervisor.resumeAfterFailedHandOver(vm, why).get(call.toSeconds() + 15, TimeUnit.SECONDS);
        } catch (Exception e) {
            log.error("VM {}: resuming after the failed hand-over failed: {}", vm, why(e));
        }
    }

    // ---- helpers ----

    private void fail(Migration m, String why) {
        log.warn("VM {}: migration {} -> {} failed: {}", m.entry().key().substring(EtcdKeys.MIGRATIONS.length()),
                m.from(), m.to(), why);
        guardedPut(m, m.failed(why));
    }

    /** Writes the migration key's next value, only if it is still the value {@code m} read; under the same lease. */
    private boolean guardedPut(Migration m, ObjectNode next) {
        ByteSequence k = EtcdKeys.bytes(m.entry().key());
        try {
            return kv.txn().If(new Cmp(k, Cmp.Op.EQUAL, CmpTarget.modRevision(m.entry().modRevision())))
                    .Then(Op.put(k, EtcdKeys.bytes(next.toString()),
                            PutOption.builder().withLeaseId(m.entry().lease()).build()))
                    .commit().get(call.toMillis(), TimeUnit.MILLISECONDS).isSucceeded();
        } catch (Exception e) {
            log.warn("cluster: cannot write {}: {}", m.entry().key(), e.toString());
            return false;
        }
    }

    /** The migration key as etcd has it now, or null. */
    private Migration current(String vm) {
        try {
            List<KeyValue> kvs = kv.get(key(vm)).get(call.toMillis(), TimeUnit.MILLISECONDS).getKvs();
            if (kvs.isEmpty()) {
                return null;
            }
            return Migration.of(ClusterView.of(0, kvs).migrations().values().iterator().next());
        } catch (Exception e) {
            return null;
        }
    }

    private boolean once(Migration m, String stepName) {
        return done.add(m.id() + " " + stepName);
    }

    private void step(String vm, Runnable body) {
        if (!busy.add(vm)) {
            return;
        }
        Thread.ofVirtual().name("migration " + vm).start(() -> {
            try {
                body.run();
            } catch (RuntimeException e) {
                log.error("VM {}: migration step failed: {}", vm, e.toString(), e);
            } finally {
                busy.remove(vm);
            }
        });
    }

    private VmState state(String vm) {
        return supervisor.get(vm).map(VmSnapshot::state).orElse(VmState.STOPPED);
    }

    private static ByteSequence key(String vm) {
        return EtcdKeys.bytes(EtcdKeys.migration(vm));
    }

    static String claimValue(String host) {
        return NODES.objectNode().put("host", host).put("since", Instant.now().toString()).toString();
    }

    static String placementValue(String host) {
        return NODES.objectNode().put("host", host).toString();
    }

    private static String why(Throwable e) {
        Throwable t = e instanceof java.util.concurrent.ExecutionException && e.getCause() != null ? e.getCause() : e;
        return t.getMessage() == null ? t.toString() : t.getMessage();
    }
}
