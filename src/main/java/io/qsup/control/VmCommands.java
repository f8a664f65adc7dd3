package io.qsup.control;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.config.ConfigError;
import io.qsup.config.DaemonSettings;
import io.qsup.config.VmPaths;
import io.qsup.daemon.Version;
import io.qsup.qmp.QmpErrorException;
import io.qsup.qmp.QmpException;
import io.qsup.qmp.QmpTimeoutException;
import io.qsup.supervisor.IntentFuture;
import io.qsup.supervisor.ReloadReport;
import io.qsup.supervisor.Supervisor;
import io.qsup.supervisor.SupervisorException;
import io.qsup.supervisor.VmSnapshot;
import io.qsup.vm.StopResult;
import io.qsup.vm.VmState;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The control commands that read the supervisor's view and send it the operator's intents ({@code query-vms},
 * {@code vm-start}, {@code daemon-reload}, ...). Each reads its arguments, declared in {@link CommandTable} and
 * checked before it runs, and makes one supervisor call.
 */
public final class VmCommands {
    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;
    /** How long a {@code wait: true} request may take when the caller gives no timeout. */
    private static final Duration DEFAULT_WAIT = Duration.ofMinutes(10);

    private final Supervisor supervisor;
    private final DaemonSettings settings;
    /** Cluster mode's port, or null on a single host. */
    private final ClusterPort cluster;
    private final Instant startedAt = Instant.now();

    private VmCommands(Supervisor supervisor, DaemonSettings settings, ClusterPort cluster) {
        this.supervisor = supervisor;
        this.settings = settings;
        this.cluster = cluster;
    }

    public static void register(Map<String, ControlCommand> table, Supervisor supervisor, DaemonSettings settings,
            ClusterPort cluster) {
        VmCommands c = new VmCommands(supervisor, settings, cluster);
        table.put(CommandTable.QUERY_VMS.name(), (a, s) -> c.queryVms());
        table.put(CommandTable.QUERY_VM.name(), (a, s) -> c.vmObject(c.snapshot(a.string("name"))));
        table.put(CommandTable.QUERY_DAEMON.name(), (a, s) -> c.queryDaemon());
        table.put(CommandTable.VM_START.name(), (a, s) -> c.clusterVm(a) ? c.clusterIntent(a, true)
                : c.stateResult(a, supervisor::start, VmState.RUNNING, VmState.PAUSED));
        table.put(CommandTable.VM_STOP.name(), (a, s) -> {
            if (c.clusterVm(a)) {
                return c.clusterIntent(a, false);
            }
            boolean force = a.bool("force");
            Duration timeout = a.seconds("timeout");
            return c.stopResult(a, n -> supervisor.stop(n, force, timeout));
        });
        table.put(CommandTable.VM_RESTART.name(), (a, s) -> {
            boolean force = a.bool("force");
            return c.stateResult(a, n -> supervisor.restart(n, force), VmState.RUNNING, VmState.PAUSED);
        });
        table.put(CommandTable.VM_KILL.name(), (a, s) -> c.stopResult(a, supervisor::kill));
        table.put(CommandTable.VM_PAUSE.name(), (a, s) -> c.stateResult(a, supervisor::pause, VmState.PAUSED));
        table.put(CommandTable.VM_RESUME.name(), (a, s) -> c.stateResult(a, supervisor::resume, VmState.RUNNING));
        table.put(CommandTable.VM_RESET.name(),
                (a, s) -> c.stateResult(a, supervisor::reset, VmState.RUNNING, VmState.PAUSED));
        table.put(CommandTable.VM_RESET_FAILED.name(), (a, s) -> c.stateResult(a, supervisor::resetFailed));
        table.put(CommandTable.VM_QMP.name(), (a, s) -> c.vmQmp(a));
        table.put(CommandTable.VM_EXEC.name(), (a, s) -> c.vmExec(a));
        table.put(CommandTable.DAEMON_RELOAD.name(), (a, s) -> c.reload());
    }

    /** The VM name, checked to exist, so an unknown name is VmNotFound rather than a generic failure. */
    private String vm(Arguments args) throws ControlException {
        String name = args.string("name");
        if (supervisor.get(name).isEmpty()) {
            if (cluster != null && cluster.isClusterVm(name)) {
                throw new ControlException(ControlException.INVALID_STATE, name + " is a cluster VM that this host ("
                        + cluster.host() + ") does not run; 'qsup list' shows its host: ask that host's qsupd");
            }
            throw notFound(name);
        }
        return name;
    }

