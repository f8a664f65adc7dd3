package io.qsup.control;

import static io.qsup.control.ArgumentType.BOOLEAN;
import static io.qsup.control.ArgumentType.OBJECT;
import static io.qsup.control.ArgumentType.OBJECT_ARRAY;
import static io.qsup.control.ArgumentType.POSITIVE_NUMBER;
import static io.qsup.control.ArgumentType.SECONDS;
import static io.qsup.control.ArgumentType.STRING;
import static io.qsup.control.ArgumentType.STRING_ARRAY;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.IntNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Every control command qsupd serves, with the arguments it accepts: the one table that the argument checker
 * ({@link Arguments}), {@code query-commands}, {@code query-command-arguments}, docs/control-protocol.md (checked by
 * CommandsDocTest) and the CLI read. A command is served only if it is declared here.
 */
public final class CommandTable {
    // Arguments that several commands share, declared once.
    static final ArgumentSpec VM_NAME = ArgumentSpec.required("name", STRING, "the VM's name");
    static final ArgumentSpec WAIT = ArgumentSpec.optional("wait", BOOLEAN, BooleanNode.TRUE,
            "wait for the outcome; with `false`, return at once with the state at that moment and"
                    + " `\"requested\": true`");
    static final ArgumentSpec WAIT_TIMEOUT = ArgumentSpec.optional("timeout", SECONDS,
            "how long `wait` waits for the outcome, plus 15 s; default 10 minutes");
    static final ArgumentSpec FORCE = ArgumentSpec.optional("force", BOOLEAN, BooleanNode.FALSE,
            "skip the ACPI powerdown and start the shutdown ladder at QMP `quit`");
    static final ArgumentSpec EVENT_VMS = ArgumentSpec.optional("vms", STRING_ARRAY,
            "only events of these VMs; missing or empty: all");
    static final ArgumentSpec EVENT_NAMES = ArgumentSpec.optional("events", STRING_ARRAY,
            "only events of these types; missing or empty: all");

    private static final String STATE = "`name`, `state`";

