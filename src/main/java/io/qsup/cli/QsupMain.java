package io.qsup.cli;

import io.qsup.daemon.Version;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code qsup} command line client; each verb lives in its own class. */
@Command(
        name = "qsup",
        mixinStandardHelpOptions = true,
        versionProvider = QsupMain.VersionProvider.class,
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
            "The daemon's socket: --socket PATH, else $QSUP_SOCKET, else /run/qsup/qsupd.sock.",
            "Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 daemon or socket unreachable.",
            "'qsup VERB --help' shows each verb's options and examples.",
        },
        subcommands = {
            CommandLine.HelpCommand.class,
            ListCommand.class,
            TopCommand.class,
            StatusCommand.class,
            LifecycleCommand.Start.class,
            LifecycleCommand.Stop.class,
            LifecycleCommand.Restart.class,
            LifecycleCommand.Kill.class,
            LifecycleCommand.Pause.class,
            LifecycleCommand.Resume.class,
            LifecycleCommand.Reset.class,
            LifecycleCommand.ResetFailed.class,
            ReloadCommand.class,
            EventsCommand.class,
            ConsoleCommand.class,
            LogsCommand.class,
            QmpCommand.class,
            ValidateCommand.class,
            ArgvCommand.class,
        })
public final class QsupMain implements Runnable {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the CLI and returns its exit code; used by tests to avoid System.exit. */
    public static int run(String... args) {
        return commandLine().execute(args);
    }

    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new QsupMain());
        cl.setExitCodeExceptionMapper(ExitCodes::forException);
        cl.setExecutionExceptionHandler((ex, cmd, parseResult) -> {
            if (ex instanceof CliException ce) {
                cmd.getErr().println("qsup: " + ce.getMessage());
                cmd.getErr().flush();
                return ce.exitCode();
            }
            throw ex;
        });
        return cl;
    }

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing verb; see 'qsup --help'");
    }

    static final class VersionProvider implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"qsup " + Version.get()};
        }
    }
}
