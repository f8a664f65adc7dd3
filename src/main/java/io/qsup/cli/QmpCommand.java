package io.qsup.cli;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpConnectException;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.qmp.QmpErrorException;
import io.qsup.qmp.QmpException;
import io.qsup.qmp.schema.ArgumentChecker;
import io.qsup.qmp.schema.QmpSchema;
import io.qsup.qmp.schema.SchemaCache;
import io.qsup.qmp.schema.SchemaDescription;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code qsup qmp}: sends QMP commands to a VM through qsupd or straight to a QEMU monitor socket, one command, a
 * batch or an interactive shell, typed and checked by the QEMU's own schema.
 */
@Command(
        name = "qmp",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Send QMP commands to a VM supervised by qsupd (by NAME), or straight to a QEMU monitor socket",
            "(--socket; no daemon needed), and print the results. Without a command, on a terminal, open a shell.",
            "",
            "  qsup qmp web1 query-status",
            "  qsup qmp web1 blockdev-add driver=null-co node-name=n0 size=1G",
            "  qsup qmp web1 --describe blockdev-add",
            "  qsup qmp web1                        (a shell, on a terminal)",
            "  qsup qmp web1 --file cmds.txt --repeat 3",
            "  qsup qmp --socket unix:/run/vm.sock query-status",
            "  qsup qmp --socket tcp:127.0.0.1:4444 --compact query-block",
            "  qsup qmp --socket /run/vm.sock --file cmds.txt --keep-going",
            "  qsup qmp --socket /run/vm.sock system_powerdown --wait-event SHUTDOWN --timeout 60",
            "",
            "Syntax (qmp-shell style): COMMAND key=value ... Dotted keys nest: a.b=1 gives {\"a\":{\"b\":1}}."
                    + " \"double quotes\" make a JSON string (\"a b\" keeps its blank), 'single quotes' a literal"
                    + " string, {objects} and [arrays] are JSON. A line starting with { is sent as raw JSON.",
            "",
            "Values are typed by QEMU's own schema (query-qmp-schema, cached per QEMU version): node-name=123 stays"
                    + " the string \"123\", size=1G is 1073741824 where an integer is wanted, on/off/yes/no/true/false"
                    + " are booleans where a bool is wanted. Every command is checked before anything is sent:"
                    + " unknown commands and arguments, missing ones, wrong types and values outside an enum are"
                    + " reported with the argument's path; --no-check sends anyway. Where the server offers no schema,"
                    + " values that parse as JSON (numbers, true, false, null) are JSON and anything else a string.",
            "",
            "Batch files hold one command per line; blank lines and # comments are skipped. Every line is checked"
                    + " before anything is sent. Results print one per line as compact JSON; a failed command prints"
                    + " its {\"error\":...} object there too and 'CLASS: desc' on stderr.",
        },
        footer = {
            "",
            "Exit codes: 0 ok, 1 a command failed (QMP error, timeout, lost connection, event not seen),"
                    + " 2 bad usage, bad command syntax or a command the schema refuses, 3 batch file not found,"
                    + " 4 socket unreachable or not QMP.",
        })
