package io.qsup.cluster;

import io.qsup.config.DaemonSettings;
import io.qsup.control.ClusterPort;
import io.qsup.qemu.HostFacts;
import io.qsup.supervisor.Supervisor;

/**
 * The one way into cluster mode. qsupd calls it only when {@code cluster:} is configured, so that a single host (and
 * the CLI) never loads the etcd client, gRPC or netty.
 */
public final class ClusterMode {
    private ClusterMode() {}

    /** Joins the cluster in the background (etcd may be down: local VMs run regardless) and returns its port. */
    public static ClusterPort start(DaemonSettings settings, Supervisor supervisor, HostFacts host) {
        ClusterAgent agent = new ClusterAgent(settings, supervisor, host);
        agent.start();
        return agent;
    }

    /** Leaves: stops the threads and closes the etcd client; the lease lapses by itself, VMs keep running. */
    public static void stop(ClusterPort port) {
        if (port instanceof ClusterAgent a) {
            a.close();
        }
    }
}
