package io.qsup.vm;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.qmp.QmpDisconnectedException;
import io.qsup.qmp.QmpException;
import io.qsup.qmp.QmpStatus;
import io.qsup.qmp.QmpTimeoutException;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The QMP liveness probe of one VM (DESIGN.md 3): every {@code probe-interval}, on the daemon's one grid of probe
 * times ({@link ProbeClock}), a {@code query-status} with the {@code probe-timeout} deadline. A miss flags the VM
 * {@code unresponsive}; an answer clears the flag and keeps running/paused in step with QEMU. A miss is also when the
 * probe checks that the QEMU still lives: an ended QEMU whose connection never closed, and a QEMU that reported
 * {@code SHUTDOWN} but hangs instead of exiting, are exits.
 * (The {@code /proc} figures of the VM's stats are read when a snapshot asks.)
 *
 * <p>Threading: one virtual thread {@code vm-monitor NAME} runs the loop; it reads the controller's volatile fields
 * through {@link Host}, never changes the VM's process itself, and hands anything that would (an orphan to retry, a
 * hang to end) to the controller, which queues it on its ops thread.
 */
final class LivenessProbe {
    private static final Logger log = LoggerFactory.getLogger(LivenessProbe.class);

    /** What the probe reads from, and reports to, its controller; each call returns at once. */
    interface Host {
        VmSpec spec();

        /** The current session, or null. */
        QmpSession session();

        /** The QEMU pid, or -1. */
        long pid();

        boolean closed();

        /** The VM is orphaned: try to regain its monitor (queued). */
        void retryOrphan();

        /** Session {@code s} missed the probe deadline and the VM restarts on hang: end it (queued). */
        void hung(QmpSession s, String detail);

        /** True while process {@code pid} exists and has not ended (a zombie has ended). */
        boolean alive(long pid);

        /** The QEMU of {@code s} ended, yet its QMP connection never closed: handle the exit (queued). */
        void vanished(QmpSession s, String detail);

        /** The QEMU of {@code s} reported SHUTDOWN, then neither exited nor answered: end it, as its exit (queued). */
        void stuckInExit(QmpSession s, String detail);
    }

    private final String name;
    private final VmStateMachine sm;
    private final VmStatsRecorder stats;
    private final Host host;
    private final Thread thread;
    private final LoopHealth.Loop health;

    LivenessProbe(String name, VmStateMachine sm, VmStatsRecorder stats, Host host) {
        this.name = name;
        this.sm = sm;
        this.stats = stats;
        this.host = host;
        this.thread = Thread.ofVirtual().name("vm-monitor " + name).unstarted(this::loop);
        this.health = LoopHealth.beating("vm-monitor " + name);
    }

    void start() {
        thread.start();
    }

    void stop() {
        health.close();
        thread.interrupt();
    }

    private void loop() {
        long nextProbe = ProbeClock.next(System.nanoTime(), host.spec().probeInterval());
        while (!host.closed()) {
            health.beat();
            try {
                // between probes it wakes only to prove its progress to a watchdog, if there is one
                Thread.sleep(Duration.ofNanos(Math.max(0,
                        Math.min(nextProbe - System.nanoTime(), LoopHealth.beatNanos()))));
            } catch (InterruptedException e) {
                return;
            }
            if (System.nanoTime() < nextProbe) {
                continue;
            }
            nextProbe = ProbeClock.next(System.nanoTime(), host.spec().probeInterval());
            VmState st = sm.state();
            QmpSession s = host.session();
            if (st == VmState.ORPHANED) {
                host.retryOrphan();
                continue;
            }
            if ((st != VmState.RUNNING && st != VmState.PAUSED) || s == null) {
                continue;
            }
            probe(s);
        }
    }

    private void probe(QmpSession s) {
        VmSpec spec = host.spec();
        Duration deadline = spec.probeTimeout();
        try {
            long sent = System.nanoTime();
            QmpStatus q = s.client.queryStatus(deadline);
            Duration rtt = Duration.ofNanos(System.nanoTime() - sent);
            sm.setUnresponsive(false, "");
            if (s == host.session()) {
                if (q.running()) {
                    sm.compareAndSet(VmState.PAUSED, VmState.RUNNING, Cause.QEMU_STATUS, "query-status: " + q.status());
                } else if (!q.status().equals("shutdown")) {
                    sm.compareAndSet(VmState.RUNNING, VmState.PAUSED, Cause.QEMU_STATUS, "query-status: " + q.status());
                }
                stats.probed(s.pid, rtt, s.client.greeting().version(), blockstats(s, deadline));
            }
        } catch (QmpTimeoutException e) {
            if (s != host.session()) {
                return;
            }
            sm.setUnresponsive(true, "query-status got no answer within " + deadline.toMillis() + " ms");
            // A silent monitor of a QEMU that has ended, or that said SHUTDOWN and stays, is an exit, not a hang:
            // the VM must not look running forever when the EOF went missing or QEMU froze on its way out.
            if (!host.alive(s.pid)) {
                host.vanished(s, "QEMU pid " + s.pid + " ended while its QMP connection stayed open and silent");
                return;
            }
            if (s.shutdownReason != null) {
                host.stuckInExit(s, "QEMU pid " + s.pid + " reported SHUTDOWN (" + s.shutdownReason
                        + "), then neither exited nor answered query-status within " + deadline.toMillis()
                        + " ms; qsupd ended it");
                return;
            }
            if (spec.restartOnHang()) {
                host.hung(s, "no answer to query-status within " + deadline.toMillis() + " ms");
            }
        } catch (QmpDisconnectedException e) {
            // the controller's disconnect handler deals with it
        } catch (QmpException e) {
            log.debug("VM {}: probe: {}", name, e.getMessage());
        }
    }

    /** {@code query-blockstats} for the VM's stats, or null when QEMU does not answer it in time. */
    private JsonNode blockstats(QmpSession s, Duration deadline) {
        try {
            return s.client.execute("query-blockstats", null, deadline);
        } catch (QmpException e) {
            log.debug("VM {}: query-blockstats: {}", name, e.getMessage());
            return null;
        }
    }
}
