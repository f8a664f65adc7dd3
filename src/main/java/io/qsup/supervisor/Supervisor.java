package io.qsup.supervisor;

import io.qsup.config.ApplyChanges;
import io.qsup.config.ConfigError;
import io.qsup.config.ConfigLoader;
import io.qsup.config.DaemonSettings;
import io.qsup.config.HangAction;
import io.qsup.config.LoadResult;
import io.qsup.config.VmDefinition;
import io.qsup.config.VmPaths;
import io.qsup.qemu.ArgvBuilder;
import io.qsup.qemu.HostFacts;
import io.qsup.vm.Cause;
import io.qsup.vm.ExitCause;
import io.qsup.vm.ProcessInspector;
import io.qsup.vm.QemuLauncher;
import io.qsup.vm.StopResult;
import io.qsup.vm.Supervision;
import io.qsup.vm.VmController;
import io.qsup.vm.VmController.AdoptOutcome;
import io.qsup.vm.VmEvent;
import io.qsup.vm.VmSpec;
import io.qsup.vm.VmState;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * All VMs of one host: autostart in {@code depends-on} order under {@code max-parallel-starts}, restarts by policy with
 * backoff and start limit, the operator's persisted intent (which always wins), reload, and {@link #shutdownAll()}. It
 * offers a read-only view ({@link #list()}), intent methods, and state-change events to listeners.
 *
 * <p>In cluster mode it also runs the cluster VMs this host holds the claim of: the cluster registers them
 * ({@link #addCluster}), starts them once the claim is won, and decides through its gate ({@link #setClusterGate})
 * whether one may run here at all; autostart and reload never touch them.
 *
 * <p>Locking: {@code vms} is a concurrent map; a VM's {@link VmRecord} is guarded by its {@code Managed} monitor, which
 * is held across the record's small fsynced write so records reach disk in the order they were made (it is never held
 * while waiting for QEMU). {@code reloadLock} only keeps two reloads from interleaving. VM work itself runs on each
 * controller's own threads; the intent methods return futures and never block on a VM.
 */
public final class Supervisor implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Supervisor.class);

    /**
     * Tuning that is not part of the definitions.
     *
     * @param probeInterval time between liveness probes of each VM
     * @param probeTimeout  deadline of one probe
     * @param hook          executable run on every state change, or null
     * @param hookTimeout   how long one hook run may take
     */
    public record Options(Duration probeInterval, Duration probeTimeout, Path hook, Duration hookTimeout) {
        public static Options defaults() {
            return new Options(Duration.ofSeconds(5), Duration.ofSeconds(2), null, Duration.ofSeconds(30));
        }

        public Options withProbe(Duration interval, Duration timeout) {
            return new Options(interval, timeout, hook, hookTimeout);
        }

        public Options withHook(Path h, Duration timeout) {
            return new Options(probeInterval, probeTimeout, h, timeout);
        }
    }

    /** One supervised VM. */
    private final class Managed implements Supervision {
        final String name;
        final VmController ctl;
        /** A cluster VM: its definition came from etcd, and it runs here only while the cluster's gate allows. */
        final boolean cluster;
        volatile VmDefinition def;
        volatile AdoptOutcome adopted;
        VmRecord rec; // guarded by this
        Instant lastGoodStart; // guarded by this
        /** Counts operator restarts, so only the newest clears the restart-in-progress mark. Guarded by this. */
        long restartSeq;
        /** The latest record is not on disk yet (state-dir failing); retried. Written under this, read anywhere. */
        volatile boolean unsaved;
        /** The state file was unreadable at load and moved aside: the intent is a stand-in until adoption settles it. */
        volatile String recoveredFrom;
        /** Why autostart holds the VM back (a dependency not ready yet, or that missed its ready-timeout), or null. */
        volatile String heldBack;

        Managed(VmDefinition def, StateStore.Loaded loaded, VmState initial, boolean cluster) {
            this.name = def.name();
            this.cluster = cluster;
            this.def = def;
            this.rec = loaded.record();
            this.recoveredFrom = loaded.problem();
            this.ctl = new VmController(specOf(def), this, launcher, inspector, initial);
            ctl.stateMachine().addListener(Supervisor.this::publish);
        }

        @Override
        public boolean tryAcquireLaunchSlot(String vm, Duration wait) throws InterruptedException {
            return startSlots.tryAcquire(wait.toNanos(), java.util.concurrent.TimeUnit.NANOSECONDS);
        }

        @Override
        public void launchFinished(String vm) {
            startSlots.release();
        }

        @Override
        public boolean expectedRunning(String vm) {
            return shouldRun(this);
        }

        @Override
        public void onGoodStart(String vm) {
            if (cluster && !clusterGate.test(name)) {
                log.error("VM {}: its launch ended after this host lost the cluster claim; killing it", name);
                fence(name, "launched after the claim was lost");
                return;
            }
            synchronized (this) {
                lastGoodStart = clock.instant();
            }
            update(this, r -> r.withGoodStart(true));
            ctl.stateMachine().setRestartPending(List.of());
        }

        @Override
        public Decision onExit(String vm, ExitCause cause) {
            VmDefinition d = def;
            if (cluster && !clusterGate.test(name)) {
                synchronized (this) {
                    rec = rec.withExitCause(cause, clock.instant());
                    save(this, rec);
                }
                return new Decision.Stop("this host does not hold the VM's cluster claim");
            }
            synchronized (this) {
                Instant now = clock.instant();
                VmRecord r = rec.withExitCause(cause, now);
                if (lastGoodStart != null && Duration.between(lastGoodStart, now).compareTo(stableAfter(d)) >= 0) {
                    r = r.withConsecutiveReset(); // it ran long enough: the backoff starts over
                }
                lastGoodStart = null;
                RestartDecider.Decision decision = shuttingDown
                        ? new RestartDecider.Decision(false, "all VMs are being shut down")
                        : RestartDecider.decide(d.restart(), cause, r.intent() == Intent.STOPPED, r.hadGoodStart());
                Decision answer;
                boolean policyDecides = !shuttingDown && r.intent() != Intent.STOPPED
                        && cause.kind() != ExitCause.Kind.OPERATOR_STOP && cause.kind() != ExitCause.Kind.FENCED;
                if (!decision.restart()) {
                    answer = new Decision.Stop(decision.reason());
                    if (policyDecides) {
                        r = r.withDownByPolicy(BootId.current()); // a qsupd restart in this boot keeps it down
                    }
                } else {
                    List<Instant> admitted = new StartLimit(d.startLimitBurst(), d.startLimitInterval())
                            .admit(r.recentStarts(), now);
                    if (admitted == null) {
                        r = r.withFailed(true).withDownByPolicy(BootId.current());
                        answer = new Decision.Fail("start limit hit: " + d.startLimitBurst() + " restarts within "
                                + d.startLimitInterval().toSeconds() + " s; use 'qsup start' or 'qsup reset-failed'");
                    } else {
                        Duration delay = new Backoff(d.restartDelay(), d.restartMaxDelay(), d.restartSteps())
                                .delayFor(r.consecutive());
                        r = r.withRestart(admitted).withDownByPolicy(null);
                        answer = new Decision.Restart(delay, decision.reason());
                    }
                }
                rec = r;
                save(this, r);
                return answer;
            }
        }
    }

    private final DaemonSettings settings;
    private final HostFacts host;
    private final Options options;
    private final StateStore store;
    private final QemuLauncher launcher = new QemuLauncher();
    private final ProcessInspector inspector = new ProcessInspector();
    private final Semaphore startSlots;
    private final Map<String, Managed> vms = new ConcurrentHashMap<>();
    private final List<Consumer<VmEvent>> listeners = new CopyOnWriteArrayList<>();
    private final HookRunner hooks;
    private final VmLogWriter vmLog;
    private final ReentrantLock reloadLock = new ReentrantLock();
    private static final Duration STATE_RETRY = Duration.ofSeconds(2);
    private final Clock clock = Clock.systemUTC();
    private volatile boolean shuttingDown;
    /** Whether a cluster VM may run on this host now; false for all until cluster mode sets it. */
    private volatile java.util.function.Predicate<String> clusterGate = vm -> false;
    /** Why the last state write failed, or null once writes succeed again. */
    private volatile String stateProblem;
    private final Thread stateRetry;

    public Supervisor(DaemonSettings settings, HostFacts host, Options options) {
        this.settings = settings;
        this.host = host;
        this.options = options;
        this.store = new StateStore(settings.stateDir());
        this.startSlots = new Semaphore(Math.max(1, settings.maxParallelStarts()), true);
        this.hooks = options.hook() == null ? null : new HookRunner(options.hook(), options.hookTimeout());
        if (hooks != null) {
            listeners.add(hooks);
        }
        this.vmLog = new VmLogWriter(vm -> settings.pathsFor(vm).qemuLog());
        listeners.add(vmLog);
        this.stateRetry = Thread.ofVirtual().name("state-retry").unstarted(this::retryUnsaved);
        stateRetry.start();
    }

    // ---- start-up ----

    /**
     * Loads the definitions for the first time; VMs are registered as {@code adopting} (their QEMU may be running from
     * an earlier qsupd), nothing is started or adopted yet.
     */
    public ReloadReport loadInitial() {
        store.removeTemporaries();
        LoadResult r = ConfigLoader.loadDirectory(settings.vmsDir(), settings, host);
        for (VmDefinition d : r.vms().values()) {
            register(d, VmState.ADOPTING);
        }
        logErrors(r.errors());
        return new ReloadReport(List.copyOf(r.vms().keySet()), List.of(), Map.of(), List.of(), List.of(), r.errors());
    }

    /**
     * From now on no VM is restarted by policy (a stale pidfile found by {@link #adoptAll()} included); for the
     * {@code --shutdown-all} run, which only adopts and stops.
     */
    public void disableRestarts() {
        shuttingDown = true;
    }

    /**
     * Adopts every VM still running from an earlier qsupd, all in parallel, and waits for the outcome. A VM whose
     * operator stop was cut short by the previous qsupd's exit gets its stop resumed; a VM whose state file was
     * unreadable gets intent {@code started} if it runs and {@code stopped} if not.
     */
    public Map<String, AdoptOutcome> adoptAll() {
        Map<String, CompletableFuture<AdoptOutcome>> fs = new TreeMap<>();
        // one pass over /proc for every VM whose pidfile names no live QEMU of it, not one pass each; none if all do
        java.util.function.Supplier<ProcessInspector.Scan> procs = inspector.scanOnFirstUse();
        for (Managed m : vms.values()) {
            if (m.cluster) {
                continue; // adopted when the cluster registers it
            }
            fs.put(m.name, m.ctl.adopt(procs));
        }
        Map<String, AdoptOutcome> out = new TreeMap<>();
        fs.forEach((name, f) -> {
            AdoptOutcome o = join(f, AdoptOutcome.NOT_RUNNING, name + ": adoption");
            vms.get(name).adopted = o;
            out.put(name, o);
        });
        for (Managed m : vms.values()) {
            if (m.cluster) {
                continue;
            }
            boolean failed;
            synchronized (m) {
                failed = m.rec.failed();
            }
            if (failed && m.ctl.state() == VmState.STOPPED) {
                m.ctl.stateMachine().setState(VmState.FAILED, Cause.START_LIMIT,
                        "the start limit was hit before qsupd restarted");
            }
            settleRecovered(m);
            resumeInterruptedStop(m);
            resumeInterruptedRestart(m);
        }
        log.info("adoption: {}", out);
        return out;
    }

    /**
     * Starts every VM that should run and is not running: operator intent {@code started}, or no intent and
     * {@code autostart}. Dependencies start first; a VM waits until each dependency's start finished. Returns when all
     * starts finished.
     */
    public void autostartAll() {
        Map<String, Managed> todo = new TreeMap<>();
        for (Managed m : vms.values()) {
            if (!m.cluster && m.ctl.state() == VmState.STOPPED && m.adopted != AdoptOutcome.STALE && shouldRun(m)) {
                todo.put(m.name, m);
            }
        }
        Map<String, List<String>> deps = dependencyGraph(todo);
        Map<String, CompletableFuture<VmState>> done = new HashMap<>();
        for (String n : todo.keySet()) {
            done.put(n, new CompletableFuture<>());
        }
        Map<String, Boolean> held = new java.util.concurrent.ConcurrentHashMap<>();
        for (Managed m : todo.values()) {
            Thread.ofVirtual().name("autostart " + m.name).start(() -> {
                for (String dep : deps.get(m.name)) {
                    join(done.get(dep), null, m.name + ": waiting for " + dep);
                    String why = held.containsKey(dep) ? "dependency " + dep + " was not started" : awaitReady(m, dep);
                    if (why != null) {
                        m.heldBack = "not started: " + why;
                        held.put(m.name, true);
                        log.warn("VM {}: autostart held back: {}", m.name, why);
                        done.get(m.name).complete(VmState.STOPPED);
                        return;
                    }
                }
                m.heldBack = null;
                VmState s = join(m.ctl.start(Cause.AUTOSTART, ""), VmState.STOPPED, m.name + ": autostart");
                done.get(m.name).complete(s);
            });
        }
        CompletableFuture.allOf(done.values().toArray(CompletableFuture[]::new)).join();
    }

    /**
     * For autostart: waits until dependency {@code dep} of {@code m} is ready when it has {@code ready-when} (running
     * is enough otherwise); null when it is, else why not. A dependency that is not a VM here is not waited for.
     */
    private String awaitReady(Managed m, String dep) {
        Managed d = vms.get(dep);
        if (d == null || d.def.readyWhen() == null) {
            return null;
        }
        if (d.ctl.ready()) {
            return null;
        }
        if (!d.ctl.state().hasProcess()) {
            return "dependency " + dep + " is " + d.ctl.state().label() + ", not ready";
        }
        m.heldBack = "waiting for " + dep + " to be ready";
        Boolean ok = join(d.ctl.readiness().completeOnTimeout(false,
                d.def.readyTimeout().toMillis() + 5_000, java.util.concurrent.TimeUnit.MILLISECONDS), false,
                m.name + ": waiting for " + dep + " to be ready");
        if (Boolean.TRUE.equals(ok)) {
            return null;
        }
        String detail = d.ctl.readyDetail();
        return "dependency " + dep + " did not become ready" + (detail.isEmpty() ? "" : ": " + detail);
    }

    /** Adoption, then autostart. */
    public void startup() {
        adoptAll();
        autostartAll();
    }

    /** A VM whose state file was moved aside: running means the operator had it started, anything else stopped. */
    private void settleRecovered(Managed m) {
        String problem = m.recoveredFrom;
        if (problem == null) {
            return;
        }
        m.recoveredFrom = null;
        boolean runs = m.ctl.state().hasProcess();
        Intent assumed = runs ? Intent.STARTED : Intent.STOPPED;
        update(m, r -> r.withIntent(assumed));
        log.error("VM {}: {}; its QEMU {}, so qsupd assumes intent '{}'", m.name, problem,
                runs ? "runs" : "does not run", assumed.name().toLowerCase(java.util.Locale.ROOT));
    }

    /** The previous qsupd exited in the middle of an operator stop: the VM still runs, so finish the stop. */
    private void resumeInterruptedStop(Managed m) {
        boolean pending;
        synchronized (m) {
            pending = m.rec.stopPending() && m.rec.intent() == Intent.STOPPED;
        }
        if (!pending) {
            return;
        }
        if (!m.ctl.state().hasProcess()) {
            update(m, r -> r.withStopPending(false));
            return;
        }
        log.info("VM {}: an operator stop was under way when the previous qsupd exited; resuming it", m.name);
        stopAndClear(m, false, m.def.stopTimeout(), "resumed after qsupd restarted");
    }

    /** The previous qsupd exited in the middle of an operator restart: finish it, stop half included. */
    private void resumeInterruptedRestart(Managed m) {
        boolean pending;
        synchronized (m) {
            pending = m.rec.restartInProgress() && m.rec.intent() == Intent.STARTED;
        }
        if (!pending) {
            return;
        }
        if (!m.ctl.state().hasProcess()) {
            update(m, r -> r.withRestartInProgress(false)); // intent started: autostart brings it up
            return;
        }
        log.info("VM {}: an operator restart was under way when the previous qsupd exited; resuming it", m.name);
        restartAndClear(m, false, "resumed after qsupd restarted");
    }

    private boolean shouldRun(Managed m) {
        if (m.cluster && !clusterGate.test(m.name)) {
            return false;
        }
        VmRecord r;
        synchronized (m) {
            r = m.rec;
        }
        if (r.failed() || BootId.current().equals(r.downByPolicyBoot())) {
            return false; // the policy left it down in this boot; a qsupd restart changes nothing about that
        }
        return r.intent() == Intent.STARTED || (r.intent() == Intent.NONE && m.def.autostart());
    }

    /** depends-on restricted to the VMs being started; edges of a cycle are dropped with an error in the log. */
    private static Map<String, List<String>> dependencyGraph(Map<String, Managed> todo) {
        Map<String, List<String>> g = new HashMap<>();
        for (Managed m : todo.values()) {
            List<String> ds = new ArrayList<>();
            for (String d : m.def.dependsOn()) {
                if (todo.containsKey(d)) {
                    ds.add(d);
                }
            }
            g.put(m.name, ds);
        }
        Set<String> done = new HashSet<>();
        for (String n : new TreeMap<>(g).keySet()) {
            breakCycles(n, g, new java.util.LinkedHashSet<>(), done);
        }
        return g;
    }

    private static void breakCycles(String n, Map<String, List<String>> g, Set<String> path, Set<String> done) {
        if (done.contains(n)) {
            return;
        }
        path.add(n);
        for (String d : new ArrayList<>(g.get(n))) {
            if (path.contains(d)) {
                log.error("VM {}: depends-on cycle {} -> {}; starting without this ordering", n, path, d);
                g.get(n).remove(d);
            } else {
                breakCycles(d, g, path, done);
            }
        }
        path.remove(n);
        done.add(n);
    }

    // ---- view ----

    /** Every VM, sorted by name. */
    public List<VmSnapshot> list() {
        return new TreeMap<>(vms).values().stream().map(this::snapshot).toList();
    }

    public Optional<VmSnapshot> get(String name) {
        return Optional.ofNullable(vms.get(name)).map(this::snapshot);
    }

    /** The definition in force for a VM. */
    public Optional<VmDefinition> definition(String name) {
        return Optional.ofNullable(vms.get(name)).map(m -> m.def);
    }

    /** The controller of a VM, for callers inside the daemon that wait on states. */
    public Optional<VmController> controller(String name) {
        return Optional.ofNullable(vms.get(name)).map(m -> m.ctl);
    }

    private VmSnapshot snapshot(Managed m) {
        VmRecord r;
        synchronized (m) {
            r = m.rec;
        }
        boolean unsaved = m.unsaved;
        VmController c = m.ctl;
        Instant started = c.startedAt();
        ExitCause last = c.stateMachine().lastExitCause();
        Instant lastAt = c.stateMachine().lastExitAt();
        if (last == null) {
            last = r.lastExit(); // from before this qsupd started
            lastAt = r.lastExitAt();
        }
        return new VmSnapshot(m.name, c.state(), c.stateMachine().unresponsive(), c.pid(),
                last, lastAt, r.restarts(), c.restartPendingKeys(),
                c.launchError(), started == null ? null : Duration.between(started, clock.instant()), r.intent(),
                m.def.autostart(), !unsaved, c.agentState(), c.guestInterfaces(),
                c.guestUnresponsive(), m.def.readyWhen() != null && c.ready(), m.heldBack);
    }

    /**
     * Every VM's figures for the metrics endpoint and {@code query-vm-stats}, sorted by name. Lock-free: it takes no
     * VM's monitor or state lock and makes no QMP call, so a frozen, launching or stopping VM never delays it.
     */
    public List<io.qsup.vm.VmStats> vmStats() {
        List<io.qsup.vm.VmStats> out = new ArrayList<>(vms.size());
        for (Managed m : vms.values()) {
            out.add(m.ctl.stats());
        }
        out.sort(java.util.Comparator.comparing(io.qsup.vm.VmStats::vm));
        return out;
    }

    /** Hook runs started since qsupd started (0 without {@code --hook}). */
    public long hookRuns() {
        return hooks == null ? 0 : hooks.runs();
    }

    /** Hook runs that failed (non-zero exit, killed at the timeout, or could not start) since qsupd started. */
    public long hookFailures() {
        return hooks == null ? 0 : hooks.failures();
    }

    /** Adds a listener for every VM's events; it runs on the VM's threads and must not block. */
    public AutoCloseable addListener(Consumer<VmEvent> listener) {
        listeners.add(listener);
        return () -> listeners.remove(listener);
    }

    private void publish(VmEvent e) {
        for (Consumer<VmEvent> l : listeners) {
            try {
                l.accept(e);
            } catch (RuntimeException ex) {
                log.warn("VM {}: listener failed on {}", e.vm(), e, ex);
            }
        }
    }

    // ---- intents ----

    /*
     * Each intent method records the intent and queues the request under the VM's monitor, so two clients racing on one
     * VM reach the disk and the VM's queue in the same order: the last request wins in both. Queueing never blocks.
     */

    /** Operator start: persisted as intent, clears failed and the restart tally. */
    public IntentFuture<VmState> start(String name) throws SupervisorException {
        Managed m = require(name);
        m.heldBack = null; // the operator decides now
        synchronized (m) {
            String warning = update(m, r -> r.withTallyReset().withIntent(Intent.STARTED).withStopPending(false)
                    .withRestartInProgress(false));
            return new IntentFuture<>(m.ctl.start(Cause.OPERATOR_START, ""), warning);
        }
    }

    /** Operator stop with the ladder; persisted first, so no policy and no daemon restart starts it again. */
    public IntentFuture<StopResult> stop(String name, boolean force, Duration timeout) throws SupervisorException {
        Managed m = require(name);
        synchronized (m) {
            String warning = update(m, r -> r.withIntent(Intent.STOPPED).withStopPending(true)
                    .withRestartInProgress(false));
            return new IntentFuture<>(stopAndClear(m, force, timeout != null ? timeout : m.def.stopTimeout(),
                    force ? "--force" : ""), warning);
        }
    }

    /** Stop with the ladder, then start; the intent becomes started. A later stop cancels the start. */
    public IntentFuture<VmState> restart(String name, boolean force) throws SupervisorException {
        Managed m = require(name);
        synchronized (m) {
            String warning = update(m, r -> r.withIntent(Intent.STARTED).withStopPending(false)
                    .withRestartInProgress(true).withDownByPolicy(null));
            return new IntentFuture<>(restartAndClear(m, force, force ? "--force" : ""), warning);
        }
    }

    /** SIGKILL now; persisted as a stop. */
    public IntentFuture<StopResult> kill(String name) throws SupervisorException {
        Managed m = require(name);
        synchronized (m) {
            String warning = update(m, r -> r.withIntent(Intent.STOPPED).withStopPending(true)
                    .withRestartInProgress(false));
            CompletableFuture<StopResult> f = m.ctl.kill(Cause.OPERATOR_STOP, "kill");
            return new IntentFuture<>(f.thenApply(res -> clearStopPending(m, res)), warning);
        }
    }

    /**
     * Restarts and, once its start ran, drops the restart-in-progress mark, unless a newer restart has set it again
     * (then that one owns it).
     */
    private CompletableFuture<VmState> restartAndClear(Managed m, boolean force, String detail) {
        long seq;
        synchronized (m) {
            seq = ++m.restartSeq;
        }
        return m.ctl.restart(force, m.def.stopTimeout(), Cause.OPERATOR_RESTART, detail).whenComplete((s, e) -> {
            if (e != null || s == VmState.STOPPING) {
                return; // the ladder was left where it was (qsupd exiting): the next qsupd finishes the restart
            }
            synchronized (m) {
                if (m.restartSeq == seq && m.rec.restartInProgress()) {
                    update(m, r -> r.withRestartInProgress(false));
                }
            }
        });
    }

    /** Runs the ladder and, once it ended the VM, drops the stop-pending mark. */
    private CompletableFuture<StopResult> stopAndClear(Managed m, boolean force, Duration timeout, String detail) {
        return m.ctl.stop(force, timeout, Cause.OPERATOR_STOP, detail).thenApply(res -> clearStopPending(m, res));
    }

    /** After an operator stop: the mark goes, and the exit (operator-stop, at its rung) is on record for later. */
    private StopResult clearStopPending(Managed m, StopResult res) {
        if (res.stopped()) {
            ExitCause exit = m.ctl.stateMachine().lastExitCause();
            Instant at = m.ctl.stateMachine().lastExitAt();
            synchronized (m) {
                boolean clear = m.rec.stopPending() && m.rec.intent() == Intent.STOPPED;
                if (clear || (res.rung() != null && exit != null && at != null)) {
                    update(m, r -> {
                        VmRecord next = clear ? r.withStopPending(false) : r;
                        return res.rung() != null && exit != null && at != null ? next.withExitCause(exit, at) : next;
                    });
                }
            }
        }
        return res;
    }

    public CompletableFuture<VmState> pause(String name) throws SupervisorException {
        return require(name).ctl.pause();
    }

    public CompletableFuture<VmState> resume(String name) throws SupervisorException {
        return require(name).ctl.resume();
    }

    public CompletableFuture<VmState> reset(String name) throws SupervisorException {
        return require(name).ctl.reset();
    }

    /** Leaves failed for stopped and clears the tally, without starting. */
    public IntentFuture<VmState> resetFailed(String name) throws SupervisorException {
        Managed m = require(name);
        synchronized (m) {
            String warning = update(m, VmRecord::withTallyReset);
            return new IntentFuture<>(m.ctl.resetFailed(), warning);
        }
    }

    /** Runs one QMP command on a VM's monitor, with a deadline; QEMU's own errors come back as they are. */
    public com.fasterxml.jackson.databind.JsonNode qmp(String name, String command,
            com.fasterxml.jackson.databind.node.ObjectNode args, Duration timeout)
            throws SupervisorException, io.qsup.qmp.QmpException {
        try {
            return require(name).ctl.qmp(command, args, timeout);
        } catch (io.qsup.vm.VmException e) {
            throw new SupervisorException(e.getMessage(), e);
        }
    }

    /** Runs a command in the VM's guest through its agent ({@code qsup exec}). */
    public io.qsup.vm.ExecResult exec(String name, String path, List<String> args, Duration timeout)
            throws SupervisorException {
        try {
            return require(name).ctl.exec(path, args, timeout);
        } catch (io.qsup.vm.VmException e) {
            throw new SupervisorException(e.getMessage(), e);
        }
    }

    private Managed require(String name) throws SupervisorException {
        Managed m = vms.get(name);
        if (m == null) {
            throw new SupervisorException("no VM named '" + name + "'; 'qsup list' shows the known VMs");
        }
        return m;
    }

    // ---- reload ----

    /**
     * Re-reads the definitions and applies the difference: new autostart VMs start, removed VMs stop with the ladder,
     * changed VMs are marked restart-pending (or restarted with {@code apply-changes: restart}). A VM whose file is
     * broken keeps its old definition; the errors are in the report.
     */
    public ReloadReport reload() {
        reloadLock.lock();
        try {
            LoadResult r = ConfigLoader.loadDirectory(settings.vmsDir(), settings, host);
            Map<String, VmDefinition> next = new TreeMap<>(r.vms());
            List<String> kept = new ArrayList<>();
            for (Managed m : vms.values()) {
                if (m.cluster) {
                    if (next.remove(m.name) != null) {
                        log.error("VM {}: a definition in {} has the name of a cluster VM; it is ignored: rename it",
                                m.name, settings.vmsDir());
                    }
                    continue;
                }
                if (!next.containsKey(m.name) && r.errorsByFile().containsKey(m.def.sourceFile())) {
                    next.put(m.name, m.def);
                    kept.add(m.name);
                }
            }
            List<String> added = new ArrayList<>();
            List<String> removed = new ArrayList<>();
            List<String> restarted = new ArrayList<>();
            Map<String, List<String>> changed = new LinkedHashMap<>();
            for (VmDefinition d : next.values()) {
                Managed m = vms.get(d.name());
                if (m == null) {
                    Managed fresh = register(d, VmState.STOPPED);
                    added.add(d.name());
                    if (shouldRun(fresh)) {
                        fresh.ctl.start(Cause.RELOAD, "new VM");
                    }
                } else if (!m.def.equals(d)) {
                    List<String> keys = DefinitionDiff.changedKeys(m.def, d);
                    if (keys.isEmpty()) {
                        m.def = d; // only the file moved: nothing the VM would notice
                        continue;
                    }
                    changed.put(d.name(), keys);
                    if (applyChange(m, d, keys)) {
                        restarted.add(d.name());
                    }
                }
            }
            for (Managed m : List.copyOf(vms.values())) {
                if (!m.cluster && !next.containsKey(m.name)) {
                    removed.add(m.name);
                    remove(m);
                }
            }
            logErrors(r.errors());
            ReloadReport report = new ReloadReport(added, removed, changed, restarted, kept, r.errors());
            log.info("reload: added {}, removed {}, changed {}, restarted {}, kept old definition of {}, {} errors",
                    added, removed, changed, restarted, kept, r.errors().size());
            return report;
        } finally {
            reloadLock.unlock();
        }
    }

    /** Returns true if the VM is being restarted at once. */
    private boolean applyChange(Managed m, VmDefinition d, List<String> keys) {
        VmSpec oldSpec = m.ctl.spec();
        VmSpec newSpec = specOf(d);
        m.def = d;
        m.ctl.setSpec(newSpec);
        boolean needsRestart = !oldSpec.argv().equals(newSpec.argv());
        if (!needsRestart || !m.ctl.state().hasProcess()) {
            return false; // runtime-only keys apply now; a stopped VM picks the new argv at its next start
        }
        if (d.applyChanges() == ApplyChanges.RESTART) {
            // one operation, so an operator stop that comes during it cancels the start
            m.ctl.restart(false, d.stopTimeout(), Cause.RELOAD, "definition changed (" + String.join(", ", keys) + ")");
            return true;
        }
        m.ctl.stateMachine().setRestartPending(keys);
        return false;
    }

    private CompletableFuture<StopResult> remove(Managed m) {
        return m.ctl.stop(false, m.def.stopTimeout(), Cause.RELOAD, "definition removed").whenComplete((res, err) -> {
            if (err != null) {
                log.error("VM {}: stop after removal failed: {}", m.name, err.toString());
            }
            try {
                store.delete(m.name);
            } catch (SupervisorException e) {
                log.warn("{}", e.getMessage());
            }
            vms.remove(m.name, m);
            m.ctl.close(); // last: this runs on the VM's own ops thread, which close() interrupts
        });
    }

    // ---- shutdown ----

    /** {@link #shutdownAll(int, Duration)} with the settings' {@code shutdown-parallel} and {@code shutdown-timeout}. */
    public Map<String, StopResult> shutdownAll() {
        return shutdownAll(settings.shutdownParallel(), settings.shutdownTimeout());
    }

    /**
     * Stops every VM, each along its own ladder, at most {@code parallel} ladders at once (parallel shutdowns flood
     * disk I/O), and waits for all. Everything fits in {@code budget}: a VM whose turn comes late gets what is left of
     * the budget as its stop-timeout when that is shorter, and one whose turn comes after the budget is spent is
     * stopped with force (QMP quit first). The operator's intent is left as it was, so the VMs start again at the next
     * boot. For the host-shutdown unit.
     */
    public Map<String, StopResult> shutdownAll(int parallel, Duration budget) {
        shuttingDown = true; // a VM that ends during the shutdown is not restarted
        long deadline = System.nanoTime() + budget.toNanos();
        Semaphore slots = new Semaphore(Math.max(1, parallel), true);
        Map<String, CompletableFuture<StopResult>> fs = new TreeMap<>();
        for (Managed m : new TreeMap<>(vms).values()) {
            CompletableFuture<StopResult> f = new CompletableFuture<>();
            fs.put(m.name, f);
            Thread.ofVirtual().name("shutdown " + m.name).start(() -> {
                try {
                    slots.acquire();
                } catch (InterruptedException e) {
                    f.complete(new StopResult(null, Duration.ZERO, false, "interrupted before its turn"));
                    return;
                }
                try {
                    Duration left = Duration.ofNanos(deadline - System.nanoTime());
                    boolean force = left.isNegative() || left.isZero();
                    Duration timeout = force ? SHUTDOWN_FORCE_TIMEOUT
                            : (m.def.stopTimeout().compareTo(left) > 0 ? left : m.def.stopTimeout());
                    log.info("VM {}: host shutdown: stop ladder{} with {} ms", m.name, force ? " (forced: budget spent)"
                            : "", timeout.toMillis());
                    f.complete(join(m.ctl.stop(force, timeout, Cause.HOST_SHUTDOWN, ""),
                            new StopResult(null, Duration.ZERO, false, "stop failed"), m.name));
                } finally {
                    slots.release();
                }
            });
        }
        Map<String, StopResult> out = new TreeMap<>();
        fs.forEach((n, f) -> out.put(n, join(f, new StopResult(null, Duration.ZERO, false, "stop failed"), n)));
        return out;
    }

    /** How long a forced stop (quit, SIGTERM, SIGKILL) may take once the shutdown budget is spent. */
    private static final Duration SHUTDOWN_FORCE_TIMEOUT = Duration.ofSeconds(10);

    /** Lets go of every VM without stopping any (the daemon exits; QEMU keeps running). */
    @Override
    public void close() {
        stateRetry.interrupt();
        for (Managed m : vms.values()) {
            m.ctl.close();
        }
        // the operations under way at the close end by themselves within moments (their QMP sockets are closed);
        // wait for them, at most 2 s in all, so that no state write lands after close returns
        long deadline = System.nanoTime() + Duration.ofSeconds(2).toNanos();
        try {
            for (Managed m : vms.values()) {
                if (!m.ctl.awaitClosed(Duration.ofNanos(Math.max(0, deadline - System.nanoTime())))) {
                    log.info("VM {}: its operation under way is cut off by the close", m.name);
                }
            }
            stateRetry.join(Duration.ofNanos(Math.max(1_000_000, deadline - System.nanoTime())));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (hooks != null) {
            hooks.close();
        }
        vmLog.close();
    }

    // ---- helpers ----

    private Managed register(VmDefinition d, VmState initial) {
        Managed m = new Managed(d, store.read(d.name()), initial, false);
        vms.put(d.name(), m);
        return m;
    }

    // ---- cluster VMs ----

    /**
     * Sets what decides whether a cluster VM may run here now (this host holds its claim and is not fenced): asked
     * before a restart by policy and when a stale pidfile is found. Cluster mode sets it once, before adding VMs.
     */
    public void setClusterGate(java.util.function.Predicate<String> gate) {
        this.clusterGate = gate;
    }

    /** Whether {@code name} is a cluster VM registered here. */
    public boolean isCluster(String name) {
        Managed m = vms.get(name);
        return m != null && m.cluster;
    }

    /**
     * Registers a cluster VM and adopts its QEMU if one runs (left by an earlier qsupd): completes with what adoption
     * found. It is not started: that waits for the claim ({@link #startClaimed}).
     *
     * @throws SupervisorException when a VM of that name is already registered (a local definition has it)
     */
    public CompletableFuture<AdoptOutcome> addCluster(VmDefinition d) throws SupervisorException {
        Managed m = new Managed(d, store.read(d.name()), VmState.ADOPTING, true);
        Managed had = vms.putIfAbsent(d.name(), m);
        if (had != null) {
            m.ctl.close();
            throw new SupervisorException("VM " + d.name() + ": a " + (had.cluster ? "cluster" : "local")
                    + " VM of that name is already registered here; rename one of them");
        }
        return m.ctl.adopt().whenComplete((o, e) -> m.adopted = o);
    }

    /** A cluster VM's definition changed in etcd: applied as a reload applies a changed file. */
    public void updateCluster(VmDefinition d) throws SupervisorException {
        Managed m = require(d.name());
        if (!m.cluster || m.def.equals(d)) {
            return;
        }
        List<String> keys = DefinitionDiff.changedKeys(m.def, d);
        if (!keys.isEmpty()) {
            log.info("VM {}: cluster definition changed ({})", m.name, String.join(", ", keys));
            applyChange(m, d, keys);
        } else {
            m.def = d;
        }
    }

    /** Starts a cluster VM whose claim this host just won; its restart tally starts over, as an operator start's. */
    public CompletableFuture<VmState> startClaimed(String name, String detail) throws SupervisorException {
        Managed m = require(name);
        m.heldBack = null;
        synchronized (m) {
            update(m, r -> r.withTallyReset().withIntent(Intent.STARTED).withStopPending(false)
                    .withRestartInProgress(false));
            return m.ctl.start(Cause.CLAIMED, detail);
        }
    }

    /**
     * Self-fencing, first pass, for every VM before any slower work: a launch not yet spawned is called off, and the
     * QEMU whose pid qsupd knows gets SIGKILL at once. Returns whether such a QEMU ran.
     */
    public boolean fenceFast(String name, String detail) {
        Managed m = vms.get(name);
        return m != null && killKnown(m, detail) > 0;
    }

    /** {@link #fenceFast} of a VM: returns the pid of the QEMU that ran at the fence and got SIGKILL, or 0. */
    private long killKnown(Managed m, String detail) {
        // read before the kill is queued: the VM's ops thread may carry it out, and clear the pid, before this
        // thread signals; the QEMU then died of the fence all the same
        long pid = m.ctl.pid();
        m.ctl.kill(Cause.FENCED, detail); // sets the stop flag at once, so no spawn follows; the kill is queued
        if (pid <= 0) {
            return 0;
        }
        try {
            inspector.signal(pid, ProcessInspector.Signal.KILL); // false when the queued kill got there first
            return pid;
        } catch (java.io.IOException e) {
            log.error("VM {}: fencing: SIGKILL of pid {} failed: {}", m.name, pid, e.getMessage());
            return 0;
        }
    }

    /**
     * Self-fencing: {@link #fenceFast}, then SIGKILL for every QEMU of the VM found in {@code /proc} (straight by pid:
     * the VM's own queue may be busy with a launch or a stop ladder, and the lease does not wait), again for a second
     * after, in case a spawn was under way, until a launch asked after the fence begins (that one is not the fence's
     * to kill); the record says stopped, so nothing restarts it. Returns how many QEMUs got the signal at once.
     */
    public int fence(String name, String detail) {
        Managed m = vms.get(name);
        if (m == null) {
            return 0;
        }
        long signalled = killKnown(m, detail);
        long fencedAt = m.ctl.lastRequest(); // the fence's own kill
        // the QEMU just signalled is still in /proc while the kernel tears it down: it is one process, not two
        int killed = (signalled > 0 ? 1 : 0) + killFound(m, signalled);
        Thread.ofVirtual().name("fence-sweep " + name).start(() -> {
            for (int i = 0; i < 10; i++) {
                try {
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    return;
                }
                if (m.ctl.launchedAfter(fencedAt)) {
                    return; // a start asked after the fence (a new claim, a migration target) is not the fence's
                }
                if (killFound(m, 0) > 0) {
                    log.error("VM {}: fencing: killed a QEMU that a launch under way had spawned", name);
                }
            }
        });
        synchronized (m) {
            update(m, r -> r.withIntent(Intent.STOPPED).withStopPending(false).withRestartInProgress(false));
        }
        return killed;
    }

    /**
     * SIGKILL for every QEMU of the VM in {@code /proc}; {@code counted}, a pid already signalled and counted, gets it
     * again but is not counted twice. Returns how many other processes got the signal.
     */
    private int killFound(Managed m, long counted) {
        VmSpec spec = m.ctl.spec();
        ProcessInspector.Instances found = inspector.findInstances(m.name, spec.pidFile(), spec.qmpSocket());
        Set<Long> pids = new java.util.TreeSet<>(found.serving());
        pids.addAll(found.starting());
        int killed = 0;
        for (long pid : pids) {
            try {
                if (inspector.signal(pid, ProcessInspector.Signal.KILL) && pid != counted) {
                    killed++;
                }
            } catch (java.io.IOException e) {
                log.error("VM {}: fencing: SIGKILL of pid {} failed: {}", m.name, pid, e.getMessage());
            }
        }
        return killed;
    }

    // ---- live migration of cluster VMs (the cluster drives the steps; see VmController's migration methods) ----

    /**
     * Target side: launches the cluster VM's QEMU here as a live-migration target ({@code -incoming defer}, this
     * host's paths), listening on a free port of {@code address}.
     */
    public CompletableFuture<io.qsup.vm.LiveMigration.Incoming> startIncoming(String name, String address,
            String detail) throws SupervisorException {
        Managed m = require(name);
        List<String> argv = ArgvBuilder.buildIncoming(m.def, settings, host);
        return m.ctl.startIncoming(argv, address, Cause.MIGRATE, detail);
    }

    /** Source side: sends the running VM to the target at {@code uri}; see {@link VmController#migrateOut}. */
    public CompletableFuture<io.qsup.vm.LiveMigration.Outcome> migrateOut(String name, String uri,
            io.qsup.vm.LiveMigration.Settings s, String detail) throws SupervisorException {
        return require(name).ctl.migrateOut(uri, s, Cause.MIGRATE, detail);
    }

    /**
     * Target side, once this host holds the VM's claim: runs the VM here; from now on it is this host's like one it
     * started (intent started, restart tally anew).
     */
    public CompletableFuture<VmState> finishIncoming(String name, Duration timeout) throws SupervisorException {
        Managed m = require(name);
        synchronized (m) {
            update(m, r -> r.withTallyReset().withIntent(Intent.STARTED).withStopPending(false)
                    .withRestartInProgress(false));
        }
        return m.ctl.finishIncoming(timeout);
    }

    /** Target side: the migration failed or was given up; quits the target QEMU. */
    public CompletableFuture<VmState> abortIncoming(String name, String reason) throws SupervisorException {
        return require(name).ctl.abortIncoming(reason);
    }

    /** Source side, after the target took over: quits the paused source QEMU. */
    public CompletableFuture<VmState> finishMigrationOut(String name) throws SupervisorException {
        return require(name).ctl.finishMigrationOut();
    }

    /** Source side: the hand-over failed and the target never ran the guest; resumes the VM here. */
    public CompletableFuture<VmState> resumeAfterFailedHandOver(String name, String reason)
            throws SupervisorException {
        return require(name).ctl.resumeAfterFailedHandOver(reason);
    }

    /** Stops a cluster VM along its ladder (for a move or an operator stop); its registration stays. */
    public CompletableFuture<StopResult> stopCluster(String name, boolean force, Duration timeout, Cause cause,
            String detail) throws SupervisorException {
        Managed m = require(name);
        synchronized (m) {
            update(m, r -> r.withIntent(Intent.STOPPED).withStopPending(false).withRestartInProgress(false));
            return m.ctl.stop(force, timeout != null ? timeout : m.def.stopTimeout(), cause, detail);
        }
    }

    /**
     * Stops a cluster VM with its ladder and drops it from this host (its definition was deleted, or another host
     * holds it now); completes once its QEMU is gone.
     */
    public CompletableFuture<StopResult> removeCluster(String name) throws SupervisorException {
        Managed m = require(name);
        if (!m.cluster) {
            throw new SupervisorException("VM " + name + " is a local VM, not a cluster VM");
        }
        return remove(m);
    }

    private VmSpec specOf(VmDefinition d) {
        VmPaths p = settings.pathsFor(d.name());
        List<String> argv = ArgvBuilder.build(d, settings, host);
        return new VmSpec(d.name(), argv, p.dir(), p.qmpSocket(), p.pidFile(), p.qemuLog(), d.stopTimeout(),
                d.hangAction() == HangAction.RESTART, options.probeInterval(), options.probeTimeout(),
                Duration.ofSeconds(30), d.guestAgent() ? p.agentSocket() : null, d.guestHangAfter(),
                d.guestHangAction() == HangAction.RESTART, readyCheck(d, p), d.readyTimeout());
    }

    private static io.qsup.vm.ReadyCheck readyCheck(VmDefinition d, VmPaths p) {
        return switch (d.readyWhen()) {
            case null -> null;
            case io.qsup.config.ReadyWhen.Agent a -> new io.qsup.vm.ReadyCheck.Agent();
            case io.qsup.config.ReadyWhen.Serial s -> new io.qsup.vm.ReadyCheck.SerialLine(s.pattern(), p.serialLog());
            case io.qsup.config.ReadyWhen.Tcp t -> new io.qsup.vm.ReadyCheck.Tcp(t.host(), t.port());
        };
    }

    /** A run this long counts as good: the backoff starts over at the next exit. */
    private static Duration stableAfter(VmDefinition d) {
        Duration max = d.restartMaxDelay();
        return max.compareTo(Duration.ofSeconds(10)) > 0 ? max : Duration.ofSeconds(10);
    }

    /** Applies {@code f} to the VM's record and persists it; returns null, or why it could not be persisted. */
    private String update(Managed m, UnaryOperator<VmRecord> f) {
        synchronized (m) {
            m.rec = f.apply(m.rec);
            return save(m, m.rec);
        }
    }

    /**
     * Writes the record (the caller holds {@code m}'s monitor); returns null, or why it failed. A failed write is
     * retried in the background, and {@link #stateProblem()} reports it until a write succeeds.
     */
    private String save(Managed m, VmRecord r) {
        try {
            store.save(m.name, r);
            m.unsaved = false;
            clearStateProblemIfAllSaved();
            return null;
        } catch (SupervisorException e) {
            m.unsaved = true;
            stateProblem = e.getMessage();
            log.error("{}; the request was carried out but a qsupd restart would not know it; retrying", e.getMessage());
            return e.getMessage();
        }
    }

    private void clearStateProblemIfAllSaved() {
        if (stateProblem != null && vms.values().stream().noneMatch(o -> o.unsaved)) {
            stateProblem = null;
            log.info("state-dir {} is writable again; every intent is persisted", settings.stateDir());
        }
    }

    /** Why the state-dir cannot be written (an intent is not persisted), or null when all is on disk. */
    public String stateProblem() {
        return stateProblem;
    }

    /** On {@code state-retry}: writes the records that could not be written, every few seconds, until they are. */
    private void retryUnsaved() {
        while (!Thread.currentThread().isInterrupted()) {
            try {
                Thread.sleep(STATE_RETRY);
            } catch (InterruptedException e) {
                return;
            }
            if (stateProblem == null) {
                continue;
            }
            for (Managed m : vms.values()) {
                synchronized (m) {
                    if (m.unsaved) {
                        try {
                            store.save(m.name, m.rec);
                            m.unsaved = false;
                        } catch (SupervisorException e) {
                            log.debug("state retry: {}", e.getMessage());
                        }
                    }
                }
            }
            clearStateProblemIfAllSaved();
        }
    }

    private static void logErrors(List<ConfigError> errors) {
        for (ConfigError e : errors) {
            log.error("{}", e.format());
        }
    }

    private static <T> T join(CompletableFuture<T> f, T fallback, String what) {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return fallback;
        } catch (ExecutionException e) {
            log.error("{} failed: {}", what, e.getCause().toString());
            return fallback;
        }
    }
}