    public static final CommandSpec QMP_CAPABILITIES = new CommandSpec("qmp_capabilities",
            "end capabilities negotiation; every other command is refused until it succeeds",
            List.of(ArgumentSpec.optional("enable", STRING_ARRAY,
                    "QMP capabilities to enable; qsupd offers none, so naming one is refused").onlyValues("oob")),
            "`{}`");
    public static final CommandSpec QUERY_COMMANDS = new CommandSpec("query-commands",
            "list the commands, as QEMU's `query-commands` does", List.of(), "`[{\"name\": ...}, ...]`");
    public static final CommandSpec QUERY_COMMAND_ARGUMENTS = new CommandSpec("query-command-arguments",
            "describe every command and the arguments it accepts: this table, for tools and completion", List.of(),
            "`[{\"name\", \"description\", \"arguments\": [{\"name\", \"type\", \"required\", \"default\", \"values\","
                    + " \"description\"}], \"returns\"}]`; `type` is the JSON type (`string`, `boolean`, `number`,"
                    + " `object`, `array`), with `\"items\": \"string\"` for arrays and `\"unit\": \"seconds\"` for"
                    + " durations; `default` and `values` only where they apply");
    public static final CommandSpec QUERY_DAEMON = new CommandSpec("query-daemon", "describe the daemon", List.of(),
            "`version`, `pid`, `uptime-seconds`, `config`, `vms-dir`, `run-dir`, `state-dir`, `state-dir-writable`"
                    + " (false while an intent could not be written), `state-dir-problem` (why, or `null`), `log-dir`,"
                    + " `control-socket`, `vm-count`, `states` (count per state)");
    public static final CommandSpec QUERY_VMS = new CommandSpec("query-vms", "list every VM", List.of(),
            "array of VM objects (below); in cluster mode also the cluster VMs other hosts run, and each object has"
                    + " `host` and `cluster`");
    public static final CommandSpec QUERY_VM = new CommandSpec("query-vm", "describe one VM", List.of(VM_NAME),
            "one VM object");
    public static final CommandSpec VM_START = new CommandSpec("vm-start",
            "start a VM (also clears `failed`); the intent `started` is remembered; for a cluster VM, written to etcd,"
                    + " and the host it is placed on starts it",
            List.of(VM_NAME, WAIT, WAIT_TIMEOUT),
            STATE + "; with `wait`, returns once running, or fails with the launch error");
    public static final CommandSpec VM_STOP = new CommandSpec("vm-stop",
            "stop a VM along the shutdown ladder; the intent `stopped` is remembered (for a cluster VM in etcd: the host"
                    + " that runs it stops it)",
            List.of(VM_NAME, FORCE, ArgumentSpec.optional("timeout", SECONDS,
                    "bound for the whole ladder; default: the VM's `stop-timeout`; `wait` waits 15 s more"), WAIT),
            STATE + ", `rung` (which rung ended it), `seconds`, `message`");
    public static final CommandSpec VM_RESTART = new CommandSpec("vm-restart",
            "stop a VM along the ladder, then start it again", List.of(VM_NAME, FORCE, WAIT, WAIT_TIMEOUT), STATE);
    public static final CommandSpec VM_KILL = new CommandSpec("vm-kill",
            "kill a VM's QEMU with SIGKILL at once; counts as an operator stop", List.of(VM_NAME, WAIT, WAIT_TIMEOUT),
            STATE + ", `rung`, `seconds`, `message`");
    public static final CommandSpec VM_PAUSE = new CommandSpec("vm-pause", "pause a VM's vCPUs (QMP `stop`)",
            List.of(VM_NAME, WAIT, WAIT_TIMEOUT), STATE);
    public static final CommandSpec VM_RESUME = new CommandSpec("vm-resume", "resume a paused VM's vCPUs (QMP `cont`)",
            List.of(VM_NAME, WAIT, WAIT_TIMEOUT), STATE);
    public static final CommandSpec VM_RESET = new CommandSpec("vm-reset", "hard-reset the guest (QMP `system_reset`); QEMU keeps running",
            List.of(VM_NAME, WAIT, WAIT_TIMEOUT), STATE);
    public static final CommandSpec VM_RESET_FAILED = new CommandSpec("vm-reset-failed",
            "leave `failed` for `stopped` and clear the restart tally, without starting", List.of(VM_NAME, WAIT, WAIT_TIMEOUT), STATE);
    public static final CommandSpec VM_QMP = new CommandSpec("vm-qmp", "run a QMP command on a VM's QEMU",
            List.of(VM_NAME, ArgumentSpec.required("command", STRING, "the QMP command"),
                    ArgumentSpec.optional("arguments", OBJECT, "its arguments"),
                    ArgumentSpec.optional("timeout", SECONDS, IntNode.valueOf(10), "deadline for QEMU's reply")),
            "the QEMU command's `return` value; a QEMU error keeps its class");
    public static final CommandSpec VM_EXEC = new CommandSpec("vm-exec",
            "run a command in a VM's guest through its guest agent (`guest-exec`) and wait for it to end",
            List.of(VM_NAME, ArgumentSpec.required("path", STRING, "the program, as the guest's PATH finds it"),
                    ArgumentSpec.optional("args", STRING_ARRAY, "its arguments"),
                    ArgumentSpec.optional("timeout", SECONDS, IntNode.valueOf(60),
                            "how long to wait for the command to end")),
            "`exit-code` (`null` if it did not exit by itself), `signal` (or `null`), `stdout`, `stderr` (text),"
                    + " `timed-out`, `truncated`; an error when the VM's agent is not connected");
    public static final CommandSpec DAEMON_RELOAD = new CommandSpec("daemon-reload",
            "read the VM definitions again and apply the changes", List.of(),
            "`added`, `removed`, `changed` (`[{\"name\", \"keys\", \"restarted\"}]`), `kept`, `errors` (formatted"
                    + " `file:line:column: key: message`; at most 50 per file, then one that counts the rest)");
    public static final CommandSpec EVENT_SUBSCRIBE = new CommandSpec("event-subscribe",
            "choose which events this connection gets: those matching both filters; with neither, all of them again",
            List.of(EVENT_VMS, EVENT_NAMES), "`{}`");
    public static final CommandSpec EVENT_UNSUBSCRIBE = new CommandSpec("event-unsubscribe",
            "stop all events on this connection, until the next `event-subscribe`", List.of(), "`{}`");
    public static final CommandSpec QUERY_EVENTS = new CommandSpec("query-events", "show the recent events",
            List.of(EVENT_VMS, EVENT_NAMES),
            "the most recent events (up to 1000) that match both filters, oldest first, in wire form");