    /** Whether the request names a cluster VM: its start and stop go through etcd, to whichever host runs it. */
    private boolean clusterVm(Arguments args) {
        return cluster != null && cluster.isClusterVm(args.string("name"));
    }

    private JsonNode clusterIntent(Arguments args, boolean started) throws ControlException {
        Duration timeout = args.seconds("timeout");
        return cluster.setIntent(args.string("name"), started, args.bool("wait"),
                timeout == null ? DEFAULT_WAIT : timeout.plusSeconds(15));
    }

    private static ControlException notFound(String name) {
        return new ControlException(ControlException.VM_NOT_FOUND,
                "no VM named '" + name + "'; 'qsup list' shows the known VMs");
    }

    // ---- views ----

    private VmSnapshot snapshot(String name) throws ControlException {
        return supervisor.get(name).orElseThrow(() -> notFound(name));
    }

    private JsonNode queryVms() {
        ArrayNode out = JSON.arrayNode();
        List<ObjectNode> local = new java.util.ArrayList<>();
        for (VmSnapshot s : supervisor.list()) {
            local.add(vmObject(s));
        }
        List<ObjectNode> all = new java.util.ArrayList<>(local);
        if (cluster != null) {
            List<ObjectNode> remote = cluster.remoteVms(local);
            all = new java.util.ArrayList<>(local);
            all.addAll(remote);
            all.sort(java.util.Comparator.comparing(o -> o.path("name").asText()));
        }
        all.forEach(out::add);
        return out;
    }

    ObjectNode vmObject(VmSnapshot s) {
        ObjectNode o = JSON.objectNode();
        o.put("name", s.name());
        o.put("state", s.state().label());
        o.put("unresponsive", s.unresponsive());
        if (s.pid() > 0) {
            o.put("pid", s.pid());
        } else {
            o.putNull("pid");
        }
        if (s.uptime() != null) {
            o.put("uptime-seconds", s.uptime().toSeconds());
        } else {
            o.putNull("uptime-seconds");
        }
        o.put("restart-count", s.restarts());
        if (s.lastExit() == null) {
            o.putNull("last-exit-cause");
        } else {
            ObjectNode last = o.putObject("last-exit-cause");
            last.put("cause", io.qsup.vm.Cause.of(s.lastExit().kind()).label());
            last.put("detail", s.lastExit().detail());
            putText(last, "at", s.lastExitAt() == null ? null : s.lastExitAt().toString());
        }
        o.put("restart-pending", !s.restartPendingKeys().isEmpty());
        ArrayNode keys = o.putArray("pending-keys");
        s.restartPendingKeys().forEach(keys::add);
        putText(o, "launch-error", s.launchError());
        putText(o, "intent", s.intent() == null ? null : s.intent().name().toLowerCase(java.util.Locale.ROOT));
        o.put("autostart", s.autostart());
        o.put("intent-persisted", s.intentPersisted());
        o.put("agent", s.agent().label());
        o.put("guest-unresponsive", s.guestUnresponsive());
        o.put("ready", s.ready());
        supervisor.definition(s.name()).ifPresent(d -> {
            putText(o, "ready-when", readyWhenText(d.readyWhen()));
            o.put("ready-timeout-seconds", d.readyTimeout().toMillis() / 1000.0);
        });
        putText(o, "held-back", s.heldBack());
        putText(o, "ip", io.qsup.vm.GuestInterface.primaryAddress(s.interfaces()));
        ArrayNode ifs = o.putArray("interfaces");
        for (io.qsup.vm.GuestInterface i : s.interfaces()) {
            ObjectNode io = ifs.addObject().put("name", i.name());
            putText(io, "mac", i.mac());
            ArrayNode addrs = io.putArray("addresses");
            i.addresses().forEach(addrs::add);
        }
        supervisor.definition(s.name()).ifPresent(d -> o.put("stop-timeout-seconds", d.stopTimeout().toMillis() / 1000.0));
        VmPaths p = settings.pathsFor(s.name());
        o.put("qmp-socket", p.qmpSocket().toString());
        o.put("console-socket", p.consoleSocket().toString());
        o.put("qemu-log", p.qemuLog().toString());
        o.put("serial-log", p.serialLog().toString());
        return o;
    }

    private static void putText(ObjectNode o, String key, String value) {
        if (value == null) {
            o.putNull(key);
        } else {
            o.put(key, value);
        }
    }

