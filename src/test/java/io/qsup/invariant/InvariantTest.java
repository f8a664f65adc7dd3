package io.qsup.invariant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qsup.invariant.IntentModel.Acceptance;
import io.qsup.invariant.IntentModel.Call;
import io.qsup.invariant.IntentModel.Expectation;
import io.qsup.invariant.IntentModel.Outcome;
import io.qsup.invariant.IntentModel.Verb;
import io.qsup.supervisor.SupervisorFixture;
import io.qsup.testing.QemuProcesses;
import io.qsup.testing.QemuProcesses.Instance;
import io.qsup.testing.QemuProcesses.Qemu;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalTime;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The whole daemon under random operators and faults: qsupd as a real child JVM, three real test-guest VMs under TCG
 * (one per restart policy), the real {@code qsup} command line over the real control socket. For
 * {@code qsup.invariant.seconds} (default 60) it sends random {@code start}, {@code stop} (with {@code --force},
 * {@code --no-wait}), {@code restart}, {@code kill}, {@code kill -9}s the VMs' QEMUs, {@code kill -9}s or SIGTERMs qsupd
 * and starts a new one (sometimes losing a pidfile or killing a QEMU while no daemon runs), and reloads, now and then
 * touching a definition. Throughout, a sampler checks in {@code /proc} that no VM ever has two live QEMUs. At the end,
 * once the VMs settle, each VM's state as qsupd reports it and as {@code /proc} shows it must match what the last
 * accepted operator request and the restart policy imply ({@link IntentModel}).
 *
 * <p>The seed is printed first; {@code -Dqsup.invariant.seed=N} replays the same choices (timing still varies). The
 * action log goes to the test's output file, into the failure message, and with the daemon and VM logs to
 * {@code target/invariant/seed-N/}.
 *
 * <p>To keep the order in which qsupd accepted requests certain, the test never has two requests for one VM in flight:
 * a waiting verb runs on a worker thread and blocks further verbs to that VM (not faults) until it returns; a
 * {@code --no-wait} verb returns as soon as qsupd accepted it, so the next verb can catch a restart between its stop
 * and its start.
 */
class InvariantTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> VMS = List.of("a", "b", "c");
    private static final Map<String, String> POLICY = Map.of("a", "always", "b", "on-failure", "c", "no");
    /** Short enough for a lively run, long enough that a booted guest powers off on ACPI within the first rung. */
    private static final int STOP_TIMEOUT_SECONDS = 8;
    /** How long after a request's reply a VM counts as quiet enough for a kill to be a plain crash. */
    private static final Duration QUIET_AFTER_REQUEST = Duration.ofMillis(1500);
    private static final Pattern STOPPING_LINE = Pattern.compile("VM (\\S+): (\\S+) -> stopping \\((.*)\\)$");
    private static final Pattern RUNG_LINE = Pattern.compile("VM (\\S+): stop ladder at rung (sigterm|sigkill)$");
    private static final Pattern FAILED_STOP_LINE = Pattern.compile("VM (\\S+): stopping -> failed \\(.*\\)$");

    private SupervisorFixture fx;
    private Path socket;
    private ActionLog log;
    private Path artifacts;
    private QemuProcesses procs;
    private TwoQemuSampler sampler;
    private final Map<String, IntentModel> models = new LinkedHashMap<>();
    private final List<QsupdChild> daemons = new ArrayList<>();
    private volatile QsupdChild daemon;
    private volatile boolean goingDown;
    private final ExecutorService workers = Executors.newCachedThreadPool(
            Thread.ofPlatform().daemon().name("qsup-cli-", 0).factory());
    private final Map<String, Future<?>> inFlight = new ConcurrentHashMap<>();
    private final Map<String, Long> lastReply = new ConcurrentHashMap<>();
    private final Map<String, Integer> stopTimeouts = new HashMap<>();
    private final List<String> problems = Collections.synchronizedList(new ArrayList<>());
    private final List<String> notes = Collections.synchronizedList(new ArrayList<>());
    private int touches;
    private boolean previousNoWait;
    private Verb previousVerb;

    @Test
    @Timeout(value = 20, unit = TimeUnit.MINUTES) // the run bounds itself; this only catches a hang of the test
    void randomOperatorsCrashesAndDaemonRestartsNeverMakeTwoQemusNorLoseAnIntent() throws Exception {
        long seed = Long.getLong("qsup.invariant.seed", new SecureRandom().nextLong());
        int seconds = Integer.getInteger("qsup.invariant.seconds", 60);
        Random master = new Random(seed);

        fx = new SupervisorFixture(2);
        Path project = Path.of(System.getProperty("qsup.projectDir", System.getProperty("user.dir")));
        artifacts = project.resolve("target/invariant/seed-" + seed);
        deleteTree(artifacts);
        Files.createDirectories(artifacts);
        log = new ActionLog(artifacts.resolve("actions.log"));
        log.add("seed " + seed + " (replay: -Dqsup.invariant.seed=" + seed + "), " + seconds + " s of actions, in "
                + fx.base);
        for (String vm : VMS) {
            writeVm(vm, STOP_TIMEOUT_SECONDS);
            models.put(vm, new IntentModel(vm, IntentModel.Policy.parse(POLICY.get(vm)), true, log));
        }
        socket = fx.settings().controlSocket();
        procs = new QemuProcesses(fx.base);
        sampler = new TwoQemuSampler(fx.base, 50, log::label);
        sampler.start();

        startDaemon();
        awaitAllRunning(Duration.ofSeconds(120));

        long end = System.nanoTime() + Duration.ofSeconds(seconds).toNanos();
        String previous = null;
        int steps = 0;
        while (System.nanoTime() < end) {
            Random r = new Random(master.nextLong()); // one generator per step: a replay makes the same choices
            // a burst follows the previous verb on the same VM at once, to land inside what that verb set going (a
            // --no-wait restart between its stop and its start, a ladder, a launch)
            boolean burst = previous != null && r.nextInt(100) < (previousNoWait ? 50 : 20);
            long delay = burst ? (r.nextBoolean() ? r.nextInt(60) : 60 + r.nextInt(340)) : 500 + r.nextInt(1500);
            int kind = r.nextInt(100);
            String vm = burst ? previous : VMS.get(r.nextInt(VMS.size()));
            Thread.sleep(delay);
            checkDaemonAlive();
            steps++;
            previous = null;
            if (kind < 62) {
                previous = verb(vm, r, burst);
            } else if (kind < 77) {
                killQemu(vm);
            } else if (kind < 83) {
                daemonDown(true, r);
            } else if (kind < 89) {
                daemonDown(false, r);
            } else {
                reload(vm, r);
            }
        }
        log.add("--- " + steps + " actions done; settling");
        settleAndCheck();

        List<String> all = new ArrayList<>(problems);
        all.addAll(TwoQemuSampler.describe(sampler.violations()));
        if (sampler.failure() != null) {
            all.add("the /proc sampler stopped: " + sampler.failure());
        }
        log.add(sampler.toString());
        notes.forEach(n -> log.add("note: " + n));
        all.forEach(p -> log.add("PROBLEM: " + p));
        if (!all.isEmpty()) {
            fail("%d problems with seed %d (replay with -Dqsup.invariant.seed=%d); artifacts in %s\n\n%s\n\naction log:\n%s"
                    .formatted(all.size(), seed, seed, artifacts, String.join("\n\n", all), log.text()));
        }
        assertThat(sampler.scans()).as("the sampler scanned /proc throughout").isGreaterThan(seconds * 5L);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (sampler != null) {
            sampler.close();
        }
        for (QsupdChild d : daemons) {
            if (d.isAlive()) {
                d.kill9();
                d.awaitExit(Duration.ofSeconds(10));
            }
        }
        workers.shutdownNow();
        if (fx != null) {
            if (artifacts != null && Files.isDirectory(artifacts)) {
                copyArtifacts();
            }
            fx.close();
            List<Qemu> left = new QemuProcesses(fx.base).scan().qemus();
            assertThat(left).as("QEMUs of this test left after cleanup").isEmpty();
        }
    }

    // ---- actions ----

    /**
     * One operator verb on {@code wanted}, or the next VM with no request in flight; returns the VM used. Right after
     * a {@code --no-wait} restart, a burst mostly stops or kills, to catch the restart between its stop and its start.
     */
    private String verb(String wanted, Random r, boolean burst) {
        int v = r.nextInt(100);
        int followUp = r.nextInt(100);
        if (burst && previousVerb == Verb.RESTART && previousNoWait && followUp < 60) {
            v = followUp < 45 ? 40 : 90; // stop, or kill
        }
        boolean coin = r.nextBoolean();
        int roll = r.nextInt(100);
        String vm = null;
        for (int i = 0; i < VMS.size(); i++) {
            String candidate = VMS.get((VMS.indexOf(wanted) + i) % VMS.size());
            if (free(candidate)) {
                vm = candidate;
                break;
            }
        }
        if (vm == null) {
            log.add("every VM has a request in flight; no verb this step");
            return null;
        }
        List<String> args = new ArrayList<>();
        Verb verb;
        boolean noWait;
        if (v < 30) {
            verb = Verb.START;
            noWait = coin;
            args.add("start");
        } else if (v < 57) {
            verb = Verb.STOP;
            noWait = roll < 40;
            args.add("stop");
            if (coin) {
                args.add("--force");
            }
        } else if (v < 87) {
            verb = Verb.RESTART;
            noWait = coin;
            args.add("restart");
        } else {
            verb = Verb.KILL;
            noWait = roll < 30;
            args.add("kill");
        }
        if (noWait) {
            args.add("--no-wait");
        }
        previousNoWait = noWait;
        previousVerb = verb;
        args.add(vm);
        args.add("--json");
        String line = "qsup " + String.join(" ", args);
        IntentModel model = models.get(vm);
        Call call = model.send(verb, line, System.nanoTime());
        String target = vm;
        if (noWait) {
            finish(target, call, Cli.run(socket, args));
        } else {
            log.add(vm + ": " + line + " (sent, waiting on a worker)");
            inFlight.put(vm, workers.submit(() -> finish(target, call, Cli.run(socket, args))));
        }
        return vm;
    }

    /** Records what became of one verb: accepted, never received, or unknown because the daemon went away. */
    private void finish(String vm, Call call, Cli res) {
        IntentModel model = models.get(vm);
        Acceptance a;
        String note = "";
        if (res.neverConnected()) {
            a = Acceptance.NO;
            note = "qsupd not reachable";
        } else if (res.lostMidCommand()) {
            a = Acceptance.MAYBE;
            if (goingDown) {
                call.resolvable = true;
                note = "qsupd went away during the call";
            } else {
                note = "connection lost while qsupd kept running";
                problems.add(vm + ": '" + call.line + "' lost its connection while qsupd kept running: " + res.brief());
            }
        } else if (res.exit() == 0 || res.exit() == 1) {
            a = Acceptance.YES;
            if (res.exit() == 1 && call.verb.stops() && !goingDown) {
                // a stop has nothing to wait for but the ladder, which always ends the process
                problems.add(vm + ": '" + call.line + "' failed: " + res.brief());
            } else if (res.exit() == 1) {
                notes.add(vm + ": '" + call.line + "' sent at " + log.label(call.sentNanos) + " failed: " + res.brief());
            }
        } else {
            a = Acceptance.MAYBE;
            problems.add(vm + ": '" + call.line + "' ended with an unexpected exit code: " + res.brief());
        }
        model.settle(call, a, note);
        lastReply.put(vm, res.endNanos());
        log.add(vm + ": " + call.line + " -> " + res.brief() + " [" + a + (note.isEmpty() ? "" : ", " + note) + "; took "
                + (res.endNanos() - res.sentNanos()) / 1_000_000 + " ms]");
    }

    private boolean free(String vm) {
        Future<?> f = inFlight.get(vm);
        return f == null || f.isDone();
    }

    /**
     * {@code kill -9} of every live QEMU process of the VM, found in /proc. The kill is "clean" (a plain crash of a
     * running VM, see {@link IntentModel}) only with evidence: qsupd reported it running with the same pid twice,
     * 300 ms apart, /proc holds exactly that one daemonized QEMU, and no request to it was answered in the last
     * {@link #QUIET_AFTER_REQUEST} or is in flight (so no start, stop or restart of it is queued).
     */
    private void killQemu(String vm) throws Exception {
        if (procs.scan().instances(vm).isEmpty()) {
            log.add(vm + ": kill -9 of its QEMU: none alive, nothing to do");
            return;
        }
        String why;
        boolean clean = false;
        Long last = lastReply.get(vm);
        if (!free(vm)) {
            why = "a request to it was in flight";
        } else if (last != null && System.nanoTime() - last < QUIET_AFTER_REQUEST.toNanos()) {
            why = "a request to it was answered " + (System.nanoTime() - last) / 1_000_000 + " ms before";
        } else {
            JsonNode q1 = status(vm);
            Thread.sleep(300);
            JsonNode q2 = status(vm);
            List<Instance> now = procs.scan().instances(vm);
            long pid = q2 == null ? -1 : q2.path("pid").asLong(-1);
            boolean running = q1 != null && q2 != null && isUp(q1) && isUp(q2)
                    && q1.path("pid").asLong(-2) == pid;
            boolean one = now.size() == 1 && now.get(0).members().size() == 1 && now.get(0).leaf().pid() == pid;
            clean = running && one;
            why = clean ? "qsupd reported it " + q2.path("state").asText() + " as pid " + pid
                    + " twice, 300 ms apart; /proc held exactly that daemonized QEMU"
                    : "qsupd reported " + brief(q1) + " then " + brief(q2) + "; /proc held " + now;
        }
        kill(vm, clean, why);
    }

    /** Kills every live QEMU of the VM now (a fresh scan) and records the kill; false if none was alive. */
    private boolean kill(String vm, boolean clean, String why) {
        List<Instance> targets = procs.scan().instances(vm);
        long at = System.nanoTime();
        List<Long> hit = new ArrayList<>();
        for (Instance i : targets) {
            for (Qemu q : i.members()) {
                if (QemuProcesses.kill(q)) {
                    hit.add(q.pid());
                }
            }
        }
        if (hit.isEmpty()) {
            log.add(vm + ": kill -9 of its QEMU: it had ended already");
            return false;
        }
        models.get(vm).killed(new IntentModel.Kill(at, clean, why));
        log.add(vm + ": kill -9 of QEMU pid " + hit + " (" + (clean ? "clean" : "not clean") + ": " + why + ")");
        return true;
    }

    /**
     * Ends qsupd with {@code kill -9} or SIGTERM, settles what the requests in flight became, sometimes loses a
     * pidfile, kills a QEMU or tries a verb while no daemon runs, then starts a new qsupd.
     */
    private void daemonDown(boolean kill9, Random r) throws Exception {
        boolean losePidfile = r.nextInt(100) < 15;
        boolean killWhileDown = r.nextInt(100) < 30;
        boolean verbWhileDown = r.nextInt(100) < 25;
        long downMillis = r.nextInt(1500);
        boolean awaitAnswer = r.nextBoolean();
        String vmA = VMS.get(r.nextInt(VMS.size()));
        String vmB = VMS.get(r.nextInt(VMS.size()));

        // evidence for a clean kill while no daemon runs: what the daemon said just before it went away
        Map<String, JsonNode> view1 = listByName();
        Thread.sleep(300);
        Map<String, JsonNode> view2 = listByName();
        long viewAt = System.nanoTime();
        Map<String, Boolean> quiet = new HashMap<>();
        for (String vm : VMS) {
            Long last = lastReply.get(vm);
            quiet.put(vm, free(vm) && (last == null || viewAt - last > QUIET_AFTER_REQUEST.toNanos()));
        }

        QsupdChild d = daemon;
        goingDown = true;
        List<Qemu> before = procs.scan().qemus();
        log.add((kill9 ? "kill -9 " : "SIGTERM to ") + d);
        if (kill9) {
            d.kill9();
        } else {
            d.term();
        }
        if (!d.awaitExit(Duration.ofSeconds(30))) {
            problems.add(d + " did not exit within 30 s of SIGTERM; killed it");
            d.kill9();
            d.awaitExit(Duration.ofSeconds(10));
        }
        daemon = null;
        if (!kill9 && d.exitValue() != 0) {
            problems.add(d + " exited " + d.exitValue() + " on SIGTERM, not 0; its log: " + d.log());
        }
        awaitInFlight(Duration.ofSeconds(15));
        resolveMaybes();
        goingDown = false;
        List<Qemu> after = procs.scan().qemus();
        for (Qemu q : before) {
            if (after.stream().noneMatch(x -> x.pid() == q.pid())) {
                log.add(q.vm() + ": QEMU pid " + q.pid() + " ended while " + d + " was exiting");
            }
        }
        log.add(d + " exited " + d.exitValue());

        if (losePidfile) {
            Path pidFile = fx.pidFile(vmA);
            if (Files.exists(pidFile) && !procs.scan().instances(vmA).isEmpty()) {
                Files.delete(pidFile);
                log.add(vmA + ": deleted its pidfile while no qsupd runs (its QEMU lives on)");
            }
        }
        if (killWhileDown && !procs.scan().instances(vmB).isEmpty()) {
            killWhileDown(vmB, view1.get(vmB), view2.get(vmB), quiet.get(vmB));
        }
        if (verbWhileDown) {
            String vm = vmA;
            Verb verb = r.nextBoolean() ? Verb.STOP : Verb.START;
            List<String> args = List.of(verb == Verb.STOP ? "stop" : "start", "--no-wait", vm);
            Call call = models.get(vm).send(verb, "qsup " + String.join(" ", args), System.nanoTime());
            Cli res = Cli.run(socket, args);
            finish(vm, call, res);
            if (!res.neverConnected()) {
                problems.add(vm + ": '" + call.line + "' while no qsupd ran did not fail as unreachable: "
                        + res.brief());
            }
        }
        Thread.sleep(downMillis);
        startDaemon();
        if (awaitAnswer) {
            awaitAnswer(Duration.ofSeconds(30));
        }
    }

    /** A kill while no qsupd runs is clean if the daemon saw it running quietly just before and the pidfile names it. */
    private void killWhileDown(String vm, JsonNode v1, JsonNode v2, boolean quiet) throws Exception {
        List<Instance> now = procs.scan().instances(vm);
        long pid = v2 == null ? -1 : v2.path("pid").asLong(-1);
        long inPidfile = -1;
        try {
            inPidfile = io.qsup.vm.ProcessInspector.readPidFile(fx.pidFile(vm)).orElse(-1);
        } catch (IOException e) {
            // not clean
        }
        boolean clean = quiet && v1 != null && v2 != null && isUp(v1) && isUp(v2) && v1.path("pid").asLong(-2) == pid
                && now.size() == 1 && now.get(0).members().size() == 1 && now.get(0).leaf().pid() == pid
                && inPidfile == pid;
        String why = clean ? "qsupd reported it " + v2.path("state").asText() + " as pid " + pid
                + " twice before going away, with no request pending; its pidfile names it"
                : "while no qsupd runs: qsupd had reported " + brief(v1) + " then " + brief(v2)
                        + (quiet ? "" : ", with a request pending or just answered") + "; pidfile " + inPidfile
                        + "; /proc " + now;
        kill(vm, clean, why);
    }

    /** {@code qsup reload}, sometimes after touching a definition: its mtime, a comment, or its runtime-only stop-timeout. */
    private void reload(String vm, Random r) throws Exception {
        int touch = r.nextInt(100);
        Path f = fx.base.resolve("vms").resolve(vm + ".yaml");
        if (touch < 15) {
            Files.setLastModifiedTime(f, FileTime.from(Instant.now()));
            log.add(vm + ": touched " + f.getFileName() + " (mtime only)");
        } else if (touch < 35) {
            Files.writeString(f, "# touched " + (++touches) + "\n", StandardCharsets.UTF_8,
                    java.nio.file.StandardOpenOption.APPEND);
            log.add(vm + ": appended a comment to " + f.getFileName());
        } else if (touch < 50) {
            int t = stopTimeouts.get(vm) == STOP_TIMEOUT_SECONDS ? STOP_TIMEOUT_SECONDS + 1 : STOP_TIMEOUT_SECONDS;
            writeVm(vm, t);
            log.add(vm + ": set stop-timeout: " + t + "s in " + f.getFileName() + " (a runtime key; argv unchanged)");
        }
        Cli res = Cli.run(socket, List.of("reload", "--json"));
        log.add("qsup reload -> " + res.brief());
        if (res.exit() != 0 && !res.neverConnected()) {
            problems.add("qsup reload failed: " + res.brief());
        }
    }

    // ---- the end ----

    private void settleAndCheck() throws Exception {
        awaitInFlight(Duration.ofSeconds(60));
        if (daemon == null || !daemon.isAlive()) {
            checkDaemonAlive();
            if (daemon == null) {
                startDaemon();
            }
        }
        awaitAnswer(Duration.ofSeconds(60));
        Map<String, JsonNode> view = awaitSettled(Duration.ofSeconds(90));
        Thread.sleep(500);
        QemuProcesses.Snapshot snap = procs.scan();
        for (String vm : VMS) {
            JsonNode o = view.get(vm);
            List<Instance> inst = snap.instances(vm);
            String state = o == null ? "missing" : o.path("state").asText();
            long pid = o == null ? -1 : o.path("pid").asLong(-1);
            String intent = o == null ? "missing" : o.path("intent").asText();
            Expectation e = models.get(vm).expect();
            log.add(vm + ": qsupd says " + state + " pid " + pid + " intent " + intent + "; /proc " + inst.size()
                    + " instance(s); model allows " + e.outcomes() + " intent " + e.intents() + " because " + e.reasoning());

            // qsupd's view against /proc
            if (state.equals("running") || state.equals("paused")) {
                if (inst.size() != 1 || inst.get(0).leaf().pid() != pid) {
                    problems.add(vm + ": qsupd reports " + state + " pid " + pid + " but /proc holds " + inst
                            + "\n  " + tail(vm));
                }
            } else if (state.equals("stopped") || state.equals("failed")) {
                if (!inst.isEmpty()) {
                    problems.add(vm + ": qsupd reports " + state + " but /proc holds a QEMU of it: " + inst + "\n  "
                            + tail(vm));
                }
            }
            // the end state against the last intent and the policy
            String why = o == null ? "" : whyEnded(o);
            Outcome actual = switch (state) {
                case "running", "paused" -> Outcome.RUNNING;
                case "stopped" -> Outcome.STOPPED;
                case "failed" -> launchFailed(o) ? Outcome.LAUNCH_FAILED : null;
                default -> null;
            };
            if (actual == null || !e.outcomes().contains(actual)) {
                problems.add(vm + " (restart: " + POLICY.get(vm) + "): qsupd reports " + state + " (" + why
                        + "), but the model allows only "
                        + e.outcomes() + ": " + e.reasoning() + "\n  " + tail(vm));
            }
            if (!e.intents().contains(intent)) {
                problems.add(vm + ": qsupd reports intent " + intent + ", but the last accepted request means "
                        + e.intents() + ": " + e.reasoning());
            }
        }
        checkLadders();
    }

    /** A VM left {@code failed} by a launch that failed, as against a start limit or a stop ladder that failed. */
    private static boolean launchFailed(JsonNode vm) {
        return vm.hasNonNull("launch-error")
                || vm.path("last-exit-cause").path("cause").asText().equals("launch-failed");
    }

    /** The last exit's cause and detail and any launch error, for a problem report. */
    private static String whyEnded(JsonNode vm) {
        JsonNode last = vm.path("last-exit-cause");
        String exit = last.isObject() ? last.path("cause").asText() + ": " + last.path("detail").asText() : "no exit";
        return vm.hasNonNull("launch-error") ? exit + "; launch error: " + vm.path("launch-error").asText() : exit;
    }

    /** Polls {@code qsup list --json} until no VM is in transit and the view held still for 2 s. */
    private Map<String, JsonNode> awaitSettled(Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        Map<String, String> prev = null;
        int stable = 0;
        Map<String, JsonNode> view = Map.of();
        while (System.nanoTime() < deadline) {
            view = listByName();
            Map<String, String> key = new HashMap<>();
            boolean quietStates = !view.isEmpty();
            for (Map.Entry<String, JsonNode> e : view.entrySet()) {
                String st = e.getValue().path("state").asText();
                key.put(e.getKey(), st + "/" + e.getValue().path("pid").asText());
                quietStates &= List.of("running", "paused", "stopped", "failed").contains(st);
            }
            stable = quietStates && key.equals(prev) ? stable + 1 : 0;
            prev = key;
            if (stable >= 4) {
                log.add("settled: " + key);
                return view;
            }
            Thread.sleep(500);
        }
        problems.add("the VMs did not settle within " + timeout.toSeconds() + " s: last view " + prev);
        return view;
    }

    /**
     * Every stop ladder the daemons logged. A graceful stop or restart gives the guest its powerdown and quit shares
     * of stop-timeout, so SIGTERM comes at least 0.73 x stop-timeout after the request (which the test sent no later
     * than qsupd received it); a ladder that got there much sooner, e.g. because qsupd was exiting, cut the guest short.
     * A ladder that ends in {@code failed} means a QEMU survived SIGKILL. A VM with no monitor (orphaned) rightly skips
     * to the signals, and {@code kill} starts at SIGKILL.
     */
    private void checkLadders() throws IOException {
        long limitMillis = (long) (0.6 * STOP_TIMEOUT_SECONDS * 1000);
        for (QsupdChild d : daemons) {
            if (!Files.exists(d.log())) {
                continue;
            }
            Map<String, LocalTime> previousLadder = new HashMap<>();
            Map<String, Ladder> ladder = new HashMap<>();
            LocalTime logStart = null;
            for (String line : Files.readAllLines(d.log(), StandardCharsets.UTF_8)) {
                LocalTime t = timeOf(line);
                if (t == null) {
                    continue;
                }
                logStart = logStart == null ? t : logStart;
                Matcher m = STOPPING_LINE.matcher(line);
                if (m.find()) {
                    String vm = m.group(1);
                    // only requests this daemon can have received, and of the kind the ladder's cause names
                    LocalTime after = previousLadder.getOrDefault(vm, logStart);
                    previousLadder.put(vm, t);
                    String why = m.group(3);
                    Call cause = models.containsKey(vm) ? models.get(vm).calls().stream()
                            .filter(c -> !c.initial && c.acceptance != Acceptance.NO)
                            .filter(c -> why.equals(ladderCause(c)))
                            .filter(c -> c.sentWall.isAfter(after) && !c.sentWall.isAfter(t.plusNanos(1_000_000)))
                            .findFirst().orElse(null) : null;
                    ladder.put(vm, new Ladder(t, m.group(2), m.group(3), cause));
                    continue;
                }
                m = RUNG_LINE.matcher(line);
                if (m.find() && ladder.containsKey(m.group(1))) {
                    Ladder l = ladder.get(m.group(1));
                    Call c = l.call();
                    if (c == null || !(l.from().equals("running") || l.from().equals("paused"))) {
                        continue;
                    }
                    long ms = Duration.between(c.sentWall, t).toMillis();
                    if (ms >= 0 && ms < limitMillis) {
                        ladder.remove(m.group(1)); // one report per ladder
                        problems.add(m.group(1) + ": a stop ladder (" + l.cause() + ", begun at " + l.began()
                                + " from " + l.from() + ") reached rung " + m.group(2) + " " + ms + " ms after '"
                                + c.line + "' (sent at " + log.label(c.sentNanos) + ", " + c.sentWall
                                + "), the earliest request that can have begun it; with stop-timeout "
                                + STOP_TIMEOUT_SECONDS + " s a graceful ladder gets there no sooner than "
                                + (long) (0.73 * STOP_TIMEOUT_SECONDS * 1000) + " ms. " + d + " logged: "
                                + line.strip());
                    }
                    continue;
                }
                m = FAILED_STOP_LINE.matcher(line);
                if (m.find()) {
                    problems.add(m.group(1) + ": a stop ended in failed; " + d + " logged: " + line.strip());
                }
            }
        }
    }

    /** The cause qsupd gives the ladder of a graceful stop or restart request, or null for other verbs. */
    private static String ladderCause(Call c) {
        return switch (c.verb) {
            case STOP -> c.line.contains("--force") ? "operator stop --force" : "operator stop";
            case RESTART -> "operator restart";
            default -> null;
        };
    }

    /** One stop ladder in a daemon log: the state it began from, its cause, and the test's request behind it. */
    private record Ladder(LocalTime began, String from, String cause, Call call) {}

    /** The {@code HH:mm:ss.SSS} a daemon log line starts with, or null. */
    private static LocalTime timeOf(String line) {
        if (line.length() < 12 || line.charAt(2) != ':' || line.charAt(8) != '.') {
            return null;
        }
        try {
            return LocalTime.parse(line.substring(0, 12));
        } catch (java.time.format.DateTimeParseException e) {
            return null;
        }
    }

    // ---- the daemon ----

    private void startDaemon() throws IOException {
        int n = daemons.size() + 1;
        QsupdChild d = QsupdChild.start(fx.settingsFile, fx.base.resolve("qsupd-" + n + ".log"), n);
        daemons.add(d);
        daemon = d;
        log.add("started " + d);
    }

    /** A qsupd that died without being told to is a problem; a new one takes its place so the run goes on. */
    private void checkDaemonAlive() throws IOException {
        QsupdChild d = daemon;
        if (d != null && !d.isAlive() && !goingDown) {
            problems.add(d + " exited by itself with code " + d.exitValue() + "; its last lines:\n" + lastLines(d.log(),
                    15));
            log.add(d + " exited by itself with code " + d.exitValue() + "; starting another");
            daemon = null;
            startDaemon();
        }
    }

    private void awaitAnswer(Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (Cli.run(socket, List.of("list", "--names")).exit() == 0) {
                log.add("qsupd answers on its control socket");
                return;
            }
            checkDaemonAlive();
            Thread.sleep(100);
        }
        problems.add("no qsupd answered on " + socket + " within " + timeout.toSeconds() + " s");
    }

    private void awaitAllRunning(Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        Map<String, JsonNode> view = Map.of();
        while (System.nanoTime() < deadline) {
            view = listByName();
            if (view.size() == VMS.size() && view.values().stream().allMatch(o -> o.path("state").asText()
                    .equals("running"))) {
                log.add("all VMs running: " + view.keySet());
                return;
            }
            Thread.sleep(250);
        }
        throw new AssertionError("the first qsupd did not bring up every VM within " + timeout.toSeconds() + " s: "
                + view + "\n" + lastLines(daemon.log(), 30));
    }

    /** Waits for every request in flight; a request still open after the timeout is a problem. */
    private void awaitInFlight(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (Map.Entry<String, Future<?>> e : inFlight.entrySet()) {
            try {
                e.getValue().get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (TimeoutException ex) {
                problems.add(e.getKey() + ": a qsup request did not return within " + timeout.toSeconds() + " s");
            } catch (ExecutionException ex) {
                problems.add(e.getKey() + ": a qsup request threw " + ex.getCause());
            }
        }
    }

    /**
     * The daemon is gone: a request whose connection dropped may or may not have reached it. The persisted intent
     * (written before qsupd acts on a request) tells when the request's intent differs from the one before it.
     */
    private void resolveMaybes() throws IOException {
        for (IntentModel m : models.values()) {
            for (Call c : m.calls()) {
                if (c.acceptance != Acceptance.MAYBE || !c.resolvable) {
                    continue;
                }
                c.resolvable = false;
                String persisted = persistedIntent(m.vm);
                String before = m.intentBefore(c);
                String mine = c.verb.intent();
                if (mine.equals(before)) {
                    m.settle(c, Acceptance.MAYBE, "same intent as before; whether it took effect is unknown");
                } else if (persisted.equals(mine)) {
                    m.settle(c, Acceptance.YES, "its intent '" + mine + "' was persisted");
                } else if (persisted.equals(before)) {
                    m.settle(c, Acceptance.NO, "the persisted intent is still '" + before + "'");
                } else {
                    m.settle(c, Acceptance.MAYBE, "persisted intent '" + persisted + "' fits neither");
                }
                log.add(m.vm + ": '" + c.line + "' was in flight when qsupd went away: " + c.acceptance + ", "
                        + c.note);
            }
        }
    }

    private String persistedIntent(String vm) throws IOException {
        Path f = fx.base.resolve("state/supervisor/" + vm + ".json");
        if (!Files.exists(f)) {
            return "none";
        }
        return JSON.readTree(f.toFile()).path("intent").asText("none").toLowerCase(java.util.Locale.ROOT);
    }

    // ---- helpers ----

    private void writeVm(String vm, int stopTimeoutSeconds) throws IOException {
        stopTimeouts.put(vm, stopTimeoutSeconds);
        fx.writeVm(vm, """
                restart: %s
                restart-delay: 500ms
                restart-max-delay: 2s
                start-limit-burst: 1000
                start-limit-interval: 10s
                stop-timeout: %ds""".formatted(POLICY.get(vm), stopTimeoutSeconds));
    }

    private JsonNode status(String vm) {
        Cli res = Cli.run(socket, List.of("status", vm, "--json"));
        if (res.exit() != 0) {
            return null;
        }
        try {
            return JSON.readTree(res.out());
        } catch (IOException e) {
            problems.add("qsup status " + vm + " --json printed something that is not JSON: " + res.brief());
            return null;
        }
    }

    /** {@code qsup list --json} by VM name; empty if no daemon answers. */
    private Map<String, JsonNode> listByName() {
        Cli res = Cli.run(socket, List.of("list", "--json"));
        Map<String, JsonNode> out = new LinkedHashMap<>();
        if (res.exit() != 0) {
            return out;
        }
        try {
            for (JsonNode o : JSON.readTree(res.out())) {
                out.put(o.path("name").asText(), o);
            }
        } catch (IOException e) {
            problems.add("qsup list --json printed something that is not JSON: " + res.brief());
        }
        return out;
    }

    private static boolean isUp(JsonNode o) {
        String s = o.path("state").asText();
        return s.equals("running") || s.equals("paused");
    }

    private static String brief(JsonNode o) {
        return o == null ? "nothing (no answer)" : o.path("state").asText() + " pid " + o.path("pid").asText();
    }

    private String tail(String vm) {
        try {
            return "its qemu.log ends:\n    " + lastLines(fx.base.resolve("log/" + vm + "/qemu.log"), 12)
                    .replace("\n", "\n    ");
        } catch (IOException e) {
            return "(no qemu.log: " + e.getMessage() + ")";
        }
    }

    private static String lastLines(Path f, int n) throws IOException {
        if (!Files.exists(f)) {
            return "(" + f + " does not exist)";
        }
        List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
        return String.join("\n", lines.subList(Math.max(0, lines.size() - n), lines.size()));
    }

    private void copyArtifacts() throws IOException {
        try (Stream<Path> all = Files.walk(fx.base)) {
            for (Path p : all.filter(Files::isRegularFile).toList()) {
                String name = p.getFileName().toString();
                if (name.endsWith(".log") || name.endsWith(".json") || name.endsWith(".yaml")) {
                    Path to = artifacts.resolve(fx.base.relativize(p));
                    Files.createDirectories(to.getParent());
                    Files.copy(p, to, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> all = Files.walk(dir)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
