package io.qsup.cluster;

import io.etcd.jetcd.Lease;
import io.etcd.jetcd.lease.LeaseKeepAliveResponse;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This host's etcd lease, kept alive by hand so that the send time of every keep-alive is known, and the self-fencing
 * clock that follows from it. A keep-alive sent at monotonic time {@code t} and answered with TTL {@code ttl} proves
 * the server cannot expire the lease before {@code t + ttl}; that is the deadline. At {@code deadline - margin}
 * without a newer answer, {@link Listener#fence} runs (it SIGKILLs the failover VMs), and the lease counts as lost:
 * it is revoked when etcd answers again, and a new one is granted. The lease id is kept in state-dir, so a restarted
 * qsupd takes over a lease that is still alive, with the claims under it.
 *
 * <p>Threads: {@code lease-keeper} grants and sends keep-alives; their answers arrive on jetcd's threads;
 * {@code fence-timer} watches the deadline and calls the listener. The id, deadline and fenced flag are volatile, and
 * every write to them holds this object's monitor ({@link #take}, {@link #extend}, {@link #giveUp}), so an answer
 * for a lease already given up can never move the deadline of the next one.
 */
final class HostLease implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(HostLease.class);

    /** Told of fencing and of a new lease; called on the lease's own threads, must not block long. */
    interface Listener {
        void fence(String why);

        void leaseGranted(long id, boolean resumed);
    }

    private final Lease leases;
    private final Duration ttl;
    private final Duration margin;
    private final Path idFile;
    private final Listener listener;
    private final Thread keeper;
    private final Thread timer;
    private volatile boolean closed;
    /** The live lease, or 0. */
    private volatile long id;
    /** Monotonic nanos before which the server cannot expire {@link #id}. */
    private volatile long deadline;
    private volatile boolean fenced;
    /** True from a failed keep-alive until the next answered one, so the failure is logged once. */
    private volatile boolean failing;
    /** A lease given up at fencing, to revoke once etcd answers; 0 when none. */
    private volatile long toRevoke;

    HostLease(Lease leases, Duration ttl, Duration margin, Path idFile, Listener listener) {
        this.leases = leases;
        this.ttl = ttl;
        this.margin = margin;
        this.idFile = idFile;
        this.listener = listener;
        this.keeper = Thread.ofPlatform().daemon().name("lease-keeper").unstarted(this::keep);
        this.timer = Thread.ofPlatform().daemon().name("fence-timer").unstarted(this::watch);
    }

    void start() {
        keeper.start();
        timer.start();
    }

    /** The lease to claim under, or 0 while there is none that is safely alive (none yet, or fenced). */
    long validId() {
        long i = id;
        return i != 0 && !fenced && System.nanoTime() < deadline - margin.toNanos() ? i : 0;
    }

    boolean fenced() {
        return fenced;
    }

    /** Time left before fencing, for the log and tests; negative once it passed. */
    Duration untilFence() {
        return Duration.ofNanos(deadline - margin.toNanos() - System.nanoTime());
    }

    /**
     * Keep-alives go out every {@code ttl/8} (at most every 100 ms) without waiting for the one before: each answer
     * moves the deadline to its own send time plus the TTL. A wait-then-sleep loop would send the next one only after
     * the last had timed out, past the fencing point, so a single slow answer would fence a healthy host.
     */
    private void keep() {
        Duration every = max(ttl.dividedBy(8), Duration.ofMillis(100));
        Duration callTimeout = ttl.dividedBy(3);
        boolean first = true;
        while (!closed) {
            try {
                if (toRevoke != 0) {
                    revoke();
                }
                if (id == 0) {
                    grant(first, callTimeout);
                    first = false;
                } else {
                    renew(ttl.minus(margin));
                }
                Thread.sleep(every);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    private static Duration max(Duration a, Duration b) {
        return a.compareTo(b) >= 0 ? a : b;
    }

    /** Sends one keep-alive; its answer, on jetcd's threads, extends the deadline. Never blocks. */
    private void renew(Duration timeout) {
        long current = id;
        long sent = System.nanoTime();
        leases.keepAliveOnce(current).orTimeout(timeout.toMillis(), TimeUnit.MILLISECONDS).whenComplete((r, e) -> {
            if (e != null) {
                if (!failing && current == id) {
                    failing = true;
                    Throwable c = e instanceof java.util.concurrent.CompletionException && e.getCause() != null
                            ? e.getCause() : e;
                    log.warn("cluster: lease keep-alive failed ({}); fencing in {} ms unless etcd answers",
                            c.getMessage() == null ? c.toString() : c.getMessage(), untilFence().toMillis());
                }
                return;
            }
            if (r.getTTL() <= 0) {
                if (current == id) {
                    log.error("cluster: etcd says lease {} has expired; failover VMs are fenced and a new lease is "
                            + "taken", Long.toHexString(current));
                    giveUp(current, "the lease has expired");
                }
                return;
            }
            if (extend(current, sent + TimeUnit.SECONDS.toNanos(r.getTTL())) && failing) {
                failing = false;
                log.info("cluster: etcd answers keep-alives again; fencing in {} ms at the earliest",
                        untilFence().toMillis());
            }
        });
    }

    /** Moves the deadline of lease {@code leaseId} to {@code until} if later; false if that lease is no longer ours. */
    private synchronized boolean extend(long leaseId, long until) {
        if (leaseId != id || fenced) {
            return false;
        }
        if (until > deadline) {
            deadline = until;
        }
        return true;
    }

    /** Makes {@code leaseId} the live lease, safe until {@code until}. */
    private synchronized void take(long leaseId, long until) {
        deadline = until;
        fenced = false;
        failing = false;
        id = leaseId;
    }

    private void grant(boolean first, Duration timeout) throws InterruptedException {
        long sent = System.nanoTime();
        try {
            if (first) {
                long old = readId();
                if (old != 0) {
                    LeaseKeepAliveResponse r = leases.keepAliveOnce(old).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
                    if (r.getTTL() > 0) {
                        take(old, sent + TimeUnit.SECONDS.toNanos(r.getTTL()));
                        log.info("cluster: resumed lease {} of the previous qsupd ({} s left)", Long.toHexString(old),
                                r.getTTL());
                        listener.leaseGranted(old, true);
                        return;
                    }
                }
            }
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            log.debug("cluster: the previous lease is gone: {}", e.toString());
        }
        try {
            long granted = leases.grant(ttl.toSeconds()).get(timeout.toMillis(), TimeUnit.MILLISECONDS).getID();
            take(granted, sent + ttl.toNanos());
            writeId(granted);
            log.info("cluster: lease {} granted, ttl {} s", Long.toHexString(granted), ttl.toSeconds());
            listener.leaseGranted(granted, false);
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            log.warn("cluster: cannot get a lease from etcd ({}); retrying",
                    e.getCause() == null ? e.toString() : e.getCause().getMessage());
        }
    }

    private void revoke() {
        long r = toRevoke;
        try {
            leases.revoke(r).get(ttl.toMillis(), TimeUnit.MILLISECONDS);
            log.info("cluster: revoked the given-up lease {}", Long.toHexString(r));
            toRevoke = 0;
        } catch (java.util.concurrent.ExecutionException e) {
            toRevoke = 0; // not found: it expired by itself
        } catch (java.util.concurrent.TimeoutException e) {
            log.debug("cluster: revoke of {} timed out", Long.toHexString(r));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** On {@code fence-timer}: fences when the deadline minus the margin has come. */
    private void watch() {
        while (!closed) {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                return;
            }
            long current = id;
            if (current != 0 && !fenced && System.nanoTime() >= deadline - margin.toNanos()) {
                giveUp(current, "no keep-alive answered for " + (ttl.minus(margin).toMillis()) + " ms");
            }
        }
    }

    /** Fences (once per lease) and gives the lease up. */
    private synchronized void giveUp(long current, String why) {
        if (current != id || fenced) {
            return;
        }
        fenced = true;
        log.error("cluster: fencing: {}; lease {} could expire in {} ms; killing every failover VM of this host",
                why, Long.toHexString(current), Duration.ofNanos(deadline - System.nanoTime()).toMillis());
        try {
            listener.fence(why);
        } finally {
            toRevoke = current;
            id = 0;
        }
    }

    private long readId() {
        try {
            return Files.exists(idFile) ? Long.parseUnsignedLong(Files.readString(idFile).trim(), 16) : 0;
        } catch (IOException | NumberFormatException e) {
            return 0;
        }
    }

    private void writeId(long value) {
        try {
            Files.createDirectories(idFile.getParent());
            Path tmp = idFile.resolveSibling(idFile.getFileName() + ".tmp");
            Files.writeString(tmp, Long.toHexString(value) + "\n");
            Files.move(tmp, idFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            log.warn("cluster: cannot keep the lease id in {}: {}; a restarted qsupd takes a new lease", idFile,
                    e.getMessage());
        }
    }

    @Override
    public void close() {
        closed = true;
        keeper.interrupt();
        timer.interrupt();
    }
}
