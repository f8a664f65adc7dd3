package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import picocli.CommandLine;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * The verbs that act on named VMs ({@code start}, {@code stop}, {@code restart}, ...): each sends one control
 * command per VM, all VMs at once, waits for the results by default, and says what happened to each.
 *
 * <p>Each VM gets its own connection and platform thread (the control socket runs one connection's commands one at
 * a time, so requests on one connection would queue; junixsocket wants platform threads), at most
 * {@value #MAX_PARALLEL} at once; qsupd itself bounds concurrent launches by {@code max-parallel-starts}. On a
 * terminal, one live line per VM follows its progress from the control socket's events until the results are in;
 * the results then print in the order the VMs were named, as they do off a terminal and in JSON.
 *
 * <p>Threading: each VM's thread owns its connection and completes its own future; the daemon connection's event
 * thread updates that VM's {@link VmProgress}; only the command's own thread draws and prints.
 */
abstract class LifecycleCommand implements Callable<Integer> {
    static final int MAX_PARALLEL = 64;
    private static final List<String> PROGRESS_EVENTS = List.of("VM_STATE_CHANGED", "VM_STOP_RUNG");

    @Mixin DaemonOptions daemon;
    @Mixin JsonOption output;
    @Spec CommandSpec spec;

    @Parameters(paramLabel = "NAME", arity = "0..*", description = "The VMs to act on.")
    List<String> names = new ArrayList<>();

    @Option(names = "--all", description = "Act on every VM qsupd knows.")
    boolean all;

    @Option(names = "--no-wait", description = "Return once qsupd accepted the request, without waiting for the result.")
    boolean noWait;

    @Option(names = "--allow-unpersisted",
            description = "Exit 0 even if qsupd could not write the intent to its state-dir (it still warns).")
    boolean allowUnpersisted;

    /** The control command, e.g. {@code vm-start}. */
    abstract String controlCommand();

    /** Extra arguments of this verb. */
    void addArguments(ObjectNode args) {}

    /** How long the daemon may take, beyond which the CLI stops waiting. */
    Duration callTimeout() {
        return Duration.ofMinutes(10);
    }

    /** The bound of a stop ladder when the command line gave one, for the time left on the live line; else null. */
    Duration stopBound() {
        return null;
    }

    /** The ladder's bound for {@code vm}'s progress line: {@link #stopBound()}, else its own stop-timeout for verbs
     *  that climb the ladder; null when there is none. */
    Duration progressBound(JsonNode vm) {
        Duration b = stopBound();
        if (b != null || !climbsLadder() || vm == null || !vm.path("stop-timeout-seconds").isNumber()) {
            return b;
        }
        return Duration.ofMillis(Math.round(vm.path("stop-timeout-seconds").asDouble() * 1000));
    }

    /** True for verbs whose wait is a stop ladder. */
    boolean climbsLadder() {
        return false;
    }

    /** One VM's answer: the command's return, or the error that stood for it. */
    private record Outcome(String name, JsonNode result, CliException error) {}

    @Override
    public Integer call() throws InterruptedException {
        if (all == !names.isEmpty()) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    all ? "give VM names or --all, not both" : "name at least one VM, or use --all");
        }
        return run(spec.name(), spec.commandLine().getOut(), spec.commandLine().getErr());
    }

    /**
     * Runs {@code verb} (this command's name) on the names or {@code --all} already checked, printing to {@code out}
     * and {@code err}; also {@link FastVerbs}' way in, which has no picocli spec.
     */
    int run(String verb, PrintWriter out, PrintWriter err) throws InterruptedException {
        ObjectNode verbArgs = Json.object().put("wait", !noWait);
        addArguments(verbArgs); // checks the verb's options before anything is sent
        List<String> targets = new ArrayList<>(new LinkedHashSet<>(names));
        // One connection first, so an unreachable daemon is said once, not once per VM; it also tells each VM's
        // stop-timeout, which the progress line counts down from. The first VM's command goes on it too (a
        // connection costs a connect, a greeting and a negotiation: about 10 ms of a `qsup kill`).
        Map<String, JsonNode> known = new HashMap<>();
        DaemonClient first = daemon.connect(callTimeout());
        try {
            for (JsonNode vm : first.call("query-vms")) {
                known.put(vm.path("name").asText(), vm);
                if (all) {
                    targets.add(vm.path("name").asText());
                }
            }
        } catch (RuntimeException e) {
            first.close();
            throw e;
        }
        if (targets.isEmpty()) {
            first.close();
        }
        LiveLines live = output.json || noWait ? null : LiveLines.onTerminal(out, targets.size());
        Semaphore slots = new Semaphore(MAX_PARALLEL);
        List<VmProgress> progress = new ArrayList<>();
        List<CompletableFuture<Outcome>> outcomes = new ArrayList<>();
        for (String name : targets) {
            DaemonClient own = progress.isEmpty() ? first : null;
            VmProgress p = new VmProgress(name, verb, progressBound(known.get(name)), System.nanoTime());
            progress.add(p);
            CompletableFuture<Outcome> f = new CompletableFuture<>();
            outcomes.add(f);
            Thread.ofPlatform().daemon().name(verb + " " + name).start(() -> {
                Outcome o = act(name, verbArgs.deepCopy().put("name", name), live == null ? null : p, slots, own);
                p.finish(o.result() != null ? describe(verb, name, o.result())
                        : name + ": " + o.error().getMessage().lines().findFirst().orElse("failed"));
                f.complete(o);
            });
        }
        if (live != null) {
            CompletableFuture<Void> done = CompletableFuture.allOf(outcomes.toArray(CompletableFuture[]::new));
            while (!done.isDone()) {
                long now = System.nanoTime();
                live.draw(progress.stream().map(p -> p.line(now)).toList());
                try {
                    done.get(200, TimeUnit.MILLISECONDS);
                } catch (TimeoutException | ExecutionException e) {
                    // redraw, for the clock, until every VM has its answer
                }
            }
            live.clear();
        }
        ArrayNode results = JsonNodeFactory.instance.arrayNode();
        int exit = ExitCodes.OK;
        boolean unreachable = false;
        for (CompletableFuture<Outcome> f : outcomes) {
            Outcome o = f.join();
            if (o.error() != null) {
                CliException e = o.error();
                unreachable |= e.exitCode() == ExitCodes.UNREACHABLE;
                exit = exit == ExitCodes.OK ? e.exitCode() : exit;
                results.add(Json.object().put("name", o.name()).put("error", e.getMessage()));
                if (!output.json) {
                    err.println("qsup: " + o.name() + ": " + e.getMessage());
                    err.flush();
                }
                continue;
            }
            results.add(o.result());
            if (!output.json) {
                out.println(describe(verb, o.name(), o.result()));
                out.flush();
            }
            for (JsonNode w : o.result().path("warnings")) {
                err.println("qsup: " + o.name() + ": warning: " + w.asText());
                err.flush();
                if (!allowUnpersisted && exit == ExitCodes.OK) {
                    exit = ExitCodes.ERROR;
                }
            }
        }
        if (output.json) {
            out.println(Json.pretty(results));
        }
        return unreachable ? ExitCodes.UNREACHABLE : exit;
    }

    /**
     * Sends this verb's command for one VM on a connection of its own ({@code given}, when not null, which this
     * closes); with {@code progress}, subscribes that connection to the VM's progress events first, so none falls
     * between the request and its answer.
     */
    private Outcome act(String name, ObjectNode args, VmProgress progress, Semaphore slots, DaemonClient given) {
        try {
            slots.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            if (given != null) {
                given.close();
            }
            return new Outcome(name, null, new CliException(ExitCodes.ERROR, "interrupted before it was sent"));
        }
        try (DaemonClient client = given != null ? given : daemon.connect(callTimeout())) {
            if (progress != null) {
                client.onEvent(progress::onEvent);
                ObjectNode filter = Json.object();
                filter.putArray("vms").add(name);
                PROGRESS_EVENTS.forEach(filter.putArray("events")::add);
                client.call("event-subscribe", filter);
            }
            return new Outcome(name, after(client, name, client.call(controlCommand(), args, callTimeout())), null);
        } catch (CliException e) {
            return new Outcome(name, null, e);
        } catch (RuntimeException e) {
            return new Outcome(name, null, new CliException(ExitCodes.ERROR, e.toString(), e));
        } finally {
            slots.release();
        }
    }

    /** What the verb does once the daemon answered, on the same connection; the answer as it is by default. */
    JsonNode after(DaemonClient client, String name, JsonNode result) {
        return result;
    }

    /**
     * One human line for one VM's result, e.g. {@code web1: stopped by powerdown after 3.2 s}, or with
     * {@code --no-wait} {@code web1: stop requested (now running)}.
     */
    static String describe(String verb, String name, JsonNode r) {
        String state = r.path("state").asText("?");
        if (r.path("requested").asBoolean(false)) {
            return name + ": " + verb + " requested (now " + state + ")";
        }
        StringBuilder s = new StringBuilder(name).append(": ").append(state);
        String rung = Json.text(r, "rung");
        JsonNode secs = r.get("seconds");
        if (rung != null) {
            s.append(" by ").append(rung);
            if (secs != null && !secs.isNull()) {
                s.append(String.format(" after %.1f s", secs.asDouble()));
            }
        } else if (Json.text(r, "message") != null) {
            s.append(" (").append(Json.text(r, "message")).append(')');
        }
        return s.toString();
    }

    @CommandLine.Command(name = "start", mixinStandardHelpOptions = true,
            description = "Start VMs (also clears 'failed'); the operator intent 'started' is remembered.",
            footer = {"", "Examples:", "  qsup start web1 db1", "  qsup start --all --no-wait"})
    static final class Start extends LifecycleCommand {
        @Option(names = "--wait-ready",
                description = "Also wait until the VM passes its ready-when check (its guest agent answers, a console line"
                        + " matches, a TCP service answers), up to its ready-timeout.")
        boolean waitReady;

        @Override
        String controlCommand() {
            return "vm-start";
        }

        @Override
        void addArguments(ObjectNode args) {
            if (waitReady && noWait) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--wait-ready waits; drop --no-wait");
            }
        }

        @Override
        Duration callTimeout() {
            return Duration.ofMinutes(20); // a ready-timeout may be long
        }

        /** With --wait-ready: polls the VM until it is ready, or fails saying what it is instead. */
        @Override
        JsonNode after(DaemonClient client, String name, JsonNode result) {
            if (!waitReady) {
                return result;
            }
            JsonNode vm = client.call("query-vm", Json.object().put("name", name));
            ObjectNode out = result.deepCopy();
            String check = Json.text(vm, "ready-when");
            if (check == null) {
                return out.put("message", "no ready-when: running counts as ready");
            }
            long limit = System.nanoTime() + Duration.ofMillis(Math.round(
                    vm.path("ready-timeout-seconds").asDouble(300) * 1000)).plusSeconds(5).toNanos();
            while (!vm.path("ready").asBoolean(false)) {
                String state = vm.path("state").asText();
                if (!state.equals("running") && !state.equals("paused")) {
                    throw new CliException(ExitCodes.ERROR, name + " is " + state + " and did not become ready ("
                            + check + ")");
                }
                if (System.nanoTime() > limit) {
                    throw new CliException(ExitCodes.ERROR, name + " runs but did not become ready within its"
                            + " ready-timeout (" + check + "); 'qsup status " + name + "' and its serial log tell more");
                }
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new CliException(ExitCodes.ERROR, "interrupted while waiting for " + name + " to be ready");
                }
                vm = client.call("query-vm", Json.object().put("name", name));
            }
            return out.put("message", "ready: " + check);
        }
    }

    @CommandLine.Command(name = "stop", mixinStandardHelpOptions = true,
            description = {"Stop VMs along the shutdown ladder: ACPI powerdown, then QMP quit, then SIGTERM, then SIGKILL.",
                "A VM stopped by the operator is never restarted by its restart policy.",
                "On a terminal, a live line per VM names the rung reached while qsup waits."},
            footer = {"", "Examples:", "  qsup stop web1", "  qsup stop --force --all", "  qsup stop web1 --timeout 30s"})
    static final class Stop extends LifecycleCommand {
        @Option(names = "--force", description = "Skip the ACPI powerdown and start at QMP quit.")
        boolean force;

        @Option(names = "--timeout", paramLabel = "DURATION",
                description = "Bound for the whole ladder (default: the VM's stop-timeout), e.g. 30s, 2m.")
        String timeout;

        @Override
        String controlCommand() {
            return "vm-stop";
        }

        @Override
        Duration stopBound() {
            return timeout == null ? null : Duration.ofMillis(Math.round(
                    DurationArg.seconds(spec, "--timeout", timeout) * 1000));
        }

        @Override
        boolean climbsLadder() {
            return true;
        }

        @Override
        void addArguments(ObjectNode args) {
            args.put("force", force);
            if (timeout != null) {
                args.put("timeout", DurationArg.seconds(spec, "--timeout", timeout));
            }
        }
    }

    @CommandLine.Command(name = "restart", mixinStandardHelpOptions = true,
            description = "Stop VMs along the ladder, then start them again (applies pending definition changes).",
            footer = {"", "Examples:", "  qsup restart web1"})
    static final class Restart extends LifecycleCommand {
        @Override
        String controlCommand() {
            return "vm-restart";
        }

        @Override
        boolean climbsLadder() {
            return true;
        }
    }

    @CommandLine.Command(name = "kill", mixinStandardHelpOptions = true,
            description = "Kill VMs' QEMU processes with SIGKILL at once; counts as an operator stop.",
            footer = {"", "Examples:", "  qsup kill web1"})
    static final class Kill extends LifecycleCommand {
        @Override
        String controlCommand() {
            return "vm-kill";
        }
    }

    @CommandLine.Command(name = "pause", mixinStandardHelpOptions = true, description = "Pause VMs' vCPUs (QMP stop).",
            footer = {"", "Examples:", "  qsup pause web1"})
    static final class Pause extends LifecycleCommand {
        @Override
        String controlCommand() {
            return "vm-pause";
        }
    }

    @CommandLine.Command(name = "resume", mixinStandardHelpOptions = true, description = "Resume paused VMs (QMP cont).",
            footer = {"", "Examples:", "  qsup resume web1"})
    static final class Resume extends LifecycleCommand {
        @Override
        String controlCommand() {
            return "vm-resume";
        }
    }

    @CommandLine.Command(name = "reset", mixinStandardHelpOptions = true,
            description = "Hard-reset VMs (QMP system_reset), like pressing the reset button.",
            footer = {"", "Examples:", "  qsup reset web1"})
    static final class Reset extends LifecycleCommand {
        @Override
        String controlCommand() {
            return "vm-reset";
        }
    }

    @CommandLine.Command(name = "reset-failed", mixinStandardHelpOptions = true,
            description = "Clear the 'failed' state and the restart tally of VMs, leaving them stopped.",
            footer = {"", "Examples:", "  qsup reset-failed web1", "  qsup reset-failed --all"})
    static final class ResetFailed extends LifecycleCommand {
        @Override
        String controlCommand() {
            return "vm-reset-failed";
        }
    }
}
