package io.qsup.bench;

import io.qsup.config.DaemonSettings;
import io.qsup.config.VmDefinition;
import io.qsup.config.VmPaths;
import io.qsup.qemu.ArgvBuilder;
import io.qsup.qemu.HostFacts;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpConnectException;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.vm.ProcessInspector;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The reference the qsup figures are compared with: a QEMU launched by hand with the argv qsupd would use
 * ({@code -daemonize}, a pidfile, a QMP socket), up once its monitor answers {@code query-status}. Not thread-safe;
 * one is used by one thread at a time.
 */
final class Bare implements AutoCloseable {
    private static final ProcessInspector PROC = new ProcessInspector();

    final QmpClient qmp;
    final long pid;
    final double launchMillis;
    private final VmPaths paths;

    private Bare(QmpClient qmp, long pid, double launchMillis, VmPaths paths) {
        this.qmp = qmp;
        this.pid = pid;
        this.launchMillis = launchMillis;
        this.paths = paths;
    }

    /** Spawns QEMU as qsupd would and waits for its monitor's answer; the time is from spawn to that answer. */
    static Bare launch(VmDefinition def, DaemonSettings settings, HostFacts host) throws Exception {
        VmPaths paths = settings.pathsFor(def.name());
        Files.createDirectories(paths.dir());
        Files.createDirectories(paths.logDir());
        List<String> argv = ArgvBuilder.build(def, settings, host);
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(argv).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
        if (p.waitFor() != 0) {
            throw new IllegalStateException("bare QEMU failed to start (exit " + p.exitValue() + "): " + argv);
        }
        QmpClient c = connectWithRetry(paths);
        c.queryStatus();
        double launch = (System.nanoTime() - t0) / 1e6;
        return new Bare(c, ProcessInspector.readPidFile(paths.pidFile()).orElseThrow(), launch, paths);
    }

    private static QmpClient connectWithRetry(VmPaths paths) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            try {
                return QmpClient.connect(new QmpEndpoint.Unix(paths.qmpSocket()));
            } catch (QmpConnectException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(2);
            }
        }
    }

    /** Sends the signal; returns the milliseconds until the process is dead (gone, or a zombie). */
    double signalAndAwaitDeath(ProcessInspector.Signal signal) throws Exception {
        long k = System.nanoTime();
        PROC.signal(pid, signal);
        if (!PROC.awaitDeath(pid, Duration.ofSeconds(20), 1)) {
            throw new IllegalStateException("bare QEMU " + pid + " still alive 20 s after " + signal);
        }
        return (System.nanoTime() - k) / 1e6;
    }

    /** SIGKILL; returns the milliseconds until this client sees its monitor's EOF. */
    double killAndAwaitEof() throws Exception {
        CountDownLatch gone = new CountDownLatch(1);
        qmp.onDisconnect(e -> gone.countDown());
        long k = System.nanoTime();
        PROC.signal(pid, ProcessInspector.Signal.KILL);
        if (!gone.await(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("no EOF on bare QEMU " + pid + "'s monitor 30 s after SIGKILL");
        }
        return (System.nanoTime() - k) / 1e6;
    }

    /** Kills it if still alive and waits for its death; removes its pidfile. */
    @Override
    public void close() throws Exception {
        qmp.close();
        if (PROC.isAlive(pid)) {
            PROC.signal(pid, ProcessInspector.Signal.KILL);
            PROC.awaitDeath(pid, Duration.ofSeconds(10), 5);
        }
        Files.deleteIfExists(paths.pidFile());
    }
}
