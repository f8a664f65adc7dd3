package io.qsup.cluster;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.KV;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.PutOption;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The claim on a cluster VM: {@code running/NAME} under the claiming host's lease, created in one transaction that
 * succeeds only if the key is absent and {@code placement/NAME} is still the revision the host read (the one that
 * names it). etcd serialises transactions, so of any number of hosts racing, at most one holds the claim, and it
 * vanishes with its lease.
 */
final class Claims {
    private Claims() {}

    /** True if {@code host} now holds the claim of {@code vm} under {@code lease}. */
    static boolean tryClaim(KV kv, String vm, String host, long lease, long placementRevision, Duration timeout)
            throws ExecutionException, TimeoutException, InterruptedException {
        ByteSequence key = EtcdKeys.bytes(EtcdKeys.running(vm));
        String value = JsonNodeFactory.instance.objectNode().put("host", host).put("since", Instant.now().toString())
                .toString();
        return kv.txn()
                .If(new Cmp(key, Cmp.Op.EQUAL, CmpTarget.version(0)),
                        new Cmp(EtcdKeys.bytes(EtcdKeys.placement(vm)), Cmp.Op.EQUAL,
                                CmpTarget.modRevision(placementRevision)))
                .Then(Op.put(key, EtcdKeys.bytes(value), PutOption.builder().withLeaseId(lease).build()))
                .commit().get(timeout.toMillis(), TimeUnit.MILLISECONDS).isSucceeded();
    }
}
