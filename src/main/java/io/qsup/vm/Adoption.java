package io.qsup.vm;

import io.qsup.qmp.QmpException;
import io.qsup.qmp.QmpSocketProbe;
import io.qsup.qmp.QmpStatus;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.OptionalLong;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finding a live QEMU of a VM and taking over its monitor (DESIGN.md 1 and 9): by its pidfile, by its argv markers in
 * {@code /proc} when the pidfile is lost or wrong, or by the process serving its QMP socket. It never kills and never
 * launches; what the controller makes of a find is the controller's business.
 *
 * <p>Threading: stateless apart from its final fields; called on the VM's ops thread, and it may block for a few
 * seconds (a QEMU that is still daemonizing, a slow QMP greeting) with no lock held.
 */
final class Adoption {
    private static final Logger log = LoggerFactory.getLogger(Adoption.class);
    private static final long POLL_MILLIS = 25;
    /** How long a QEMU found in the middle of {@code -daemonize} gets to finish it before it is taken as it is. */
    private static final Duration DAEMONIZE_SETTLE = Duration.ofSeconds(10);

    /** Opens a QMP session to a VM's QEMU, with the controller's listeners attached. */
    @FunctionalInterface
    interface Opener {
        QmpSession open(VmSpec spec, long pid, Duration connectTimeout) throws QmpException;
    }

    /** A monitor regained: the session and whether the vCPUs run. */
    record Regained(QmpSession session, boolean running) {}

    private final String name;
    private final ProcessInspector inspector;
    private final Opener opener;

    Adoption(String name, ProcessInspector inspector, Opener opener) {
        this.name = name;
        this.inspector = inspector;
        this.opener = opener;
    }

    /**
     * The pid of a live QEMU of this VM, or -1: the pidfile's pid if it is this VM's, else one found in {@code /proc}
     * by the VM's argv markers (the pidfile may be lost, emptied or garbled), else the pid serving its QMP socket.
     */
    long liveInstance(VmSpec sp) {
        return liveInstance(sp, null);
    }

    /**
     * {@link #liveInstance(VmSpec)}, its first look in {@code /proc} made in {@code procs} when given (a scan shared
     * by many adoptions at once, made when one of them first needs it); a QEMU still daemonizing there is watched in
     * fresh scans.
     */
    long liveInstance(VmSpec sp, Supplier<ProcessInspector.Scan> procs) {
        OptionalLong fromFile;
        try {
            fromFile = ProcessInspector.readPidFile(sp.pidFile());
        } catch (IOException e) {
            log.warn("VM {}: {}", name, e.getMessage());
            fromFile = OptionalLong.empty();
        }
        if (fromFile.isPresent() && inspector.belongsTo(fromFile.getAsLong(), sp.name(), sp.pidFile(), sp.qmpSocket())) {
            return fromFile.getAsLong();
        }
        ProcessInspector.Instances found = procs != null
                ? inspector.findInstances(procs.get(), sp.name(), sp.pidFile(), sp.qmpSocket())
                : inspector.findInstances(sp.name(), sp.pidFile(), sp.qmpSocket());
        long settle = System.nanoTime() + DAEMONIZE_SETTLE.toNanos();
        while (found.serving().isEmpty() && !found.starting().isEmpty() && System.nanoTime() < settle
                && !Thread.currentThread().isInterrupted()) {
            // a QEMU of this VM is still daemonizing (a launch by a qsupd that was killed): let it finish
            try {
                Thread.sleep(POLL_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            found = inspector.findInstances(sp.name(), sp.pidFile(), sp.qmpSocket());
        }
        List<Long> live = found.serving().isEmpty() ? found.starting() : found.serving();
        if (live.size() > 1) {
            log.error("VM {}: {} QEMUs of this VM are alive: pids {}; taking {} and leaving the others alone; end them"
                    + " by hand", name, live.size(), live, live.get(0));
        }
        if (!live.isEmpty()) {
            long p = live.get(0);
            log.warn("VM {}: pidfile {} does not name its live QEMU; found pid {} in /proc by its argv", name,
                    sp.pidFile(), p);
            return p;
        }
        long served = QmpSocketProbe.peerPid(sp.qmpSocket());
        if (served > 0 && inspector.belongsTo(served, sp.name(), sp.pidFile(), sp.qmpSocket())) {
            return served;
        }
        return -1;
    }

    /**
     * Connects to the monitor of live QEMU {@code p} and asks its status. A session whose status query fails is
     * closed before the error is thrown: QEMU serves one monitor client at a time, so a failed one is never kept.
     */
    Regained regain(VmSpec sp, long p, Duration connectTimeout) throws QmpException {
        QmpSession s = opener.open(sp, p, connectTimeout);
        try {
            QmpStatus st = s.client.queryStatus(statusTimeout(sp));
            return new Regained(s, st.running());
        } catch (QmpException e) {
            s.client.close();
            throw e;
        }
    }

    /** Rewrites a lost or wrong pidfile (temp file, then rename) so the next adoption and every tool find the pid. */
    void restorePidFile(VmSpec sp, long p) {
        try {
            OptionalLong inFile = ProcessInspector.readPidFile(sp.pidFile());
            if (inFile.isPresent() && inFile.getAsLong() == p) {
                return;
            }
        } catch (IOException garbled) {
            // rewritten below
        }
        Path tmp = sp.pidFile().resolveSibling(sp.pidFile().getFileName() + ".qsupd-tmp");
        try {
            Files.writeString(tmp, p + "\n", StandardCharsets.US_ASCII);
            Files.move(tmp, sp.pidFile(), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            log.info("VM {}: wrote pid {} to {}", name, p, sp.pidFile());
        } catch (IOException e) {
            log.warn("VM {}: cannot rewrite pidfile {}: {}", name, sp.pidFile(), e.toString());
        }
    }

    /** Adoption is a one-off under start-up load (a fresh JVM, many VMs at once): give QMP more than a probe. */
    private static Duration statusTimeout(VmSpec sp) {
        Duration p = sp.probeTimeout();
        return p.compareTo(Duration.ofSeconds(5)) > 0 ? p : Duration.ofSeconds(5);
    }
}