    public static final CommandSpec QUERY_VM_STATS = new CommandSpec("query-vm-stats",
            "resource figures of every VM, or of the named one",
            List.of(ArgumentSpec.optional("name", STRING, "only this VM")),
            "array of VM stats objects (below); read from the snapshots the metrics endpoint serves, so it never"
                    + " waits on a VM");

    public static final CommandSpec VM_QMP_SCHEMA = new CommandSpec("vm-qmp-schema",
            "the VM's QEMU QMP schema (`query-qmp-schema`), fetched once per QEMU version and cached under state-dir",
            List.of(VM_NAME, ArgumentSpec.optional("timeout", SECONDS, "deadline for each of QEMU's replies; default 10")),
            "`version`, `package`, `arch` (the cache key), `cached` (true when served from state-dir), `schema` (the"
                    + " introspection entries)");

    public static final CommandSpec CLUSTER_APPLY = new CommandSpec("cluster-apply",
            "cluster mode: validate cluster VM definitions as a definitions folder is validated, then store them all in"
                    + " etcd in one transaction, or none when any has an error",
            List.of(ArgumentSpec.required("definitions", OBJECT_ARRAY,
                    "one `{\"file\", \"yaml\"}` per definition: the file's path, for errors and relative paths,"
                            + " and its text")),
            "`applied`, `unchanged` (VM names); an error lists every problem as `file:line:column: key: message`");
    public static final CommandSpec CLUSTER_DELETE = new CommandSpec("cluster-delete",
            "cluster mode: remove a cluster VM's definition; the host that runs it stops it along its ladder",
            List.of(VM_NAME), "`name`, `deleted`");
    public static final CommandSpec QUERY_HOSTS = new CommandSpec("query-hosts",
            "cluster mode: the hosts alive in the cluster (registered under a live lease)", List.of(),
            "`[{\"name\", \"address\", \"memory\", \"cpus\", \"used-memory\", \"used-cpus\", \"vms\","
                    + " \"version\", \"leader\", \"alive\", \"drained\", \"qsupd\"}]`; memory in bytes; `qsupd` is"
                    + " `running`, or `stopped` for a host whose qsupd stopped or died while its lease lives on (it gets"
                    + " no new VM)");