public final class QmpCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--socket", paramLabel = "ADDRESS",
            description = "QMP socket to talk to directly: unix:/path, tcp:HOST:PORT, or a plain path.")
    String socket;

    @Option(names = "--compact", description = "Print results as one line of JSON (always so in batch mode).")
    boolean compact;

    @Option(names = {"-f", "--file"}, paramLabel = "FILE",
            description = "Run the commands in FILE, one per line; '-' reads standard input.")
    String file;

    @Option(names = "--keep-going", description = "In a batch, go on after a failed command.")
    boolean keepGoing;

    // Read as text and checked in call(): picocli's conversion errors would get the generic exit code 1, not 2.
    @Option(names = "--repeat", paramLabel = "N", defaultValue = "1", description = "Run the commands N times.")
    String repeatText;

    @Option(names = "--events", description = "Also print the events seen while running, as QEMU sends them.")
    boolean events;

    @Option(names = "--wait-event", paramLabel = "NAME",
            description = "After the commands, wait for event NAME (armed before the first command) and print it.")
    String waitEvent;

    @Option(names = "--timeout", paramLabel = "DURATION", defaultValue = "10s",
            description = "Deadline for connecting, for each command and for --wait-event: seconds (5, 0.5) or"
                    + " with a unit (500ms, 5s, 2m). Default: ${DEFAULT-VALUE}.")
    String timeoutText;

    @Parameters(paramLabel = "[NAME] COMMAND [key=value...]", arity = "0..*",
            description = "Without --socket, the first word names a VM of qsupd. Then one command in qmp-shell"
                    + " syntax (or one JSON object).")
    List<String> words = new ArrayList<>();

    @Option(names = "--no-check", description = "Send commands even where the schema says they are wrong.")
    boolean noCheck;

    @Option(names = "--describe", paramLabel = "COMMAND",
            description = "Print a command's arguments and return type, or an event's data, from the live schema.")
    String describe;

    @Option(names = "--list", description = "Print every command the QEMU offers, one per line.")
    boolean list;

    @Option(names = {"-v", "--verbose"}, description = "Print each message as sent, '--> {...}', on stderr.")
    boolean verbose;

    @Option(names = "--cache-dir", paramLabel = "DIR",
            description = "Where schemas are cached (default: $XDG_CACHE_HOME/qsup, else ~/.cache/qsup).")
    Path cacheDir;

    @Option(names = "--history", paramLabel = "FILE",
            description = "The shell's history (default: $XDG_STATE_HOME/qsup/qmp-history, else ~/.local/state/qsup/...).")
    Path historyFile;

    /** For the bash completion: the command line so far; prints candidates for its last word from the cache. */
    @Option(names = "--complete", hidden = true, paramLabel = "LINE")
    String completeLine;

    @Option(names = "--daemon-socket", paramLabel = "PATH",
            description = "qsupd's control socket, for the NAME form (default: the global --socket given before 'qmp',"
                    + " else $QSUP_SOCKET, else /run/qsup/qsupd.sock).")
    Path daemonSocket;

    @Override
    public Integer call() {
        CommandLine cl = spec.commandLine();
        PrintWriter out = cl.getOut();
        PrintWriter err = cl.getErr();
        if (completeLine != null) {
            return QmpCompletion.print(completeLine, schemaCache(), System.getenv(), out);
        }
        String vmName = null;
        QmpEndpoint endpoint;
        if (socket == null) {
            if (words.isEmpty()) {
                return usage(err, "name a VM (qsup qmp NAME COMMAND ...) or give a QMP socket with --socket");
            }
            vmName = words.remove(0);
            endpoint = new QmpEndpoint.Unix(DaemonClient.resolveSocket(daemonSocket, System.getenv()));
        } else {
            try {
                endpoint = QmpEndpoint.parse(socket);
            } catch (IllegalArgumentException e) {
                return usage(err, "--socket: " + e.getMessage());
            }
        }
        int repeat;
        try {
            repeat = Integer.parseInt(repeatText.strip());
        } catch (NumberFormatException e) {
            repeat = 0;
        }
        if (repeat < 1) {
            return usage(err, "--repeat must be a whole number, 1 or more, got '" + repeatText + "'");
        }
        Duration timeout;
        try {
            timeout = new QmpDurationConverter().convert(timeoutText);
        } catch (CommandLine.TypeConversionException e) {
            return usage(err, "--timeout: " + e.getMessage());
        }
        if (file != null && !words.isEmpty()) {
            return usage(err, "give either a COMMAND or --file, not both (got --file "
                    + file + " and '" + String.join(" ", words) + "')");
        }
        if (describe != null && (file != null || !words.isEmpty() || list)) {
            return usage(err, "--describe prints a description and sends nothing: give it alone");
        }
        if (list && (file != null || !words.isEmpty())) {
            return usage(err, "--list prints the commands and sends nothing: give it alone");
        }
        boolean shell = false;
        if (file == null && words.isEmpty() && waitEvent == null && describe == null && !list) {
            if (!Table.isTerminal()) {
                return usage(err, "nothing to do: give a COMMAND, --file FILE, --wait-event NAME, --describe COMMAND"
                        + " or --list (on a terminal, no command opens a shell)");
            }
            shell = true;
        }

        QmpScript script;
        try {
            script = file != null ? readBatch(file) : words.isEmpty() ? new QmpScript(List.of())
                    : QmpScript.fromWords(words);
        } catch (QmpScript.ScriptException e) {
            err.println(e.getMessage());
            err.flush();
            return ExitCodes.USAGE;
        } catch (NoSuchFileException e) {
            err.println("batch file not found: " + file);
            err.flush();
            return ExitCodes.NOT_FOUND;
        } catch (IOException e) {
            err.println("cannot read batch file " + file + ": " + e.getMessage());
            err.flush();
            return ExitCodes.NOT_FOUND;
        }

        boolean batch = file != null;
        QmpOutput output = new QmpOutput(out, err, compact || batch);
        QmpClient.Options opts = QmpClient.Options.defaults().withConnectTimeout(timeout).withDefaultTimeout(timeout)
                .forExit();
        QmpClient client;
        try {
            client = QmpClient.connect(endpoint, opts);
        } catch (QmpConnectException e) {
            String denied = vmName != null && endpoint instanceof QmpEndpoint.Unix u
                    ? SocketAccess.deniedMessage(u.path()) : null;
            output.error(denied != null ? denied : e.getMessage() + (vmName == null ? ""
                    : "\nIs qsupd running? Start it with 'systemctl start qsupd' or 'qsupd --config FILE'."));
            return ExitCodes.UNREACHABLE;
        } catch (QmpErrorException e) {
            output.error((vmName != null ? "qsupd" : endpoint.toString()) + " refused the connection: " + e.desc());
            return ExitCodes.UNREACHABLE;
        } catch (QmpException e) {
            output.error("cannot talk QMP on " + endpoint + ": " + e.getMessage());
            return ExitCodes.UNREACHABLE;
        }
        try (client) {
            QmpTarget target = QmpTarget.direct(client);
            if (vmName != null) {
                target = QmpTarget.viaDaemon(client, vmName);
                int ready = checkVm(client, vmName, events || waitEvent != null || shell, output);
                if (ready != ExitCodes.OK) {
                    return ready;
                }
            }
            QmpSchemas.Found found = QmpSchemas.obtain(target, schemaCache(), timeout);
            QmpSchema schema = found.schema();
            if (describe != null || list) {
                return describeOrList(found, output, out);
            }
            if (shell) {
                QmpRunner.Settings settings = new QmpRunner.Settings(true, 1, false, null, timeout, false, verbose);
                Path history = historyFile != null ? historyFile : historyDefault();
                return new QmpShell(target, schema, noCheck, new QmpRunner(output, settings), output, history,
                        (vmName != null ? vmName : "qmp") + "> ").run();
            }
            if (schema != null) {
                script = script.typed(schema);
                if (!noCheck) {
                    List<String> problems = script.check(schema);
                    if (!problems.isEmpty()) {
                        problems.forEach(output::error);
                        output.error(NOTHING_SENT);
                        return ExitCodes.USAGE;
                    }
                }
            }
            QmpRunner.Settings settings = new QmpRunner.Settings(keepGoing, repeat, events, waitEvent, timeout, batch,
                    verbose);
            return new QmpRunner(output, settings).run(target, script);
        }
    }

    /** Said after the problems the schema found, on the command line and in the shell alike. */
    static final String NOTHING_SENT =
            "Nothing was sent. --describe COMMAND shows what a command takes; --no-check sends it anyway.";

    private int describeOrList(QmpSchemas.Found found, QmpOutput output, PrintWriter out) {
        if (found.schema() == null) {
            output.error("cannot " + (list ? "list the commands" : "describe " + describe) + ": the server offers no"
                    + " QMP schema (" + found.unavailable() + ")");
            return ExitCodes.ERROR;
        }
        if (list) {
            found.schema().commands().keySet().forEach(out::println);
            out.flush();
            return ExitCodes.OK;
        }
        String text = SchemaDescription.describe(found.schema(), describe);
        if (text == null) {
            output.error(new ArgumentChecker(found.schema()).check(
                    JsonNodeFactory.instance.objectNode().put("execute", describe)).get(0).toString()
                    .replace("unknown command", "no such command or event"));
            return ExitCodes.USAGE;
        }
        out.print(text);
        out.flush();
        return ExitCodes.OK;
    }

    private SchemaCache schemaCache() {
        return new SchemaCache(cacheDir != null ? cacheDir : XdgDirs.cache(System.getenv()));
    }

    private static Path historyDefault() {
        Path state = XdgDirs.state(System.getenv());
        return state == null ? null : state.resolve("qmp-history");
    }

    /** Checks that qsupd knows the VM, and subscribes to its QEMU events when they are wanted. */
    private static int checkVm(QmpClient daemon, String vm, boolean wantEvents, QmpOutput output) {
        try {
            daemon.execute("query-vm", JsonNodeFactory.instance.objectNode().put("name", vm));
            if (wantEvents) {
                var filter = JsonNodeFactory.instance.objectNode();
                filter.putArray("vms").add(vm);
                filter.putArray("events").add("VM_QMP_EVENT");
                daemon.execute("event-subscribe", filter);
            }
            return ExitCodes.OK;
        } catch (QmpErrorException e) {
            output.error(e.desc());
            return "VmNotFound".equals(e.errorClass()) ? ExitCodes.NOT_FOUND : ExitCodes.ERROR;
        } catch (QmpException e) {
            output.error("qsupd: " + e.getMessage());
            return ExitCodes.UNREACHABLE;
        }
    }

    /** Usage errors found after parsing: reported like picocli's own, exit code 2. */
    private static int usage(PrintWriter err, String message) {
        err.println("qsup qmp: " + message);
        err.println("Try 'qsup qmp --help' for the syntax.");
        err.flush();
        return ExitCodes.USAGE;
    }

    private static QmpScript readBatch(String file) throws IOException, QmpScript.ScriptException {
        if (file.equals("-")) {
            InputStream in = System.in;
            String text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            return QmpScript.fromLines("<stdin>", text.lines().toList());
        }
        return QmpScript.fromLines(file, Files.readAllLines(Path.of(file), StandardCharsets.UTF_8));
    }
}
