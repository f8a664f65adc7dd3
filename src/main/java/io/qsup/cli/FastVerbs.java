package io.qsup.cli;

import java.io.BufferedWriter;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.Charset;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * {@code qsup list}, {@code qsup status NAME} and the lifecycle verbs ({@code start}, {@code stop}, {@code kill} ...)
 * in their plain forms, and a lone {@code --version}, run without picocli: building the verb's model from its
 * annotations and parsing with it cost those runs about 55 ms of the main thread's time, while their answer takes a
 * few. The forms:
 * {@code [--socket PATH|--socket=PATH] [--json]} before or after the verb, then for {@code list} {@code [--names]},
 * for {@code status} one NAME, for a lifecycle verb NAMEs or {@code --all}, and {@code --no-wait}; each option at most
 * once. Anything else (help, an unknown option or one of the verb's own, a name that looks like an option, an
 * {@code @file}, {@code --}, names and {@code --all} together or neither) is declined and goes to picocli, which says
 * what is wrong. FastVerbsTest checks that whatever is taken here, picocli parses to the same verb and values.
 */
final class FastVerbs {
    private FastVerbs() {}

    /** The lifecycle verbs taken here, with the command each is; picocli's annotations name them alike. */
    private static final Map<String, Supplier<LifecycleCommand>> LIFECYCLE = Map.of(
            "start", LifecycleCommand.Start::new, "stop", LifecycleCommand.Stop::new,
            "restart", LifecycleCommand.Restart::new, "kill", LifecycleCommand.Kill::new,
            "pause", LifecycleCommand.Pause::new, "resume", LifecycleCommand.Resume::new,
            "reset", LifecycleCommand.Reset::new, "reset-failed", LifecycleCommand.ResetFailed::new);

    /**
     * What a plain form says: {@code name} only for status; {@code vms}, {@code all} and {@code noWait} only for a
     * lifecycle verb ({@code vms} as given, repeats included).
     */
    record Parsed(String verb, Path socket, boolean json, boolean names, String name, List<String> vms, boolean all,
            boolean noWait) {
        Parsed(String verb, Path socket, boolean json, boolean names, String name) {
            this(verb, socket, json, names, name, List.of(), false, false);
        }
    }

    /** The plain form {@code args} spell, or null when picocli must parse them. */
    static Parsed parse(String... args) {
        String verb = null;
        String socket = null;
        String name = null;
        List<String> vms = new ArrayList<>();
        boolean json = false;
        boolean names = false;
        boolean all = false;
        boolean noWait = false;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--socket") || a.startsWith("--socket=")) {
                String value = a.equals("--socket") ? (i + 1 < args.length ? args[++i] : null)
                        : a.substring("--socket=".length());
                // picocli takes no verb's name as an option's value
                if (socket != null || !plainWord(value) || QsupMain.VERBS.containsKey(value) || value.equals("help")) {
                    return null;
                }
                socket = value;
            } else if (a.equals("--json")) {
                if (json) {
                    return null;
                }
                json = true;
            } else if (verb == null) {
                if (!a.equals("list") && !a.equals("status") && !LIFECYCLE.containsKey(a)) {
                    return null;
                }
                verb = a;
            } else if (a.equals("--names") && verb.equals("list") && !names) {
                names = true;
            } else if (verb.equals("status") && name == null && plainWord(a)) {
                name = a;
            } else if (LIFECYCLE.containsKey(verb) && a.equals("--all") && !all) {
                all = true;
            } else if (LIFECYCLE.containsKey(verb) && a.equals("--no-wait") && !noWait) {
                noWait = true;
            } else if (LIFECYCLE.containsKey(verb) && plainWord(a)) {
                vms.add(a);
            } else {
                return null;
            }
        }
        if (verb == null || (verb.equals("status") && name == null)
                || (LIFECYCLE.containsKey(verb) && all == !vms.isEmpty())) {
            return null;
        }
        Path path;
        try {
            path = socket == null ? null : Path.of(socket);
        } catch (InvalidPathException e) {
            return null;
        }
        return new Parsed(verb, path, json, names, name, List.copyOf(vms), all, noWait);
    }

    /** A value picocli takes as it is: not empty, not option-like, not an {@code @file}. */
    private static boolean plainWord(String s) {
        return s != null && !s.isEmpty() && !s.startsWith("-") && !s.startsWith("@");
    }

    /**
     * Runs a plain form of {@code args} and returns its exit code, or null when they are not one. Output and errors
     * are written as the picocli path writes them: picocli's writers on stdout and stderr, a {@link CliException} as
     * {@code qsup: MESSAGE} with its code, anything else with its stack trace and the code {@link ExitCodes} gives.
     */
    static Integer run(String... args) {
        boolean version = QsupMain.versionOnly(args);
        Parsed p = version ? null : parse(args);
        if (!version && p == null) {
            return null;
        }
        PrintWriter out = writer(System.out, "sun.stdout.encoding");
        if (version) {
            out.println(QsupCommand.VersionProvider.line()); // picocli prints the provider's line so
            out.flush();
            return ExitCodes.OK;
        }
        PrintWriter err = writer(System.err, "sun.stderr.encoding");
        DaemonOptions daemon = new DaemonOptions();
        daemon.socket = p.socket();
        JsonOption output = new JsonOption();
        output.json = p.json();
        try {
            Supplier<LifecycleCommand> lifecycle = LIFECYCLE.get(p.verb());
            if (lifecycle != null) {
                LifecycleCommand c = lifecycle.get();
                c.daemon = daemon;
                c.output = output;
                c.names = new ArrayList<>(p.vms());
                c.all = p.all();
                c.noWait = p.noWait();
                return c.run(p.verb(), out, err);
            }
            if (p.verb().equals("list")) {
                ListCommand list = new ListCommand();
                list.daemon = daemon;
                list.output = output;
                list.namesOnly = p.names();
                return list.run(out);
            }
            StatusCommand status = new StatusCommand();
            status.daemon = daemon;
            status.output = output;
            status.name = p.name();
            return status.run(out);
        } catch (CliException e) {
            err.println("qsup: " + e.getMessage());
            return e.exitCode();
        } catch (RuntimeException | InterruptedException e) {
            e.printStackTrace(err);
            return ExitCodes.forException(e);
        } finally {
            out.flush();
            err.flush();
        }
    }

    /** The writer picocli makes for a stream: its charset from {@code property}, else the JVM's default. */
    private static PrintWriter writer(OutputStream stream, String property) {
        String name = System.getProperty(property);
        Charset charset;
        try {
            charset = name == null ? Charset.defaultCharset()
                    : Charset.forName(name.equalsIgnoreCase("cp65001") ? "UTF-8" : name);
        } catch (RuntimeException e) {
            charset = Charset.defaultCharset();
        }
        return new PrintWriter(new BufferedWriter(new OutputStreamWriter(stream, charset)), true);
    }
}
