package io.qsup.cli;

import io.qsup.daemon.Version;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

/**
 * The top {@code qsup} command without its verbs: the global options and the help text. {@link QsupMain} adds every
 * verb; a run that names one adds only that one to this.
 */
@Command(
        name = "qsup",
        mixinStandardHelpOptions = true,
        versionProvider = QsupCommand.VersionProvider.class,
        description = "Control QEMU virtual machines supervised by qsupd, or talk QMP directly.",
        footer = {
            "",
            "Examples:",
            "  qsup list                         every VM and its state",
            "  qsup start web1 && qsup console web1",
            "  qsup stop --all                   ACPI powerdown, then quit, SIGTERM, SIGKILL",
            "  qsup events --follow              state changes as they happen",
            "  qsup qmp web1 query-block         one QMP command on a supervised VM",
            "  qsup qmp --socket unix:/run/vm.sock query-status   any QEMU monitor, no daemon",
            "  qsup validate /etc/qsup/vms       check definitions offline",
            "",
            "The daemon's socket: --socket PATH, before or after the verb; else $QSUP_SOCKET;",
            "else /run/qsup/qsupd.sock. After 'qmp', --socket names a QEMU monitor instead.",
            "Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 daemon or socket unreachable.",
            "'qsup VERB --help' shows each verb's options and examples.",
        })
class QsupCommand implements Runnable {

    @CommandLine.Spec CommandSpec spec;

    // Global options, written before the verb; each verb's own option of the same meaning wins when both are given.
    @Option(names = "--socket", paramLabel = "PATH",
            description = "qsupd's control socket, for every verb that talks to qsupd (for 'qmp': the daemon, as its"
                    + " --daemon-socket). Also accepted after the verb.")
    Path socket;

    @Option(names = "--json", description = "Print stable JSON objects, for the verbs whose output is data."
            + " Also accepted after the verb.")
    boolean json;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "name a verb, e.g. 'qsup list'");
    }

    static final class VersionProvider implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {line()};
        }

        /** The one line of {@code qsup --version}. */
        static String line() {
            return "qsup " + Version.get();
        }
    }
}
