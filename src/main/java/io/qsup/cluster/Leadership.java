package io.qsup.cluster;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Election;
import io.etcd.jetcd.election.LeaderKey;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This host's candidacy in etcd's election ({@link EtcdKeys#ELECTION}), on its own lease: one campaign per lease, so a
 * new lease (after fencing) campaigns again and a campaign of a given-up lease counts for nothing. The leader's key
 * guards its writes: {@link #key()} is compared by create revision in every placement transaction.
 *
 * <p>Threads: one {@code campaign} thread per lease blocks on etcd until it wins; {@code won} is volatile and written
 * only by it.
 */
final class Leadership implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Leadership.class);

    private final Election election;
    private final String host;
    private volatile LeaderKey won;
    private volatile long campaignLease;
    private volatile Thread campaign;

    Leadership(Election election, String host) {
        this.election = election;
        this.host = host;
    }

    /** Campaigns on {@code lease}; a campaign on an older lease is dropped. */
    synchronized void campaignOn(long lease) {
        if (lease == campaignLease) {
            return;
        }
        campaignLease = lease;
        won = null;
        Thread old = campaign;
        if (old != null) {
            old.interrupt();
        }
        campaign = Thread.ofPlatform().daemon().name("campaign " + Long.toHexString(lease)).start(() -> run(lease));
    }

    private void run(long lease) {
        ByteSequence name = EtcdKeys.bytes(EtcdKeys.ELECTION);
        while (campaignLease == lease && !Thread.currentThread().isInterrupted()) {
            try {
                LeaderKey key = election.campaign(name, lease, EtcdKeys.bytes(host)).get().getLeader();
                if (campaignLease == lease) {
                    won = key;
                    log.info("cluster: {} is the leader now (election key {}, revision {})", host,
                            key.getKey().toString(java.nio.charset.StandardCharsets.UTF_8), key.getRevision());
                }
                return;
            } catch (InterruptedException e) {
                return;
            } catch (java.util.concurrent.ExecutionException e) {
                log.debug("cluster: campaign failed ({}); trying again", e.getCause().toString());
                try {
                    Thread.sleep(500);
                } catch (InterruptedException ie) {
                    return;
                }
            }
        }
    }

    /** The election key this host won on {@code lease}, or null when it is not the leader on that lease. */
    LeaderKey key(long lease) {
        LeaderKey k = won;
        return k != null && lease != 0 && k.getLease() == lease ? k : null;
    }

    @Override
    public void close() {
        campaignLease = -1;
        Thread t = campaign;
        if (t != null) {
            t.interrupt();
        }
    }
}