    public static final CommandSpec VM_MIGRATE = new CommandSpec("vm-migrate",
            "cluster mode: live-migrate a running cluster VM to another host (QEMU migration over TCP to the target's"
                    + " `address`); its claim moves to the target in one etcd transaction once the transfer completed;"
                    + " a failure leaves it running on its source. Every disk must be `shared: true` or read-only",
            List.of(VM_NAME, ArgumentSpec.required("to", STRING, "the target host, as `qsup hosts` names it"),
                    ArgumentSpec.optional("timeout", SECONDS,
                            "bound of the transfer, after which it is cancelled and the VM runs on at its source;"
                                    + " default 120; `wait` waits up to 90 s more"),
                    ArgumentSpec.optional("bandwidth", POSITIVE_NUMBER,
                            "the most QEMU may send, in MiB per second; default 1024"),
                    WAIT),
            "`name`, `from`, `to`, `state` (`completed`; with `wait: false`, `requested`), `seconds` (request to"
                    + " running on the target), `transfer-ms` and `downtime-ms` (QEMU's own figures, -1 when it gave"
                    + " none); a failure is an error with the reason");
    public static final CommandSpec HOST_DRAIN = new CommandSpec("host-drain",
            "cluster mode: mark a host drained (the leader places nothing new there; the mark stays until undone),"
                    + " then live-migrate each VM it runs whose disks are all shared or read-only to a host the"
                    + " placement rules pick, two at a time",
            List.of(ArgumentSpec.required("host", STRING, "the host to drain"),
                    ArgumentSpec.optional("undo", BOOLEAN, BooleanNode.FALSE,
                            "lift the mark instead; moves nothing back"),
                    ArgumentSpec.optional("timeout", SECONDS, "bound of each VM's transfer; default 120")),
            "`host`, `drained`, `vms`: `[{\"name\", \"result\": \"moved\"|\"not-movable\"|\"failed\", \"to\","
                    + " \"reason\", \"seconds\"}]`");

    private static final Map<String, CommandSpec> ALL = index(QMP_CAPABILITIES, QUERY_COMMANDS,
            QUERY_COMMAND_ARGUMENTS, QUERY_DAEMON, QUERY_VMS, QUERY_VM, QUERY_VM_STATS, VM_START, VM_STOP, VM_RESTART, VM_KILL, VM_PAUSE,
            VM_RESUME, VM_RESET, VM_RESET_FAILED, VM_QMP, VM_QMP_SCHEMA, VM_EXEC, DAEMON_RELOAD, EVENT_SUBSCRIBE,
            EVENT_UNSUBSCRIBE, QUERY_EVENTS, CLUSTER_APPLY, CLUSTER_DELETE, QUERY_HOSTS, VM_MIGRATE, HOST_DRAIN);

    private CommandTable() {}

    private static Map<String, CommandSpec> index(CommandSpec... specs) {
        Map<String, CommandSpec> m = new LinkedHashMap<>();
        for (CommandSpec s : specs) {
            if (m.put(s.name(), s) != null) {
                throw new IllegalStateException("command '" + s.name() + "' is declared twice");
            }
        }
        return m;
    }

    /** Every declared command, in the order of the docs. */
    public static Collection<CommandSpec> all() {
        return ALL.values();
    }

    public static Optional<CommandSpec> find(String name) {
        return Optional.ofNullable(ALL.get(name));
    }

    /** The {@code query-command-arguments} form of these commands. */
    public static ArrayNode toJson(Collection<CommandSpec> specs) {
        ArrayNode out = JsonNodeFactory.instance.arrayNode();
        for (CommandSpec s : specs) {
            ObjectNode c = out.addObject();
            c.put("name", s.name());
            c.put("description", s.description());
            ArrayNode args = c.putArray("arguments");
            for (ArgumentSpec a : s.arguments()) {
                ObjectNode o = args.addObject();
                o.put("name", a.name());
                o.put("type", a.type().jsonType());
                if (a.type() == STRING_ARRAY) {
                    o.put("items", "string");
                } else if (a.type() == OBJECT_ARRAY) {
                    o.put("items", "object");
                } else if (a.type() == SECONDS) {
                    o.put("unit", "seconds");
                }
                o.put("required", a.required());
                if (a.defaultValue() != null) {
                    o.set("default", a.defaultValue());
                }
                if (!a.values().isEmpty()) {
                    ArrayNode v = o.putArray("values");
                    a.values().forEach(v::add);
                }
                o.put("description", a.description());
            }
            c.put("returns", s.returns());
        }
        return out;
    }
}
