package io.qsup.daemon;

import io.qsup.vm.LoopHealth;
import io.qsup.supervisor.VmSnapshot;
import io.qsup.vm.VmState;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * What qsupd tells systemd over {@code NOTIFY_SOCKET}: {@code READY=1}, {@code RELOADING=1} with
 * {@code MONOTONIC_USEC=}, {@code STOPPING=1}, and a {@code STATUS=} line with the VM counts ("12 running, 1 failed,
 * 0 unresponsive", followed by "; stuck: vm-ops web1" while the watchdog finds a supervisor loop stuck) sent whenever
 * it changes. Without a notify socket it sends nothing, and its status thread never starts.
 *
 * <p>Threading: one platform thread ({@code sd-notify-status}; junixsocket I/O never runs on a virtual thread) owns
 * {@code lastStatus} and sends every STATUS line. {@link #changed()} is called from VM threads and only offers a
 * token to a one-slot queue, so it never blocks. The other methods are called by the daemon's main thread and its
 * signal handlers; each sends one datagram and holds no lock.
 */
final class ServiceNotifier implements AutoCloseable {
    /** Also re-counts this often, since the unresponsive flag changes without a state change. */
    private static final long RECOUNT_MILLIS = 2_000;

    private final String socket;
    private final Supplier<List<VmSnapshot>> vms;
    private final BlockingQueue<Boolean> wake = new ArrayBlockingQueue<>(1);
    private final Thread statusThread;
    private String lastStatus; // status thread only

    ServiceNotifier(String socket, Supplier<List<VmSnapshot>> vms) {
        this.socket = socket;
        this.vms = vms;
        this.statusThread = Thread.ofPlatform().daemon().name("sd-notify-status").unstarted(this::statusLoop);
    }

    /** A notifier for the socket systemd named in {@code NOTIFY_SOCKET} (none: it only counts). */
    static ServiceNotifier fromEnvironment(Supplier<List<VmSnapshot>> vms) {
        return new ServiceNotifier(System.getenv("NOTIFY_SOCKET"), vms);
    }

    /** Adoption and autostart are dispatched: READY=1, then the status thread starts reporting. */
    void ready() {
        SdNotify.notify(socket, "READY=1\nMAINPID=" + ProcessHandle.current().pid());
        if (socket != null && !socket.isEmpty() && statusThread.getState() == Thread.State.NEW) {
            statusThread.start(); // STATUS= is for systemd alone: without NOTIFY_SOCKET nothing re-counts the VMs
        }
        changed();
    }

    /** A reload starts; {@link #reloaded()} must follow. */
    void reloading() {
        SdNotify.notify(socket, "RELOADING=1\nMONOTONIC_USEC=" + monotonicMicros());
    }

    void reloaded() {
        SdNotify.notify(socket, "READY=1");
        changed();
    }

    void stopping() {
        SdNotify.notify(socket, "STOPPING=1");
    }

    /** Some VM changed state: the status thread re-counts soon. Never blocks. */
    void changed() {
        wake.offer(Boolean.TRUE);
    }

    /** "2 running, 1 failed, 0 unresponsive". */
    static String status(List<VmSnapshot> vms) {
        long running = vms.stream().filter(v -> v.state() == VmState.RUNNING).count();
        long failed = vms.stream().filter(v -> v.state() == VmState.FAILED).count();
        long unresponsive = vms.stream().filter(VmSnapshot::unresponsive).count();
        return running + " running, " + failed + " failed, " + unresponsive + " unresponsive";
    }

    /**
     * CLOCK_MONOTONIC in microseconds, as systemd wants it: HotSpot's {@link System#nanoTime()} reads that clock on
     * Linux, so the value compares with systemd's own.
     */
    static long monotonicMicros() {
        return System.nanoTime() / 1_000;
    }

    private void statusLoop() {
        try {
            while (!Thread.currentThread().isInterrupted()) {
                wake.poll(RECOUNT_MILLIS, TimeUnit.MILLISECONDS);
                List<String> stuck = LoopHealth.stuck();
                String s = status(vms.get()) + (stuck.isEmpty() ? "" : "; stuck: " + String.join(", ", stuck));
                if (!s.equals(lastStatus)) {
                    lastStatus = s;
                    SdNotify.notify(socket, "STATUS=" + s);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Stops the status thread; call before {@link #stopping()} so no STATUS line follows STOPPING=1. */
    @Override
    public void close() {
        statusThread.interrupt();
        try {
            statusThread.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