    private JsonNode queryDaemon() {
        ObjectNode o = JSON.objectNode();
        o.put("version", Version.get());
        o.put("pid", ProcessHandle.current().pid());
        o.put("uptime-seconds", Duration.between(startedAt, Instant.now()).toSeconds());
        putText(o, "config", settings.sourceFile() == null ? null : settings.sourceFile().toString());
        o.put("vms-dir", settings.vmsDir().toString());
        o.put("run-dir", settings.runDir().toString());
        o.put("state-dir", settings.stateDir().toString());
        String stateProblem = supervisor.stateProblem();
        o.put("state-dir-writable", stateProblem == null);
        putText(o, "state-dir-problem", stateProblem);
        o.put("log-dir", settings.logDir().toString());
        o.put("control-socket", settings.controlSocket().toString());
        List<VmSnapshot> all = supervisor.list();
        o.put("vm-count", all.size());
        Map<String, Integer> counts = new TreeMap<>();
        for (VmSnapshot s : all) {
            counts.merge(s.state().label(), 1, Integer::sum);
        }
        ObjectNode states = o.putObject("states");
        counts.forEach(states::put);
        return o;
    }

    // ---- intents ----

    /**
     * Submits an intent; with {@code wait} (the default) waits for its outcome and fails with the reason (QEMU's
     * own launch error, when there is one) unless the VM ended in one of {@code expected} (any, when none given).
     */
    private JsonNode stateResult(Arguments args, Intent<VmState> intent, VmState... expected)
            throws ControlException {
        String name = vm(args);
        CompletableFuture<VmState> future = submit(name, intent);
        ObjectNode o = JSON.objectNode().put("name", name);
        String unpersisted = persistWarning(future);
        if (unpersisted != null) {
            o.putArray("warnings").add(unpersisted);
        }
        if (!args.bool("wait")) {
            o.put("state", snapshot(name).state().label());
            o.put("requested", true);
            return o;
        }
        VmState state = await(name, future, args, unpersisted);
        if (expected.length > 0 && !java.util.Arrays.asList(expected).contains(state)) {
            VmSnapshot now = snapshot(name);
            StringBuilder why = new StringBuilder(name).append(" is ").append(state.label());
            if (now.launchError() != null) {
                why.append(": ").append(now.launchError());
            } else if (now.lastExit() != null) {
                why.append(" (").append(now.lastExit().describe()).append(')');
            }
            if (state == VmState.BACKOFF) {
                why.append("; a restart is scheduled, follow it with 'qsup events --follow ").append(name).append("'");
            }
            if (unpersisted != null) {
                why.append("; also: ").append(unpersisted);
            }
            throw new ControlException(ControlException.INVALID_STATE, why.toString());
        }
        o.put("state", state.label());
        return o;
    }

    private JsonNode stopResult(Arguments args, Intent<StopResult> intent) throws ControlException {
        String name = vm(args);
        CompletableFuture<StopResult> future = submit(name, intent);
        ObjectNode o = JSON.objectNode().put("name", name);
        String unpersisted = persistWarning(future);
        if (unpersisted != null) {
            o.putArray("warnings").add(unpersisted);
        }
        if (!args.bool("wait")) {
            o.put("state", snapshot(name).state().label());
            o.put("requested", true);
            return o;
        }
        StopResult r = await(name, future, args, unpersisted);
        // what the stop achieved, not what a later request made of the VM since
        o.put("state", r.stopped() ? VmState.STOPPED.label() : snapshot(name).state().label());
        putText(o, "rung", r.rung() == null ? null : r.rung().label());
        o.put("seconds", r.took().toMillis() / 1000.0);
        putText(o, "message", r.detail());
        if (!r.stopped()) {
            throw new ControlException(ControlException.INVALID_STATE, name + " did not stop: " + r.detail()
                    + (unpersisted == null ? "" : "; also: " + unpersisted));
        }
        return o;
    }

    /** The reply's warning when the request's intent could not be written to state-dir, or null. */
    private static String persistWarning(CompletableFuture<?> future) {
        if (future instanceof IntentFuture<?> f && f.persistWarning() != null) {
            return "intent not persisted: " + f.persistWarning() + "; the request was carried out, but a qsupd restart"
                    + " would not remember it";
        }
        return null;
    }

