package io.qsup.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpErrorException;
import io.qsup.qmp.QmpEvent;
import io.qsup.qmp.QmpException;
import io.qsup.qmp.QmpStatus;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * QEMU live migration over TCP, as named steps on the two QEMUs' QMP sessions. The QEMU a failure leaves behind
 * (a target to quit) is cleaned up by the {@link VmController}'s steps, as a launch's are by {@link LaunchSteps}.
 *
 * <p>The order keeps a VM from ever running guest code in two QEMUs at once:
 * <ol>
 *   <li>{@link #listen} on the target, a QEMU started with {@code -incoming defer}: {@code events} on, then
 *       {@code stop}, which in QEMU's {@code inmigrate} state only turns autostart off, then {@code migrate-incoming}.
 *       The target will not run the VM when the state has arrived; it waits paused.</li>
 *   <li>{@link #send} on the source: capabilities and parameters, {@code migrate}, then {@code MIGRATION} events and
 *       {@code query-migrate} polls until {@code completed}, {@code failed} or {@code cancelled}. QEMU stops the
 *       source's vCPUs before it sends the last pages, so at {@code completed} the source is in {@code postmigrate}.
 *       On {@code failed} or {@code cancelled} QEMU resumes the source itself; {@link #send} waits for that and sends
 *       {@code cont} if it did not happen.</li>
 *   <li>{@link #awaitLoaded} on the target, then {@code cont} there: only now does the target run, while the source
 *       is stopped for good. Whoever drives the two (the VM controller, the cluster) quits the source afterwards.</li>
 * </ol>
 * A migration that fails before the target's {@code cont} leaves the source able to run on: the target never ran.
 *
 * <p>Stateless; every method runs on the caller's thread (a VM's ops thread) and blocks for at most its deadline.
 * Every QMP call has a deadline of its own.
 */
public final class LiveMigration {
    private static final Logger log = LoggerFactory.getLogger(LiveMigration.class);
    private static final long POLL_MILLIS = 50;

    /**
     * How a migration runs.
     *
     * @param timeout       bound of the whole transfer; when it passes the migration is cancelled and the source runs on
     * @param maxBandwidth  bytes per second QEMU may send ({@code max-bandwidth}); QEMU's own default is 32 MiB/s
     * @param downtimeLimit the longest pause of the guest QEMU aims for at switch-over ({@code downtime-limit})
     * @param qmpTimeout    deadline of each QMP call
     */
    public record Settings(Duration timeout, long maxBandwidth, Duration downtimeLimit, Duration qmpTimeout) {
        /** Two minutes, 1 GiB/s, 300 ms of downtime, 5 s per QMP call. */
        public static Settings defaults() {
            return new Settings(Duration.ofMinutes(2), 1L << 30, Duration.ofMillis(300), Duration.ofSeconds(5));
        }

        public Settings withTimeout(Duration d) {
            return new Settings(d, maxBandwidth, downtimeLimit, qmpTimeout);
        }
    }

    /** A target waiting for the VM's state: the URI to give the source's {@link #send}, and the target's pid. */
    public record Incoming(String uri, long pid) {}

    /** How a migration ended on the source. */
    public sealed interface Outcome {
        /**
         * Every page and the device state were sent; the source is stopped ({@code postmigrate}).
         *
         * @param took        from {@code migrate} to {@code completed}
         * @param downtime    QEMU's own measure of the guest's pause, or null if it gave none
         * @param transferred bytes sent
         */
        record Completed(Duration took, Duration downtime, long transferred) implements Outcome {}

        /** The migration failed or was cancelled; the source runs on. {@code reason} is in words, from QEMU. */
        record Failed(String reason) implements Outcome {}
    }

    private LiveMigration() {}

    /**
     * Makes a QEMU started with {@code -incoming defer} listen for the VM's state on {@code tcp:ADDRESS:PORT}, with a
     * free port of {@code address}, and with autostart off (see the class comment).
     *
     * @throws VmException naming the step and QEMU's words
     */
    public static Incoming listen(String vm, QmpClient target, long pid, String address, Duration qmpTimeout)
            throws VmException {
        Steps steps = new Steps(vm);
        QmpStatus st = steps.call("check-inmigrate", () -> target.queryStatus(qmpTimeout));
        if (!"inmigrate".equals(st.status())) {
            throw new VmException("VM " + vm + ": the migration target QEMU pid " + pid + " is '" + st.status()
                    + "', not 'inmigrate'; start it with -incoming defer (ArgvBuilder.buildIncoming)");
        }
        steps.call("capabilities", () -> target.execute("migrate-set-capabilities", capabilities(), qmpTimeout));
        steps.call("autostart-off", () -> target.execute("stop", null, qmpTimeout));
        // The port is free when we look; another program may take it before QEMU binds, so try a few.
        VmException last = null;
        for (int attempt = 0; attempt < 3; attempt++) {
            String uri = "tcp:" + hostPart(address) + ":" + freePort(address);
            try {
                steps.call("migrate-incoming", () -> target.execute("migrate-incoming",
                        JsonNodeFactory.instance.objectNode().put("uri", uri), qmpTimeout));
                log.info("VM {}: migration target pid {} listens on {}", vm, pid, uri);
                return new Incoming(uri, pid);
            } catch (VmException e) {
                last = e;
                log.info("VM {}: {}; trying another port", vm, e.getMessage());
            }
        }
        throw last;
    }

    /**
     * Migrates the source's VM to {@code uri} and waits for the end. Never throws for a failed migration: that is an
     * {@link Outcome.Failed} with QEMU's reason, with the source running again.
     *
     * @param cancel polled while the migration runs; when it says true the migration is cancelled
     * @throws VmException only when the source cannot even be asked (its monitor is gone)
     */
    public static Outcome send(String vm, QmpClient source, String uri, Settings settings, BooleanSupplier cancel)
            throws VmException {
        Duration q = settings.qmpTimeout();
        LinkedBlockingQueue<QmpEvent> events = new LinkedBlockingQueue<>();
        AutoCloseable listening = source.addEventListener(e -> {
            if (e.name().equals("MIGRATION")) {
                events.add(e);
            }
        });
        Steps steps = new Steps(vm);
        try {
            boolean wasRunning = steps.call("check-running", () -> source.queryStatus(q)).running();
            if (!wasRunning) {
                throw new VmException("VM " + vm + " is not running; resume it before migrating it");
            }
            steps.call("capabilities", () -> source.execute("migrate-set-capabilities", capabilities(), q));
            ObjectNode params = JsonNodeFactory.instance.objectNode()
                    .put("max-bandwidth", settings.maxBandwidth())
                    .put("downtime-limit", settings.downtimeLimit().toMillis());
            steps.call("parameters", () -> source.execute("migrate-set-parameters", params, q));
            long started = System.nanoTime();
            try {
                steps.call("migrate", () -> source.execute("migrate",
                        JsonNodeFactory.instance.objectNode().put("uri", uri), q));
            } catch (VmException refused) {
                return failed(vm, source, uri, refused.getMessage(), q);
            }
            log.info("VM {}: QEMU sends the VM to {}", vm, uri);
            return await(vm, source, uri, settings, cancel, events, started);
        } finally {
            try {
                listening.close();
            } catch (Exception ignored) {
                // removing a listener does not fail
            }
        }
    }

    /** Polls until the source's migration ends; cancels it on {@code cancel}, a timeout or an interrupt. */
    private static Outcome await(String vm, QmpClient source, String uri, Settings settings, BooleanSupplier cancel,
            LinkedBlockingQueue<QmpEvent> events, long started) throws VmException {
        Duration q = settings.qmpTimeout();
        long deadline = started + settings.timeout().toNanos();
        String cancelledBecause = null;
        while (true) {
            JsonNode info;
            try {
                info = source.execute("query-migrate", null, q);
            } catch (QmpException e) {
                throw new VmException("VM " + vm + ": cannot ask the migration source how its migration to " + uri
                        + " goes: " + e.getMessage());
            }
            String status = info.path("status").asText("");
            switch (status) {
                case "completed" -> {
                    Duration took = Duration.ofNanos(System.nanoTime() - started);
                    JsonNode down = info.path("downtime");
                    Outcome.Completed c = new Outcome.Completed(took,
                            down.isNumber() ? Duration.ofMillis(down.asLong()) : null,
                            info.path("ram").path("transferred").asLong(0));
                    log.info("VM {}: migration to {} completed in {} ms (downtime {} ms, {} bytes)", vm, uri,
                            took.toMillis(), c.downtime() == null ? "?" : c.downtime().toMillis(), c.transferred());
                    return c;
                }
                case "failed" -> {
                    String desc = info.path("error-desc").asText("");
                    return failed(vm, source, uri, desc.isEmpty() ? "QEMU gave no reason" : desc, q);
                }
                case "cancelled" -> {
                    return failed(vm, source, uri, "cancelled"
                            + (cancelledBecause == null ? " by someone else" : ": " + cancelledBecause), q);
                }
                default -> { }
            }
            if (cancelledBecause == null) {
                if (cancel.getAsBoolean()) {
                    cancelledBecause = "a stop was requested, or qsupd is exiting";
                } else if (System.nanoTime() > deadline) {
                    cancelledBecause = "it did not complete within " + io.qsup.qmp.QmpDurations.format(settings.timeout()) + " (status "
                            + status + ", " + info.path("ram").path("remaining").asLong(0)
                            + " bytes left); raise the timeout or the bandwidth";
                }
                if (cancelledBecause != null) {
                    log.warn("VM {}: cancelling the migration to {}: {}", vm, uri, cancelledBecause);
                    try {
                        source.execute("migrate_cancel", null, q);
                    } catch (QmpException e) {
                        log.warn("VM {}: migrate_cancel failed: {}", vm, e.getMessage());
                    }
                }
            }
            try {
                events.poll(POLL_MILLIS, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                // qsupd is going down: cancel rather than leave the VM half moved, then finish the wait
                cancelledBecause = cancelledBecause == null ? "qsupd is exiting" : cancelledBecause;
                try {
                    source.execute("migrate_cancel", null, q);
                } catch (QmpException ignored) {
                    // the loop asks again
                }
                Outcome o = await(vm, source, uri, settings.withTimeout(Duration.ofSeconds(10)), () -> false, events,
                        System.nanoTime());
                Thread.currentThread().interrupt();
                return o;
            }
        }
    }

    /** The migration failed: make sure the source runs again (QEMU restarts it itself, a moment after the status). */
    private static Outcome failed(String vm, QmpClient source, String uri, String why, Duration q) {
        String reason = "migration to " + uri + " failed: " + why;
        long deadline = System.nanoTime() + Duration.ofSeconds(2).toNanos();
        try {
            QmpStatus st = source.queryStatus(q);
            while (!st.running() && System.nanoTime() < deadline) {
                Thread.sleep(POLL_MILLIS);
                st = source.queryStatus(q);
            }
            if (!st.running()) {
                log.info("VM {}: the migration source is still '{}' after the failure; sending cont", vm, st.status());
                source.cont();
            }
        } catch (QmpException e) {
            reason += "; and the source's monitor did not answer afterwards: " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        log.warn("VM {}: {}; the VM runs on here", vm, reason);
        return new Outcome.Failed(reason);
    }

    /**
     * Waits until the target has loaded the whole state (its incoming migration {@code completed}, its status
     * {@code paused}). Call it after {@link #send} completed; then {@code cont} the target.
     *
     * @throws VmException when the target's load failed or did not end in time, with QEMU's reason
     */
    public static void awaitLoaded(String vm, QmpClient target, Duration timeout, Duration qmpTimeout)
            throws VmException {
        long deadline = System.nanoTime() + timeout.toNanos();
        String last = "";
        try {
            while (true) {
                JsonNode info = target.execute("query-migrate", null, qmpTimeout);
                last = info.path("status").asText("");
                if (last.equals("failed")) {
                    throw new VmException("VM " + vm + ": the migration target could not load the VM's state: "
                            + info.path("error-desc").asText("QEMU gave no reason"));
                }
                if (last.equals("completed")) {
                    QmpStatus st = target.queryStatus(qmpTimeout);
                    if (!st.status().equals("inmigrate")) {
                        return;
                    }
                }
                if (System.nanoTime() > deadline) {
                    throw new VmException("VM " + vm + ": the migration target had not loaded the VM's state after "
                            + timeout.toSeconds() + " s (its migration status: '" + last + "')");
                }
                Thread.sleep(POLL_MILLIS);
            }
        } catch (QmpException e) {
            throw new VmException("VM " + vm + ": the migration target did not answer while loading the VM's state"
                    + " (last status '" + last + "'): " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new VmException("VM " + vm + ": interrupted while the migration target loaded the VM's state");
        }
    }

    private static ObjectNode capabilities() {
        ObjectNode args = JsonNodeFactory.instance.objectNode();
        ArrayNode caps = args.putArray("capabilities");
        caps.addObject().put("capability", "events").put("state", true);
        return args;
    }

    private static String hostPart(String address) {
        return address.contains(":") ? "[" + address + "]" : address;
    }

    private static int freePort(String address) throws VmException {
        try (ServerSocket s = new ServerSocket()) {
            s.bind(new InetSocketAddress(InetAddress.getByName(address), 0));
            return s.getLocalPort();
        } catch (IOException e) {
            throw new VmException("cannot find a free TCP port on " + address + " for the migration: " + e.getMessage()
                    + "; is it an address of this host (cluster: address)?");
        }
    }

    /**
     * Runs named steps, logging each, and turns a QMP failure into a {@link VmException} naming the step. The steps
     * here leave nothing to undo on their own QEMU; what a failure leaves (a target to quit) is undone by the
     * controller's launch steps.
     */
    private static final class Steps {
        @FunctionalInterface
        interface Call<T> {
            T run() throws QmpException, VmException;
        }

        private final String vm;

        Steps(String vm) {
            this.vm = vm;
        }

        <T> T call(String name, Call<T> body) throws VmException {
            log.info("VM {}: migration step {}", vm, name);
            try {
                return body.run();
            } catch (QmpErrorException e) {
                throw new VmException("VM " + vm + ": migration step " + name + ": QEMU refused: " + e.desc());
            } catch (QmpException e) {
                throw new VmException("VM " + vm + ": migration step " + name + ": " + e.getMessage());
            }
        }
    }
}
