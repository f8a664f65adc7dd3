package io.qsup.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.etcd.jetcd.Client;
import io.etcd.jetcd.KV;
import io.etcd.jetcd.options.PutOption;
import io.qsup.testing.EtcdServer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The claim transaction against a real etcd: hosts racing for one VM, each with its own client and lease. */
class ClaimsTest {

    @Test
    void ofHostsRacingForAClaimExactlyOneWinsAndTheClaimVanishesWithItsLease() throws Exception {
        try (EtcdServer etcd = EtcdServer.start(Duration.ofSeconds(30));
                Client c1 = ClusterAgent.etcdClient(java.net.URI.create(etcd.endpoint()));
                Client c2 = ClusterAgent.etcdClient(java.net.URI.create(etcd.endpoint()));
                Client c3 = ClusterAgent.etcdClient(java.net.URI.create(etcd.endpoint()))) {
            List<Client> clients = List.of(c1, c2, c3);
            List<Long> leases = new ArrayList<>();
            for (Client c : clients) {
                leases.add(c.getLeaseClient().grant(30).get(10, TimeUnit.SECONDS).getID());
            }
            KV kv = c1.getKVClient();
            for (int round = 0; round < 20; round++) {
                String vm = "vm" + round;
                long placementRev = kv.put(EtcdKeys.bytes(EtcdKeys.placement(vm)), EtcdKeys.bytes("{\"host\":\"h1\"}"),
                        PutOption.DEFAULT).get(10, TimeUnit.SECONDS).getHeader().getRevision();
                AtomicInteger won = new AtomicInteger();
                CountDownLatch go = new CountDownLatch(1);
                List<Thread> racers = new ArrayList<>();
                for (int i = 0; i < 3; i++) {
                    KV mine = clients.get(i).getKVClient();
                    long lease = leases.get(i);
                    String host = "h" + (i + 1);
                    racers.add(Thread.ofPlatform().start(() -> {
                        try {
                            go.await();
                            if (Claims.tryClaim(mine, vm, host, lease, placementRev, Duration.ofSeconds(10))) {
                                won.incrementAndGet();
                            }
                        } catch (Exception e) {
                            throw new IllegalStateException(e);
                        }
                    }));
                }
                go.countDown();
                for (Thread t : racers) {
                    t.join();
                }
                assertThat(won.get()).as("winners of round %d", round).isEqualTo(1);
            }
            // a placement that moved since it was read: no claim
            long stale = kv.put(EtcdKeys.bytes(EtcdKeys.placement("moved")), EtcdKeys.bytes("{\"host\":\"h1\"}"),
                    PutOption.DEFAULT).get(10, TimeUnit.SECONDS).getHeader().getRevision();
            kv.put(EtcdKeys.bytes(EtcdKeys.placement("moved")), EtcdKeys.bytes("{\"host\":\"h2\"}"), PutOption.DEFAULT)
                    .get(10, TimeUnit.SECONDS);
            assertThat(Claims.tryClaim(kv, "moved", "h1", leases.get(0), stale, Duration.ofSeconds(10))).isFalse();
            // the claim goes with its lease, and then another host can claim
            long rev = kv.get(EtcdKeys.bytes(EtcdKeys.placement("vm0"))).get(10, TimeUnit.SECONDS).getKvs().get(0)
                    .getModRevision();
            for (long l : leases) {
                c1.getLeaseClient().revoke(l).get(10, TimeUnit.SECONDS);
            }
            long fresh = c2.getLeaseClient().grant(30).get(10, TimeUnit.SECONDS).getID();
            assertThat(Claims.tryClaim(c2.getKVClient(), "vm0", "h2", fresh, rev, Duration.ofSeconds(10))).isTrue();
        }
    }
}