    private <T> T await(String name, CompletableFuture<T> future, Arguments args, String unpersisted)
            throws ControlException {
        Duration limit = args.seconds("timeout");
        // A stop's own timeout bounds its ladder; the reply may arrive a little after it.
        Duration wait = limit == null ? DEFAULT_WAIT : limit.plusSeconds(15);
        try {
            return future.get(wait.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new ControlException(ControlException.TIMEOUT, name + ": no result within "
                    + wait.toSeconds() + "s; 'qsup status " + name + "' shows where it is"
                    + (unpersisted == null ? "" : "; also: " + unpersisted));
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            throw new ControlException(ControlException.INVALID_STATE, name + ": "
                    + (cause.getMessage() != null ? cause.getMessage() : cause.toString())
                    + (unpersisted == null ? "" : "; also: " + unpersisted), cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw ControlException.generic("interrupted");
        }
    }

    /** One supervisor intent on a named VM; it may refuse at once, before any future exists. */
    @FunctionalInterface
    private interface Intent<T> {
        CompletableFuture<T> submit(String name) throws SupervisorException;
    }

    private static <T> CompletableFuture<T> submit(String name, Intent<T> intent) throws ControlException {
        try {
            return intent.submit(name);
        } catch (SupervisorException e) {
            throw new ControlException(ControlException.INVALID_STATE, e.getMessage(), e);
        }
    }

    private JsonNode vmQmp(Arguments args) throws ControlException {
        String name = vm(args);
        ObjectNode qargs = args.object("arguments");
        Duration timeout = args.seconds("timeout");
        try {
            return supervisor.qmp(name, args.string("command"), qargs, timeout);
        } catch (QmpErrorException e) {
            throw new ControlException(e.errorClass(), e.desc());
        } catch (QmpTimeoutException e) {
            throw new ControlException(ControlException.TIMEOUT, name + ": " + e.getMessage());
        } catch (QmpException | SupervisorException e) {
            throw new ControlException(ControlException.INVALID_STATE, name + ": " + e.getMessage());
        }
    }

    private JsonNode vmExec(Arguments args) throws ControlException {
        String name = vm(args);
        java.util.List<String> argv = args.strings("args");
        try {
            io.qsup.vm.ExecResult r = supervisor.exec(name, args.string("path"), argv == null ? java.util.List.of()
                    : argv, args.seconds("timeout"));
            ObjectNode o = JSON.objectNode();
            if (r.exitCode() >= 0) {
                o.put("exit-code", r.exitCode());
            } else {
                o.putNull("exit-code");
            }
            if (r.signal() >= 0) {
                o.put("signal", r.signal());
            } else {
                o.putNull("signal");
            }
            o.put("stdout", new String(r.stdout(), java.nio.charset.StandardCharsets.UTF_8));
            o.put("stderr", new String(r.stderr(), java.nio.charset.StandardCharsets.UTF_8));
            o.put("timed-out", r.timedOut());
            o.put("truncated", r.truncated());
            return o;
        } catch (SupervisorException e) {
            throw new ControlException(ControlException.INVALID_STATE, e.getMessage());
        }
    }

    private JsonNode reload() {
        ReloadReport r = supervisor.reload();
        ObjectNode o = JSON.objectNode();
        ArrayNode added = o.putArray("added");
        r.added().forEach(added::add);
        ArrayNode removed = o.putArray("removed");
        r.removed().forEach(removed::add);
        ArrayNode changed = o.putArray("changed");
        r.changed().forEach((vm, keys) -> {
            ObjectNode c = changed.addObject();
            c.put("name", vm);
            ArrayNode k = c.putArray("keys");
            keys.forEach(k::add);
            c.put("restarted", r.restarted().contains(vm));
        });
        ArrayNode kept = o.putArray("kept");
        r.kept().forEach(kept::add);
        ArrayNode errors = o.putArray("errors");
        for (ConfigError e : r.errors()) {
            errors.add(e.format());
        }
        return o;
    }

    /** {@code agent}, {@code serial: REGEX}, {@code tcp: HOST:PORT}, or null: the definition's ready-when as written. */
    static String readyWhenText(io.qsup.config.ReadyWhen r) {
        return switch (r) {
            case null -> null;
            case io.qsup.config.ReadyWhen.Agent a -> "agent";
            case io.qsup.config.ReadyWhen.Serial sr -> "serial: " + sr.regex();
            case io.qsup.config.ReadyWhen.Tcp t -> "tcp: " + t.host() + ":" + t.port();
        };
    }
}
