package io.qsup.cluster;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Election;
import io.etcd.jetcd.Lease;
import io.etcd.jetcd.election.LeaderKey;
import io.etcd.jetcd.lease.LeaseGrantResponse;
import io.etcd.jetcd.lease.LeaseKeepAliveResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This host's candidacy in etcd's election ({@link EtcdKeys#ELECTION}), on a lease of its own, half the host lease's
 * TTL (etcd raises a TTL below its minimum, about 1.5 election timeouts): the election key of a leader that died
 * goes with that lease, so the next leader takes over placement within half the host TTL plus etcd's expiry loop
 * (500 ms), not within a whole TTL plus it. A qsupd that stops revokes the lease, and the next leader takes over at
 * once. The candidacy belongs to one host lease: a new host lease (after fencing) campaigns again, and the candidacy
 * of a given-up host lease counts for nothing.
 *
 * <p>Safety does not rest on this lease: every placement transaction compares the leader's key by create revision
 * ({@link #key}), so a leader whose key expired cannot write, whatever it still believes. Losing the leadership lease
 * (etcd unreachable for its TTL) only ends the leadership; the host lease, and the VMs under it, are not touched.
 *
 * <p>Threads: one {@code campaign} thread per host lease grants the leadership lease, keeps it alive and campaigns on
 * it; the campaign's answer arrives on a jetcd thread. {@code won}, {@code own} and {@code hostLease} are volatile.
 */
final class Leadership implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Leadership.class);
    private static final ByteSequence ELECTION = EtcdKeys.bytes(EtcdKeys.ELECTION);

    private final Election election;
    private final Lease leases;
    private final String host;
    private final Duration ttl;
    private volatile LeaderKey won;
    /** The host lease this candidacy belongs to; -1 once closed. */
    private volatile long hostLease;
    /** The leadership lease campaigned on now, or 0. */
    private volatile long own;
    private volatile Thread campaign;

    /** @param hostTtl the host lease's TTL; the leadership lease asks for half of it, at least 1 s */
    Leadership(Election election, Lease leases, String host, Duration hostTtl) {
        this.election = election;
        this.leases = leases;
        this.host = host;
        this.ttl = Duration.ofSeconds(Math.max(1, hostTtl.toSeconds() / 2));
    }

    /** Campaigns for the host lease {@code lease}; the candidacy of an older host lease ends. */
    synchronized void campaignOn(long lease) {
        if (lease == hostLease || hostLease == -1) {
            return;
        }
        hostLease = lease;
        won = null;
        Thread old = campaign;
        if (old != null) {
            old.interrupt();
        }
        campaign = Thread.ofPlatform().daemon().name("campaign " + Long.toHexString(lease)).start(() -> run(lease));
    }

    /** While the candidacy lasts: a leadership lease, a campaign on it, and its keep-alives; again when it is lost. */
    private void run(long forHost) {
        while (hostLease == forHost) {
            long mine = 0;
            try {
                LeaseGrantResponse g = leases.grant(ttl.toSeconds()).get(ttl.toMillis(), TimeUnit.MILLISECONDS);
                mine = g.getID();
                own = mine;
                long granted = g.getTTL();
                long forLease = mine;
                election.campaign(ELECTION, mine, EtcdKeys.bytes(host)).whenComplete((r, e) -> {
                    if (e == null && own == forLease && hostLease == forHost) {
                        won = r.getLeader();
                        log.info("cluster: {} is the leader now (election key {}, revision {}, leadership lease {}"
                                + " ttl {} s)", host, won.getKey().toString(StandardCharsets.UTF_8),
                                won.getRevision(), Long.toHexString(forLease), granted);
                    } else if (e != null && own == forLease) {
                        log.debug("cluster: campaign on lease {} failed: {}", Long.toHexString(forLease), e.toString());
                    }
                });
                String lost = hold(forHost, mine, Duration.ofSeconds(granted));
                if (lost != null) {
                    log.warn("cluster: {} lost its leadership lease ({}); campaigning again", host, lost);
                }
            } catch (InterruptedException e) {
                if (mine != 0 && hostLease != -1) {
                    leases.revoke(mine); // a newer candidacy replaced this one: let this key go now, unawaited
                }
                return; // (close() revokes, and waits for it)
            } catch (ExecutionException | TimeoutException e) {
                log.debug("cluster: cannot get a leadership lease ({}); trying again", e.toString());
                if (!pause()) {
                    return;
                }
            } finally {
                if (mine != 0 && own == mine) {
                    own = 0;
                    won = null;
                }
            }
            if (mine != 0 && hostLease != -1) {
                revoke(mine); // lost (a new one follows), or replaced by a newer candidacy; close() revokes its own
            }
        }
    }

    /**
     * Keeps {@code mine} alive, every quarter of its TTL. Returns why it was lost (etcd says it expired, or no
     * keep-alive was answered for its TTL), or null when the candidacy ended.
     */
    private String hold(long forHost, long mine, Duration granted) throws InterruptedException {
        Duration every = Duration.ofMillis(Math.max(100, granted.toMillis() / 4));
        long deadline = System.nanoTime() + granted.toNanos();
        while (hostLease == forHost) {
            Thread.sleep(every);
            long sent = System.nanoTime();
            try {
                LeaseKeepAliveResponse r = leases.keepAliveOnce(mine).get(every.toMillis() * 2, TimeUnit.MILLISECONDS);
                if (r.getTTL() <= 0) {
                    return "etcd says it expired";
                }
                deadline = sent + TimeUnit.SECONDS.toNanos(r.getTTL());
            } catch (ExecutionException e) {
                String m = String.valueOf(e.getCause() == null ? e : e.getCause().getMessage());
                if (m.contains("not found")) {
                    return "etcd no longer knows it";
                }
            } catch (TimeoutException e) {
                // the deadline below decides
            }
            if (System.nanoTime() >= deadline) {
                return "no keep-alive answered for " + granted.toSeconds() + " s";
            }
        }
        return null;
    }

    private boolean pause() {
        try {
            Thread.sleep(500);
            return true;
        } catch (InterruptedException e) {
            return false;
        }
    }

    private void revoke(long lease) {
        try {
            leases.revoke(lease).get(ttl.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            log.debug("cluster: revoking leadership lease {}: {}", Long.toHexString(lease), e.toString());
        }
    }

    /** The election key this host won for host lease {@code lease}, or null when it is not the leader for it. */
    LeaderKey key(long lease) {
        LeaderKey k = won;
        return k != null && lease != 0 && lease == hostLease && k.getLease() == own ? k : null;
    }

    /** Ends the candidacy and revokes the leadership lease, so another host leads at once. */
    @Override
    public void close() {
        Thread t;
        long mine;
        synchronized (this) {
            hostLease = -1;
            won = null;
            t = campaign;
            mine = own;
        }
        if (t != null) {
            t.interrupt();
        }
        if (mine != 0) {
            revoke(mine);
        }
    }
}
