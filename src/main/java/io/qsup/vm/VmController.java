package io.qsup.vm;

import com.fasterxml.jackson.databind.JsonNode;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.qmp.QmpSocketProbe;
import io.qsup.qmp.QmpEvent;
import io.qsup.qmp.QmpException;
import io.qsup.qmp.QmpStatus;
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
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One VM's life, coordinated: launch as named steps, the QMP session, exit causes and what the supervision decides
 * about them. The stop ladder ({@link StopLadder}), adoption of a QEMU that outlived a previous qsupd
 * ({@link Adoption}) and the liveness probe ({@link LivenessProbe}) live in their own classes; this one owns the VM's
 * {@link VmStateMachine} and decides every state change.
 *
 * <p>Threading: every operation that changes the VM (start, stop, exit handling, adoption, pause, ...) runs on one
 * virtual thread {@code vm-ops NAME}, one at a time, so they never race; the public methods only queue and return a
 * future. QMP events arrive on the QMP client's dispatcher thread and only set volatile fields or queue work. The
 * liveness probe runs on the virtual thread {@code vm-monitor NAME}, which also refreshes the VM's {@link #stats()}
 * (lock-free, see {@link VmStatsRecorder}), and a scheduled restart waits on {@code vm-backoff NAME}. Every per-VM
 * thread is virtual: the QMP and guest-agent sessions run over the JDK's own unix channel, which parks a virtual
 * thread, so a VM, defined or running, costs no platform thread of its own. No lock is
 * held while waiting for QEMU: the ladder's waits happen on the ops thread with no lock, and a stuck VM delays only its
 * own queue. {@link #stop} sets a flag at once so a launch in progress gives up before it spawns.
 */
public final class VmController implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(VmController.class);
    private static final int MAX_SOCKET_PATH = 107; // sun_path is 108 bytes with the terminating NUL
    private static final long POLL_MILLIS = 25;
    /** A pause longer than this leaves the guest's clock behind enough to set it again at resume. */
    private static final Duration CLOCK_RESYNC_AFTER = Duration.ofSeconds(3);
    /** Deadline of one guest-exec-status poll. */
    private static final Duration EXEC_POLL_TIMEOUT = Duration.ofSeconds(5);
    /** How long a QEMU stuck after its SHUTDOWN gets to act on SIGTERM before SIGKILL. */
    private static final Duration STUCK_EXIT_TERM_GRACE = Duration.ofSeconds(5);

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

    private final VmStateMachine sm;
    private final VmStatsRecorder stats;
    private final Supervision supervision;
    private final QemuLauncher launcher;
    private final ProcessInspector inspector;
    private final ExecutorService ops;
    private final LivenessProbe probe;
    private final StopLadder ladder;
    private final Adoption adoption;
    private final LoopHealth.Loop health;
    private final AtomicLong generation = new AtomicLong();
    /** Counts requests (start, stop, restart, kill) as they arrive; a restart starts only if none came after it. */
    private final AtomicLong requests = new AtomicLong();
    /** The number {@link #noteRequest} gave the request whose launch is the latest to begin. */
    private volatile long launchTicket;

    private volatile VmSpec spec;
    private volatile QmpSession session;
    /** The guest agent's probe for the current QEMU, or null; replaced on the ops thread only. */
    private volatile GuestAgentProbe agent;
    /** The readiness check of the current QEMU, or null; replaced on the ops thread only. */
    private volatile ReadinessProbe readiness;
    /** Completes with the current (or next) QEMU's readiness: true ready, false missed or ended. */
    private volatile CompletableFuture<Boolean> readyFuture = new CompletableFuture<>();
    private volatile boolean ready;
    private volatile String readyDetail = "";
    /** Where the serial log ended before the current launch; its lines after that count for ready-when serial. */
    private volatile long serialOffset;
    private volatile long pid = -1;
    private volatile String launchError;
    private volatile Instant startedAt;
    private volatile boolean stopRequested;
    /** The request number of a restart whose stop half is under way, or -1. */
    private volatile long restarting = -1;
    private volatile boolean closed;
    /** The completed transfer of a migration out, until the hand-over finished or failed; ops thread only. */
    private volatile LiveMigration.Outcome.Completed migratedOut;

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
        // A virtual thread: nothing on it touches junixsocket, whose blocking calls misbehave there (the QMP session
        // is a JDK channel, the socket probe hops to a platform thread of its own).
        this.ops = Executors.newSingleThreadExecutor(Thread.ofVirtual().name("vm-ops " + spec.name()).factory());
        this.health = LoopHealth.queue("vm-ops " + spec.name(), this::queue);
        this.ladder = new StopLadder(spec.name(), inspector, () -> closed, sm::reportRung);
        this.adoption = new Adoption(spec.name(), inspector, this::openSession);
        this.probe = new LivenessProbe(spec.name(), sm, stats, new ProbeHost());
        probe.start();
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
        long ticket = noteRequest("start");
        return submit(() -> doStart(ticket, cause, detail));
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
                r = doStop(force ? StopLadder.Start.QUIT : StopLadder.Start.POWERDOWN, requested, timeout, cause, detail);
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
            return doStart(ticket, cause, detail);
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
        return submit(() -> doStop(force ? StopLadder.Start.QUIT : StopLadder.Start.POWERDOWN, requested, timeout, cause, detail));
    }

    /** Ends the VM with SIGKILL at once. */
    public CompletableFuture<StopResult> kill(Cause cause, String detail) {
        long requested = System.nanoTime();
        noteRequest("kill");
        stopRequested = true;
        generation.incrementAndGet();
        return submit(() -> doStop(StopLadder.Start.SIGKILL, requested, spec.stopTimeout(), cause, detail));
    }

    /** The number of the latest request (start, stop, restart, kill, start-incoming) so far. */
    public long lastRequest() {
        return requests.get();
    }

    /**
     * Whether the latest launch to begin was asked after request {@code ticket} ({@link #lastRequest}): a fence's
     * sweep, which kills what a launch under way at the fence spawns, must leave such a later launch alone.
     */
    public boolean launchedAfter(long ticket) {
        return launchTicket > ticket;
    }

    /** Finds a QEMU left by an earlier qsupd and takes it over without touching it. */
    public CompletableFuture<AdoptOutcome> adopt() {
        return adopt(null);
    }

    /**
     * {@link #adopt()}, looking for this VM's QEMU first among the processes of {@code procs} (a scan of
     * {@code /proc} that many adoptions share, see {@link ProcessInspector#scanOnFirstUse}), when not null.
     */
    public CompletableFuture<AdoptOutcome> adopt(Supplier<ProcessInspector.Scan> procs) {
        return submit(() -> doAdopt(procs));
    }


    /** Pauses the vCPUs (QMP stop). */
    public CompletableFuture<VmState> pause() {
        return submit(() -> {
            requireSession("pause").client.stop();
            sm.compareAndSet(VmState.RUNNING, VmState.PAUSED, Cause.OPERATOR_PAUSE, "");
            return sm.state();
        });
    }

    /** Resumes the vCPUs (QMP cont); after a pause of more than a few seconds, sets the guest's clock by its agent. */
    public CompletableFuture<VmState> resume() {
        return submit(() -> {
            Instant pausedSince = sm.state() == VmState.PAUSED ? sm.since() : null;
            QmpSession s = requireSession("resume");
            refuseResumeOfMigratedSource(s);
            s.client.cont();
            if (pausedSince != null && Duration.between(pausedSince, Instant.now()).compareTo(CLOCK_RESYNC_AFTER) > 0) {
                resyncGuestClock(Duration.between(pausedSince, Instant.now()));
            }
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

    private QmpSession requireSession(String what) throws VmException {
        QmpSession s = session;
        if (s == null) {
            throw new VmException("VM " + name() + " is " + sm.state() + ", cannot " + what
                    + "; start it first (or wait until its monitor is regained)");
        }
        return s;
    }

    // ---- launch ----

    private VmState doStart(long ticket, Cause cause, String detail) {
        if (sm.state() == VmState.ADOPTING) {
            doAdopt(null); // a start queued before adoption ran: look first, never launch beside a live QEMU
        }
        VmState s = sm.state();
        if (s.hasProcess() || s == VmState.STARTING) {
            return s;
        }
        launchTicket = ticket;
        stopRequested = false;
        generation.incrementAndGet();
        // Wait for a launch slot (max-parallel-starts) before STARTING, so at most that many VMs are ever starting;
        // a stop request ends the wait, so a queued VM never delays its own stop.
        try {
            while (!supervision.tryAcquireLaunchSlot(name(), Duration.ofMillis(100))) {
                health.beat();
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
            long running = adoption.liveInstance(spec);
            if (running > 0) {
                log.warn("VM {}: a QEMU of this VM already runs as pid {}; adopting it instead of launching a second",
                        name(), running);
                return adoptPid(spec, running, "found running as pid " + running + " at start; adopted, not launched");
            }
            try {
                VmState reached = launch(spec.argv(), false);
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

    /**
     * Runs the launch steps with {@code argv}; returns the state QEMU reports, or null if a stop came before the spawn.
     * A migration target ({@code incoming}) gets no agent or readiness watch yet: its guest runs nowhere here until the
     * hand-over, and a silent agent must not count as a hung guest.
     */
    private VmState launch(List<String> argv, boolean incoming) throws LaunchFailedException {
        VmSpec sp = spec;
        LaunchSteps steps = new LaunchSteps(sp.name());
        QmpSession[] made = new QmpSession[1];
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
                if (sp.agentSocket() != null) {
                    Files.deleteIfExists(sp.agentSocket());
                }
            }, null);
            if (stopRequested) {
                return null;
            }
            serialOffset = sp.readyCheck() instanceof ReadyCheck.SerialLine s ? sizeOf(s.serialLog()) : 0;
            steps.step("spawn", () -> {
                health.quietFor(sp.launchTimeout().plusSeconds(5));
                QemuLauncher.Result r = launcher.run(sp.name(), argv, sp.qemuLog(), sp.launchTimeout());
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
        if (!incoming) {
            attachAgent();
            attachReadiness(false);
        }
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

    private static String join(String a, String b) {
        return a == null || a.isEmpty() ? b : a + "; " + b;
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

    private QmpSession openSession(VmSpec sp, long qemuPid, Duration connectTimeout) throws QmpException {
        QmpClient client = QmpClient.connect(new QmpEndpoint.Unix(sp.qmpSocket()),
                new QmpClient.Options(connectTimeout, Duration.ofSeconds(10), sp.name()).withoutFdPassing());
        QmpSession s = new QmpSession(client, qemuPid);
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

    // ---- the guest agent ----

    /** On the ops thread: a QEMU is ours now; watch its guest agent if it has a channel. */
    private void attachAgent() {
        detachAgent();
        VmSpec sp = spec;
        if (sp.agentSocket() == null || closed) {
            return;
        }
        QmpSession s = session;
        GuestAgentProbe g = new GuestAgentProbe(sp.name(), sp.agentSocket(), sm, sp.probeInterval(),
                sp.probeTimeout(), () -> sm.state() == VmState.PAUSED, () -> spec, detail -> {
                    if (spec.restartOnGuestHang()) {
                        queue(() -> endSession(s, ExitCause.of(ExitCause.Kind.GUEST_HANG, detail)));
                    }
                });
        agent = g;
        g.start();
    }

    /**
     * On the ops thread: start the readiness check of a QEMU qsupd just launched. A QEMU qsupd found running
     * ({@code found}: adopted, or its monitor regained) was ready long ago: it counts as ready at once.
     */
    private void attachReadiness(boolean found) {
        ReadinessProbe old = readiness;
        readiness = null;
        if (old != null) {
            old.close();
        }
        CompletableFuture<Boolean> f = readyFuture;
        if (f.isDone()) {
            f = new CompletableFuture<>();
            readyFuture = f;
        }
        VmSpec sp = spec;
        if (sp.readyCheck() == null || found) {
            markReady(f, found && sp.readyCheck() != null ? "found running" : "running");
            return;
        }
        ready = false;
        readyDetail = "waiting: ready-when not passed yet";
        ReadinessProbe r = new ReadinessProbe(sp.name(), sp.readyCheck(), sp.readyTimeout(), this::agentState,
                serialOffset);
        readiness = r;
        CompletableFuture<Boolean> target = f;
        r.result().thenAccept(ok -> {
            if (readiness != r) {
                return; // a later QEMU's check is in charge
            }
            if (ok) {
                markReady(target, r.detail());
            } else {
                readyDetail = r.detail();
                if (!closed) {
                    sm.announce(new VmEvent.ReadyMissed(name(), r.detail(), Instant.now()));
                }
                target.complete(false);
            }
        });
        r.start();
    }

    private void markReady(CompletableFuture<Boolean> f, String detail) {
        ready = true;
        readyDetail = detail;
        log.info("VM {}: ready ({})", name(), detail);
        if (spec.readyCheck() != null) {
            sm.announce(new VmEvent.Ready(name(), detail, Instant.now()));
        }
        f.complete(true);
    }

    /** On the ops thread: the QEMU is gone; its readiness ends, and the next launch gets a fresh future. */
    private void detachReadiness() {
        ReadinessProbe r = readiness;
        readiness = null;
        if (r != null) {
            r.close();
        }
        ready = false;
        readyDetail = "";
        CompletableFuture<Boolean> f = readyFuture;
        readyFuture = new CompletableFuture<>();
        f.complete(false); // a waiter on this launch learns it ended before it was ready (no-op if it was)
    }

    /** Whether the running VM has passed its ready-when check (every running VM without one is ready). */
    public boolean ready() {
        return ready && sm.state().hasProcess();
    }

    /** What passed, what is awaited, or why readiness was missed; empty without a process. */
    public String readyDetail() {
        return readyDetail;
    }

    /**
     * Completes when the current launch (or the next one, if none runs) is ready (true), or missed its ready-timeout
     * or ended first (false).
     */
    public CompletableFuture<Boolean> readiness() {
        return readyFuture;
    }

    private static long sizeOf(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return 0;
        }
    }

    /** On the ops thread (or at close): the QEMU is gone or no longer ours; stop watching its agent. */
    private void detachAgent() {
        GuestAgentProbe g = agent;
        agent = null;
        if (g != null) {
            g.close();
            if (g.state() != AgentState.ABSENT) {
                sm.announce(new VmEvent.AgentChange(name(), AgentState.ABSENT, "QEMU ended", Instant.now()));
            }
        }
    }

    /** The guest agent's state; {@code absent} when there is no channel or no process. */
    public AgentState agentState() {
        GuestAgentProbe g = agent;
        return g == null ? AgentState.ABSENT : g.state();
    }

    /**
     * Runs {@code path args} in the guest through its agent and waits up to {@code timeout} for it to end. It goes
     * straight to the agent, not through the ops thread, like {@link #qmp}.
     *
     * @throws VmException when the VM has no connected agent, or the agent refused or did not answer
     */
    public ExecResult exec(String path, List<String> args, Duration timeout) throws VmException {
        GuestAgentProbe g = agent;
        AgentState st = g == null ? AgentState.ABSENT : g.state();
        if (st != AgentState.CONNECTED) {
            throw new VmException("VM " + name() + ": the guest agent is " + st + (spec.agentSocket() == null
                    ? " (the definition says guest-agent: false)" : "; run qemu-ga in the guest (its channel is the"
                    + " virtio-serial port org.qemu.guest_agent.0)") + ", so nothing can run in the guest");
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        try {
            long gpid = g.client().exec(path, args, timeout);
            while (true) {
                // each poll has a deadline of its own: the command's timeout bounds the waiting, not the last poll
                JsonNode s = g.client().execStatus(gpid, EXEC_POLL_TIMEOUT);
                if (s.path("exited").asBoolean(false)) {
                    java.util.Base64.Decoder b64 = java.util.Base64.getDecoder();
                    return new ExecResult(s.path("exitcode").asInt(-1), s.path("signal").asInt(-1),
                            b64.decode(s.path("out-data").asText("")), b64.decode(s.path("err-data").asText("")),
                            false, s.path("out-truncated").asBoolean(false) || s.path("err-truncated").asBoolean(false));
                }
                if (System.nanoTime() >= deadline) {
                    return new ExecResult(-1, -1, new byte[0], new byte[0], true, false);
                }
                Thread.sleep(Math.min(100, Math.max(1, (deadline - System.nanoTime()) / 1_000_000)));
            }
        } catch (io.qsup.qmp.QmpErrorException e) {
            throw new VmException("VM " + name() + ": the guest agent refused: " + e.getMessage());
        } catch (QmpException e) {
            throw new VmException("VM " + name() + ": guest agent: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new VmException("VM " + name() + ": interrupted while the command ran in the guest");
        }
    }

    /**
     * The guest's clock stood still while its vCPUs were paused: set it from the host's with {@code guest-set-time},
     * on a thread of its own so the ops thread never waits on the guest.
     */
    private void resyncGuestClock(Duration paused) {
        GuestAgentProbe g = agent;
        if (g == null || g.state() != AgentState.CONNECTED) {
            log.info("VM {}: resumed after {} s paused; no guest agent, so the guest's clock is left as it is", name(),
                    paused.toSeconds());
            return;
        }
        Thread.ofVirtual().name("vm-agent-settime " + name()).start(() -> {
            try {
                g.client().setTime(Instant.now(), Duration.ofSeconds(5));
                log.info("VM {}: resumed after {} s paused; guest clock set by guest-set-time", name(),
                        paused.toSeconds());
            } catch (QmpException e) {
                log.warn("VM {}: resumed after {} s paused; guest-set-time failed: {}", name(), paused.toSeconds(),
                        e.getMessage());
            }
        });
    }

    /** Whether the guest OS counts as hung: its agent went silent while QEMU answers QMP. */
    public boolean guestUnresponsive() {
        GuestAgentProbe g = agent;
        return g != null && g.guestUnresponsive();
    }

    /** The guest's interfaces as its agent last reported them; empty when unknown. */
    public List<GuestInterface> guestInterfaces() {
        GuestAgentProbe g = agent;
        return g == null ? List.of() : g.interfaces();
    }

    // ---- QMP events and exits ----

    /** On the QMP dispatcher thread: record, never block. */
    private void onEvent(QmpSession s, QmpEvent ev) {
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
    private void onSessionEnded(QmpSession s) {
        if (s != session || s.ending || closed) {
            return; // an old session, or one we are ending ourselves
        }
        long p = s.pid;
        boolean dead = ladder.awaitDeath(p, System.nanoTime() + Duration.ofSeconds(5).toNanos());
        if (!dead && s.shutdownReason != null && sm.state() != VmState.INCOMING) {
            // QEMU 7.2 under TCG, about once in a hundred guest power-offs: SHUTDOWN, the monitor closes, and the
            // process hangs in its exit for good. It is no orphan to win back; its guest is off.
            endStuckExit(s, "QEMU pid " + p + " reported SHUTDOWN (" + s.shutdownReason + ") and closed its monitor,"
                    + " but had not exited 5 s later; qsupd ended it");
            return;
        }
        if (!dead) {
            session = null;
            sm.setState(VmState.ORPHANED, Cause.MONITOR_LOST, "QMP connection lost while QEMU pid " + p + " lives on");
            return;
        }
        if (sm.state() == VmState.INCOMING) {
            // a target's end is no exit of the VM, which runs on at its source: no restart policy, no fresh boot
            endIncoming(s, "the migration target QEMU pid " + p + " ended before the hand-over: "
                    + causeOf(s).describe());
            return;
        }
        handleExit(causeOf(s));
    }

    /** {@link #causeOf(QmpSession)} with what qsupd saw or did added to its detail. */
    private static ExitCause causeOf(QmpSession s, String more) {
        ExitCause c = causeOf(s);
        return ExitCause.of(c.kind(), join(c.detail(), more));
    }

    private static ExitCause causeOf(QmpSession s) {
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
    private void endSession(QmpSession s, ExitCause cause) {
        if (s != session) {
            return;
        }
        s.ending = true;
        killQuietly(s.pid);
        if (survivesKill(s.pid)) {
            survivedKill(s, cause.describe());
            return;
        }
        handleExit(cause);
    }

    /** True if QEMU {@code p}, sent SIGKILL, is still this VM's 5 s later: stuck in the kernel, on its storage say. */
    private boolean survivesKill(long p) {
        return !ladder.awaitDeath(p, System.nanoTime() + Duration.ofSeconds(5).toNanos())
                && inspector.belongsTo(p, name(), spec.pidFile(), spec.qmpSocket());
    }

    /**
     * On the ops thread: QEMU of {@code s} outlived SIGKILL. The VM is left failed with its session let go, never
     * restarted, because a new QEMU would run beside the old one on the same disks. Its process is still found by every
     * later launch's scan of {@code /proc}.
     */
    private void survivedKill(QmpSession s, String detail) {
        releaseSession();
        sm.setState(VmState.FAILED, Cause.STOP_FAILED, "pid " + s.pid + " survived SIGKILL; " + detail);
    }

    /** On the ops thread: lets go of the QMP session and the agent and readiness probes; QEMU itself is untouched. */
    private void releaseSession() {
        QmpSession s = session;
        session = null;
        detachAgent();
        detachReadiness();
        if (s != null) {
            s.ending = true;
            s.client.close();
        }
    }

    /** On the ops thread: the VM ended (or did not start); ask the supervision what next and go there. */
    private void handleExit(ExitCause cause) {
        releaseSession();
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
        long ticket = requests.get(); // no request of its own: any request after this one cancels it (generation)
        Thread.ofVirtual().name("vm-backoff " + name()).start(() -> {
            try {
                Thread.sleep(delay);
            } catch (InterruptedException e) {
                return;
            }
            try {
                ops.execute(() -> {
                    if (generation.get() == gen && sm.state() == VmState.BACKOFF && !closed) {
                        doStart(ticket, Cause.RESTART, "after backoff");
                    }
                });
            } catch (RejectedExecutionException closing) {
                // closed while waiting
            }
        });
    }

    // ---- stop ladder ----

    private StopResult doStop(StopLadder.Start first, long requestedNanos, Duration timeout, Cause cause, String detail) {
        if (sm.state() == VmState.ADOPTING) {
            doAdopt(null); // a stop queued before adoption ran: find the QEMU first, so the stop reaches it
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
        QmpSession ses = session;
        long p = pid;
        if (s == VmState.INCOMING || s == VmState.MIGRATING) {
            // no guest to power down: a target has none running yet, a sent source is stopped (or was, if it failed)
            first = StopLadder.Start.QUIT;
        }
        sm.setState(VmState.STOPPING, cause, detail);
        if (ses != null) {
            ses.ending = true;
        }
        GuestAgentProbe g = agent;
        StopLadder.Outcome out = ladder.climb(first, ses, p, s == VmState.RUNNING,
                g != null && g.state() == AgentState.CONNECTED ? g.client() : null, requestedNanos, timeout);
        StopRung rung = out.rung();
        if (out.abandoned()) {
            return abandoned(rung, p, requestedNanos);
        }
        boolean dead = out.dead();
        Duration took = Duration.ofNanos(System.nanoTime() - requestedNanos);
        releaseSession(); // ses: the ladder ran on this thread, so nothing replaced it
        stopRequested = false;
        if (!dead) {
            sm.setState(VmState.FAILED, Cause.STOP_FAILED, "pid " + p + " survived SIGKILL");
            return new StopResult(rung, took, false, "pid " + p + " did not end even after SIGKILL");
        }
        pid = -1;
        startedAt = null;
        deleteRuntimeFiles(spec);
        // Self-fencing SIGKILLs the QEMU before this ladder climbs a rung: its exit is the fencing, not a stop.
        ExitCause.Kind kind = cause == Cause.FENCED ? ExitCause.Kind.FENCED : ExitCause.Kind.OPERATOR_STOP;
        String ended = rung == null ? "killed before the ladder's first rung" : "ended at rung " + rung;
        sm.setLastExitCause(ExitCause.of(kind, kind == ExitCause.Kind.FENCED ? join(detail, ended) : ended));
        stats.exited(kind);
        sm.setState(VmState.STOPPED, cause, join(detail, ended + " after " + took.toMillis() + " ms"));
        return new StopResult(rung, took, true, ended);
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

    private void killQuietly(long p) {
        if (p > 0 && inspector.belongsTo(p, name(), spec.pidFile(), spec.qmpSocket())) {
            ladder.signal(p, ProcessInspector.Signal.KILL);
        }
    }

    private void deleteRuntimeFiles(VmSpec sp) {
        try {
            Files.deleteIfExists(sp.pidFile());
            Files.deleteIfExists(sp.qmpSocket());
            if (sp.agentSocket() != null) {
                Files.deleteIfExists(sp.agentSocket());
            }
        } catch (IOException e) {
            log.warn("VM {}: cannot remove runtime files: {}", name(), e.toString());
        }
    }

    // ---- adoption ----

    private AdoptOutcome doAdopt(Supplier<ProcessInspector.Scan> procs) {
        VmSpec sp = spec;
        VmState now = sm.state();
        if (now != VmState.STOPPED && now != VmState.ADOPTING) {
            return now == VmState.ORPHANED ? AdoptOutcome.ORPHANED : AdoptOutcome.ADOPTED;
        }
        long running = adoption.liveInstance(sp, procs);
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
        adoption.restorePidFile(sp, candidate);
        try {
            Adoption.Regained r = adoption.regain(sp, candidate, Duration.ofSeconds(5));
            session = r.session();
            attachAgent();
            attachReadiness(true);
            sm.setState(r.running() ? VmState.RUNNING : VmState.PAUSED, Cause.ADOPTED, detail);
        } catch (QmpException e) {
            sm.setState(VmState.ORPHANED, Cause.MONITOR_LOST, "pid " + candidate + " alive but QMP does not answer: "
                    + e.getMessage());
        }
        return sm.state();
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
            Adoption.Regained r = adoption.regain(spec, p, Duration.ofSeconds(2));
            session = r.session();
            attachAgent();
            attachReadiness(true);
            sm.setState(r.running() ? VmState.RUNNING : VmState.PAUSED, Cause.MONITOR_REGAINED, "pid " + p);
        } catch (QmpException e) {
            log.debug("VM {}: still orphaned: {}", name(), e.getMessage());
        }
    }

    // ---- live migration ----
    //
    // Two QEMUs of one VM exist on purpose during a migration: the source (MIGRATING) and the target (INCOMING), each
    // under its own controller, normally on two hosts. On one host (tests, or a move between two qsupd instances that
    // share a machine) they must have different run-dirs: the scans for "a live QEMU of this VM" (Adoption's pidfile,
    // /proc argv markers and QMP socket) match by name AND by this controller's own pidfile or QMP socket path, so
    // neither controller ever sees, adopts or refuses on the other's QEMU. If the paths are the same, startIncoming
    // finds the source and refuses, rather than adopt it as its target or launch a QEMU on top of its files.
    // Only one of the two runs guest code at any instant: see LiveMigration for the order of the steps.

    /**
     * Target side, step 1: launches this VM's QEMU as a live-migration target and has it listen on a free TCP port of
     * {@code listenAddress}; the VM goes {@code stopped -> starting -> incoming}. Give the returned URI to the source's
     * {@link #migrateOut}, then call {@link #finishIncoming} (the source completed) or {@link #abortIncoming} (it
     * failed). The QEMU ending before that moves the VM to {@code stopped} ({@code migration-failed}), never to a
     * restart: the VM still runs at its source.
     *
     * @param incomingArgv this VM's argv plus {@code -incoming defer}, from {@code ArgvBuilder.buildIncoming} with this
     *                     host's settings; anything else is refused, since a target must be the source's exact machine
     */
    public CompletableFuture<LiveMigration.Incoming> startIncoming(List<String> incomingArgv, String listenAddress,
            Cause cause, String detail) {
        long ticket = noteRequest("start-incoming");
        return submit(() -> doStartIncoming(ticket, List.copyOf(incomingArgv), listenAddress, cause, detail));
    }

    /**
     * Target side, step 2, once the source's {@link #migrateOut} completed: waits until this QEMU loaded the whole
     * state, then runs it ({@code cont}); the VM goes {@code incoming -> running} ({@code migrated}). On failure the
     * target QEMU is quit, the VM goes {@code stopped} ({@code migration-failed}) and the future fails with the
     * reason: the caller then resumes the source with {@link #resumeAfterFailedHandOver}, which is safe because this
     * QEMU never ran the guest.
     */
    public CompletableFuture<VmState> finishIncoming(Duration timeout) {
        return submit(() -> doFinishIncoming(timeout));
    }

    /** Target side: the migration failed or was given up; quits the target QEMU, the VM goes {@code stopped}. */
    public CompletableFuture<VmState> abortIncoming(String reason) {
        return submit(() -> {
            QmpSession s = session;
            if (sm.state() != VmState.INCOMING || s == null) {
                return sm.state();
            }
            endIncoming(s, reason);
            return sm.state();
        });
    }

    /**
     * Source side: sends the running VM to the target listening at {@code uri} (from the target's
     * {@link #startIncoming}) and completes when the transfer ended. The VM is {@code migrating} meanwhile; a stop
     * requested meanwhile cancels the migration first. {@link LiveMigration.Outcome.Completed}: this QEMU is stopped
     * and the VM stays {@code migrating} until {@link #finishMigrationOut} (the target took over) or
     * {@link #resumeAfterFailedHandOver}. {@link LiveMigration.Outcome.Failed}: the VM runs on here, back to
     * {@code running} ({@code migration-failed}, QEMU's reason in the detail); quit the target with
     * {@link #abortIncoming}.
     */
    public CompletableFuture<LiveMigration.Outcome> migrateOut(String uri, LiveMigration.Settings settings, Cause cause,
            String detail) {
        return submit(() -> doMigrateOut(uri, settings, cause, detail));
    }

    /**
     * Source side, after the target took over ({@link #finishIncoming} returned running): quits this stopped QEMU;
     * the VM goes {@code migrating -> stopped} ({@code migrated}) with no QEMU and no runtime files left here. The
     * caller releases the VM's local record (intent, claim) as it sees fit: the controller starts nothing again.
     */
    public CompletableFuture<VmState> finishMigrationOut() {
        return submit(this::doFinishMigrationOut);
    }

    /**
     * Source side, when the hand-over failed after a completed transfer: resumes this QEMU ({@code cont}); the VM goes
     * {@code migrating -> running} ({@code migration-failed}). Call it only once the target is known never to have
     * run the guest ({@link #finishIncoming} failed, or the target is gone), or the VM would run twice.
     */
    public CompletableFuture<VmState> resumeAfterFailedHandOver(String reason) {
        return submit(() -> {
            if (sm.state() != VmState.MIGRATING) {
                return sm.state();
            }
            QmpSession s = requireSession("resume after a failed hand-over");
            if (!s.client.queryStatus(spec.probeTimeout()).running()) {
                s.client.cont();
            }
            migratedOut = null;
            attachAgent();
            sm.setState(VmState.RUNNING, Cause.MIGRATION_FAILED, reason + "; resumed here");
            return sm.state();
        });
    }

    private LiveMigration.Incoming doStartIncoming(long ticket, List<String> argv, String address, Cause cause,
            String detail)
            throws VmException {
        if (sm.state() == VmState.ADOPTING) {
            doAdopt(null);
        }
        VmState s = sm.state();
        VmSpec sp = spec;
        if (s != VmState.STOPPED && s != VmState.FAILED) {
            throw new VmException("VM " + name() + " is " + s + " here; a migration target needs a VM with no QEMU on"
                    + " this host (stop it first)");
        }
        List<String> own = sp.argv();
        if (argv.size() != own.size() + 2 || !argv.subList(0, own.size()).equals(own)
                || !argv.subList(own.size(), argv.size()).equals(List.of("-incoming", "defer"))) {
            throw new VmException("VM " + name() + ": the migration target's command line is not this VM's plus"
                    + " -incoming defer; build it with ArgvBuilder.buildIncoming from the same definition and settings");
        }
        long found = adoption.liveInstance(sp);
        if (found > 0) {
            throw new VmException("VM " + name() + ": a QEMU of this VM already runs as pid " + found + " with this"
                    + " host's pidfile " + sp.pidFile() + "; not launching a migration target beside it (a migration"
                    + " between two QEMUs on one machine needs a run-dir of its own for the target)");
        }
        launchTicket = ticket;
        stopRequested = false;
        generation.incrementAndGet();
        // No launch slot: max-parallel-starts bounds boots, and a target boots nothing.
        sm.setState(VmState.STARTING, cause, join(detail, "as a live-migration target"));
        launchError = null;
        VmState reached;
        try {
            reached = launch(argv, true);
        } catch (LaunchFailedException e) {
            launchError = e.userMessage();
            sm.setState(VmState.STOPPED, Cause.MIGRATION_FAILED, "the migration target did not start: "
                    + e.userMessage());
            throw new VmException("VM " + name() + ": the migration target did not start: " + e.userMessage()
                    + (e.qemuStderr().isBlank() ? "" : "\n" + e.qemuStderr().strip()), e);
        }
        if (reached == null) {
            sm.setState(VmState.STOPPED, Cause.OPERATOR_STOP, "stop requested during the target's start");
            throw new VmException("VM " + name() + ": a stop came before the migration target started");
        }
        QmpSession ses = session;
        try {
            LiveMigration.Incoming in = LiveMigration.listen(name(), ses.client, pid, address, spec.probeTimeout()
                    .compareTo(Duration.ofSeconds(5)) > 0 ? spec.probeTimeout() : Duration.ofSeconds(5));
            sm.setState(VmState.INCOMING, Cause.LAUNCHED, "pid " + pid + ", waiting for the VM on " + in.uri());
            return in;
        } catch (VmException e) {
            endIncoming(ses, e.getMessage());
            throw e;
        }
    }

    private VmState doFinishIncoming(Duration timeout) throws VmException {
        QmpSession s = session;
        if (sm.state() != VmState.INCOMING || s == null) {
            throw new VmException("VM " + name() + " is " + sm.state() + ", not incoming; nothing to take over");
        }
        try {
            LiveMigration.awaitLoaded(name(), s.client, timeout, Duration.ofSeconds(5));
            s.client.execute("cont", null, Duration.ofSeconds(5));
        } catch (VmException e) {
            endIncoming(s, e.getMessage());
            throw e;
        } catch (QmpException e) {
            // A lost reply could mean the target runs: kill it for certain before anyone resumes the source.
            String why = "the migration target did not confirm cont: " + e.getMessage();
            endIncoming(s, why);
            throw new VmException("VM " + name() + ": " + why + "; the target QEMU was killed");
        }
        startedAt = Instant.now();
        attachAgent();
        attachReadiness(true);
        sm.setState(VmState.RUNNING, Cause.MIGRATED, "pid " + pid + " took the VM over from its migration source");
        supervision.onGoodStart(name());
        return sm.state();
    }

    private LiveMigration.Outcome doMigrateOut(String uri, LiveMigration.Settings settings, Cause cause, String detail)
            throws VmException {
        VmState s = sm.state();
        if (s != VmState.RUNNING) {
            throw new VmException("VM " + name() + " is " + s + "; only a running VM can be migrated"
                    + (s == VmState.PAUSED ? " (resume it first)" : ""));
        }
        QmpSession ses = requireSession("migrate");
        sm.setState(VmState.MIGRATING, cause, join(detail, "to " + uri));
        // The guest's agent falls silent once the source stops: it must not be taken for a hung guest.
        detachAgent();
        LiveMigration.Outcome o;
        try {
            o = LiveMigration.send(name(), ses.client, uri, settings, () -> stopRequested || closed);
        } catch (VmException e) {
            if (sm.state() == VmState.MIGRATING && session == ses) {
                attachAgent();
                sm.setState(VmState.RUNNING, Cause.MIGRATION_FAILED, e.getMessage());
            }
            throw e;
        }
        switch (o) {
            case LiveMigration.Outcome.Completed c -> migratedOut = c;
            case LiveMigration.Outcome.Failed f -> {
                attachAgent();
                sm.setState(VmState.RUNNING, Cause.MIGRATION_FAILED, f.reason());
            }
        }
        return o;
    }

    private VmState doFinishMigrationOut() throws VmException {
        QmpSession s = session;
        if (sm.state() != VmState.MIGRATING || migratedOut == null || s == null) {
            throw new VmException("VM " + name() + " is " + sm.state() + " with no completed migration to finish");
        }
        long p = pid;
        s.ending = true;
        try {
            s.client.quit();
        } catch (QmpException e) {
            log.warn("VM {}: quit of the migrated source pid {} failed ({}); killing it", name(), p, e.getMessage());
        }
        if (!ladder.awaitDeath(p, System.nanoTime() + Duration.ofSeconds(5).toNanos())) {
            killQuietly(p);
            ladder.awaitDeath(p, System.nanoTime() + Duration.ofSeconds(5).toNanos());
        }
        s.client.close();
        session = null;
        detachReadiness();
        pid = -1;
        startedAt = null;
        migratedOut = null;
        deleteRuntimeFiles(spec);
        sm.setState(VmState.STOPPED, Cause.MIGRATED, "the VM runs on at its migration target; source pid " + p
                + " quit");
        return sm.state();
    }

    /** On the ops thread: the migration target is given up; end its QEMU and go to stopped. */
    private void endIncoming(QmpSession s, String reason) {
        s.ending = true;
        long p = s.pid;
        try {
            s.client.quit();
        } catch (QmpException e) {
            log.debug("VM {}: quit of the migration target failed: {}", name(), e.getMessage());
        }
        if (!ladder.awaitDeath(p, System.nanoTime() + Duration.ofSeconds(3).toNanos())) {
            killQuietly(p);
            ladder.awaitDeath(p, System.nanoTime() + Duration.ofSeconds(5).toNanos());
        }
        s.client.close();
        session = null;
        pid = -1;
        startedAt = null;
        deleteRuntimeFiles(spec);
        sm.setState(VmState.STOPPED, Cause.MIGRATION_FAILED, reason);
    }

    /**
     * A source whose state went to a migration target ({@code postmigrate}) must never run again by a resume: the
     * target may run the VM. Only {@link #resumeAfterFailedHandOver} may, knowing the target never ran.
     */
    private void refuseResumeOfMigratedSource(QmpSession s) throws VmException, QmpException {
        if (sm.state() == VmState.MIGRATING || "postmigrate".equals(s.client.queryStatus(spec.probeTimeout()).status())) {
            throw new VmException("VM " + name() + ": this QEMU sent the VM to a migration target, which may be running"
                    + " it; resuming here would run the VM twice. Stop this QEMU; if the target is gone for certain,"
                    + " the migration's hand-over resumes it");
        }
    }

    // ---- liveness ----

    /** What the liveness probe reads and reports; it runs on the probe's thread and only queues work. */
    private final class ProbeHost implements LivenessProbe.Host {
        @Override
        public VmSpec spec() {
            return spec;
        }

        @Override
        public QmpSession session() {
            return session;
        }

        @Override
        public long pid() {
            return pid;
        }

        @Override
        public boolean closed() {
            return closed;
        }

        @Override
        public void retryOrphan() {
            queue(VmController.this::retryOrphan);
        }

        @Override
        public void hung(QmpSession s, String detail) {
            queue(() -> endSession(s, ExitCause.of(ExitCause.Kind.HANG, detail)));
        }

        @Override
        public boolean alive(long p) {
            return inspector.isAlive(p);
        }

        @Override
        public void vanished(QmpSession s, String detail) {
            queue(() -> {
                if (s == session && !s.ending && !closed && !inspector.isAlive(s.pid)) {
                    log.warn("VM {}: {}", name(), detail);
                    handleExit(causeOf(s, detail));
                }
            });
        }

        @Override
        public void stuckInExit(QmpSession s, String detail) {
            queue(() -> endStuckExit(s, detail));
        }
    }

    /**
     * On the ops thread: QEMU of {@code s} said SHUTDOWN and hangs instead of exiting. The guest is already off, so
     * it gets SIGTERM (QEMU flushes its disks on it), then SIGKILL, as libvirt ends a QEMU that outstays its guest;
     * the exit is the SHUTDOWN's. One that survives SIGKILL is left failed, never restarted beside itself.
     */
    private void endStuckExit(QmpSession s, String detail) {
        if (s != session || s.ending || closed) {
            return;
        }
        s.ending = true;
        log.warn("VM {}: {}", name(), detail);
        long p = s.pid;
        if (inspector.belongsTo(p, name(), spec.pidFile(), spec.qmpSocket())) {
            ladder.signal(p, ProcessInspector.Signal.TERM);
            if (!ladder.awaitDeath(p, System.nanoTime() + STUCK_EXIT_TERM_GRACE.toNanos())) {
                ladder.signal(p, ProcessInspector.Signal.KILL);
            }
        }
        if (survivesKill(p)) {
            survivedKill(s, detail);
            return;
        }
        handleExit(causeOf(s, detail));
    }

    /**
     * Lets go of the VM without touching QEMU: the QMP session is closed, threads end, QEMU keeps running (the daemon
     * is exiting or restarting).
     */
    @Override
    public void close() {
        closed = true;
        health.close();
        probe.stop();
        GuestAgentProbe g = agent;
        if (g != null) {
            g.close();
        }
        QmpSession s = session;
        if (s != null) {
            s.ending = true;
            s.client.close();
        }
        ops.shutdownNow();
    }

    /**
     * After {@link #close}: waits until the operation running at the close (its last state write, say) has ended.
     * Returns false if it still runs at the deadline.
     */
    public boolean awaitClosed(Duration timeout) throws InterruptedException {
        return ops.awaitTermination(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
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
