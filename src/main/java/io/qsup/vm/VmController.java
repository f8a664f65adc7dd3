package io.qsup.vm;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpDisconnectedException;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.qmp.QmpSocketProbe;
import io.qsup.qmp.QmpEvent;
import io.qsup.qmp.QmpException;
import io.qsup.qmp.QmpStatus;
import io.qsup.qmp.QmpTimeoutException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One VM's life: launch as named steps, the QMP session, exit causes, the liveness probe, the stop ladder and adoption
 * of a QEMU that outlived a previous qsupd. It owns the VM's {@link VmStateMachine}; restart decisions are asked of a
 * {@link Supervision}.
 *
 * <p>Threading: every operation that changes the VM (start, stop, exit handling, adoption, pause, ...) runs on one
 * thread {@code vm-ops NAME}, one at a time, so they never race; the public methods only queue and return a
 * future. QMP events arrive on the QMP client's dispatcher thread and only set volatile fields or queue work. The
 * liveness probe runs on {@code vm-monitor NAME}, which also refreshes the VM's {@link #stats()} (lock-free, see
 * {@link VmStatsRecorder}), and a scheduled restart waits on {@code vm-backoff NAME}. No lock is
 * held while waiting for QEMU: the ladder's waits happen on the ops thread with no lock, and a stuck VM delays only its
 * own queue. {@link #stop} sets a flag at once so a launch in progress gives up before it spawns.
 */
public final class VmController implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(VmController.class);
    private static final int MAX_SOCKET_PATH = 107; // sun_path is 108 bytes with the terminating NUL
    private static final Duration POWERDOWN_RESEND = Duration.ofSeconds(3);
    private static final long POLL_MILLIS = 25;
    /** How long a QEMU found in the middle of {@code -daemonize} gets to finish it before it is taken as it is. */
    private static final Duration DAEMONIZE_SETTLE = Duration.ofSeconds(10);
    /** How often the monitor loop refreshes the {@code /proc} figures of {@link #stats()}, between probes too. */
    private static final Duration STATS_INTERVAL = Duration.ofSeconds(1);

    /** What {@link #adopt()} found. */
    public enum AdoptOutcome {
        /** No pidfile: the VM was not running. */
        NOT_RUNNING,
        /** QEMU alive, its QMP answered: now running or paused, untouched. */
        ADOPTED,
        /** QEMU alive but QMP did not answer: orphaned, reported, never killed. */
        ORPHANED,
        /** A pidfile whose process is gone (or is not this VM's): cleaned up, handled as a crash while qsupd was down. */
        STALE
    }

    /** Where the stop ladder begins. */
    private enum Start { POWERDOWN, QUIT, SIGKILL }

    /** One QMP session to one QEMU process; the event fields are written by the QMP dispatcher thread. */
    private static final class Session {
        final QmpClient client;
        final long pid;
        volatile String shutdownReason;
        volatile boolean panicked;
        volatile boolean watchdog;
        /** Set when we end the process ourselves, so the disconnect is expected. */
        volatile boolean ending;

        Session(QmpClient client, long pid) {
            this.client = client;
            this.pid = pid;
        }
    }

    private final VmStateMachine sm;
    private final VmStatsRecorder stats;
    private final Supervision supervision;
    private final QemuLauncher launcher;
    private final ProcessInspector inspector;
    private final ExecutorService ops;
    private final Thread monitor;
    private final AtomicLong generation = new AtomicLong();
    /** Counts requests (start, stop, restart, kill) as they arrive; a restart starts only if none came after it. */
    private final AtomicLong requests = new AtomicLong();

    private volatile VmSpec spec;
    private volatile Session session;
    private volatile long pid = -1;
    private volatile String launchError;
    private volatile Instant startedAt;
    private volatile boolean stopRequested;
    /** The request number of a restart whose stop half is under way, or -1. */
    private volatile long restarting = -1;
    private volatile boolean closed;

    public VmController(VmSpec spec, Supervision supervision, QemuLauncher launcher, ProcessInspector inspector) {
        this(spec, supervision, launcher, inspector, VmState.STOPPED);
    }

    /**
     * @param initial {@code stopped}, or {@code adopting} for a VM found at qsupd's start whose QEMU may be running:
     *                until {@link #adopt()} has looked, listings say so instead of guessing
     */
    public VmController(VmSpec spec, Supervision supervision, QemuLauncher launcher, ProcessInspector inspector,
            VmState initial) {
        this.spec = spec;
        this.supervision = supervision;
        this.launcher = launcher;
        this.inspector = inspector;
        this.sm = new VmStateMachine(spec.name(), java.time.Clock.systemUTC(), initial);
        this.stats = new VmStatsRecorder(spec.name(), initial);
        sm.addListener(stats);
        // Platform threads, not virtual: QMP connects read the greeting with junixsocket on the calling thread, and
        // junixsocket parks a virtual thread on a poll job in the small common ForkJoinPool, where one slow poll can
        // starve the others past every deadline (seen with three VMs on a 2-core host).
        this.ops = Executors.newSingleThreadExecutor(
                Thread.ofPlatform().name("vm-ops " + spec.name()).daemon(true).factory());
        this.monitor = Thread.ofPlatform().name("vm-monitor " + spec.name()).daemon(true)
                .unstarted(this::monitorLoop);
        monitor.start();
    }

    public String name() {
        return spec.name();
    }

    public VmSpec spec() {
        return spec;
    }

    /** Replaces the spec; it takes effect at the next launch. */
    public void setSpec(VmSpec newSpec) {
        if (!newSpec.name().equals(spec.name())) {
            throw new IllegalArgumentException("spec of " + newSpec.name() + " given to VM " + spec.name());
        }
        this.spec = newSpec;
    }

    public VmStateMachine stateMachine() {
        return sm;
    }

    public VmState state() {
        return sm.state();
    }

    /** The QEMU pid, or -1 when there is no process. */
    public long pid() {
        return pid;
    }

    /** QEMU's own words from the last failed launch, or null. */
    public String launchError() {
        return launchError;
    }

    /** When the current QEMU started, or null. */
    public Instant startedAt() {
        return startedAt;
    }

    /** The VM's figures for metrics and {@code query-vm-stats}; reads volatile fields only, never waits on the VM. */
    public VmStats stats() {
        return stats.snapshot(pid, startedAt, spec.argv());
    }

    // ---- requests (queue and return) ----

    /** Starts the VM if it has no process; from failed or backoff too. Completes with the state reached. */
    public CompletableFuture<VmState> start(Cause cause, String detail) {
        noteRequest("start");
        return submit(() -> doStart(cause, detail));
    }

    /**
     * Stops the VM with the ladder, then starts it, as one operation. Any request that arrives before the start half
     * (a stop above all) wins: the start is cancelled and the log says so.
     */
    public CompletableFuture<VmState> restart(boolean force, Duration timeout, Cause cause, String detail) {
        long requested = System.nanoTime();
        long ticket = noteRequest("restart");
        stopRequested = true;
        generation.incrementAndGet();
        return submit(() -> {
            restarting = ticket;
            StopResult r;
            try {
                r = doStop(force ? Start.QUIT : Start.POWERDOWN, requested, timeout, cause, detail);
            } finally {
                restarting = -1;
            }
            if (requests.get() != ticket) {
                log.info("VM {}: restart: the start is cancelled, a later request came during the stop", name());
                return sm.state();
            }
            if (!r.stopped()) {
                return sm.state();
            }
            return doStart(cause, detail);
        });
    }

    /** Numbers a request as it arrives; a stop or start during a restart's stop half is logged as cancelling it. */
    private long noteRequest(String what) {
        long n = requests.incrementAndGet();
        if (restarting >= 0 && restarting != n) {
            log.info("VM {}: {} requested while a restart is stopping the VM; the restart's start is cancelled",
                    name(), what);
        }
        return n;
    }

    /**
     * Stops the VM with the ladder. The {@code timeout} bounds the whole ladder from now, even if the request waits
     * behind a launch. {@code force} starts at {@code quit}.
     */
    public CompletableFuture<StopResult> stop(boolean force, Duration timeout, Cause cause, String detail) {
        long requested = System.nanoTime();
        noteRequest("stop");
        stopRequested = true;
        generation.incrementAndGet(); // cancels a scheduled restart
        return submit(() -> doStop(force ? Start.QUIT : Start.POWERDOWN, requested, timeout, cause, detail));
    }

    /** Ends the VM with SIGKILL at once. */
    public CompletableFuture<StopResult> kill(Cause cause, String detail) {
        long requested = System.nanoTime();
        noteRequest("kill");
        stopRequested = true;
        generation.incrementAndGet();
        return submit(() -> doStop(Start.SIGKILL, requested, spec.stopTimeout(), cause, detail));
    }

    /** Finds a QEMU left by an earlier qsupd and takes it over without touching it. */
    public CompletableFuture<AdoptOutcome> adopt() {
        return submit(this::doAdopt);
    }


    /** Pauses the vCPUs (QMP stop). */
    public CompletableFuture<VmState> pause() {
        return submit(() -> {
            requireSession("pause").client.stop();
            sm.compareAndSet(VmState.RUNNING, VmState.PAUSED, Cause.OPERATOR_PAUSE, "");
            return sm.state();
        });
    }

    /** Resumes the vCPUs (QMP cont). */
    public CompletableFuture<VmState> resume() {
        return submit(() -> {
            requireSession("resume").client.cont();
            sm.compareAndSet(VmState.PAUSED, VmState.RUNNING, Cause.OPERATOR_RESUME, "");
            return sm.state();
        });
    }

    /** Hard-resets the guest (QMP system_reset); QEMU keeps running. */
    public CompletableFuture<VmState> reset() {
        return submit(() -> {
            requireSession("reset").client.systemReset();
            return sm.state();
        });
    }

    /** Leaves {@code failed} for {@code stopped} without starting. */
    public CompletableFuture<VmState> resetFailed() {
        return submit(() -> {
            sm.compareAndSet(VmState.FAILED, VmState.STOPPED, Cause.RESET_FAILED, "");
            return sm.state();
        });
    }

    /**
     * Runs one QMP command for an operator ({@code qsup qmp NAME}). It goes straight to the session, not through the
     * ops thread, so it is not held up behind a stop ladder; the QMP client is thread-safe.
     */
    public JsonNode qmp(String command, com.fasterxml.jackson.databind.node.ObjectNode args, Duration timeout)
            throws VmException, io.qsup.qmp.QmpException {
        return requireSession("run " + command).client.execute(command, args, timeout);
    }

    /** Queues work on this VM's ops thread; exceptions complete the future exceptionally. */
    private <T> CompletableFuture<T> submit(Callable<T> task) {
        CompletableFuture<T> f = new CompletableFuture<>();
        try {
            ops.execute(() -> {
                try {
                    f.complete(task.call());
                } catch (Throwable t) {
                    f.completeExceptionally(t);
                }
            });
        } catch (RejectedExecutionException e) {
            f.completeExceptionally(new VmException("VM " + name() + ": controller closed"));
        }
        return f;
    }

    private Session requireSession(String what) throws VmException {
        Session s = session;
        if (s == null) {
            throw new VmException("VM " + name() + " is " + sm.state() + ", cannot " + what
                    + "; start it first (or wait until its monitor is regained)");
        }
        return s;
    }

    // ---- launch ----

    private VmState doStart(Cause cause, String detail) {
        if (sm.state() == VmState.ADOPTING) {
            doAdopt(); // a start queued before adoption ran: look first, never launch beside a live QEMU
        }
        VmState s = sm.state();
        if (s.hasProcess() || s == VmState.STARTING) {
            return s;
        }
        stopRequested = false;
        generation.incrementAndGet();
        // Wait for a launch slot (max-parallel-starts) before STARTING, so at most that many VMs are ever starting;
        // a stop request ends the wait, so a queued VM never delays its own stop.
        try {
            while (!supervision.tryAcquireLaunchSlot(name(), Duration.ofMillis(100))) {
                if (stopRequested || closed) {
                    return sm.state();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return sm.state();
        }
        try {
            sm.setState(VmState.STARTING, cause, detail);
            launchError = null;
            long running = liveInstance(spec);
            if (running > 0) {
                log.warn("VM {}: a QEMU of this VM already runs as pid {}; adopting it instead of launching a second",
                        name(), running);
                return adoptPid(spec, running, "found running as pid " + running + " at start; adopted, not launched");
            }
            try {
                VmState reached = launch();
                if (reached == null) {
                    sm.setState(VmState.STOPPED, Cause.OPERATOR_STOP, "stop requested during start");
                    return sm.state();
                }
                sm.setState(reached, Cause.LAUNCHED, "pid " + pid);
                supervision.onGoodStart(name());
            } catch (LaunchFailedException e) {
                launchError = e.userMessage();
                log.error("VM {}: {}", name(), e.getMessage()
                        + (e.qemuStderr().isBlank() ? "" : "\n" + e.qemuStderr().strip()));
                handleExit(ExitCause.of(ExitCause.Kind.LAUNCH_FAILED, e.userMessage()));
            }
            return sm.state();
        } finally {
            supervision.launchFinished(name());
        }
    }

    /** Runs the launch steps; returns the state QEMU reports, or null if a stop came before the spawn. */
    private VmState launch() throws LaunchFailedException {
        VmSpec sp = spec;
        LaunchSteps steps = new LaunchSteps(sp.name());
        Session[] made = new Session[1];
        VmState[] reached = new VmState[1];
        try {
            steps.step("validate", () -> validate(sp), null);
            steps.step("prepare-dirs", () -> {
                Files.createDirectories(sp.runDir() != null ? sp.runDir() : sp.qmpSocket().getParent());
                if (sp.qemuLog() != null) {
                    Files.createDirectories(sp.qemuLog().getParent());
                }
                Files.deleteIfExists(sp.qmpSocket());
                Files.deleteIfExists(sp.pidFile());
            }, null);
            if (stopRequested) {
                return null;
            }
            steps.step("spawn", () -> {
                QemuLauncher.Result r = launcher.run(sp.name(), sp.argv(), sp.qemuLog(), sp.launchTimeout());
                if (!r.ok()) {
                    String why = r.timedOut() ? "the QEMU launcher did not finish within "
                            + sp.launchTimeout().toSeconds() + " s" : "QEMU exited with status " + r.exitCode();
                    throw new LaunchFailedException(sp.name(), "spawn", why, r.output(), null);
                }
                OptionalLong p = ProcessInspector.readPidFile(sp.pidFile());
                if (p.isEmpty()) {
                    throw new VmException("QEMU started but wrote no pid to " + sp.pidFile());
                }
                pid = p.getAsLong();
                startedAt = Instant.now();
            }, () -> killQuietly(pid));
            steps.step("wait-qmp", () -> awaitSocket(sp.qmpSocket(), Duration.ofSeconds(10)), null);
            steps.step("connect", () -> made[0] = openSession(sp, pid, Duration.ofSeconds(5)),
                    () -> made[0].client.close());
            steps.step("query-status", () -> {
                QmpStatus st = made[0].client.queryStatus(Duration.ofSeconds(5));
                reached[0] = st.running() ? VmState.RUNNING : VmState.PAUSED;
            }, null);
        } catch (LaunchFailedException e) {
            steps.unwind();
            session = null;
            pid = -1;
            startedAt = null;
            deleteRuntimeFiles(sp);
            throw e;
        }
        session = made[0];
        return reached[0];
    }

    private void validate(VmSpec sp) throws VmException, IOException {
        if (sp.argv().isEmpty()) {
            throw new VmException("empty QEMU command line");
        }
        int len = sp.qmpSocket().toString().getBytes(StandardCharsets.UTF_8).length;
        if (len > MAX_SOCKET_PATH) {
            throw new VmException("QMP socket path " + sp.qmpSocket() + " is " + len + " bytes, over the limit of "
                    + MAX_SOCKET_PATH + "; use a shorter run-dir");
        }
        // doStart looked in the pidfile and /proc just before; what is left is a monitor served by a hidden process
        if (QmpSocketProbe.isServed(sp.qmpSocket())) {
            throw new VmException("QMP socket " + sp.qmpSocket() + " is served by a process qsupd cannot see in /proc"
                    + "; not launching a second QEMU of this VM (end that process, or run qsupd where it can see it)");
        }
    }

    /**
     * The pid of a live QEMU of this VM, or -1: the pidfile's pid if it is this VM's, else one found in {@code /proc}
     * by the VM's argv markers (the pidfile may be lost, emptied or garbled), else the pid serving its QMP socket.
     */
    private long liveInstance(VmSpec sp) {
        OptionalLong fromFile;
        try {
            fromFile = ProcessInspector.readPidFile(sp.pidFile());
        } catch (IOException e) {
            log.warn("VM {}: {}", name(), e.getMessage());
            fromFile = OptionalLong.empty();
        }
        if (fromFile.isPresent() && inspector.belongsTo(fromFile.getAsLong(), sp.name(), sp.pidFile(), sp.qmpSocket())) {
            return fromFile.getAsLong();
        }
        ProcessInspector.Instances found = inspector.findInstances(sp.name(), sp.pidFile(), sp.qmpSocket());
        long settle = System.nanoTime() + DAEMONIZE_SETTLE.toNanos();
        while (found.serving().isEmpty() && !found.starting().isEmpty() && System.nanoTime() < settle
                && !Thread.currentThread().isInterrupted()) {
            // a QEMU of this VM is still daemonizing (a launch by a qsupd that was killed): let it finish
            sleepQuietly(POLL_MILLIS);
            found = inspector.findInstances(sp.name(), sp.pidFile(), sp.qmpSocket());
        }
        List<Long> live = found.serving().isEmpty() ? found.starting() : found.serving();
        if (live.size() > 1) {
            log.error("VM {}: {} QEMUs of this VM are alive: pids {}; taking {} and leaving the others alone; end them"
                    + " by hand", name(), live.size(), live, live.get(0));
        }
        if (!live.isEmpty()) {
            long p = live.get(0);
            log.warn("VM {}: pidfile {} does not name its live QEMU; found pid {} in /proc by its argv", name(),
                    sp.pidFile(), p);
            return p;
        }
        long served = QmpSocketProbe.peerPid(sp.qmpSocket());
        if (served > 0 && inspector.belongsTo(served, sp.name(), sp.pidFile(), sp.qmpSocket())) {
            return served;
        }
        return -1;
    }

    private static String join(String a, String b) {
        return a == null || a.isEmpty() ? b : a + "; " + b;
    }

    private static void sleepQuietly(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void awaitSocket(Path socket, Duration timeout) throws VmException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!Files.exists(socket)) {
            if (System.nanoTime() > deadline) {
                throw new VmException("QMP socket " + socket + " did not appear within " + timeout.toSeconds() + " s");
            }
            Thread.sleep(POLL_MILLIS);
        }
    }

    private Session openSession(VmSpec sp, long qemuPid, Duration connectTimeout) throws QmpException {
        QmpClient client = QmpClient.connect(new QmpEndpoint.Unix(sp.qmpSocket()),
                new QmpClient.Options(connectTimeout, Duration.ofSeconds(10), sp.name()));
        Session s = new Session(client, qemuPid);
        client.addEventListener(ev -> onEvent(s, ev));
        client.onDisconnect(ex -> {
            try {
                ops.execute(() -> onSessionEnded(s));
            } catch (RejectedExecutionException closing) {
                // the controller is closing; nothing to handle
            }
        });
        return s;
    }

    // ---- QMP events and exits ----

    /** On the QMP dispatcher thread: record, never block. */
    private void onEvent(Session s, QmpEvent ev) {
        JsonNode data = ev.data();
        sm.announce(new VmEvent.QmpEventSeen(name(), ev.name(), data, ev.timestamp()));
        switch (ev.name()) {
            case "SHUTDOWN" -> {
                s.shutdownReason = data == null ? "" : data.path("reason").asText("");
                log.info("VM {}: QMP SHUTDOWN reason {}", name(), s.shutdownReason);
            }
            case "GUEST_PANICKED" -> {
                String action = data == null ? "" : data.path("action").asText("");
                log.warn("VM {}: guest panicked (action {})", name(), action);
                switch (action) {
                    // QEMU ends next: the coming SHUTDOWN (reason guest-panic) or EOF is the panic's doing
                    case "poweroff", "shutdown" -> s.panicked = true;
                    // QEMU keeps the panicked guest around; end it so the policy can act
                    case "pause" -> queue(() -> endSession(s, ExitCause.of(ExitCause.Kind.GUEST_PANIC,
                            "guest panicked, QEMU paused the guest")));
                    // run: a crash kernel takes over and the guest goes on
                    default -> { }
                }
            }
            case "WATCHDOG" -> {
                String action = data == null ? "" : data.path("action").asText("");
                log.warn("VM {}: guest watchdog fired (action {})", name(), action);
                switch (action) {
                    // QEMU ends next: the coming SHUTDOWN or EOF is the watchdog's doing
                    case "poweroff", "shutdown" -> s.watchdog = true;
                    // QEMU keeps the guest stopped: end it so the policy can act, as for a paused panic
                    case "pause" -> queue(() -> endSession(s, ExitCause.of(ExitCause.Kind.WATCHDOG,
                            "guest watchdog fired, QEMU paused the guest")));
                    // reset, inject-nmi, debug, none: the guest goes on; nothing ended
                    default -> { }
                }
            }
            case "STOP" -> {
                if (s == session) {
                    sm.compareAndSet(VmState.RUNNING, VmState.PAUSED, Cause.QEMU_STATUS, "QMP STOP event");
                }
            }
            case "RESUME" -> {
                if (s == session) {
                    sm.compareAndSet(VmState.PAUSED, VmState.RUNNING, Cause.QEMU_STATUS, "QMP RESUME event");
                }
            }
            default -> log.debug("VM {}: QMP event {}", name(), ev.name());
        }
    }

    /** Queues work on the ops thread from another thread; dropped quietly once the controller is closed. */
    private void queue(Runnable r) {
        try {
            ops.execute(r);
        } catch (RejectedExecutionException closing) {
            log.debug("VM {}: controller closed, dropping queued work", name());
        }
    }

    /** On the ops thread: the QMP connection of {@code s} closed. */
    private void onSessionEnded(Session s) {
        if (s != session || s.ending || closed) {
            return; // an old session, or one we are ending ourselves
        }
        long p = s.pid;
        boolean dead = awaitDeath(p, System.nanoTime() + Duration.ofSeconds(5).toNanos());
        if (!dead) {
            session = null;
            sm.setState(VmState.ORPHANED, Cause.MONITOR_LOST, "QMP connection lost while QEMU pid " + p + " lives on");
            return;
        }
        handleExit(causeOf(s));
    }

    private ExitCause causeOf(Session s) {
        if (s.panicked) {
            return ExitCause.of(ExitCause.Kind.GUEST_PANIC);
        }
        if (s.watchdog) {
            return ExitCause.of(ExitCause.Kind.WATCHDOG);
        }
        if (s.shutdownReason != null) {
            return ExitCause.fromShutdownReason(s.shutdownReason);
        }
        return ExitCause.of(ExitCause.Kind.CRASHED, "QMP closed without SHUTDOWN; pid " + s.pid + " died");
    }

    /** On the ops thread: end a session's QEMU ourselves (hang, paused panic) and handle the exit with {@code cause}. */
    private void endSession(Session s, ExitCause cause) {
        if (s != session) {
            return;
        }
        s.ending = true;
        killQuietly(s.pid);
        awaitDeath(s.pid, System.nanoTime() + Duration.ofSeconds(5).toNanos());
        handleExit(cause);
    }

    /** On the ops thread: the VM ended (or did not start); ask the supervision what next and go there. */
    private void handleExit(ExitCause cause) {
        Session s = session;
        session = null;
        if (s != null) {
            s.ending = true;
            s.client.close();
        }
        pid = -1;
        startedAt = null;
        deleteRuntimeFiles(spec);
        sm.setLastExitCause(cause);
        stats.exited(cause.kind());
        Supervision.Decision d = supervision.onExit(name(), cause);
        Cause word = Cause.of(cause.kind());
        String text = (cause.detail().isEmpty() ? "" : cause.detail() + "; ") + d.reason();
        switch (d) {
            // a launch that failed and is not retried leaves the VM failed, so listings and alerts see it
            case Supervision.Decision.Stop stop -> moveTo(cause.kind() == ExitCause.Kind.LAUNCH_FAILED
                    ? VmState.FAILED : VmState.STOPPED, word, text);
            case Supervision.Decision.Fail fail -> moveTo(VmState.FAILED, Cause.START_LIMIT,
                    cause.describe() + "; " + d.reason());
            case Supervision.Decision.Restart r -> {
                moveTo(VmState.BACKOFF, word, text + "; restart in " + r.delay().toMillis() + " ms");
                sm.announce(new VmEvent.RestartScheduled(name(), r.delay(), Instant.now()));
                scheduleRestart(r.delay());
            }
        }
    }

    private void moveTo(VmState to, Cause cause, String detail) {
        if (sm.state() == to) {
            log.info("VM {}: stays {} ({}: {})", name(), to, cause, detail);
        } else {
            sm.setState(to, cause, detail);
        }
    }

    private void scheduleRestart(Duration delay) {
        long gen = generation.get();
        Thread.ofVirtual().name("vm-backoff " + name()).start(() -> {
            try {
                Thread.sleep(delay);
            } catch (InterruptedException e) {
                return;
            }
            try {
                ops.execute(() -> {
                    if (generation.get() == gen && sm.state() == VmState.BACKOFF && !closed) {
                        doStart(Cause.RESTART, "after backoff");
                    }
                });
            } catch (RejectedExecutionException closing) {
                // closed while waiting
            }
        });
    }

    // ---- stop ladder ----

    private StopResult doStop(Start first, long requestedNanos, Duration timeout, Cause cause, String detail) {
        if (sm.state() == VmState.ADOPTING) {
            doAdopt(); // a stop queued before adoption ran: find the QEMU first, so the stop reaches it
        }
        VmState s = sm.state();
        Duration zero = Duration.ZERO;
        switch (s) {
            case STOPPED -> {
                stopRequested = false;
                return new StopResult(null, zero, true, "already stopped");
            }
            case BACKOFF, FAILED -> {
                stopRequested = false;
                sm.setState(VmState.STOPPED, cause, join(detail, "was " + s + "; no process to stop"));
                return new StopResult(null, zero, true, "was " + s + "; no process to stop");
            }
            default -> { }
        }
        Session ses = session;
        long p = pid;
        sm.setState(VmState.STOPPING, cause, detail);
        if (ses != null) {
            ses.ending = true;
        }
        long total = timeout.toNanos();
        long deadline = requestedNanos + total;
        long killShare = Math.min(Duration.ofSeconds(2).toNanos(), total / 10);
        long termShare = Math.min(Duration.ofSeconds(3).toNanos(), total / 6);
        long quitShare = Math.min(Duration.ofSeconds(5).toNanos(), total / 5);
        long termEnd = deadline - killShare;
        long quitEnd = termEnd - termShare;
        long powerdownEnd = quitEnd - quitShare;

        StopRung rung = null;
        boolean dead = !inspector.isAlive(p);
        if (!dead && first == Start.POWERDOWN && ses != null && s == VmState.RUNNING) {
            rung = StopRung.POWERDOWN;
            sm.reportRung(rung);
            dead = powerdownRung(ses, p, powerdownEnd);
        }
        if (!dead && closed) {
            return abandoned(rung, p, requestedNanos);
        }
        if (!dead && first != Start.SIGKILL && ses != null) {
            rung = StopRung.QUIT;
            sm.reportRung(rung);
            try {
                ses.client.execute("quit", null, Duration.ofNanos(Math.max(quitEnd - System.nanoTime(), 1_000_000)));
            } catch (QmpException e) {
                log.info("VM {}: quit: {}", name(), e.getMessage());
            }
            dead = awaitDeath(p, quitEnd);
        }
        if (!dead && closed) {
            return abandoned(rung, p, requestedNanos);
        }
        if (!dead && first != Start.SIGKILL) {
            rung = StopRung.SIGTERM;
            sm.reportRung(rung);
            signalQuietly(p, ProcessInspector.Signal.TERM);
            dead = awaitDeath(p, termEnd);
        }
        if (!dead && closed) {
            return abandoned(rung, p, requestedNanos);
        }
        if (!dead) {
            rung = StopRung.SIGKILL;
            sm.reportRung(rung);
            signalQuietly(p, ProcessInspector.Signal.KILL);
            dead = awaitDeath(p, Math.max(deadline, System.nanoTime() + Duration.ofMillis(500).toNanos()));
        }
        Duration took = Duration.ofNanos(System.nanoTime() - requestedNanos);
        if (ses != null) {
            ses.client.close();
        }
        session = null;
        stopRequested = false;
        if (!dead) {
            sm.setState(VmState.FAILED, Cause.STOP_FAILED, "pid " + p + " survived SIGKILL");
            return new StopResult(rung, took, false, "pid " + p + " did not end even after SIGKILL");
        }
        pid = -1;
        startedAt = null;
        deleteRuntimeFiles(spec);
        sm.setLastExitCause(ExitCause.of(ExitCause.Kind.OPERATOR_STOP, "ended at rung " + rung));
        stats.exited(ExitCause.Kind.OPERATOR_STOP);
        sm.setState(VmState.STOPPED, cause, join(detail, "ended at rung " + rung + " after " + took.toMillis() + " ms"));
        return new StopResult(rung, took, true, "ended at rung " + rung);
    }

    /**
     * qsupd is exiting in the middle of a ladder: climb no further, since stopping the daemon must never stop a VM.
     * The persisted stop intent lets the next qsupd resume the ladder.
     */
    private StopResult abandoned(StopRung reached, long p, long requestedNanos) {
        String at = reached == null ? "before its first rung" : "at rung " + reached;
        log.info("VM {}: qsupd is exiting; the stop ladder is left {} and QEMU pid {} is left alone", name(), at, p);
        return new StopResult(reached, Duration.ofNanos(System.nanoTime() - requestedNanos), false,
                "qsupd exited with the ladder " + at + "; the next qsupd resumes the stop");
    }

    /** Presses the power button now and every few seconds until the process dies or the rung's time is up. */
    private boolean powerdownRung(Session ses, long p, long end) {
        while (System.nanoTime() < end && !closed) {
            try {
                ses.client.execute("system_powerdown", null,
                        Duration.ofNanos(Math.max(Math.min(end - System.nanoTime(), Duration.ofSeconds(2).toNanos()),
                                1_000_000)));
            } catch (QmpException e) {
                log.info("VM {}: system_powerdown: {}", name(), e.getMessage());
                if (e instanceof QmpDisconnectedException) {
                    return awaitDeath(p, end);
                }
            }
            if (awaitDeath(p, Math.min(end, System.nanoTime() + POWERDOWN_RESEND.toNanos()))) {
                return true;
            }
        }
        return !inspector.isAlive(p);
    }

    private boolean awaitDeath(long p, long deadlineNanos) {
        if (p <= 0) {
            return true;
        }
        while (inspector.isAlive(p)) {
            if (System.nanoTime() >= deadlineNanos) {
                return false;
            }
            try {
                Thread.sleep(POLL_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return !inspector.isAlive(p);
            }
        }
        return true;
    }

    private void signalQuietly(long p, ProcessInspector.Signal sig) {
        try {
            inspector.signal(p, sig);
        } catch (IOException e) {
            log.warn("VM {}: cannot send {} to pid {}: {}", name(), sig, p, e.getMessage());
        }
    }

    private void killQuietly(long p) {
        if (p > 0 && inspector.belongsTo(p, name(), spec.pidFile(), spec.qmpSocket())) {
            signalQuietly(p, ProcessInspector.Signal.KILL);
        }
    }

    private void deleteRuntimeFiles(VmSpec sp) {
        try {
            Files.deleteIfExists(sp.pidFile());
            Files.deleteIfExists(sp.qmpSocket());
        } catch (IOException e) {
            log.warn("VM {}: cannot remove runtime files: {}", name(), e.toString());
        }
    }

    // ---- adoption ----

    private AdoptOutcome doAdopt() {
        VmSpec sp = spec;
        VmState now = sm.state();
        if (now != VmState.STOPPED && now != VmState.ADOPTING) {
            return now == VmState.ORPHANED ? AdoptOutcome.ORPHANED : AdoptOutcome.ADOPTED;
        }
        long running = liveInstance(sp);
        if (running > 0) {
            return adoptPid(sp, running, "pid " + running) == VmState.ORPHANED ? AdoptOutcome.ORPHANED
                    : AdoptOutcome.ADOPTED;
        }
        boolean leftovers = Files.exists(sp.pidFile());
        if (leftovers || Files.exists(sp.qmpSocket())) {
            deleteRuntimeFiles(sp);
        }
        if (leftovers && supervision.expectedRunning(name())) {
            log.info("VM {}: stale pidfile {} (no live QEMU of this VM); cleaning up", name(), sp.pidFile());
            handleExit(ExitCause.of(ExitCause.Kind.CRASHED, "QEMU died while qsupd was down"));
            return AdoptOutcome.STALE;
        }
        if (leftovers) {
            log.info("VM {}: stale pidfile {} of a VM that is not meant to run; cleaned up, the VM stays stopped",
                    name(), sp.pidFile());
        }
        sm.compareAndSet(VmState.ADOPTING, VmState.STOPPED, Cause.NOT_RUNNING, "no QEMU of this VM is running");
        return AdoptOutcome.NOT_RUNNING;
    }

    /** Takes over the live QEMU {@code candidate} of this VM: QMP session and state, or orphaned if QMP is silent. */
    private VmState adoptPid(VmSpec sp, long candidate, String detail) {
        pid = candidate;
        startedAt = ProcessHandle.of(candidate).flatMap(h -> h.info().startInstant()).orElse(Instant.now());
        restorePidFile(sp, candidate);
        try {
            Session s = openSession(sp, candidate, Duration.ofSeconds(5));
            QmpStatus st;
            try {
                st = s.client.queryStatus(adoptTimeout());
            } catch (QmpException e) {
                s.client.close(); // QEMU serves one monitor client at a time: never keep a failed one
                throw e;
            }
            session = s;
            sm.setState(st.running() ? VmState.RUNNING : VmState.PAUSED, Cause.ADOPTED, detail);
        } catch (QmpException e) {
            sm.setState(VmState.ORPHANED, Cause.MONITOR_LOST, "pid " + candidate + " alive but QMP does not answer: "
                    + e.getMessage());
        }
        return sm.state();
    }

    /** Rewrites a lost or wrong pidfile (temp file, then rename) so the next adoption and every tool find the pid. */
    private void restorePidFile(VmSpec sp, long p) {
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
            Files.move(tmp, sp.pidFile(), java.nio.file.StandardCopyOption.ATOMIC_MOVE,
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            log.info("VM {}: wrote pid {} to {}", name(), p, sp.pidFile());
        } catch (IOException e) {
            log.warn("VM {}: cannot rewrite pidfile {}: {}", name(), sp.pidFile(), e.toString());
        }
    }

    /** Adoption is a one-off under start-up load (a fresh JVM, many VMs at once): give QMP more than a probe. */
    private Duration adoptTimeout() {
        Duration p = spec.probeTimeout();
        return p.compareTo(Duration.ofSeconds(5)) > 0 ? p : Duration.ofSeconds(5);
    }

    /** On the ops thread: try to regain the monitor of an orphan, or notice that it died. */
    private void retryOrphan() {
        if (sm.state() != VmState.ORPHANED || closed) {
            return;
        }
        long p = pid;
        if (!inspector.isAlive(p)) {
            handleExit(ExitCause.of(ExitCause.Kind.CRASHED, "orphaned QEMU pid " + p + " died"));
            return;
        }
        try {
            Session s = openSession(spec, p, Duration.ofSeconds(2));
            QmpStatus st;
            try {
                st = s.client.queryStatus(adoptTimeout());
            } catch (QmpException e) {
                s.client.close(); // QEMU serves one monitor client at a time: never keep a failed one
                throw e;
            }
            session = s;
            sm.setState(st.running() ? VmState.RUNNING : VmState.PAUSED, Cause.MONITOR_REGAINED, "pid " + p);
        } catch (QmpException e) {
            log.debug("VM {}: still orphaned: {}", name(), e.getMessage());
        }
    }

    // ---- liveness ----

    private void monitorLoop() {
        long nextProbe = System.nanoTime() + spec.probeInterval().toNanos();
        while (!closed) {
            try {
                Thread.sleep(Duration.ofNanos(Math.max(0,
                        Math.min(nextProbe - System.nanoTime(), STATS_INTERVAL.toNanos()))));
            } catch (InterruptedException e) {
                return;
            }
            stats.sampleProcess(pid); // /proc only: cheap, and answers for a frozen QEMU too
            if (System.nanoTime() < nextProbe) {
                continue;
            }
            nextProbe = System.nanoTime() + spec.probeInterval().toNanos();
            VmState st = sm.state();
            Session s = session;
            if (st == VmState.ORPHANED) {
                try {
                    ops.execute(this::retryOrphan);
                } catch (RejectedExecutionException closing) {
                    return;
                }
                continue;
            }
            if ((st != VmState.RUNNING && st != VmState.PAUSED) || s == null) {
                continue;
            }
            probe(s);
        }
    }

    private void probe(Session s) {
        Duration deadline = spec.probeTimeout();
        try {
            long sent = System.nanoTime();
            QmpStatus q = s.client.queryStatus(deadline);
            Duration rtt = Duration.ofNanos(System.nanoTime() - sent);
            sm.setUnresponsive(false, "");
            if (s == session) {
                if (q.running()) {
                    sm.compareAndSet(VmState.PAUSED, VmState.RUNNING, Cause.QEMU_STATUS, "query-status: " + q.status());
                } else if (!q.status().equals("shutdown")) {
                    sm.compareAndSet(VmState.RUNNING, VmState.PAUSED, Cause.QEMU_STATUS, "query-status: " + q.status());
                }
                stats.probed(s.pid, rtt, s.client.greeting().version(), blockstats(s, deadline));
            }
        } catch (QmpTimeoutException e) {
            if (s != session) {
                return;
            }
            sm.setUnresponsive(true, "query-status got no answer within " + deadline.toMillis() + " ms");
            if (spec.restartOnHang()) {
                try {
                    ops.execute(() -> endSession(s, ExitCause.of(ExitCause.Kind.HANG,
                            "no answer to query-status within " + deadline.toMillis() + " ms")));
                } catch (RejectedExecutionException closing) {
                    // closing
                }
            }
        } catch (QmpDisconnectedException e) {
            // the disconnect handler deals with it
        } catch (QmpException e) {
            log.debug("VM {}: probe: {}", name(), e.getMessage());
        }
    }

    /** {@code query-blockstats} for the VM's stats, or null when QEMU does not answer it in time. */
    private JsonNode blockstats(Session s, Duration deadline) {
        try {
            return s.client.execute("query-blockstats", null, deadline);
        } catch (QmpException e) {
            log.debug("VM {}: query-blockstats: {}", name(), e.getMessage());
            return null;
        }
    }

    /**
     * Lets go of the VM without touching QEMU: the QMP session is closed, threads end, QEMU keeps running (the daemon
     * is exiting or restarting).
     */
    @Override
    public void close() {
        closed = true;
        monitor.interrupt();
        Session s = session;
        if (s != null) {
            s.ending = true;
            s.client.close();
        }
        ops.shutdownNow();
    }

    /** Waits until the state satisfies the predicate; for callers that need to block (tests, shutdown). */
    public VmState await(java.util.function.Predicate<VmState> p, Duration timeout)
            throws InterruptedException, java.util.concurrent.TimeoutException {
        return sm.await(p, timeout);
    }

    /** The changed definition keys waiting for a restart. */
    public List<String> restartPendingKeys() {
        return sm.restartPendingKeys();
    }
}
